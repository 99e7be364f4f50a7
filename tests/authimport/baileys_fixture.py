"""The Baileys login made by Baileys' own code (tests/authimport/baileys/make_fixture.mjs, output committed) and the
same documents the other ways bots keep them: seed 004's SQLite table, a key/value table with prefixed keys, and a
session string (base64 or gzip+base64 JSON, with a bot's prefix).
"""

from __future__ import annotations

import base64
import gzip
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from app.authimport.documents import split_name

FIXTURE = Path(__file__).resolve().parent / "baileys" / "fixture"
FOLDER = FIXTURE / "auth_info_baileys"
EXPECTED: dict[str, Any] = json.loads((FIXTURE / "expected.json").read_text())


def folder_copy(directory: Path, name: str = "auth_info_baileys") -> Path:
    target = directory / name
    shutil.copytree(FOLDER, target)
    return target


def files(folder: Path = FOLDER) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.suffix == ".json"}


def seed_004_table(path: Path, folder: Path = FOLDER) -> Path:
    """auth_session(filename TEXT UNIQUE, data BLOB): one row per file, named as useMultiFileAuthState names them."""
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")  # the bot's own data beside it
        connection.execute("CREATE TABLE auth_session (id INTEGER PRIMARY KEY, filename TEXT UNIQUE, data BLOB)")
        connection.executemany("INSERT INTO auth_session (filename, data) VALUES (?, ?)", list(files(folder).items()))
    connection.close()
    return path


def prefixed_table(path: Path, prefix: str = "baileys-auth-state:5:", folder: Path = FOLDER) -> Path:
    """A key/value table whose keys are prefixed and unfixed (ids as Baileys has them: "group::user::0")."""
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        rows = []
        for name, data in files(folder).items():
            split = split_name(name)
            assert split is not None, name
            category, key = split
            key = key.replace("--", "::") if category == "sender-key" else key
            rows.append((prefix + (f"{category}-{key}" if key else category), data.decode()))
        connection.executemany("INSERT INTO kv (key, value) VALUES (?, ?)", rows)
    connection.close()
    return path


def session_string(*, with_keys: bool = True, compress: bool = True, prefix: str = "MYBOT~") -> str:
    """What bots print for SESSION_ID: creds alone or {creds, keys}, as JSON, gzipped or not, base64, a prefix."""
    documents: dict[str, Any] = {"creds": json.loads((FOLDER / "creds.json").read_text())}
    if with_keys:
        keys: dict[str, dict[str, Any]] = {}
        for name, data in files().items():
            split = split_name(name)
            if split and split[0] != "creds":
                keys.setdefault(split[0], {})[split[1]] = json.loads(data)
        documents["keys"] = keys
    raw = json.dumps(documents).encode()
    return prefix + base64.b64encode(gzip.compress(raw) if compress else raw).decode()


def edit_creds(folder: Path, change: Any) -> None:
    creds = json.loads((folder / "creds.json").read_text())
    change(creds)
    (folder / "creds.json").write_text(json.dumps(creds))
