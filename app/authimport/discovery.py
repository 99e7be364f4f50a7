"""Where a file-based login may be: whatsmeow SQLite stores holding a device among an app directory's usual files, and
the auth folders of Baileys and whatsapp-web.js, which hold another library's keys and cannot be imported.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

from app.authimport.refusal import PAIR_ONCE, Refusal
from app.authimport.source import BUSY_TIMEOUT, DEVICE_TABLE, VERSION_TABLE, is_sqlite, read_only_uri

FOLDERS = (".", "auth")  # the app directory itself, and auth/
PATTERNS = ("*.db", "*.sqlite", "*.sqlite3")  # neonize.db, db.sqlite3, <name>.sqlite3, ...
BAILEYS = "Baileys"
WWEBJS = "whatsapp-web.js"
JSON_LIMIT = 1 << 20  # a Baileys creds.json is a few kB; never parse big JSON files while looking around


@dataclasses.dataclass
class Found:
    # Stores holding a device, and SQLite files that could not be read (their import attempt says why).
    stores: list[Path] = dataclasses.field(default_factory=list)
    empty: list[Path] = dataclasses.field(default_factory=list)  # whatsmeow stores without a device
    foreign: list[tuple[Path, str]] = dataclasses.field(default_factory=list)  # (folder or file, library)

    @property
    def anything(self) -> bool:
        return bool(self.stores or self.foreign)


def discover(directory: Path) -> Found:
    found = Found()
    seen: set[Path] = set()
    for folder in FOLDERS:
        base = directory / folder
        if not base.is_dir():
            continue
        for pattern in PATTERNS:
            for path in sorted(base.glob(pattern)):
                path = path.absolute()
                if path in seen or not path.is_file():
                    continue
                seen.add(path)
                kind = _probe(path)
                if kind == "store":
                    found.stores.append(path)
                elif kind == "empty":
                    found.empty.append(path)
    candidates = [directory, *sorted(directory.iterdir())] if directory.is_dir() else []
    for candidate in candidates:
        library = foreign_library(candidate)
        if library is not None:
            found.foreign.append((candidate.absolute(), library))
    return found


def resolve(path: Path) -> Path:
    """The store file that `path` names: the file itself, or the one store found in a directory."""
    library = foreign_library(path)
    if library is not None:
        raise Refusal("unsupported_format", _foreign_message(path, library))
    if not path.is_dir():
        return path
    found = discover(path)
    if len(found.stores) == 1:
        return found.stores[0]
    if len(found.stores) > 1:
        names = ", ".join(str(store) for store in found.stores)
        raise Refusal(
            "several_files",
            f"found {len(found.stores)} whatsmeow stores with a device: {names}; name the one to import "
            "(AUTH_MIGRATE_FROM=FILE, or python -m app migrate-auth FILE)",
        )
    if found.foreign:
        where, library = found.foreign[0]
        raise Refusal("unsupported_format", _foreign_message(where, library))
    if found.empty:
        names = ", ".join(str(store) for store in found.empty)
        raise Refusal("no_device", f"the whatsmeow stores in {path} hold no WhatsApp device: {names}")
    raise Refusal("not_a_store", f"no whatsmeow/neonize store (*.db, *.sqlite, *.sqlite3) in {path} or {path}/auth")


def foreign_library(path: Path) -> str | None:
    """BAILEYS or WWEBJS if `path` is that library's auth folder (or Baileys' creds file), else None."""
    try:
        if path.is_dir():
            if path.name == ".wwebjs_auth" or any(path.glob("session*/Default")) or any(path.glob("RemoteAuth*.zip")):
                return WWEBJS
            creds = path / "creds.json"
            return BAILEYS if creds.is_file() and _baileys_creds(creds) else None
        if path.suffix == ".json" and path.is_file():
            return BAILEYS if _baileys_creds(path) else None
    except OSError:
        return None
    return None


def _baileys_creds(path: Path) -> bool:
    """useMultiFileAuthState's creds.json, or the older single-file state ({"creds": {...}, "keys": {...}})."""
    if path.stat().st_size > JSON_LIMIT:
        return False
    try:
        data = json.loads(path.read_text(errors="replace"))
    except ValueError:
        return False
    if isinstance(data, dict) and isinstance(data.get("creds"), dict):
        data = data["creds"]
    return isinstance(data, dict) and "noiseKey" in data and "signedIdentityKey" in data


def _foreign_message(path: Path, library: str) -> str:
    return (
        f"{path} is a {library} session: it holds {library}'s own keys in its own format, which cannot be imported "
        f"into whatsmeow's store; {PAIR_ONCE}"
    )


def _probe(path: Path) -> str:
    """ "store", "empty" (no device), "other" (not a whatsmeow store) or "store" again when unreadable (locked,
    damaged): such a file may well be the login, and its import attempt then says what is wrong with it."""
    if not is_sqlite(path):
        return "other"
    try:
        connection = sqlite3.connect(read_only_uri(path), uri=True, timeout=BUSY_TIMEOUT)
        try:
            names = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not {DEVICE_TABLE, VERSION_TABLE} <= names:
                return "other"
            devices = connection.execute(f"SELECT count(*) FROM {DEVICE_TABLE}").fetchone()[0]
        finally:
            connection.close()
    except sqlite3.Error:
        return "store"
    return "store" if devices else "empty"
