"""A Baileys login found where bots keep it, imported at start (AUTH_MIGRATE_FROM or discovery) or by the CLI, and
shown in /api/status; the worker then picks up the imported device and dials (the local stand-in, never WhatsApp)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import asyncpg
import pytest

from app.authimport import whatsmeow
from app.authimport.cli import migrate_auth
from app.authimport.discovery import discover, resolve
from app.authimport.refusal import EXIT_IMPORTED
from app.authimport.startup import import_at_start
from tests.authimport.baileys_fixture import EXPECTED, edit_creds, folder_copy, seed_004_table, session_string
from tests.processes import TOKEN
from tests.web.conftest import ClientFactory
from tests.whatsapp_stand_in import WHATSAPP_CONNECT, RefusingProxy

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.parametrize("where", ["auth", "auth_info_baileys", "baileys_auth_info", "sessions/shop", "wa-login"])
def test_baileys_folders_are_found_where_bots_keep_them(where: str, app_dir: Path) -> None:
    (app_dir / where).parent.mkdir(parents=True, exist_ok=True)
    folder = folder_copy(app_dir, where)

    found = discover(app_dir)

    assert found.stores == [folder.absolute()] and found.foreign == []
    assert resolve(app_dir) == folder.absolute()


def test_a_sqlite_file_of_baileys_documents_is_found_by_content(app_dir: Path) -> None:
    path = seed_004_table(app_dir / "bot.db")

    assert discover(app_dir).stores == [path.absolute()]


def test_an_unpaired_folder_is_not_a_login(app_dir: Path) -> None:
    folder = folder_copy(app_dir)
    edit_creds(folder, lambda creds: creds.pop("me"))

    found = discover(app_dir)

    assert (found.stores, found.empty) == ([], [folder.absolute()])


def test_a_folder_beside_a_store_makes_two_logins_to_choose_from(app_dir: Path) -> None:
    folder = folder_copy(app_dir)
    table = seed_004_table(app_dir / "database.sqlite")

    assert discover(app_dir).stores == [table.absolute(), folder.absolute()]


async def test_at_start_from_a_session_string(
    database_url: str, pg: asyncpg.Connection, app_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESSION_ID", session_string())

    result = await import_at_start(database_url, Path("env:SESSION_ID"), app_dir, "neonize")

    assert (result["outcome"], result["device"], result["source"]) == ("imported", EXPECTED["jid"], "env:SESSION_ID")
    assert result["format"] == "Baileys session string" and result["notes"] == []
    assert session_string()[6:20] not in json.dumps(result)  # the secret itself is never shown
    assert [device["jid"] for device in await whatsmeow.devices(database_url)] == [EXPECTED["jid"]]


def test_the_cli_prints_the_format_and_what_was_not_carried_over(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESSION_ID", session_string(with_keys=False))
    out = io.StringIO()

    code = migrate_auth(database_url, Path("env:SESSION_ID"), dry_run=False, jid=None, out=out)

    output = out.getvalue()
    assert code == EXIT_IMPORTED, output
    assert "format:  Baileys session string" in output and "converted for 15" in output
    assert "Not carried over: the session string carries no Signal sessions" in output
    assert "The source was not changed" in output


async def test_the_app_imports_a_baileys_folder_before_its_worker_and_shows_it_in_status(
    app_client: ClientFactory, app_dir: Path, database_url: str, whatsapp_proxy: RefusingProxy
) -> None:
    folder = folder_copy(app_dir)
    env = {"WHATSAPP_BACKEND": "neonize", "AUTH_MIGRATE_FROM": str(folder), **whatsapp_proxy.env()}
    async with app_client(**env) as http:
        status = (await http.get("/api/status", headers=AUTH)).json()
        # The worker loads the imported device and dials with it: to the local stand-in, never to WhatsApp.
        assert set(await whatsapp_proxy.wait_for(1)) == {WHATSAPP_CONNECT}

    auth_store = status["auth_store"]
    assert auth_store["devices"] == 1
    at_start = auth_store["import"]["at_start"]
    assert (at_start["outcome"], at_start["format"], at_start["device"]) == (
        "imported", "Baileys folder", EXPECTED["jid"],
    )  # fmt: skip
    last = auth_store["import"]["last"]
    assert (last["outcome"], last["trigger"], last["source_path"]) == ("imported", "start", str(folder))
    assert last["rows_per_table"]["whatsmeow_sessions"] == 1
