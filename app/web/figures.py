"""The page's "Health" and "Storage and queues" cards: every figure of the typed `Status` in words, escaped HTML."""

from __future__ import annotations

import datetime as dt

from app.authimport.record import AuthStoreStatus
from app.incoming.store import IncomingStatus
from app.media.store import MediaStatus
from app.sending.queue import DeliveryFigures, SendQueueStatus
from app.session.states import State
from app.status import Status
from app.tasks import TaskState, TaskStatus
from app.web.words import ago, count, h, local_time, shortened, span
from app.webhooks.operator import EndpointStatus, WebhookStatus

NOT_KNOWN = '<span class="muted">not known</span>'
ELSEWHERE = '<span class="muted">kept by the serving process (not visible from here)</span>'
HEARTBEAT_STATES = (State.CONNECTED, State.RECONNECTING)  # where the heartbeat's age means something
DISPATCHER = {
    "active": "Delivering",
    "starting": "Starting",
    "standby": "Another process delivers them",
    "unavailable": "Waiting for the database",
    "stopped": "Stopped",
}
IMPORT_OUTCOMES = {
    "imported": "Imported",
    "refused": "Refused",
    "failed": "Failed",
    "skipped": "Not used",
    "none": "No login file found",
    "already_paired": "Not needed (Postgres already holds a login)",
}


def rows(items: list[tuple[str, str]], css: str = "figures") -> str:
    """A definition list; values are HTML already (escaped before)."""
    body = "".join(f"<div><dt>{h(name)}</dt><dd>{value}</dd></div>" for name, value in items)
    return f'<dl class="{css}">{body}</dl>'


def joined(*parts: str) -> str:
    return " · ".join(part for part in parts if part)


# ---- Health --------------------------------------------------------------------------------------------------------


def heartbeat(status: Status, now: dt.datetime) -> str:
    every = f"every {span(status.heartbeat_interval)}"
    if status.last_heartbeat_at is None:
        return f'<span class="muted">none yet ({every})</span>'
    verdict = {None: "", True: " · link up", False: ' · <span class="bad">link down</span>'}[status.heartbeat_ok]
    stale = 2 * status.heartbeat_interval + 5
    return f'{ago(status.last_heartbeat_at, now, stale_after=stale)} <span class="muted">· {every}{verdict}</span>'


def worker(status: Status, now: dt.datetime) -> str:
    if status.source == "stored":
        return ELSEWHERE
    if status.worker is None:
        return '<span class="muted">not running</span>'
    started = (now - dt.timedelta(seconds=status.worker.uptime_seconds)).replace(microsecond=0)
    since = h(started.isoformat())
    up = f'running for <time class="ago bare" data-since="{since}">{span(status.worker.uptime_seconds)}</time>'
    memory = ""
    if status.worker.rss_mb is not None:
        limit = f" of {status.worker.max_rss_mb:g} MB allowed" if status.worker.max_rss_mb else ""
        memory = f"{status.worker.rss_mb:.0f} MB of memory{limit}"
    return joined(up, memory)


def health(status: Status, now: dt.datetime) -> str:
    items = []
    if status.state in HEARTBEAT_STATES:
        items.append(("Heartbeat", heartbeat(status, now)))
    uptime = status.uptime_24h_percent
    items += [
        ("Connected, last 24 h", f"{uptime:g} % of the time" if uptime is not None else NOT_KNOWN),
        ("Disconnects, 24 h", f"{status.disconnects_24h:,}" if status.disconnects_24h is not None else NOT_KNOWN),
        ("Reconnects, 24 h", f"{status.reconnects_24h:,}" if status.reconnects_24h is not None else NOT_KNOWN),
    ]
    if status.worker_restarts_24h:
        items.append(("WhatsApp process restarts, 24 h", f"{status.worker_restarts_24h:,}"))
    if status.last_connected_at is not None and status.state is not State.CONNECTED:
        last = status.last_connected_at
        items.append(("Last connected", f"{local_time(last)} ({ago(last, now)})"))
    items.append(("WhatsApp process", worker(status, now)))
    if status.web_rss_mb is not None:
        items.append(("Web process", f"{status.web_rss_mb:.0f} MB of memory"))
    failed = [task for task in status.tasks or () if task.restarts or task.state is not TaskState.RUNNING]
    items += [(task.name.replace("-", " ").capitalize(), h(task_words(task))) for task in failed]
    return rows(items)


def task_words(task: TaskStatus) -> str:
    """A background task that has failed at least once (a healthy one is not worth a row)."""
    what = {
        TaskState.RUNNING: "running again",
        TaskState.RESTARTING: "failed; restarting shortly",
        TaskState.DIED: "stopped after an error",
    }[task.state]
    times = "" if task.restarts < 2 else f" {task.restarts:,} times"
    error = f": {task.last_error}" if task.last_error else ""
    return f"{what} (failed{times}{error})"


# ---- Storage and queues --------------------------------------------------------------------------------------------


def login_store(store: AuthStoreStatus) -> str:
    if store.devices is None:
        device = "no login stored yet"
    elif store.devices:
        device = "the linked device's login" if store.devices == 1 else f"{store.devices} devices' logins"
    else:
        device = "no linked device"
    return f"Kept in Postgres: {h(device)}"


def login_import(store: AuthStoreStatus) -> str:
    """What importing a file-based login did: at this start, and the latest recorded attempt."""
    at_start, last = store.import_.at_start, store.import_.last
    if last is not None:
        what = IMPORT_OUTCOMES.get(last.outcome, last.outcome.replace("_", " ").capitalize())
        rows_copied = f" ({count(last.total_rows, 'row')})" if last.outcome == "imported" else ""
        return (
            f"{h(what)}{rows_copied} {local_time(last.started_at)}: {h(last.message)} "
            f'<span class="muted">from</span> {shortened(last.source_path)}'
        )
    if at_start is not None and at_start.outcome not in ("skipped", "none"):
        what = IMPORT_OUTCOMES.get(at_start.outcome, at_start.outcome.replace("_", " ").capitalize())
        return f"{h(what)}: {h(at_start.message)}"
    return ""


def incoming(report: IncomingStatus | None, status: Status) -> str:
    if report is None:
        return ELSEWHERE if status.source == "stored" else NOT_KNOWN
    waiting = (
        f"{count(report.waiting_to_be_stored, 'item')} waiting to be stored"
        if report.waiting_to_be_stored
        else "all stored"
    )
    error = f'<span class="bad">could not store: {h(report.store_error)}</span>' if report.store_error else ""
    return joined(h(waiting), f"{report.stored_since_start:,} since the app started", error)


def endpoint(item: EndpointStatus, now: dt.datetime) -> str:
    oldest = item.oldest_pending_age_seconds
    figures = joined(
        f"{count(item.pending, 'event')} waiting" if item.pending else "nothing waiting",
        f"the oldest for {span(oldest)}" if oldest else "",
        f'<span class="bad">{count(item.dead, "event")} given up on</span>' if item.dead else "",
        f"{item.delivered_24h:,} delivered in 24 h",
    )
    paused = (
        f'<br><span class="bad">Paused {local_time(item.paused_at)}: '
        f"{h(item.paused_reason or 'it answered 410')}</span>"
        if item.paused_at
        else ""
    )
    error = (
        f'<br><span class="muted">Last error {ago(item.last_error_at, now)}: {h(item.last_error)}</span>'
        if item.last_error_at and item.pending
        else ""
    )
    return f"<li>{shortened(item.url)}<br>{figures}{paused}{error}</li>"


def webhooks(report: WebhookStatus, now: dt.datetime) -> str:
    if report.dispatcher == "off (no WEBHOOK_URL)":
        return "Off: no WEBHOOK_URL is set (events are still stored)"
    state = DISPATCHER.get(report.dispatcher or "", "") if report.dispatcher else "Delivered by the serving process"
    error = f'<span class="bad">{h(report.dispatcher_error)}</span>' if report.dispatcher_error else ""
    listed = "".join(endpoint(item, now) for item in report.by_endpoint)
    return joined(h(state or report.dispatcher), error) + (f'<ul class="endpoints">{listed}</ul>' if listed else "")


def send_queue(queue: SendQueueStatus, now: dt.datetime) -> str:
    if not queue.queued and not queue.sending:
        return "Nothing waiting to be sent"
    oldest = f"the oldest since {ago(queue.oldest_queued_at, now)}" if queue.oldest_queued_at else ""
    return joined(
        f"{count(queue.queued, 'message')} waiting to be sent" if queue.queued else "",
        oldest,
        f"{queue.sending:,} being sent" if queue.sending else "",
    )


def deliveries(figures: DeliveryFigures) -> str:
    if not figures.sent and not figures.failed:
        return "Nothing sent in the last 24 h"
    percent = figures.delivered_percent
    share = f"<strong>{percent:g} % delivered</strong>" if percent is not None else ""
    failed = f'<span class="bad">{figures.failed:,} failed</span>' if figures.failed else "none failed"
    return joined(f"{figures.sent:,} sent", f"{figures.delivered:,} delivered", f"{figures.read:,} read", failed, share)


def media(figures: MediaStatus) -> str:
    """How much of MEDIA_MAX_TOTAL_BYTES the kept files use, and where they are."""
    where = "in Postgres" if figures.storage == "postgres" else f"in {h(figures.storage)}"
    used = figures.bytes / figures.max_total_bytes if figures.max_total_bytes else 0.0
    line = (
        f"{figures.files:,} kept {where}, {figures.bytes / 2**20:,.1f} MB of "
        f"{figures.max_total_bytes / 2**20:,.0f} MB ({used:.0%})"
    )
    if figures.removed_files:
        line += f'<span class="detail">{figures.removed_files:,} older removed to stay under the cap</span>'
    return line


def storage(status: Status, now: dt.datetime) -> str:
    items = []
    if status.auth_store is not None:
        items.append(("WhatsApp login", login_store(status.auth_store)))
        if imported := login_import(status.auth_store):
            items.append(("Login file import", imported))
    items.append(("Incoming messages", incoming(status.incoming, status)))
    if status.webhooks is not None:
        items.append(("Webhooks", webhooks(status.webhooks, now)))
    if status.outbox is not None:
        items.append(("Webhook events kept", f"{status.outbox.events:,}"))
    if status.send_queue is not None:
        items.append(("Outgoing messages", send_queue(status.send_queue, now)))
    if status.deliveries_24h is not None:
        items.append(("Sent, last 24 h", deliveries(status.deliveries_24h)))
    if status.media is not None:
        items.append(("Media files", media(status.media)))
    if status.auth_store is None:
        items.append(("Figures", '<span class="muted">not available while the database is away</span>'))
    return rows(items)
