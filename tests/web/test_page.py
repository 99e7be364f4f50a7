"""The status page and its live stream: who may see them, what they show in each state, and what they never show."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from app.errors import DatabaseUnavailable
from app.session.states import State
from app.session.status import Holder, Pairing, TransitionEntry, Unlinked
from app.status import Status
from app.tasks import TaskState, TaskStatus
from app.web import page, render
from app.web import words as render_words
from tests.processes import BASE_ENV, TOKEN, AppProcess
from tests.session.conftest import wait_state
from tests.web.samples import LONG_URL, NOW, endpoint, sample
from tests.web.test_api import AUTH, ROUTES, supervisor
from tests.web.test_login import login

SECRETS = (BASE_ENV["ADMIN_PASSWORD"], BASE_ENV["API_TOKEN"], BASE_ENV["SECRET_KEY"])
ADMIN_PAGES = [("GET", "/"), ("GET", "/events")]
PUBLIC = ["/healthz", "/login", "/api/openapi.json", "/static/page.js", "/static/page.css", "/static/favicon.svg"]


class Inventory(HTMLParser):
    """Scripts, inline handlers and inline styles in a page (the CSP forbids the last two and inline scripts)."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline_handlers: list[str] = []
        self.inline_styles: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "script":
            self.scripts.append(dict(attrs))
        if tag == "style":
            self.inline_styles.append("<style>")
        for name, _ in attrs:
            if name.startswith("on"):
                self.inline_handlers.append(f"{tag} {name}")
            if name == "style":
                self.inline_styles.append(tag)


def inventory(html: str) -> Inventory:
    parser = Inventory()
    parser.feed(html)
    return parser


async def test_admin_routes_refuse_without_credentials(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 303 and page.headers["location"] == "/login"
    assert "<svg" not in page.text
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Cookie": "wag_session=forged.value.sig"}):
        events = await client.get("/events", headers=headers)
        assert events.status_code == 401 and events.json()["error"] == "unauthorized"
        for method, path in ROUTES:
            response = await client.request(method, path, headers=headers, json={})
            assert response.status_code == 401, (method, path, headers)


async def test_public_routes_answer_without_credentials(client: httpx.AsyncClient) -> None:
    for path in PUBLIC:
        response = await client.get(path)
        assert response.status_code == 200, path
        for secret in SECRETS:
            assert secret not in response.text, path


async def test_the_cookie_opens_every_api_route(client: httpx.AsyncClient) -> None:
    csrf = await login(client)
    assert (await client.get("/api/status")).status_code == 200
    await wait_state(supervisor(client), State.PAIRING)
    assert (await client.get("/api/session/qr")).status_code == 200
    for method, path in ROUTES:
        if method != "POST" or path.endswith(("/crash", "/hang", "/reconnect")):
            continue
        # With the token the request gets past authentication: whatever it answers, it is not 401 or 403.
        response = await client.post(path, headers={"X-CSRF-Token": csrf}, json={"reason": "meteor"})
        assert response.status_code not in (401, 403), (path, response.text)


async def test_cookie_posts_without_the_csrf_token_are_refused(client: httpx.AsyncClient) -> None:
    csrf = await login(client)
    await wait_state(supervisor(client), State.PAIRING)
    for method, path in ROUTES:
        if method != "POST":
            continue
        for headers in (
            {},
            {"X-CSRF-Token": "wrong"},
            {"X-CSRF-Token": csrf, "Origin": "https://evil.example"},
            {"X-CSRF-Token": csrf, "Referer": "https://evil.example/page"},
            {"X-CSRF-Token": csrf, "Origin": "null"},
        ):
            response = await client.post(path, headers=headers, json={"phone": "+6281234567890"})
            assert response.status_code == 403, (path, headers)
            assert response.json()["error"] == "forbidden" and "CSRF" in response.json()["detail"]
    assert supervisor(client).state is State.PAIRING  # nothing was done
    # The bearer token needs no CSRF token: a script is not a browser with someone else's cookie.
    code = await client.post("/api/session/pair-code", headers=AUTH, json={"phone": "+6281234567890"})
    assert code.status_code == 200
    same_site = await client.post(
        "/api/session/pair-code",
        headers={"X-CSRF-Token": csrf, "Origin": "http://test"},
        json={"phone": "+628123456789"},
    )
    assert same_site.status_code == 200 and len(same_site.json()["code"]) == 8


async def test_page_while_pairing_shows_the_qr_and_the_phone_link(client: httpx.AsyncClient) -> None:
    await login(client)
    await wait_state(supervisor(client), State.PAIRING)
    page = await client.get("/")
    assert page.headers["cache-control"] == "no-store"
    assert 'data-state="pairing"' in page.text
    assert re.search(r'<figure class="qr" data-rotation="1"><svg role="img"[^>]*viewBox=', page.text)
    assert "Link with a phone number instead" in page.text
    assert 'class="countdown"' in page.text  # the QR's countdown
    assert "Kept in Postgres" in page.text and "no linked device" in page.text
    parsed = inventory(page.text)
    assert parsed.scripts == [{"src": "/static/page.js?v=0.1.0", "defer": None}]
    assert parsed.inline_handlers == [] and parsed.inline_styles == []
    for secret in SECRETS:
        assert secret not in page.text
    assert supervisor(client).qr is not None
    assert supervisor(client).qr["payload"] in (await client.get("/api/session/qr", headers=AUTH)).text  # type: ignore[index]


async def test_page_when_connected_shows_the_account_and_actions(client: httpx.AsyncClient) -> None:
    await login(client)
    await wait_state(supervisor(client), State.PAIRING)
    paired = await client.post(
        "/api/simulator/pair", headers=AUTH, json={"phone": "+6281234567890", "push_name": "<b>Toko</b>"}
    )
    assert paired.status_code == 202
    await wait_state(supervisor(client), State.CONNECTED)
    page = (await client.get("/")).text
    assert 'data-state="connected"' in page
    assert '<span class="phone">+6281234567890</span>' in page
    assert "&lt;b&gt;Toko&lt;/b&gt;" in page and "<b>Toko</b>" not in page  # escaped
    assert 'data-action="reconnect"' in page and 'data-action="logout"' in page
    assert '<dialog id="logout-dialog"' in page
    assert '<figure class="qr"' not in page and "the linked device&#x27;s login" in page
    assert "linked with the QR code" in page and "QR code shown" in page  # recent transitions with their reasons


def view(state: str, **changes: object) -> render.View:
    return render.View(sample(state, **changes), NOW)


def visible_text(html: str) -> str:
    """What a reader sees of a fragment: the text between tags, attributes left out."""
    return re.sub(r"<[^>]+>", " ", html)


def test_render_standby_names_the_holder_and_offers_no_actions() -> None:
    holder = Holder("web.1:42", State.CONNECTED)
    html = page.status_page(view("standby", holder=holder, reason="lease_held_elsewhere"), "t")
    assert "Another process holds the session" in html and "web.1:42" in html
    assert 'data-action="reconnect"' not in html and 'data-action="logout"' not in html
    assert 'data-action="pair"' not in html


def test_render_says_when_the_database_not_another_process_is_the_reason_to_wait() -> None:
    html = page.status_page(view("standby", reason="database_unavailable", detail="Postgres is unavailable: x"), "t")
    assert "Postgres is unavailable" in html and "Another process holds the session" not in html


def test_render_a_failed_link_says_why() -> None:
    detail = "WhatsApp on the phone is too old <to link>; update it"
    sections = render.sections(view("logged_out", reason="pairing_failed", detail=detail, account=None))
    assert "Linking failed: WhatsApp on the phone is too old &lt;to link&gt;; update it" in sections["pairing"]


def test_render_expired_round_offers_a_new_qr_within_the_limit() -> None:
    sections = render.sections(view("logged_out", reason="pairing_expired", pairing=Pairing(False, None, 2)))
    assert "expired without being scanned" in sections["pairing"]
    assert '<button type="button" class="primary" data-action="pair">Show a new QR</button>' in sections["pairing"]
    assert "2 QR rounds left" in sections["pairing"]
    used_up = view("logged_out", reason="pairing_expired", pairing=Pairing(False, None, 0))
    used_up.next_round_at = used_up.now + dt.timedelta(seconds=45)
    sections = render.sections(used_up)
    assert 'data-action="pair" disabled' in sections["pairing"] and "in 45 s" in sections["pairing"]


def test_render_every_figure_in_words() -> None:
    """No raw dict, no snake_case key, no ISO timestamp outside a <time datetime=...> attribute."""
    detail = "temporarily banned until 2026-01-01T14:00:00+00:00"
    transitions = [TransitionEntry(NOW, State.CONNECTING, State.BANNED, "banned", detail)]
    sections = render.sections(view("connected", recent_transitions=transitions))
    for name, html in sections.items():
        text = visible_text(html)
        assert not re.search(r"\b[a-z]+_[a-z_]+\b", text), (name, text)
        assert "{" not in text and "'" + "id" not in text, (name, text)
        assert not re.search(r"\d{4}-\d{2}-\d{2}T", text), (name, text)
    storage = sections["storage"]
    assert "Kept in Postgres" in storage and "1,234 since the app started" in storage
    assert "3 events waiting" in storage and "the oldest for 2 min" in storage and "40 delivered in 24 h" in storage
    assert "4 messages waiting to be sent" in storage
    assert "10 sent · 9 delivered · 5 read" in storage and "81.8 % delivered" in storage
    assert '<time class="local" datetime="2026-01-01T14:00:00+00:00">' in sections["history"]
    assert "banned by WhatsApp" in sections["history"]
    assert "64 MB of memory of 300 MB allowed" in sections["health"] and "restarts, 24 h" in sections["health"]


def test_render_shortens_long_urls_and_hides_their_query() -> None:
    webhooks = sample().webhooks
    assert webhooks is not None
    status = sample(webhooks=dataclasses.replace(webhooks, by_endpoint=[endpoint(url=LONG_URL)]))
    storage = render.sections(render.View(status, NOW))["storage"]
    shown = re.search(r'<span class="long" title="([^"]+)">([^<]+)</span>', storage)
    assert shown is not None and len(shown.group(2)) <= render_words.LONG and "…" in shown.group(2)


def test_render_reconnecting_and_banned_count_down() -> None:
    retry = view("reconnecting", retry_at=NOW + dt.timedelta(seconds=12), reason="connection_lost")
    assert "Next attempt" in render.sections(retry)["session"] and "in 12 s" in render.sections(retry)["session"]
    end = NOW + dt.timedelta(hours=2)
    banned = render.sections(view("banned", retry_at=end, banned_until=end, reason="banned"))
    assert "The ban ends" in banned["session"] and "in 2 h" in banned["session"]
    assert f'<time class="local" datetime="{end.isoformat()}">' in banned["session"]
    assert 'data-action="reconnect"' not in banned["session"]  # reconnecting during a ban can lengthen it
    assert 'data-healthy="false"' in banned["session"] and "banned: nothing is sent" in banned["session"]
    assert "Heartbeat" not in banned["health"]
    beat = view("connected", last_heartbeat_at=NOW - dt.timedelta(seconds=200), heartbeat_interval=30.0)
    assert 'class="ago stale"' in render.sections(beat)["health"]  # an old heartbeat is marked
    assert "Heartbeat" in render.sections(view("reconnecting"))["health"]
    assert "Heartbeat" not in render.sections(view("pairing"))["health"]


def test_render_says_who_unlinked_the_device_and_when() -> None:
    at = NOW - dt.timedelta(minutes=3)
    by_phone = render.sections(view("pairing", account=None, unlinked=Unlinked(at, False, "x")))["session"]
    assert "WhatsApp on the phone unlinked this gateway" in by_phone and "3 min ago" in by_phone
    assert f'<time class="local" datetime="{at.isoformat()}">' in by_phone
    by_page = render.sections(view("logged_out", account=None, unlinked=Unlinked(at, True, "x")))["session"]
    assert "logged out from this page" in by_page


def test_render_history_shows_whole_entries() -> None:
    entries = [TransitionEntry(NOW, State.CONNECTED, State.RECONNECTING, "connection_lost", "d")] * 30
    history = render.sections(view("connected", recent_transitions=entries))["history"]
    assert history.count("<li>") == render.HISTORY_SHOWN
    css = (Path(render.__file__).parent / "static" / "page.css").read_text()
    timeline = re.search(r"\.timeline \{[^}]*\}", css)
    assert timeline is not None and "overflow" not in timeline.group(0) and "max-height" not in timeline.group(0)


def test_durations_read_like_the_script_writes_them() -> None:
    assert [render_words.span(s) for s in (0, 59, 60, 3599, 3600, 3660, 86400, 90000)] == [
        "0 s",
        "59 s",
        "1 min",
        "59 min",
        "1 h",
        "1 h 1 min",
        "1 d",
        "1 d 1 h",
    ]
    script = (Path(render_words.__file__).parent / "static" / "page.js").read_text()
    assert "`${hours} h ${minutes} min`" in script and "`${days} d ${hours} h`" in script


# ---- the live stream, from the real server ------------------------------------------------------------------------


def events(response: httpx.Response) -> Iterator[dict[str, object]]:
    for line in response.iter_lines():
        if line.startswith("data: "):
            yield json.loads(line.removeprefix("data: "))


def test_events_stream_follows_rotations_and_transitions(database_url: str, tmp_path: Path) -> None:
    app = AppProcess(database_url, tmp_path / "app.log", env={"SIMULATOR_QR_SECONDS": "2,2,2,2,2,2"}).start()
    try:
        app.wait_state("pairing")
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.stream("GET", f"{app.url}/events", headers=headers, timeout=30) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-store"
            stream = events(response)
            first = next(stream)
            sections = first["sections"]
            assert isinstance(sections, dict) and set(sections) == set(render.SECTIONS)
            rotation = re.search(r'data-rotation="(\d+)"', sections["qr"])
            assert first["state"] == "pairing" and rotation is not None
            for message in stream:  # the next code arrives by itself, without asking
                found = re.search(r'data-rotation="(\d+)"', str(message["sections"]["qr"]))  # type: ignore[index]
                if found and found.group(1) != rotation.group(1):
                    break
            with app.api() as api:
                assert api.post("/api/simulator/pair", json={"phone": "+6281234567890"}).status_code == 202
            for message in stream:
                if message["state"] == "connected":
                    assert "+6281234567890" in message["sections"]["session"]  # type: ignore[index]
                    break
    finally:
        app.terminate()
    for secret in SECRETS:
        assert secret not in app.output()


@pytest.mark.parametrize("path", ["/", "/login", "/api/status", "/static/page.js", "/nope"])
async def test_security_headers_everywhere(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path, headers=AUTH)
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["x-content-type-options"] == "nosniff"
    expected = "no-cache" if path.startswith("/static/") else "no-store"
    assert response.headers["cache-control"] == expected


async def test_page_without_the_database_says_so(client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    await login(client)
    await wait_state(supervisor(client), State.PAIRING)

    async def unavailable() -> Status:
        raise DatabaseUnavailable("connection refused")

    monkeypatch.setattr(client.app.state.services, "status", unavailable)  # type: ignore[attr-defined]
    page = await client.get("/")
    assert page.status_code == 200
    assert "The database is unavailable" in page.text
    assert 'data-state="pairing"' in page.text and '<figure class="qr"' in page.text  # the session still shows
    assert "not available while the database is away" in page.text


def test_render_names_a_background_task_that_failed() -> None:
    healthy = render.sections(view("connected"))["health"]
    assert "Message sender" not in healthy  # a task that never failed is not worth a row
    failed = TaskStatus("message-sender", TaskState.RESTARTING, "<ConnectionResetError>", 3)
    health = render.sections(view("connected", tasks=[failed]))["health"]
    assert (
        "Message sender" in health
        and "failed; restarting shortly (failed 3 times: &lt;ConnectionResetError&gt;)" in health
    )
