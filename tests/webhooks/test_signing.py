"""The wire format: envelope, signature (checked by an independent HMAC), headers, and the receiver in the docs."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from pathlib import Path
from typing import Any

from app.webhooks import signing
from tests.webhooks.conftest import hmac_sha256

EVENT_ID = uuid.UUID("a1630960-2683-4995-81dc-fdd228790610")
CREATED = dt.datetime(2026, 11, 22, 8, 15, 2, 73238, tzinfo=dt.UTC)


def test_the_envelope_is_the_stored_event_as_json() -> None:
    body = signing.envelope(EVENT_ID, "message.received", CREATED, '{"text": "Halo \\u00e9 ✓"}')
    assert json.loads(body) == {
        "id": str(EVENT_ID),
        "type": "message.received",
        "created_at": "2026-11-22T08:15:02.073238+00:00",
        "data": {"text": "Halo é ✓"},
    }
    later = dt.datetime(2026, 11, 22, 15, 15, 2, 73238, tzinfo=dt.timezone(dt.timedelta(hours=7)))
    assert json.loads(signing.envelope(EVENT_ID, "x", later, "{}"))["created_at"] == "2026-11-22T08:15:02.073238+00:00"


def test_the_signature_matches_an_independent_hmac() -> None:
    body = signing.envelope(EVENT_ID, "message.received", CREATED, '{"text": "x"}')
    for secret in ("s", "a-long-random-string", "k" * 100):  # keys shorter and longer than the hash block
        assert signing.signature(secret, body) == "sha256=" + hmac_sha256(secret.encode(), body)
        assert signing.verify(secret, body, signing.signature(secret, body))
        assert not signing.verify(secret, body + b" ", signing.signature(secret, body))
        assert not signing.verify(secret, body, None)


def test_headers() -> None:
    body = b"{}"
    headers = signing.headers("secret", body, EVENT_ID, 3, CREATED)
    assert headers == {
        "Content-Type": "application/json",
        "User-Agent": signing.USER_AGENT,
        "X-Hub-Signature-256": "sha256=" + hmac_sha256(b"secret", body),
        "X-Webhook-Id": str(EVENT_ID),
        "X-Webhook-Timestamp": str(int(CREATED.timestamp())),
        "X-Webhook-Attempt": "3",
    }


def test_the_receiver_in_the_docs_verifies_our_signature(repo_root: Path) -> None:
    text = (repo_root / "docs" / "WEBHOOKS.md").read_text()
    [code] = [block for block in re.findall(r"```python\n(.*?)```", text, re.S) if "signature_ok" in block]
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(code, "WEBHOOKS.md", "exec"), namespace)  # noqa: S102 - our own documentation
    namespace["SECRET"] = b"a-long-random-string"
    body = signing.envelope(EVENT_ID, "message.received", CREATED, "{}")
    assert namespace["signature_ok"](body, signing.signature("a-long-random-string", body))
    assert not namespace["signature_ok"](body, signing.signature("another-secret", body))
    assert not namespace["signature_ok"](body, None)
