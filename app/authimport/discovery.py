"""Where a file-based login may be: whatsmeow SQLite stores holding a device, Baileys auth folders (creds.json and its
key files) and SQLite files keeping Baileys documents in a table, among an app directory's usual places; and the
whatsapp-web.js profiles, which cannot be imported. `open_login` opens whichever a path names.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

from app.authimport import documents
from app.authimport.baileys import BaileysSource
from app.authimport.refusal import PAIR_ONCE, Refusal
from app.authimport.source import (
    BUSY_TIMEOUT,
    DEVICE_TABLE,
    VERSION_TABLE,
    Source,
    SourceStore,
    is_sqlite,
    read_only_uri,
)

FOLDERS = (".", "auth")  # the app directory itself, and auth/
PATTERNS = ("*.db", "*.sqlite", "*.sqlite3")  # neonize.db, db.sqlite3, <name>.sqlite3, ...
# Baileys folders: ./auth, ./auth_info_baileys, ./baileys_auth_info or any other folder of the app directory with a
# creds.json, and each folder under ./sessions (multi-session bots keep one per account there).
SESSION_FOLDERS = ("sessions",)
WWEBJS = "whatsapp-web.js"
JSON_LIMIT = 1 << 20  # a Baileys creds.json is a few kB; never parse big JSON files while looking around


@dataclasses.dataclass
class Found:
    # Logins (whatsmeow stores with a device, paired Baileys folders and tables), and SQLite files that could not be
    # read (their import attempt says why).
    stores: list[Path] = dataclasses.field(default_factory=list)
    empty: list[Path] = dataclasses.field(default_factory=list)  # whatsmeow stores without a device, unpaired Baileys
    foreign: list[tuple[Path, str]] = dataclasses.field(default_factory=list)  # (folder, library): whatsapp-web.js

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
    if not directory.is_dir():
        return found
    children = sorted(path for path in directory.iterdir() if path.is_dir())
    for folder in SESSION_FOLDERS:
        if (directory / folder).is_dir():
            children += sorted(path for path in (directory / folder).iterdir() if path.is_dir())
    for candidate in [directory, *children]:
        if wwebjs_profile(candidate):
            found.foreign.append((candidate.absolute(), WWEBJS))
            continue
        paired = baileys_folder(candidate)
        if paired is not None:
            (found.stores if paired else found.empty).append(candidate.absolute())
    return found


def resolve(path: Path) -> Path:
    """The login that `path` names: a store file, a Baileys folder or file, or the one login found in a directory."""
    if wwebjs_profile(path):
        raise Refusal("unsupported_format", _wwebjs_message(path))
    if not path.is_dir() or baileys_folder(path) is not None:
        return path
    found = discover(path)
    if len(found.stores) == 1:
        return found.stores[0]
    if len(found.stores) > 1:
        names = ", ".join(str(store) for store in found.stores)
        raise Refusal(
            "several_files",
            f"found {len(found.stores)} logins: {names}; name the one to import "
            "(AUTH_MIGRATE_FROM=PATH, or python -m app migrate-auth PATH)",
        )
    if found.foreign:
        raise Refusal("unsupported_format", _wwebjs_message(found.foreign[0][0]))
    if found.empty:
        names = ", ".join(str(store) for store in found.empty)
        raise Refusal("no_device", f"the logins in {path} were never paired (or were logged out): {names}; {PAIR_ONCE}")
    raise Refusal(
        "not_a_store",
        f"{path} holds no login this app can import: no whatsmeow/neonize store (*.db, *.sqlite, *.sqlite3 here or "
        f"in auth/), no Baileys folder (creds.json) and no SQLite table of Baileys documents; if it is another "
        f"library's session, {PAIR_ONCE}",
    )


def open_login(source: Path) -> Source:
    """The login `source` names, opened read-only and checked: a whatsmeow store, or a Baileys login (folder, single
    state file, SQLite table or env:NAME session string) converted to whatsmeow's rows."""
    if documents.is_env(source):
        return BaileysSource.open(str(source))
    path = resolve(source.expanduser())
    if path.is_dir() or path.suffix == ".json":
        return BaileysSource.open(path)
    if path.is_file() and documents.holds_baileys(path):  # a whatsmeow store never holds Baileys' creds
        return BaileysSource.open(path)
    return SourceStore.open(path)


def wwebjs_profile(path: Path) -> bool:
    """whatsapp-web.js' LocalAuth / RemoteAuth folder: Chrome's profile, whose keys no file can give back."""
    try:
        return path.is_dir() and (
            path.name == ".wwebjs_auth" or any(path.glob("session*/Default")) or any(path.glob("RemoteAuth*.zip"))
        )
    except OSError:
        return False


def baileys_folder(path: Path) -> bool | None:
    """None if `path` is no Baileys auth folder (or creds/state file); else whether it was paired (has me.id)."""
    try:
        creds = path / "creds.json" if path.is_dir() else path
        if creds.suffix != ".json" or not creds.is_file() or creds.stat().st_size > JSON_LIMIT:
            return None
        data = json.loads(creds.read_text(errors="replace"))
    except (OSError, ValueError):
        # A damaged creds.json may well be the login: a candidate, whose import then says what is wrong.
        return True if path.is_dir() and (path / "creds.json").is_file() else None
    if isinstance(data, dict) and isinstance(data.get("creds"), dict):
        data = data["creds"]
    if not (isinstance(data, dict) and "noiseKey" in data and "signedIdentityKey" in data):
        return None
    me = data.get("me")
    return isinstance(me, dict) and bool(me.get("id"))


def _wwebjs_message(path: Path) -> str:
    return (
        f"{path} is a whatsapp-web.js session: its keys live in Chrome's profile, encrypted with a key no file gives "
        f"back, so it cannot be imported; {PAIR_ONCE}"
    )


def _probe(path: Path) -> str:
    """ "store", "empty" (no device), "other" (not a whatsmeow store) or "store" again when unreadable (locked,
    damaged): such a file may well be the login, and its import attempt then says what is wrong with it. A SQLite
    file keeping Baileys documents in a table is a "store" too."""
    if not is_sqlite(path):
        return "other"
    try:
        connection = sqlite3.connect(read_only_uri(path), uri=True, timeout=BUSY_TIMEOUT)
        try:
            names = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not {DEVICE_TABLE, VERSION_TABLE} <= names:
                return "store" if documents.sqlite_layouts(connection) else "other"
            devices = connection.execute(f"SELECT count(*) FROM {DEVICE_TABLE}").fetchone()[0]
        finally:
            connection.close()
    except sqlite3.Error:
        return "store"
    return "store" if devices else "empty"
