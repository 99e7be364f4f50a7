"""Signed media links: bound to one file, valid until they expire, unforgeable without the key."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

from app.media.links import MediaLinks

KEY = "a-secret-key-for-tests"
MEDIA = str(uuid.uuid4())


def parts(url: str) -> tuple[str, str, str]:
    split = urlsplit(url)
    query = parse_qs(split.query)
    return split.path.rsplit("/", 1)[1], query["expires"][0], query["signature"][0]


def test_a_link_is_valid_until_it_expires_for_its_own_file_only() -> None:
    links = MediaLinks(KEY, ttl=600, public_url="https://gateway.example.com/")
    url = links.url(MEDIA, now=1_000_000)
    assert url.startswith(f"https://gateway.example.com/media/{MEDIA}?expires=1000600&signature=")
    media_id, expires, signature = parts(url)
    assert links.valid(media_id, expires, signature, now=1_000_600)
    assert not links.valid(media_id, expires, signature, now=1_000_601)  # expired
    assert not links.valid(str(uuid.uuid4()), expires, signature, now=1_000_000)  # another file
    assert not links.valid(media_id, "1000700", signature, now=1_000_000)  # a later expiry, same signature
    assert not links.valid(media_id, expires, "0" * 64, now=1_000_000)  # forged
    assert not links.valid(media_id, "soon", signature, now=1_000_000) and not links.valid(media_id, "", "", now=0)
    other_key = MediaLinks("another-key", ttl=600)
    assert not other_key.valid(media_id, expires, signature, now=1_000_000)
    assert MediaLinks(KEY, ttl=60).url(MEDIA, now=0).startswith(f"/media/{MEDIA}?expires=60&")  # no PUBLIC_URL
