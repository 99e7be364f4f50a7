"""Realistic whatsmeow SQLite stores for tests and the benchmark: whatsmeow creates the schema (no pairing is possible
offline), then `fill()` writes rows into every table as go-sqlite3 would (0/1 booleans, BLOB keys of the real sizes).
"""

from __future__ import annotations

import dataclasses
import random
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from app.authimport import whatsmeow

APP_STATES = ("critical_block", "critical_unblock_low", "regular", "regular_high", "regular_low")


@dataclasses.dataclass(frozen=True)
class FakeDevice:
    phone: str = "6281234567890"
    device: int = 12
    lid: str = "123456789012345"
    push_name: str = "Toko Maju, Jakarta"  # a comma: neonize's own device listing splits on it

    @property
    def jid(self) -> str:
        return f"{self.phone}:{self.device}@s.whatsapp.net"


async def make_empty_store(path: Path) -> Path:
    """A store file with whatsmeow's schema and no rows, made by whatsmeow itself (in a child process)."""
    await whatsmeow.devices(str(path))
    return path


def copy_store(template: Path, path: Path) -> Path:
    shutil.copyfile(template, path)
    return path


def fill(
    path: Path, devices: list[FakeDevice], *, sessions: int = 40, pre_keys: int = 50, seed: int = 5
) -> dict[str, int]:
    """Add rows for each device to every whatsmeow table; return the rows added per table."""
    rng = random.Random(seed)
    added: dict[str, int] = {}
    connection = sqlite3.connect(path)
    try:
        with connection:
            for device in devices:
                for table, rows in _rows(device, rng, sessions=sessions, pre_keys=pre_keys).items():
                    columns = list(rows[0])
                    connection.executemany(
                        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                        [tuple(row[column] for column in columns) for row in rows],
                    )
                    added[table] = added.get(table, 0) + len(rows)
    finally:
        connection.close()
    return added


def _rows(device: FakeDevice, rng: random.Random, *, sessions: int, pre_keys: int) -> dict[str, list[dict[str, Any]]]:
    def key(size: int = 32) -> bytes:
        return rng.randbytes(size)

    jid = device.jid
    # Unique per device: lid_map's phone numbers are unique across the whole store.
    contacts = [f"628{device.device:02d}{n:08d}" for n in rng.sample(range(10**8), max(sessions, 8))]
    groups = [f"1203630{rng.randrange(10**11, 10**12)}@g.us" for _ in range(4)]
    now = 1_763_000_000
    return {
        "whatsmeow_device": [
            {
                "jid": jid,
                "lid": f"{device.lid}:{device.device}@lid",
                "facebook_uuid": None,
                "registration_id": rng.randrange(2**32),
                "noise_key": key(),
                "identity_key": key(),
                "signed_pre_key": key(),
                "signed_pre_key_id": 1,
                "signed_pre_key_sig": key(64),
                "adv_key": key(),
                "adv_details": key(120),
                "adv_account_sig": key(64),
                "adv_account_sig_key": key(),
                "adv_device_sig": key(64),
                "platform": "android",
                "business_name": "",
                "push_name": device.push_name,
                "lid_migration_ts": now,
                "companion_meta_nonce": "",
            }
        ],
        "whatsmeow_identity_keys": [
            {"our_jid": jid, "their_id": f"{phone}:0", "identity": key()} for phone in contacts[:sessions]
        ],
        "whatsmeow_pre_keys": [
            {"jid": jid, "key_id": key_id, "key": key(), "uploaded": int(key_id <= pre_keys - 5)}
            for key_id in range(1, pre_keys + 1)
        ],
        "whatsmeow_sessions": [
            {"our_jid": jid, "their_id": f"{phone}:0", "session": key(rng.randrange(600, 1400))}
            for phone in contacts[:sessions]
        ],
        "whatsmeow_sender_keys": [
            {"our_jid": jid, "chat_id": group, "sender_id": f"{contacts[0]}:0", "sender_key": key(180)}
            for group in groups
        ],
        "whatsmeow_app_state_sync_keys": [
            {"jid": jid, "key_id": key(6), "key_data": key(100), "timestamp": now - n, "fingerprint": key(20)}
            for n in range(3)
        ],
        "whatsmeow_app_state_version": [
            {"jid": jid, "name": name, "version": 7 + n, "hash": key(128)} for n, name in enumerate(APP_STATES)
        ],
        "whatsmeow_app_state_mutation_macs": [
            {"jid": jid, "name": name, "version": 7, "index_mac": key(), "value_mac": key()}
            for name in APP_STATES
            for _ in range(2)
        ],
        "whatsmeow_contacts": [
            {
                "our_jid": jid,
                "their_jid": f"{phone}@s.whatsapp.net",
                "first_name": "Budi",
                "full_name": "Budi Santoso",
                "push_name": "Budi",
                "business_name": None,
                "redacted_phone": None,
            }
            for phone in contacts[:8]
        ],
        "whatsmeow_chat_settings": [
            {"our_jid": jid, "chat_jid": groups[0], "muted_until": now + 3600, "pinned": 1, "archived": 0},
            {"our_jid": jid, "chat_jid": f"{contacts[1]}@s.whatsapp.net", "muted_until": 0, "pinned": 0, "archived": 1},
        ],
        "whatsmeow_message_secrets": [
            {
                "our_jid": jid,
                "chat_jid": groups[1],
                "sender_jid": f"{contacts[2]}@s.whatsapp.net",
                "message_id": f"3EB0{rng.randrange(16**12):012X}",
                "key": key(),
            }
            for _ in range(3)
        ],
        "whatsmeow_privacy_tokens": [
            {
                "our_jid": jid,
                "their_jid": f"{phone}@s.whatsapp.net",
                "token": key(24),
                "timestamp": now,
                "sender_timestamp": None,
            }
            for phone in contacts[:3]
        ],
        "whatsmeow_nct_salt": [{"our_jid": jid, "salt": key()}],
        "whatsmeow_lid_map": [
            {"lid": f"{rng.randrange(10**14, 10**15)}@lid", "pn": f"{phone}@s.whatsapp.net"} for phone in contacts[:5]
        ],
        "whatsmeow_event_buffer": [
            {
                "our_jid": jid,
                "ciphertext_hash": key(),
                "plaintext": key(90),
                "server_timestamp": now,
                "insert_timestamp": now + 1,
            }
        ],
        "whatsmeow_retry_buffer": [
            {
                "our_jid": jid,
                "chat_jid": f"{contacts[3]}@s.whatsapp.net",
                "message_id": "3EB0C431D5E4A1B2",
                "format": "e2e",
                "plaintext": key(70),
                "timestamp": now,
            }
        ],
    }
