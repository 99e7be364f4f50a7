"""Links to stored media that a webhook receiver (n8n, a CRM) can fetch without the API token: `/media/{id}?expires=
<unix seconds>&signature=<hex>`, an HMAC-SHA256 of the id and the expiry under a key derived from SECRET_KEY, so a
link is bound to one file, dies after MEDIA_URL_TTL, and cannot be made or altered without the key."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from urllib.parse import urlencode

PURPOSE = b"whatsapp-gateway media links v1"  # the derived key serves nothing else (not the session cookie)


class MediaLinks:
    def __init__(self, secret_key: str, ttl: int, public_url: str | None = None) -> None:
        self._key = hmac.new(secret_key.encode(), PURPOSE, hashlib.sha256).digest()
        self.ttl = ttl
        self.public_url = (public_url or "").rstrip("/")  # PUBLIC_URL; without it the link is a path of this app

    def _signature(self, media_id: str, expires: int) -> str:
        return hmac.new(self._key, f"{media_id}.{expires}".encode(), hashlib.sha256).hexdigest()

    def url(self, media_id: uuid.UUID | str, now: float | None = None) -> str:
        """A link to one file, valid for `ttl` seconds from `now`."""
        expires = int(now if now is not None else time.time()) + self.ttl
        query = urlencode({"expires": expires, "signature": self._signature(str(media_id), expires)})
        return f"{self.public_url}/media/{media_id}?{query}"

    def valid(self, media_id: str, expires: str, signature: str, now: float | None = None) -> bool:
        """Whether a link's id, expiry and signature are ours and it has not expired (compared in constant time)."""
        if not expires.isascii() or not expires.isdigit() or len(expires) > 12:
            return False
        if int(expires) < (now if now is not None else time.time()):
            return False
        return hmac.compare_digest(signature.encode(), self._signature(media_id, int(expires)).encode())
