"""What a delivery looks like on the wire: the envelope, its HMAC-SHA256 signature and the headers around it.

The body is built once from the stored event, so every retry of an event sends the same bytes, id and signature.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import uuid

from app import __version__

SIGNATURE_HEADER = "X-Hub-Signature-256"
ID_HEADER = "X-Webhook-Id"
TIMESTAMP_HEADER = "X-Webhook-Timestamp"
ATTEMPT_HEADER = "X-Webhook-Attempt"
USER_AGENT = f"whatsapp-gateway/{__version__}"


def envelope(event_id: uuid.UUID, event_type: str, created_at: dt.datetime, data_json: str) -> bytes:
    """`{"id", "type", "created_at", "data"}` as UTF-8 JSON; `data_json` is the stored data, already JSON."""
    created = created_at.astimezone(dt.UTC).isoformat()
    return (
        f'{{"id":"{event_id}","type":{json.dumps(event_type)},"created_at":"{created}","data":{data_json}}}'
    ).encode()


def signature(secret: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of the raw body>`, the WhatsApp Cloud API convention."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """True if `header` is the signature of `body` (constant-time comparison)."""
    return header is not None and hmac.compare_digest(signature(secret, body), header.strip())


def headers(secret: str, body: bytes, event_id: uuid.UUID, attempt: int, now: dt.datetime) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: signature(secret, body),
        ID_HEADER: str(event_id),
        TIMESTAMP_HEADER: str(int(now.timestamp())),
        ATTEMPT_HEADER: str(attempt),
    }
