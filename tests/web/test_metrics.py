"""GET /metrics: Prometheus' text format, parsed by prometheus_client's own parser; figures that follow the session,
an incoming message and a send; route templates (never raw paths) as labels; the token required."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from app.media.store import MediaStatus
from app.session.states import State
from app.web import figures
from app.web.metrics import Metrics
from app.whatsapp import samples
from tests.processes import TOKEN
from tests.session.conftest import wait_state
from tests.web.conftest import ClientFactory
from tests.web.test_api import supervisor

METRICS_TOKEN = "metrics-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PHONE = "+6281234567890"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((f"whatsapp_gateway_{name}", tuple(sorted(labels.items()))))


async def scrape_until(client: httpx.AsyncClient, done: Callable[[Samples], bool], timeout: float = 15.0) -> Samples:
    """Scrape until the figures satisfy `done` (the store and the sender work in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = await scrape(client)
        if done(samples):
            return samples
        assert time.monotonic() < deadline, samples
        await asyncio.sleep(0.05)


async def test_metrics_need_a_token(app_client: ClientFactory) -> None:
    async with app_client(METRICS_TOKEN=METRICS_TOKEN) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {METRICS_TOKEN}"}):
            response = await client.get("/metrics", headers=headers)
            assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
            assert "whatsapp_gateway" not in response.text
        assert (await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})).status_code == 200
        # METRICS_TOKEN opens /metrics alone, not the API.
        api = await client.get("/api/status", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert api.status_code == 401


async def test_metrics_follow_the_session_messages_and_sends(app_client: ClientFactory) -> None:
    async with app_client(METRICS_TOKEN=METRICS_TOKEN) as client:
        api = {"Authorization": f"Bearer {TOKEN}"}
        await wait_state(supervisor(client), State.PAIRING)
        pairing = await scrape(client)
        assert value(pairing, "session_state", state="pairing") == 1
        assert value(pairing, "session_state", state="connected") == 0
        assert value(pairing, "session_connected") == 0
        assert value(pairing, "send_queue_messages", status="sent") == 0
        assert (value(pairing, "web_rss_bytes") or 0) > 10 * 2**20
        assert (value(pairing, "worker_rss_bytes") or 0) > 0
        stored_before = value(pairing, "incoming_stored_total")
        assert stored_before == 0

        pair = await client.post("/api/simulator/pair", headers=api, json={"phone": PHONE, "push_name": "Toko"})
        assert pair.status_code == 202
        await wait_state(supervisor(client), State.CONNECTED)
        incoming = {"from": "+6281111111111", "text": "Halo"}
        assert (await client.post("/api/simulator/incoming", headers=api, json=incoming)).status_code == 202
        sent = await client.post("/api/messages", headers=api, json={"to": "+6281111111111", "text": "Hi"})
        assert sent.status_code == 202
        message_id = sent.json()["id"]
        assert (await client.get(f"/api/messages/{message_id}", headers=api)).status_code == 200
        assert (await client.get("/nope/12345", headers=api)).status_code == 404

        after = await scrape_until(
            client,
            lambda s: (value(s, "incoming_stored_total") or 0) >= 1 and value(s, "sends_24h", outcome="sent") == 1,
        )
        assert value(after, "session_state", state="connected") == 1 and value(after, "session_connected") == 1
        assert value(after, "send_queue_messages", status="sent") == 1
        assert value(after, "send_queue_messages", status="queued") == 0
        assert value(after, "sends_24h", outcome="failed") == 0
        assert 0 <= (value(after, "heartbeat_age_seconds") or -1) < 5
        assert value(after, "worker_restarts_24h") == 0
        assert value(after, "session_reconnects_24h") == 0

        requests = {
            dict(labels)["route"]: count
            for (name, labels), count in after.items()
            if name == "whatsapp_gateway_http_requests_total"
        }
        assert requests["/api/messages"] >= 1 and requests["/api/messages/{message_id}"] >= 1
        assert requests["unmatched"] >= 1  # the 404, without its path
        assert not any(message_id in route or "12345" in route for route in requests)
        statuses = {dict(labels)["status"] for (name, labels) in after if name.endswith("http_requests_total")}
        assert {"202", "200", "404", "401"} <= statuses or {"202", "200", "404"} <= statuses
        latency = value(after, "http_request_duration_seconds_count", route="/api/messages", method="POST")
        assert latency is not None and latency >= 1


async def test_metrics_per_webhook_endpoint(app_client: ClientFactory) -> None:
    url = "http://127.0.0.1:9/hook"  # nothing listens: the delivery fails and stays pending
    async with app_client(
        METRICS_TOKEN=METRICS_TOKEN, WEBHOOK_URL=f"{url}?token=secret", WEBHOOK_SECRET="s" * 16
    ) as client:
        await wait_state(supervisor(client), State.PAIRING)
        samples = await scrape_until(
            client, lambda s: (value(s, "webhook_deliveries", endpoint=url + "?…", status="pending") or 0) >= 1
        )
        assert value(samples, "webhook_deliveries", endpoint=url + "?…", status="dead") == 0
        assert value(samples, "webhook_delivered_24h", endpoint=url + "?…") == 0
        assert (value(samples, "webhook_oldest_pending_age_seconds", endpoint=url + "?…") or -1) >= 0
        assert not any("secret" in str(labels) for _, labels in samples)


def test_request_labels_stay_bounded_whatever_method_a_client_sends() -> None:
    metrics = Metrics()
    for number in range(50):
        metrics.observe({"method": f"BREW{number}", "route": None}, 501, 0.001)
    metrics.observe({"method": "POST", "route": None}, 404, 0.001)
    families = {family.name: family for family in text_string_to_metric_families(metrics.render(None).decode())}
    requests = families["whatsapp_gateway_http_requests"].samples
    counted = {(s.labels["method"], s.labels["status"]): s.value for s in requests if s.name.endswith("_total")}
    assert counted == {("OTHER", "501"): 50.0, ("POST", "404"): 1.0}  # 50 odd methods make one series, not 50


async def test_stored_media_shows_in_the_status_and_the_metrics(app_client: ClientFactory) -> None:
    async with app_client(METRICS_TOKEN=METRICS_TOKEN, MEDIA_MAX_TOTAL_BYTES=str(2**20)) as client:
        before = (await client.get("/api/status", headers=AUTH)).json()["media"]
        assert before == {"storage": "postgres", "files": 0, "bytes": 0, "max_total_bytes": 2**20, "removed_files": 0}
        png = samples.png()
        uploaded = await client.post("/api/media", headers=AUTH, files={"file": ("receipt.png", png)})
        assert uploaded.status_code == 201, uploaded.text
        after = (await client.get("/api/status", headers=AUTH)).json()["media"]
        assert (after["files"], after["bytes"]) == (1, len(png))
        scraped = await scrape(client)
        assert value(scraped, "media_stored_bytes") == len(png) and value(scraped, "media_stored_files") == 1
        assert value(scraped, "media_max_total_bytes") == 2**20
    shown = figures.media(
        MediaStatus("s3://media/wa", files=3, bytes=3 * 2**19, max_total_bytes=2**21, removed_files=2)
    )
    assert shown.startswith("3 kept in s3://media/wa, 1.5 MB of 2 MB (75%)") and "2 older removed" in shown
