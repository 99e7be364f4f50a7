"""Baileys' auth documents wherever a bot kept them: a useMultiFileAuthState folder, rows of a SQLite table (found by
content, whatever the table is called, prefixed keys included) or a session string in an environment variable. Only
reads; the hash covers exactly what was read. Values are decoded later, field by field (`as_bytes`, `as_int`).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import gzip
import hashlib
import json
import os
import re
import sqlite3
from pathlib import Path
from typing import Any

from app.authimport.refusal import Refusal
from app.authimport.source import BUSY_TIMEOUT, is_sqlite, read_only_uri

ENV_PREFIX = "env:"
CREDS = "creds"
# Categories of Baileys' key store (SignalDataTypeMap), longest first so that "sender-key-memory" wins over
# "sender-key". The legacy single-file state named them in camelCase.
CATEGORIES = (
    "app-state-sync-version", "app-state-sync-key", "sender-key-memory", "sender-key", "identity-key", "lid-mapping",
    "device-list", "pre-key", "session", "tctoken",
)  # fmt: skip
LEGACY = {
    "preKeys": "pre-key", "sessions": "session", "senderKeys": "sender-key", "appStateSyncKeys": "app-state-sync-key",
    "appStateVersions": "app-state-sync-version", "senderKeyMemory": "sender-key-memory",
}  # fmt: skip
NAME = re.compile(rf"^(?:{CREDS}|(?:{'|'.join(CATEGORIES)})-.+)$")
SEPARATORS = ":/|"  # what bots put between their prefix and the document name: baileys-auth-state:<id>:pre-key-1
STRING_PREFIX = re.compile(r"^.*(?:~|;;;|!)")  # "MYBOT~<base64>", "Session;;;<base64>", "KAI!<base64>"
MAX_COLUMNS = 6


@dataclasses.dataclass
class Documents:
    """Baileys' documents of one login: creds and the key store, {category: {id: value}} (JSON as parsed)."""

    label: str  # the folder, "file.db (table t)" or "env:NAME": what reports show, never the secret itself
    path: Path | None
    sha256: str
    creds: dict[str, Any]
    keys: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    kind: str = ""  # "folder", "SQLite table", "session string"

    def category(self, name: str) -> dict[str, Any]:
        return self.keys.get(name, {})


def is_env(source: Path | str) -> bool:
    return str(source).startswith(ENV_PREFIX)


def split_name(name: str) -> tuple[str, str] | None:
    """("pre-key", "12") for "pre-key-12.json"; (CREDS, "") for "creds.json"; None for anything else."""
    name = name.removesuffix(".json")
    if name == CREDS:
        return CREDS, ""
    for category in CATEGORIES:
        if name.startswith(category + "-") and len(name) > len(category) + 1:
            return category, name[len(category) + 1 :]
    return None


def parse(text: str | bytes, where: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError) as error:
        raise Refusal("corrupt", f"{where} is truncated or not valid JSON ({error}); take the files again") from error


# -- a useMultiFileAuthState folder -----------------------------------------------------------------------------------


def from_folder(folder: Path) -> Documents:
    folder = folder.expanduser().absolute()
    creds_path = folder / "creds.json"
    if not creds_path.is_file():
        raise Refusal("not_a_store", f"{folder} has no creds.json, so it is not a Baileys auth folder")
    digest = hashlib.sha256()
    documents = Documents(label=str(folder), path=folder, sha256="", creds={}, kind="folder")
    for path in sorted(folder.iterdir()):
        split = split_name(path.name) if path.suffix == ".json" and path.is_file() else None
        if split is None:
            continue
        data = path.read_bytes()
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(data).digest())
        _add(documents, split, parse(data, str(path)))
    documents.sha256 = digest.hexdigest()
    return documents


def _add(documents: Documents, split: tuple[str, str], value: Any) -> None:
    category, key = split
    if category == CREDS:
        if not isinstance(value, dict):
            raise Refusal("corrupt", f"{documents.label}: creds is not a JSON object")
        documents.creds = value
    else:
        documents.keys.setdefault(category, {})[key] = value


# -- a SQLite table of documents --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Layout:
    table: str
    name_column: str
    data_column: str
    prefix: str  # before "creds" in the name column: "" for seed 004, "baileys-auth-state:5:" for a prefixed store


def sqlite_layouts(connection: sqlite3.Connection) -> list[Layout]:
    """Every (table, name column, data column, prefix) whose rows hold Baileys' creds: found by content."""
    layouts = []
    tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        info = list(connection.execute(f'PRAGMA table_info("{table}")'))
        if len(info) > MAX_COLUMNS:  # a key/value table has a few columns; never scan an app's wide tables
            continue
        columns = [str(row[1]) for row in info]
        names = [str(row[1]) for row in info if "BLOB" not in str(row[2]).upper()]
        for name_column in names:
            for data_column in columns:
                if name_column == data_column:
                    continue
                query = (
                    f'SELECT "{name_column}", "{data_column}" FROM "{table}" '
                    f'WHERE CAST("{name_column}" AS TEXT) LIKE \'%creds\' OR CAST("{name_column}" AS TEXT) '
                    "LIKE '%creds.json' LIMIT 20"
                )
                try:
                    rows = connection.execute(query).fetchall()
                except sqlite3.Error:
                    continue
                for name, data in rows:
                    prefix = _prefix(str(name))
                    if prefix is not None and _looks_like_creds(data):
                        layouts.append(Layout(table, name_column, data_column, prefix))
    return layouts


def _prefix(name: str) -> str | None:
    for suffix in ("creds.json", CREDS):
        if name.endswith(suffix):
            prefix = name[: -len(suffix)]
            if not prefix or prefix[-1] in SEPARATORS:
                return prefix
    return None


def _looks_like_creds(data: Any) -> bool:
    try:
        value = json.loads(data) if isinstance(data, str | bytes) else None
    except (ValueError, UnicodeDecodeError):
        return True  # a damaged creds row: reading it says so
    return isinstance(value, dict) and "noiseKey" in value and "signedIdentityKey" in value


def holds_baileys(path: Path) -> bool:
    """Whether a SQLite file keeps Baileys documents in some table."""
    if not is_sqlite(path):
        return False
    try:
        connection = sqlite3.connect(read_only_uri(path), uri=True, timeout=BUSY_TIMEOUT)
        try:
            return bool(sqlite_layouts(connection))
        finally:
            connection.close()
    except sqlite3.Error:
        return False


def from_sqlite(path: Path) -> Documents:
    path = path.expanduser().absolute()
    try:
        connection = sqlite3.connect(read_only_uri(path), uri=True, timeout=BUSY_TIMEOUT, isolation_level=None)
        try:
            connection.execute("BEGIN")  # one snapshot for the layout, the rows and the hash
            return _read_sqlite(path, connection)
        finally:
            connection.close()
    except sqlite3.Error as error:
        raise Refusal("corrupt", f"{path} cannot be read: {error}") from error


def _read_sqlite(path: Path, connection: sqlite3.Connection) -> Documents:
    layouts = sqlite_layouts(connection)
    if not layouts:
        raise Refusal("not_a_store", f"{path} holds neither whatsmeow's tables nor Baileys documents in any table")
    if len(layouts) > 1:
        names = ", ".join(f"{layout.table}.{layout.name_column} {layout.prefix or '(no prefix)'}" for layout in layouts)
        raise Refusal(
            "several_devices", f"{path} holds {len(layouts)} Baileys logins ({names}); keep one, or pair once"
        )
    layout = layouts[0]
    digest = hashlib.sha256(path.read_bytes())
    label = f"{path} (table {layout.table})"
    documents = Documents(label=label, path=path, sha256=digest.hexdigest(), creds={}, kind="SQLite table")
    query = f'SELECT "{layout.name_column}", "{layout.data_column}" FROM "{layout.table}"'
    for name, data in connection.execute(query):
        name = str(name)
        if not name.startswith(layout.prefix):
            continue
        split = split_name(name[len(layout.prefix) :])
        if split is not None and data is not None:
            _add(documents, split, parse(data, f"{label}, row {name!r}"))
    return documents


# -- a session string in an environment variable ----------------------------------------------------------------------


def from_state_file(path: Path) -> Documents:
    """Baileys' older single-file state ({"creds": {...}, "keys": {...}}), as useSingleFileAuthState wrote it."""
    path = path.expanduser().absolute()
    data = path.read_bytes()
    documents = Documents(label=str(path), path=path, sha256=hashlib.sha256(data).hexdigest(), creds={}, kind="file")
    _fill(documents, parse(data, str(path)))
    return documents


def from_env(source: str, environ: dict[str, str] | None = None) -> Documents:
    name = source.removeprefix(ENV_PREFIX)
    value = (os.environ if environ is None else environ).get(name, "")
    label = f"{ENV_PREFIX}{name}"
    if not value.strip():
        raise Refusal("not_found", f"the environment variable {name} is not set or empty")
    payload = "".join(STRING_PREFIX.sub("", value.strip()).split())
    altchars = b"-_" if "-" in payload or "_" in payload else None
    try:
        raw = base64.b64decode(payload + "=" * (-len(payload) % 4), altchars=altchars, validate=True)
    except (binascii.Error, ValueError) as error:
        raise Refusal(
            "corrupt",
            f"{label} is not a base64 session string ({error}); some bots give a download id instead: paste the "
            "session itself (base64 of its creds JSON)",
        ) from error
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise Refusal("corrupt", f"{label}: the gzip data is truncated or damaged ({error})") from error
    documents = Documents(label=label, path=None, sha256=hashlib.sha256(value.encode()).hexdigest(), creds={})
    documents.kind = "session string"
    _fill(documents, parse(raw, label))
    return documents


def _fill(documents: Documents, data: Any) -> None:
    """creds alone, or {creds, keys} with keys by category (or by the single-file state's camelCase names)."""
    if isinstance(data, dict) and isinstance(data.get("creds"), dict):
        _add(documents, (CREDS, ""), data["creds"])
        keys = data.get("keys") or {}
        for category, entries in keys.items() if isinstance(keys, dict) else ():
            category = LEGACY.get(category, category)
            if category in CATEGORIES and isinstance(entries, dict):
                for key, entry in entries.items():
                    if entry is not None:
                        _add(documents, (category, str(key)), entry)
    else:
        _add(documents, (CREDS, ""), data)


# -- values as Baileys' adapters write them ---------------------------------------------------------------------------


def as_bytes(value: Any) -> bytes:
    """{"type": "Buffer", "data": "<base64>" | [ints]}, {"__type": "Buffer", "__data": ...}, a JSON'd Uint8Array
    {"0": 12, "1": 34}, a list of ints or a base64 string (protobufjs' toJSON) -> bytes. ValueError otherwise."""
    if isinstance(value, dict):
        if value.get("type") == "Buffer" and "data" in value:
            return as_bytes(value["data"])
        if value.get("__type") == "Buffer" and "__data" in value:
            return as_bytes(value["__data"])
        if value and all(key.isdigit() for key in value):
            return bytes(value[str(index)] for index in range(len(value)))
        raise ValueError(f"not binary data: an object with {sorted(value)[:4]}")
    if isinstance(value, list):
        return bytes(value)
    if isinstance(value, str):
        try:
            return base64.b64decode(value + "=" * (-len(value) % 4), validate=False)
        except binascii.Error as error:
            raise ValueError(f"not base64: {error}") from error
    if isinstance(value, bytes):
        return value
    raise ValueError(f"not binary data: {type(value).__name__}")


def as_int(value: Any) -> int:
    """A number, a decimal string, or protobufjs' Long {low, high, unsigned}."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    if isinstance(value, dict) and "low" in value and "high" in value:
        return (int(value["high"]) << 32) | (int(value["low"]) & 0xFFFFFFFF)
    raise ValueError(f"{value!r} is not a whole number")
