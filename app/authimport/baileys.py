"""A Baileys login as whatsmeow's rows: checks every key and signature of the creds first, then lays out the device,
identities, pre-keys (their id range reserved), app-state keys and versions, LID map, privacy tokens, and the Signal
sessions and sender keys converted; it offers the same tables, counts and rows as a whatsmeow SQLite store, so the
one import path copies either.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator
from pathlib import Path
from types import TracebackType
from typing import Any

from app.authimport import curve, documents, signal
from app.authimport.documents import Documents, as_bytes, as_int
from app.authimport.refusal import PAIR_ONCE, Refusal
from app.authimport.source import Device, Table

SCHEMA = (15, 8)  # the whatsmeow schema (version, compat) these rows are laid out for: neonize 0.5.2's
ACCOUNT_PREFIX, DEVICE_PREFIX = b"\x06\x00", b"\x06\x01"  # whatsmeow's / Baileys' ADV signature prefixes
HOSTED_ACCOUNT_PREFIX = b"\x06\x05"
HOSTED = 1  # ADVEncryptionType.HOSTED in ADVDeviceIdentity.deviceType (field 5)
RETRY = "needs one retry (whatsmeow asks, the sender re-sends; nothing is lost while the sender is online)"

D = "whatsmeow_device"
COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    D: (
        ("jid", "text"), ("lid", "text"), ("facebook_uuid", "uuid"), ("registration_id", "bigint"),
        ("noise_key", "bytea"), ("identity_key", "bytea"), ("signed_pre_key", "bytea"),
        ("signed_pre_key_id", "integer"), ("signed_pre_key_sig", "bytea"), ("adv_key", "bytea"),
        ("adv_details", "bytea"), ("adv_account_sig", "bytea"), ("adv_account_sig_key", "bytea"),
        ("adv_device_sig", "bytea"), ("platform", "text"), ("business_name", "text"), ("push_name", "text"),
        ("lid_migration_ts", "bigint"), ("companion_meta_nonce", "text"),
    ),
    "whatsmeow_identity_keys": (("our_jid", "text"), ("their_id", "text"), ("identity", "bytea")),
    "whatsmeow_pre_keys": (("jid", "text"), ("key_id", "integer"), ("key", "bytea"), ("uploaded", "boolean")),
    "whatsmeow_sessions": (("our_jid", "text"), ("their_id", "text"), ("session", "bytea")),
    "whatsmeow_sender_keys": (("our_jid", "text"), ("chat_id", "text"), ("sender_id", "text"), ("sender_key", "bytea")),
    "whatsmeow_app_state_sync_keys": (
        ("jid", "text"), ("key_id", "bytea"), ("key_data", "bytea"), ("timestamp", "bigint"), ("fingerprint", "bytea"),
    ),
    "whatsmeow_app_state_version": (("jid", "text"), ("name", "text"), ("version", "bigint"), ("hash", "bytea")),
    "whatsmeow_app_state_mutation_macs": (
        ("jid", "text"), ("name", "text"), ("version", "bigint"), ("index_mac", "bytea"), ("value_mac", "bytea"),
    ),
    "whatsmeow_privacy_tokens": (
        ("our_jid", "text"), ("their_jid", "text"), ("token", "bytea"), ("timestamp", "bigint"),
        ("sender_timestamp", "bigint"),
    ),
    "whatsmeow_lid_map": (("lid", "text"), ("pn", "text")),
}  # fmt: skip
PARENTS = {"whatsmeow_app_state_mutation_macs": "whatsmeow_app_state_version"}
SCOPES = {D: "jid", "whatsmeow_lid_map": None}


class BaileysSource:
    """A Baileys login, read and converted in memory: the SourceStore interface the importer and target use."""

    def __init__(self, docs: Documents) -> None:
        self.docs = docs
        self.kind = f"Baileys {docs.kind}"
        self.path: Path | str = docs.path if docs.path is not None else docs.label
        self.label = docs.label
        self.sha256 = docs.sha256
        self.version, self.compat = SCHEMA
        self.notes: list[str] = []  # what was not carried over, and what that costs
        self.rows_by_table: dict[str, list[tuple[Any, ...]]] = {}
        self.devices: list[Device] = []
        self.tables = [
            Table(name, columns, (PARENTS.get(name, D),) if name != D else (), SCOPES.get(name, columns[0][0]))
            for name, columns in COLUMNS.items()
        ]

    @classmethod
    def open(cls, source: Path | str) -> BaileysSource:
        if documents.is_env(source):
            docs = documents.from_env(str(source))
        elif Path(source).is_dir():
            docs = documents.from_folder(Path(source))
        elif Path(source).name == "creds.json":
            docs = documents.from_folder(Path(source).parent)
        elif Path(source).suffix == ".json":
            docs = documents.from_state_file(Path(source))
        else:
            docs = documents.from_sqlite(Path(source))
        store = cls(docs)
        store._convert()
        return store

    # -- checks and conversion (nothing is written before all of this passed) -----------------------------------------

    def _convert(self) -> None:
        creds = self.docs.creds
        where = self.label
        if not creds:
            raise Refusal("not_a_store", f"{where} holds no Baileys creds")
        me = creds.get("me") or {}
        jid = me.get("id") if isinstance(me, dict) else None
        if not jid:
            raise Refusal("no_device", f"{where} was never paired (creds.json has no me.id): {PAIR_ONCE}")
        if not isinstance(creds.get("account"), dict):
            raise Refusal(
                "no_account",
                f"{where} has no account (the signed device identity WhatsApp gave at pairing), so WhatsApp would "
                f"refuse the login; {PAIR_ONCE}",
            )
        device = self._field("device", lambda: self._device(creds, str(jid), me))
        self.devices = [Device(str(jid), str(me.get("name") or ""), str(creds.get("platform") or ""))]
        self.rows_by_table[D] = [device]
        self.rows_by_table["whatsmeow_identity_keys"] = self._field("identities", lambda: self._identities(str(jid)))
        self.rows_by_table["whatsmeow_pre_keys"] = self._field("pre-keys", lambda: self._pre_keys(str(jid), creds))
        self._signal(str(jid), creds)
        self._field("app state", lambda: self._app_state(str(jid)))
        self.rows_by_table["whatsmeow_privacy_tokens"] = self._field("privacy tokens", lambda: self._tokens(str(jid)))
        self.rows_by_table["whatsmeow_lid_map"] = self._field("LID map", self._lid_map)

    def _field(self, part: str, build: Callable[[], Any]) -> Any:
        try:
            return build()
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise Refusal("bad_data", f"{self.label}: {part}: missing or malformed value ({error!r})") from error

    def _device(self, creds: dict[str, Any], jid: str, me: dict[str, Any]) -> tuple[Any, ...]:
        noise, identity = creds["noiseKey"], creds["signedIdentityKey"]
        signed = creds["signedPreKey"]
        identity_private, identity_public = self._pair("signedIdentityKey", identity)
        noise_private, _ = self._pair("noiseKey", noise)
        signed_private, signed_public = self._pair("signedPreKey", signed["keyPair"])
        signature = as_bytes(signed["signature"])
        if not curve.verify(identity_public, curve.typed(signed_public), signature):
            raise Refusal("bad_signature", f"{self.label}: the signed pre-key's signature does not verify: {PAIR_ONCE}")
        account = creds["account"]
        details = as_bytes(account["details"])
        account_key = curve.strip(as_bytes(account["accountSignatureKey"]))
        account_sig, device_sig = as_bytes(account["accountSignature"]), as_bytes(account["deviceSignature"])
        prefix = HOSTED_ACCOUNT_PREFIX if _device_type(details) == HOSTED else ACCOUNT_PREFIX
        if not curve.verify(account_key, prefix + details + identity_public, account_sig):
            raise Refusal(
                "bad_signature", f"{self.label}: the account signature (ADV) does not verify for this identity key"
            )
        if not curve.verify(identity_public, DEVICE_PREFIX + details + identity_public + account_key, device_sig):
            raise Refusal("bad_signature", f"{self.label}: the device signature (ADV) does not verify")
        registration = as_int(creds["registrationId"])
        return (
            jid, me.get("lid") or None, None, registration, noise_private, identity_private, signed_private,
            as_int(signed["keyId"]), signature, as_bytes(creds["advSecretKey"]), details, account_sig, account_key,
            device_sig, str(creds.get("platform") or ""), "", str(me.get("name") or ""), 0, "",
        )  # fmt: skip

    def _pair(self, name: str, pair: dict[str, Any]) -> tuple[bytes, bytes]:
        private, public = as_bytes(pair["private"]), curve.strip(as_bytes(pair["public"]))
        if len(private) != 32 or curve.public_key(private) != public:
            raise Refusal(
                "key_mismatch", f"{self.label}: {name}: the public key is not the X25519 key of its private key"
            )
        return private, public

    def _identities(self, jid: str) -> list[tuple[Any, ...]]:
        identities: dict[str, bytes] = {}
        for entry in self.docs.creds.get("signalIdentities") or []:
            name = entry["identifier"]["name"]
            user, _, server = name.partition("@")
            user = user.split(":")[0]
            their_id = f"{user}_1:0" if server == "lid" else f"{user}:0"  # whatsmeow: the primary device, LID agent 1
            identities[their_id] = curve.strip(as_bytes(entry["identifierKey"]))
        for key, value in self.docs.category("identity-key").items():
            identities[signal.address(key)] = curve.strip(as_bytes(value))
        return [(jid, their_id, identity) for their_id, identity in identities.items()]

    def _pre_keys(self, jid: str, creds: dict[str, Any]) -> list[tuple[Any, ...]]:
        first_unuploaded = as_int(creds.get("firstUnuploadedPreKeyId", 1))
        rows = []
        for key, value in self.docs.category("pre-key").items():
            key_id = as_int(key)
            private, _ = self._pair(f"pre-key {key_id}", value)
            rows.append((jid, key_id, private, key_id < first_unuploaded))
        # whatsmeow numbers new pre-keys MAX(key_id) + 1; ids Baileys already handed out (consumed, files deleted)
        # must not come again, or a new contact's first message fails: one placeholder row reserves the range.
        reserved = as_int(creds.get("nextPreKeyId", 1)) - 1
        if reserved > max((row[1] for row in rows), default=0):
            rows.append((jid, reserved, os.urandom(32), True))
        return sorted(rows, key=lambda row: row[1])

    def _signal(self, jid: str, creds: dict[str, Any]) -> None:
        identity_public = curve.strip(as_bytes(creds["signedIdentityKey"]["public"]))
        registration = as_int(creds["registrationId"])
        sessions, failed = [], []
        for key, record in self.docs.category("session").items():
            try:
                sessions.append((jid, signal.address(key), signal.session(record, identity_public, registration)))
            except (signal.Unconvertible, KeyError, TypeError, ValueError) as error:
                failed.append(f"{key} ({error})")
        senders, failed_senders = [], []
        for key, record in self.docs.category("sender-key").items():
            try:
                chat_id, sender_id = signal.sender_key_name(key)
                senders.append((jid, chat_id, sender_id, signal.sender_key(record)))
            except (signal.Unconvertible, KeyError, TypeError, ValueError) as error:
                failed_senders.append(f"{key} ({error})")
        self.rows_by_table["whatsmeow_sessions"] = sessions
        self.rows_by_table["whatsmeow_sender_keys"] = senders
        if failed:
            self.notes.append(
                f"{len(failed)} of {len(failed) + len(sessions)} Signal sessions not converted ({_few(failed)}): "
                f"the first message from each of those contacts {RETRY}"
            )
        if not self.docs.category("session") and self.docs.kind == "session string":
            self.notes.append(
                f"the session string carries no Signal sessions: the first message from each contact {RETRY}"
            )
        if failed_senders:
            self.notes.append(
                f"{len(failed_senders)} of {len(failed_senders) + len(senders)} group sender keys not converted "
                f"({_few(failed_senders)}): the next group message from each of those senders {RETRY}"
            )

    def _app_state(self, jid: str) -> None:
        keys = []
        for key, value in self.docs.category("app-state-sync-key").items():
            key_id = as_bytes(key.replace("__", "/"))
            keys.append((jid, key_id, as_bytes(value["keyData"]), as_int(value.get("timestamp") or 0),
                         _fingerprint(value.get("fingerprint") or {})))  # fmt: skip
        versions, macs, skipped = [], [], []
        for name, value in self.docs.category("app-state-sync-version").items():
            version = as_int(value.get("version") or 0)
            if version == 0:  # whatsmeow reads a stored version 0 as an error; without a row it starts from scratch
                skipped.append(name)
                continue
            state_hash = as_bytes(value["hash"])
            if len(state_hash) != 128:
                raise ValueError(f"app state {name}: the hash has {len(state_hash)} bytes, not 128")
            versions.append((jid, name, version, state_hash))
            for index_mac, entry in (value.get("indexValueMap") or {}).items():
                macs.append((jid, name, version, as_bytes(index_mac), as_bytes(entry["valueMac"])))
        self.rows_by_table["whatsmeow_app_state_sync_keys"] = keys
        self.rows_by_table["whatsmeow_app_state_version"] = versions
        self.rows_by_table["whatsmeow_app_state_mutation_macs"] = macs

    def _tokens(self, jid: str) -> list[tuple[Any, ...]]:
        rows = []
        for their_jid, value in self.docs.category("tctoken").items():
            if their_jid == "__index" or not isinstance(value, dict) or not value.get("token"):
                continue
            sender = value.get("senderTimestamp")
            rows.append((jid, their_jid, as_bytes(value["token"]), as_int(value.get("timestamp") or 0),
                         as_int(sender) if sender is not None else None))  # fmt: skip
        return rows

    def _lid_map(self) -> list[tuple[Any, ...]]:
        rows: dict[str, str] = {}  # lid -> pn, whatsmeow keeps the user parts only; both columns are unique
        me = self.docs.creds.get("me") or {}
        if me.get("lid"):  # what whatsmeow stores of its own account when it pairs
            rows[_user(me["lid"])] = _user(me["id"])
        for pn, lid in self.docs.category("lid-mapping").items():
            if pn.endswith("_reverse") or not isinstance(lid, str) or not lid:
                continue
            lid_user = _user(lid)
            if lid_user not in rows and pn not in rows.values():
                rows[lid_user] = pn
        return list(rows.items())

    # -- the SourceStore interface -------------------------------------------------------------------------------------

    def device(self, jid: str | None) -> Device:
        if jid is not None and jid != self.devices[0].jid:
            raise Refusal(
                "unknown_device", f"{self.label} holds no device {jid}; it holds {self.devices[0].describe()}"
            )
        return self.devices[0]

    def count(self, table: Table, jid: str) -> int:
        return len(self.rows_by_table.get(table.name, []))

    def rows(self, table: Table, jid: str) -> Generator[tuple[Any, ...], None, None]:
        yield from self.rows_by_table.get(table.name, [])

    def close(self) -> None:
        pass

    def __enter__(self) -> BaileysSource:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _device_type(details: bytes) -> int | None:
    """ADVDeviceIdentity.deviceType (field 5), read with a minimal protobuf walk."""
    for number, value in _fields(details):
        if number == 5 and isinstance(value, int):
            return value
    return None


def _fields(data: bytes) -> Generator[tuple[int, int | bytes], None, None]:
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, position = _varint(data, position)
            yield number, value
        elif wire == 2:
            length, position = _varint(data, position)
            yield number, data[position : position + length]
            position += length
        elif wire in (1, 5):
            position += 8 if wire == 1 else 4
        else:
            raise ValueError(f"unexpected protobuf wire type {wire}")


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(data):
            raise ValueError("truncated protobuf")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, position


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _fingerprint(fingerprint: dict[str, Any]) -> bytes:
    """AppStateSyncKeyFingerprint marshalled as whatsmeow stores it: rawId 1, currentIndex 2, packed deviceIndexes 3."""
    out = bytearray()
    if fingerprint.get("rawId") is not None:
        out += b"\x08" + _encode_varint(as_int(fingerprint["rawId"]))
    if fingerprint.get("currentIndex") is not None:
        out += b"\x10" + _encode_varint(as_int(fingerprint["currentIndex"]))
    indexes = b"".join(_encode_varint(as_int(index)) for index in fingerprint.get("deviceIndexes") or [])
    if indexes:
        out += b"\x1a" + _encode_varint(len(indexes)) + indexes
    return bytes(out)


def _user(jid: str) -> str:
    """The user part of a JID: "123:12@lid" -> "123"."""
    return jid.split("@")[0].split(":")[0]


def _few(items: list[str]) -> str:
    return ", ".join(items[:3]) + (f" and {len(items) - 3} more" if len(items) > 3 else "")
