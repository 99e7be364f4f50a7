"""Typed statuses to render without a server: one of each boundary, every figure set, changed per test."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from app.authimport.record import AuthImportStatus, AuthStoreStatus, ImportAtStart
from app.incoming.store import IncomingStatus
from app.media.store import MediaStatus
from app.sending.queue import DeliveryFigures, SendQueueStatus
from app.session.states import State
from app.session.status import Account, Pairing, WorkerStatus
from app.status import Status
from app.tasks import TaskState, TaskStatus
from app.webhooks.operator import EndpointStatus, OutboxStatus, WebhookStatus

NOW = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)
LONG_URL = "https://hooks.example.com/services/T000000/B000000/" + "x" * 120 + "?token=secret"


def endpoint(**changes: Any) -> EndpointStatus:
    base = EndpointStatus(
        id=1, url="https://hooks.example.com/whatsapp", active=True, paused=False, paused_at=None,
        paused_reason=None, pending=3, oldest_pending_age_seconds=125.0, failed=1, waiting=2, dead=0,
        delivered_24h=40, last_success_at=NOW, last_error_at=NOW - dt.timedelta(seconds=30),
        last_error="HTTP 500 from the receiver",
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


def sample(state: str = "connected", **changes: Any) -> Status:
    endpoints = [endpoint()]
    base = Status(
        state=State(state), since=NOW - dt.timedelta(minutes=5), reason="logged_in",
        detail="connected with the stored device", retry_at=None, banned_until=None,
        account=Account("6281234567890@s.whatsapp.net", "Toko Maju", "+6281234567890"), unlinked=None,
        pairing=Pairing(False, None, 3), process="web.1:42", heartbeat_interval=30.0,
        last_heartbeat_at=NOW - dt.timedelta(seconds=10), heartbeat_ok=True, disconnects_24h=1,
        reconnects_24h=1, uptime_24h_percent=99.5, last_connected_at=NOW - dt.timedelta(minutes=5),
        seconds_since_connected=300.0, worker_restarts_24h=2, recent_transitions=[], holder=None, updated_at=NOW,
        source="live", checked_at=NOW,
        worker=WorkerStatus(pid=4242, generation=3, uptime_seconds=300.0, rss_mb=64.2, max_rss_mb=300),
        web_rss_mb=80.4,
        auth_store=AuthStoreStatus(
            "postgres", "neonize", 1, AuthImportStatus(ImportAtStart("none", "no file-based session found"), None)
        ),
        incoming=IncomingStatus(0, None, 1234), outbox=OutboxStatus(57),
        webhooks=WebhookStatus(
            dispatcher="active", dispatcher_error=None, endpoints=1, paused=[], pending=3,
            oldest_pending_age_seconds=125.0, failed=1, waiting=2, dead=0, delivered_24h=40,
            last_error=None, by_endpoint=endpoints,
        ),
        send_queue=SendQueueStatus(4, 0, 10, 20, 5, 1, 0, NOW - dt.timedelta(minutes=2)),
        deliveries_24h=DeliveryFigures(sent=10, delivered=9, read=5, failed=1, delivered_percent=81.8),
        media=MediaStatus(storage="postgres", files=12, bytes=5 * 2**20, max_total_bytes=2**30, removed_files=0),
        tasks=[TaskStatus("message-sender", TaskState.RUNNING, None, 0)],
        version="0.1.0", schema_version=7,
    )  # fmt: skip
    return dataclasses.replace(base, **changes)
