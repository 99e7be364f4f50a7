"""Restarts mid-queue: nothing queued is lost and nothing is sent twice."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from app.media import store as media_store
from app.whatsapp import samples
from tests.processes import AppProcess
from tests.session.test_app_processes import pair

COUNT = 6


def statuses(app: AppProcess, ids: list[str]) -> list[str]:
    with app.api() as api:
        return [api.get(f"/api/messages/{message_id}").json()["status"] for message_id in ids]


def wait_until(app: AppProcess, ids: list[str], check: object, timeout: float = 60.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        current = statuses(app, ids)
        if check(current):  # type: ignore[operator]
            return current
        assert time.monotonic() < deadline, current
        time.sleep(0.05)


@pytest.mark.parametrize("kind", ["text", "image"])
async def test_restart_mid_queue_loses_nothing_and_sends_nothing_twice(
    database_url: str, tmp_path: Path, kind: str
) -> None:
    env = {"SEND_MIN_INTERVAL": "0.4"}
    first = AppProcess(database_url, tmp_path / "first.log", env=env).start()
    try:
        pair(first)
        bodies: list[dict[str, Any]] = [{"text": f"order {n}"} for n in range(COUNT)]
        if kind == "image":  # a file's message survives a restart as a text does: its bytes stay in Postgres
            media_id = await stored_image(database_url)
            bodies = [{"image": {"media_id": media_id, "caption": f"order {n}"}} for n in range(COUNT)]
        with first.api() as api:
            ids = [api.post("/api/messages", json={"to": "+6281234567890", **body}).json()["id"] for body in bodies]
        wait_until(first, ids, lambda current: current.count("sent") >= 2)
        assert first.terminate() == 0
    finally:
        first.ensure_stopped()
    before_restart = await sent_counts(database_url)
    assert 2 <= sum(before_restart.values()) < COUNT  # stopped mid-queue

    second = AppProcess(database_url, tmp_path / "second.log", env=env).start()
    try:
        second.wait_healthy()
        final = wait_until(second, ids, lambda current: current.count("sent") == COUNT)
    finally:
        second.ensure_stopped()
    assert final == ["sent"] * COUNT
    counts = await sent_counts(database_url)
    assert counts == {message_id: 1 for message_id in ids}, before_restart  # one "sent" event per message


async def stored_image(database_url: str) -> str:
    found = samples.sample("image")
    assert found is not None
    data, mimetype, _ = found
    connection = await asyncpg.connect(database_url)
    try:
        media_id = await media_store.save(
            connection, chat="6281234567890@s.whatsapp.net", message_id="IMG1", mimetype=mimetype,
            sha256=hashlib.sha256(data).hexdigest(), file_name=None, data=data,
        )  # fmt: skip
    finally:
        await connection.close()
    return str(media_id)


async def sent_counts(database_url: str) -> dict[str, int]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT data->>'id' AS id, count(*) AS n FROM outbox_events "
            "WHERE type = 'message.status' AND data->>'status' = 'sent' GROUP BY 1"
        )
    finally:
        await connection.close()
    return {row["id"]: row["n"] for row in rows}
