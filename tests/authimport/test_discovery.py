"""Finding a file-based login in an app directory: only real whatsmeow stores with a device count."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from app.authimport.discovery import WWEBJS, discover, resolve
from app.authimport.refusal import Refusal
from tests.authimport.conftest import SHOP
from tests.authimport.fake_store import copy_store, fill


def paired_copy(template: Path, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fill(copy_store(template, path), [SHOP])
    return path


@pytest.mark.parametrize("name", ["neonize.db", "db.sqlite3", "session.sqlite", "auth/neonize.db", "auth/x.sqlite3"])
def test_the_usual_file_names_are_found(name: str, empty_store_template: Path, app_dir: Path) -> None:
    store = paired_copy(empty_store_template, app_dir / name)

    assert discover(app_dir).stores == [store.absolute()]
    assert resolve(app_dir) == store.absolute()


def test_only_whatsmeow_stores_with_a_device_count(empty_store_template: Path, app_dir: Path) -> None:
    (app_dir / "cache.db").write_bytes(b"\x00" * 4096)  # not SQLite
    other = sqlite3.connect(app_dir / "app.sqlite3")  # SQLite, but another app's
    other.execute("CREATE TABLE orders (id integer)")
    other.close()
    empty = copy_store(empty_store_template, app_dir / "unpaired.db")  # whatsmeow's, never paired
    (app_dir / "notes.txt").write_text("neonize.db")

    found = discover(app_dir)

    assert (found.stores, found.empty, found.foreign) == ([], [empty.absolute()], [])
    assert not found.anything
    with pytest.raises(Refusal) as refused:
        resolve(app_dir)
    assert refused.value.reason == "no_device"


def test_nothing_at_all(app_dir: Path) -> None:
    assert not discover(app_dir).anything
    with pytest.raises(Refusal) as refused:
        resolve(app_dir)
    assert refused.value.reason == "not_a_store"


def test_several_stores_are_refused_by_name(empty_store_template: Path, app_dir: Path) -> None:
    first = paired_copy(empty_store_template, app_dir / "neonize.db")
    second = paired_copy(empty_store_template, app_dir / "auth" / "old.sqlite3")

    assert discover(app_dir).stores == [first.absolute(), second.absolute()]
    with pytest.raises(Refusal) as refused:
        resolve(app_dir)
    assert refused.value.reason == "several_files"
    assert str(first) in refused.value.message and str(second) in refused.value.message
    assert "AUTH_MIGRATE_FROM" in refused.value.message


def test_an_unreadable_sqlite_file_is_a_candidate(empty_store_template: Path, app_dir: Path) -> None:
    # A damaged file may well be the login: it is not skipped silently; its import attempt says what is wrong.
    store = paired_copy(empty_store_template, app_dir / "neonize.db")
    store.write_bytes(store.read_bytes()[:200])

    assert discover(app_dir).stores == [store.absolute()]


def test_whatsapp_web_js_profiles_are_recognised(app_dir: Path) -> None:
    (app_dir / "auth_info_baileys").mkdir()  # an unpaired Baileys folder: nothing to import
    (app_dir / "auth_info_baileys" / "creds.json").write_text('{"noiseKey": {}, "signedIdentityKey": {}}')
    (app_dir / ".wwebjs_auth" / "session" / "Default").mkdir(parents=True)
    (app_dir / "package.json").write_text('{"name": "bot", "dependencies": {"@whiskeysockets/baileys": "6"}}')

    found = discover(app_dir)

    assert found.foreign == [((app_dir / ".wwebjs_auth").absolute(), WWEBJS)]
    assert found.empty == [(app_dir / "auth_info_baileys").absolute()]
    assert found.anything and found.stores == []


def test_a_store_beside_another_librarys_session_is_imported(empty_store_template: Path, app_dir: Path) -> None:
    store = paired_copy(empty_store_template, app_dir / "neonize.db")
    (app_dir / ".wwebjs_auth").mkdir()

    assert resolve(app_dir) == store.absolute()
