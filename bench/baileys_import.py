"""Baileys import: a useMultiFileAuthState folder with 1,000 Signal sessions (and their identity keys) and 800 pre-keys,
converted and copied into Postgres, with whatsmeow's tables already there and into an empty database (median of 5,
fresh database each). `python -m bench.baileys_import` (embedded Postgres, or BENCH_DATABASE_URL=postgresql://...).

The folder is the test fixture (made by Baileys' own code) grown to that size: its session and identity files copied
under 1,000 contact addresses, and 800 fresh X25519 pre-keys, so that every check and conversion runs for real.
"""

from __future__ import annotations

import base64
import json
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from bench.auth_import import measure
from tests.authimport.baileys_fixture import EXPECTED, folder_copy

SESSIONS = 1_000
PRE_KEYS = 800
CONTACT_FILE = "session-98765432109876_1.0.json"
IDENTITY_FILE = "identity-key-98765432109876_1.0.json"


def buffer(data: bytes) -> dict[str, str]:
    return {"type": "Buffer", "data": base64.b64encode(data).decode()}


def make_folder(directory: Path) -> Path:
    folder = folder_copy(directory)
    session, identity = (folder / CONTACT_FILE).read_text(), (folder / IDENTITY_FILE).read_text()
    for number in range(SESSIONS - 1):  # the fixture's own contact makes the 1,000th
        address = f"{200000000000000 + number}_1.0"
        (folder / f"session-{address}.json").write_text(session)
        (folder / f"identity-key-{address}.json").write_text(identity)
    for path in folder.glob("pre-key-*.json"):
        path.unlink()
    for key_id in range(1, PRE_KEYS + 1):
        private = X25519PrivateKey.generate()
        pair = {
            "private": buffer(private.private_bytes_raw()),
            "public": buffer(private.public_key().public_bytes_raw()),
        }
        (folder / f"pre-key-{key_id}.json").write_text(json.dumps(pair))
    creds = json.loads((folder / "creds.json").read_text())
    creds.update(nextPreKeyId=PRE_KEYS + 1, firstUnuploadedPreKeyId=PRE_KEYS - 29)
    (folder / "creds.json").write_text(json.dumps(creds))
    return folder


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-baileys-") as directory:
        folder = make_folder(Path(directory))
        files = list(folder.iterdir())
        size = sum(path.stat().st_size for path in files) / 2**20
        print(f"folder: {len(files)} files, {size:.1f} MB ({SESSIONS} sessions, {PRE_KEYS} pre-keys)")
        measure(folder, EXPECTED["jid"], SESSIONS)


if __name__ == "__main__":
    main()
