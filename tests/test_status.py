"""The composed Status: its JSON keeps the public key names, and "connected" is believed from Postgres only while
the process that says so keeps its heartbeat."""

from __future__ import annotations

import dataclasses
import datetime as dt

from app.session.states import State
from app.session.status import TransitionEntry
from app.status import as_json, is_connected
from tests.web.samples import NOW, sample


def test_json_keeps_the_public_names() -> None:
    entry = TransitionEntry(NOW, State.CONNECTING, State.CONNECTED, "logged_in", None)
    shown = as_json(sample(recent_transitions=[entry]))
    assert shown["state"] == "connected" and shown["since"] == (NOW - dt.timedelta(minutes=5)).isoformat()
    assert shown["recent_transitions"] == [
        {"at": NOW.isoformat(), "from": "connecting", "to": "connected", "reason": "logged_in", "detail": None}
    ]
    assert set(shown["auth_store"]) == {"kind", "backend", "devices", "import"}
    assert shown["webhooks"]["by_endpoint"][0]["url"] == "https://hooks.example.com/whatsapp"
    assert shown["deliveries_24h"] == {"sent": 10, "delivered": 9, "read": 5, "failed": 1, "delivered_percent": 81.8}


def test_connected_only_while_the_heartbeat_is_fresh_when_read_from_postgres() -> None:
    live = sample()
    assert is_connected(live)
    assert not is_connected(dataclasses.replace(live, heartbeat_ok=False))
    assert not is_connected(sample("reconnecting"))
    old = NOW - dt.timedelta(minutes=10)
    stored = dataclasses.replace(live, source="stored", last_heartbeat_at=old, updated_at=old, since=old)
    assert not is_connected(stored)  # the serving process went away without saying so
    fresh = dataclasses.replace(stored, last_heartbeat_at=NOW - dt.timedelta(seconds=20))
    assert is_connected(fresh)
