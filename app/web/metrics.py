"""GET /metrics in Prometheus' text format, behind the API token or METRICS_TOKEN: the typed `Status` turned into
gauges at scrape time (one collector, a registry of the app's own, never the global one), plus HTTP requests by
route template and status with their latency, counted by a small ASGI middleware."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from app.session.states import State
from app.status import Status, is_connected
from app.web.auth import bearer_token_valid
from app.web.errors import error_response
from app.web.state import state

PREFIX = "whatsapp_gateway"
UNMATCHED = "unmatched"  # the route label of a request no route took (a 404): never the raw path
# Methods a label may name; any other (a client may send any token) counts as OTHER, so labels stay bounded.
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
OTHER = "OTHER"
MB = 2**20


def gauge(
    name: str, documentation: str, value: float | None = None, labels: list[str] | None = None
) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", documentation, value=value, labels=labels)


def status_metrics(status: Status) -> Iterator[Metric]:
    """Every figure of the status that a graph or an alert rule can use."""
    states = gauge("session_state", "1 for the session's current state, 0 for the others", labels=["state"])
    for each in State:
        states.add_metric([each.value], 1.0 if status.state is each else 0.0)
    yield states
    yield gauge(
        "session_connected", "1 while the session is connected (and its heartbeat is good)", is_connected(status)
    )
    if status.last_heartbeat_at is not None:
        age = (status.checked_at - status.last_heartbeat_at).total_seconds()
        yield gauge("heartbeat_age_seconds", "seconds since the last heartbeat", age)
    if status.reconnects_24h is not None and status.disconnects_24h is not None:
        yield gauge("session_reconnects_24h", "reconnects over the last 24 h", status.reconnects_24h)
        yield gauge("session_disconnects_24h", "disconnects over the last 24 h", status.disconnects_24h)
    if status.uptime_24h_percent is not None:
        yield gauge("session_uptime_24h_ratio", "share of the last 24 h connected", status.uptime_24h_percent / 100)
    if status.worker_restarts_24h is not None:
        restarts = "WhatsApp worker processes started over the last 24 h, the first of each app process not counted"
        yield gauge("worker_restarts_24h", restarts, status.worker_restarts_24h)
    if status.worker is not None and status.worker.rss_mb is not None:
        yield gauge("worker_rss_bytes", "resident memory of the WhatsApp worker", status.worker.rss_mb * MB)
    if status.web_rss_mb is not None:
        yield gauge("web_rss_bytes", "resident memory of the web process", status.web_rss_mb * MB)
    if status.incoming is not None:
        stored = "incoming items (messages, receipts, events) stored by this process"
        yield CounterMetricFamily(f"{PREFIX}_incoming_stored", stored, value=status.incoming.stored_since_start)
        waiting = "incoming items handed over by the worker, not stored yet"
        yield gauge("incoming_waiting", waiting, status.incoming.waiting_to_be_stored)
    yield from webhook_metrics(status)
    yield from sending_metrics(status)
    yield from media_metrics(status)


def webhook_metrics(status: Status) -> Iterator[Metric]:
    if status.webhooks is None:
        return
    deliveries = gauge("webhook_deliveries", "webhook deliveries by endpoint and status", labels=["endpoint", "status"])
    delivered = gauge("webhook_delivered_24h", "deliveries that succeeded in the last 24 h", labels=["endpoint"])
    oldest = gauge("webhook_oldest_pending_age_seconds", "age of the oldest undelivered event", labels=["endpoint"])
    for endpoint in status.webhooks.by_endpoint:
        for name, value in (
            ("pending", endpoint.pending), ("failed", endpoint.failed), ("waiting", endpoint.waiting),
            ("dead", endpoint.dead),
        ):  # fmt: skip
            deliveries.add_metric([endpoint.url, name], value)
        delivered.add_metric([endpoint.url], endpoint.delivered_24h)
        oldest.add_metric([endpoint.url], endpoint.oldest_pending_age_seconds or 0.0)
    yield from (deliveries, delivered, oldest)


def sending_metrics(status: Status) -> Iterator[Metric]:
    if status.send_queue is not None:
        queue = gauge("send_queue_messages", "outgoing messages by status", labels=["status"])
        for name in ("queued", "sending", "sent", "delivered", "read", "failed", "cancelled"):
            queue.add_metric([name], getattr(status.send_queue, name))
        yield queue
    if status.deliveries_24h is not None:
        figures = status.deliveries_24h
        sends = gauge("sends_24h", "outgoing messages of the last 24 h by outcome", labels=["outcome"])
        for name in ("sent", "delivered", "read", "failed"):
            sends.add_metric([name], getattr(figures, name))
        yield sends
        if figures.delivered_percent is not None:
            yield gauge(
                "sends_delivered_ratio_24h", "delivered out of sent and failed", figures.delivered_percent / 100
            )


def media_metrics(status: Status) -> Iterator[Metric]:
    if status.media is not None:
        yield gauge(
            "media_stored_bytes", "bytes of the stored media files (incoming, uploaded, fetched)", status.media.bytes
        )
        yield gauge("media_stored_files", "stored media files whose bytes are kept", status.media.files)
        yield gauge("media_max_total_bytes", "MEDIA_MAX_TOTAL_BYTES", status.media.max_total_bytes)


class StatusCollector(Collector):
    """Yields the figures of the status it is given just before a scrape renders the registry."""

    def __init__(self) -> None:
        self.status: Status | None = None

    def collect(self) -> Iterator[Metric]:
        if self.status is not None:
            yield from status_metrics(self.status)


class Metrics:
    """The app's own registry: the status collector and the HTTP request figures."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = StatusCollector()
        self.registry.register(self.collector)
        self.requests = Counter(
            f"{PREFIX}_http_requests", "HTTP requests by route template, method and status",
            ["route", "method", "status"], registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            f"{PREFIX}_http_request_duration_seconds", "HTTP request latency by route template and method",
            ["route", "method"], registry=self.registry,
        )  # fmt: skip
        self._series: dict[
            tuple[str, str, int], tuple[Counter, Histogram]
        ] = {}  # (route, method, status) -> its two series

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        """One HTTP request, by the path template of the route that took it (never the raw path: ids and tokens stay
        out of the labels, and the number of series stays bounded)."""
        route = getattr(scope.get("route"), "path", None) or UNMATCHED
        method = scope["method"] if scope["method"] in METHODS else OTHER
        key = (route, method, status)
        series = self._series.get(key)
        if series is None:  # first of its kind: prometheus-client's label look-up is the slow part, done once
            series = self._series[key] = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route, method),
            )
        series[0].inc()
        series[1].observe(seconds)

    def render(self, status: Status | None) -> bytes:
        # No await between setting the status and rendering: concurrent scrapes cannot see each other's status.
        self.collector.status = status
        try:
            return generate_latest(self.registry)
        finally:
            self.collector.status = None


async def metrics(request: Request) -> Response:
    app = state(request)
    if not (bearer_token_valid(request, app["settings"].metrics_token or "") or bearer_token_valid(request)):
        return error_response(
            401, "authentication required: send Authorization: Bearer <METRICS_TOKEN or API_TOKEN>",
            {"WWW-Authenticate": "Bearer"},
        )  # fmt: skip
    status, _ = await app["services"].status_now()
    registry = app["metrics"]
    # The classic text format's own type: every Prometheus (2.x and 3.x) and agent reads it.
    return Response(registry.render(status), media_type=CONTENT_TYPE_PLAIN_0_0_4)
