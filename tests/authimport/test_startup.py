"""The import at app start: before the worker, once, never in the way of serving; and what /api/status shows."""

from __future__ import annotations

import logging
from pathlib import Path

import asyncpg
import pytest

from app.authimport import whatsmeow
from app.authimport.startup import import_at_start
from tests.authimport.conftest import SHOP, attempts, fingerprint, imported_rows
from tests.processes import TOKEN
from tests.web.conftest import ClientFactory
from tests.whatsapp_stand_in import WHATSAPP_CONNECT, RefusingProxy

AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_a_store_in_the_app_directory_is_imported_once(
    store_file: Path, app_dir: Path, database_url: str, pg: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    before = fingerprint(store_file)

    first = await import_at_start(database_url, None, app_dir, "neonize")

    assert first["outcome"] == "imported" and first["device"] == SHOP.jid
    assert first["source"] == str(store_file) and first["sha256"] == before[0]
    assert [attempt["trigger"] for attempt in await attempts(pg)] == ["start"]

    caplog.set_level(logging.INFO, "app.authimport")
    second = await import_at_start(database_url, None, app_dir, "neonize")

    assert second["outcome"] == "already_paired"
    assert len(await attempts(pg)) == 1
    assert fingerprint(store_file) == before
    [line] = [record.getMessage() for record in caplog.records if record.name == "app.authimport.startup"]
    assert f"already holds WhatsApp device {SHOP.jid}" in line and "left alone" in line


async def test_auth_migrate_from_names_the_file(
    store_file: Path, tmp_path: Path, database_url: str, pg: asyncpg.Connection
) -> None:
    elsewhere = tmp_path / "empty-dir"
    elsewhere.mkdir()

    result = await import_at_start(database_url, store_file, elsewhere, "neonize")

    assert result["outcome"] == "imported"
    assert await whatsmeow.devices(database_url) == [
        {"jid": SHOP.jid, "push_name": SHOP.push_name, "initialized": True}
    ]


async def test_nothing_found_is_quiet(app_dir: Path, database_url: str, pg: asyncpg.Connection) -> None:
    result = await import_at_start(database_url, None, app_dir, "neonize")

    assert result["outcome"] == "none"
    assert await attempts(pg) == []


async def test_the_simulator_does_not_look(store_file: Path, app_dir: Path, database_url: str) -> None:
    result = await import_at_start(database_url, None, app_dir, "simulator")

    assert result["outcome"] == "skipped"


@pytest.fixture
def wwebjs_app_dir(app_dir: Path) -> Path:
    (app_dir / ".wwebjs_auth" / "session" / "Default").mkdir(parents=True)
    return app_dir


async def test_a_refusal_is_logged_and_recorded_not_raised(
    wwebjs_app_dir: Path, database_url: str, pg: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    app_dir = wwebjs_app_dir

    result = await import_at_start(database_url, None, app_dir, "neonize")

    assert (result["outcome"], result["reason"]) == ("refused", "unsupported_format")
    assert "whatsapp-web.js" in result["message"] and "pair once" in result["message"]
    assert [(attempt["outcome"], attempt["reason"]) for attempt in await attempts(pg)] == [
        ("refused", "unsupported_format")
    ]
    assert any(
        record.levelno == logging.ERROR and "whatsapp-web.js" in record.getMessage() for record in caplog.records
    )


async def test_an_unreachable_database_does_not_stop_the_app(store_file: Path, app_dir: Path) -> None:
    result = await import_at_start("postgresql://postgres@127.0.0.1:1/none?sslmode=disable", None, app_dir, "neonize")

    assert result["outcome"] == "failed"
    assert "could not run" in result["message"]


async def test_the_app_imports_before_its_worker_and_shows_it_in_status(
    app_client: ClientFactory,
    store_file: Path,
    database_url: str,
    pg: asyncpg.Connection,
    whatsapp_proxy: RefusingProxy,
) -> None:
    # The worker then dials with the imported (made-up) device: to the local stand-in, never to WhatsApp.
    env = {"WHATSAPP_BACKEND": "neonize", "AUTH_MIGRATE_FROM": str(store_file), **whatsapp_proxy.env()}
    async with app_client(**env) as http:
        status = (await http.get("/api/status", headers=AUTH)).json()
        assert set(await whatsapp_proxy.wait_for(1)) == {WHATSAPP_CONNECT}

    auth_store = status["auth_store"]
    assert auth_store["devices"] == 1
    assert auth_store["import"]["at_start"]["outcome"] == "imported"
    last = auth_store["import"]["last"]
    assert (last["outcome"], last["trigger"], last["device_jid"]) == ("imported", "start", SHOP.jid)
    assert last["source_path"] == str(store_file)
    assert last["source_schema_version"] == last["store_schema_version"] == 15
    assert last["rows_per_table"]["whatsmeow_sessions"] == 40
    assert last["total_rows"] == await imported_rows(pg)


async def test_status_without_any_import(app_client: ClientFactory) -> None:
    async with app_client() as http:
        status = (await http.get("/api/status", headers=AUTH)).json()

    assert status["auth_store"]["import"] == {
        "at_start": {
            "outcome": "skipped",
            "message": "WHATSAPP_BACKEND=simulator does not use whatsmeow's store",
            **dict.fromkeys(("reason", "source", "format", "sha256", "device", "rows", "duration_ms")),
            "notes": [],
        },
        "last": None,
    }
