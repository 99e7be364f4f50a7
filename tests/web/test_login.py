"""Login, the session cookie, logout, CSRF on the logout form, and the login throttle."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from starlette.requests import Request

from app.web.cookie import COOKIE, CookieSessions
from app.web.login import password_matches
from app.web.throttle import LoginThrottle
from tests.processes import BASE_ENV
from tests.web.conftest import ClientFactory, state_of

PASSWORD = BASE_ENV["ADMIN_PASSWORD"]


async def login(client: httpx.AsyncClient, **headers: str) -> str:
    """Sign in; return the page's CSRF token."""
    response = await client.post("/login", data={"password": PASSWORD}, headers=headers)
    assert response.status_code == 303 and response.headers["location"] == "/", response.text
    page = await client.get("/")
    assert page.status_code == 200
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
    assert match is not None
    return match.group(1)


def set_cookie(response: httpx.Response) -> str:
    return str(response.headers.get("set-cookie", ""))


async def test_the_page_sends_strangers_to_the_login_form(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 303 and page.headers["location"] == "/login"
    form = await client.get("/login")
    assert form.status_code == 200
    assert 'name="password"' in form.text and 'type="password"' in form.text
    assert "csrf-token" not in form.text and '<svg role="img"' not in form.text  # nothing of the admin page


async def test_wrong_password_is_401_without_a_cookie(client: httpx.AsyncClient) -> None:
    for password in ("", "nope", PASSWORD + "x", PASSWORD[:-1]):
        response = await client.post("/login", data={"password": password})
        assert response.status_code == 401
        assert "Wrong password" in response.text
        assert COOKIE not in set_cookie(response)
    assert (await client.get("/")).status_code == 303


async def test_login_sets_a_signed_httponly_samesite_cookie(client: httpx.AsyncClient) -> None:
    response = await client.post("/login", data={"password": PASSWORD})
    assert response.status_code == 303
    cookie = set_cookie(response)
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http: a Secure cookie would not come back
    assert PASSWORD not in cookie and BASE_ENV["SECRET_KEY"] not in cookie
    assert (await client.get("/")).status_code == 200
    assert (await client.get("/login")).status_code == 303  # signed in already


@pytest.mark.parametrize(("proto", "secure"), [("https", True), ("http, https", True), ("https, http", False)])
async def test_cookie_is_secure_behind_an_https_router(app_client: ClientFactory, proto: str, secure: bool) -> None:
    async with app_client(DYNO="web.1") as client:  # deployed: the router's word is the last X-Forwarded-Proto entry
        response = await client.post("/login", data={"password": PASSWORD}, headers={"X-Forwarded-Proto": proto})
        assert ("Secure" in set_cookie(response)) is secure
        assert ("strict-transport-security" in response.headers) is secure


async def test_locally_forwarded_headers_are_only_the_clients_word(app_client: ClientFactory) -> None:
    async with app_client() as client:  # not deployed: no router in front, so no proxy is trusted
        state_of(client)["login_throttle"] = LoginThrottle(free=0, limit=1, base_delay=0.01)
        forged = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"}
        assert (await client.post("/login", data={"password": "x"}, headers=forged)).status_code == 401
        # Counted against the TCP peer, whatever the header claims next.
        other = {"X-Forwarded-For": "192.0.2.10"}
        assert (await client.post("/login", data={"password": "x"}, headers=other)).status_code == 429
        state_of(client)["login_throttle"] = LoginThrottle()
        response = await client.post("/login", data={"password": PASSWORD}, headers=forged)
        assert response.status_code == 303 and "Secure" not in set_cookie(response)
        assert "strict-transport-security" not in response.headers


async def test_a_tampered_or_foreign_cookie_is_refused(client: httpx.AsyncClient) -> None:
    await login(client)
    value = client.cookies[COOKIE]
    payload, _, _ = value.rpartition(".")
    for forged in (value[:-2] + ("AA" if not value.endswith("AA") else "BB"), payload + ".x", "garbage", "a.b.c"):
        client.cookies.set(COOKIE, forged)
        assert (await client.get("/")).status_code == 303, forged
        assert (await client.get("/api/status")).status_code == 401
    other = CookieSessions("another-secret-key", PASSWORD)
    assert other.load(request_with_cookie(value)) is None  # a different SECRET_KEY
    changed = CookieSessions(BASE_ENV["SECRET_KEY"], "a-new-password")
    assert changed.load(request_with_cookie(value)) is None  # ADMIN_PASSWORD changed: everybody signs in again
    same = CookieSessions(BASE_ENV["SECRET_KEY"], PASSWORD)
    assert same.load(request_with_cookie(value)) is not None


def request_with_cookie(value: str) -> Request:
    return Request(
        {"type": "http", "method": "GET", "path": "/", "headers": [(b"cookie", f"{COOKIE}={value}".encode())]}
    )


async def test_an_expired_cookie_is_refused(client: httpx.AsyncClient) -> None:
    await login(client)
    state_of(client)["cookie_sessions"].max_age = -1
    assert (await client.get("/")).status_code == 303
    assert (await client.get("/api/status")).status_code == 401


async def test_logout_needs_the_csrf_token_and_revokes_the_cookie(client: httpx.AsyncClient) -> None:
    csrf = await login(client)
    value = client.cookies[COOKIE]
    refused = await client.post("/logout", data={"csrf": "wrong"})
    assert refused.status_code == 403 and "CSRF" in refused.text
    refused = await client.post("/logout", data={})
    assert refused.status_code == 403
    assert (await client.get("/")).status_code == 200  # still signed in
    cross_site = await client.post("/logout", data={"csrf": csrf}, headers={"Origin": "https://evil.example"})
    assert cross_site.status_code == 403
    response = await client.post("/logout", data={"csrf": csrf})
    assert response.status_code == 303 and response.headers["location"] == "/login?signed_out=1"
    assert f'{COOKIE}=""' in set_cookie(response) or "Max-Age=0" in set_cookie(response)
    assert "You are signed out" in (await client.get("/login?signed_out=1")).text
    # The old cookie, replayed (as a thief would), no longer works.
    client.cookies.set(COOKIE, value)
    assert (await client.get("/")).status_code == 303
    assert (await client.get("/api/status")).status_code == 401
    again = await client.post("/logout")  # signed out already: just back to the form
    assert again.status_code == 303


async def test_login_from_another_site_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/login", data={"password": PASSWORD}, headers={"Origin": "https://evil.example"})
    assert response.status_code == 403 and COOKIE not in set_cookie(response)
    same = await client.post("/login", data={"password": PASSWORD}, headers={"Origin": "http://test"})
    assert same.status_code == 303


async def test_odd_login_bodies_are_answered_calmly(client: httpx.AsyncClient) -> None:
    state_of(client)["login_throttle"] = LoginThrottle(free=100, limit=100)
    bodies = [b"", b"password", b"password=%ff%fe", b"password=" + b"a" * 4000, b"a=1&" * 100, b"\x00\xff"]
    for body in bodies:
        response = await client.post(
            "/login", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert response.status_code == 401, body[:20]
    too_long = await client.post("/login", content=b"password=" + b"a" * 10000)
    assert too_long.status_code == 413  # the form's limit (tests/web/test_body.py has the rest)
    multipart = await client.post("/login", files={"password": ("p", PASSWORD.encode())})
    assert multipart.status_code == 401  # only the form encoding a browser's login form uses


async def test_failed_logins_are_slowed_then_refused_with_429(client: httpx.AsyncClient) -> None:
    throttle = LoginThrottle(free=2, limit=5, base_delay=0.3, max_delay=0.6)
    state_of(client)["login_throttle"] = throttle
    elapsed = []
    for _ in range(5):
        started = time.monotonic()
        response = await client.post("/login", data={"password": "guess"})
        elapsed.append(time.monotonic() - started)
        assert response.status_code == 401
    assert elapsed[2] >= 0.3 and elapsed[3] >= 0.6 and elapsed[4] >= 0.6  # slowed after the free ones
    refused = await client.post("/login", data={"password": "guess"})
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 15 * 60
    assert "Too many failed attempts" in refused.text
    correct = await client.post("/login", data={"password": PASSWORD})
    assert correct.status_code == 429  # refused even with the right password: no more guesses from there
    assert COOKIE not in set_cookie(correct)


async def test_the_throttle_counts_per_client_address_behind_the_router(app_client: ClientFactory) -> None:
    async with app_client(DYNO="web.1") as client:  # deployed: the router's X-Forwarded-For names the client
        state_of(client)["login_throttle"] = LoginThrottle(free=0, limit=2, base_delay=0.01)
        attacker = {"X-Forwarded-For": "198.51.100.7"}
        for _ in range(2):
            assert (await client.post("/login", data={"password": "x"}, headers=attacker)).status_code == 401
        assert (await client.post("/login", data={"password": "x"}, headers=attacker)).status_code == 429
        # A spoofed first entry does not help: the router appends the real address last.
        spoofed = {"X-Forwarded-For": "203.0.113.1, 198.51.100.7"}
        assert (await client.post("/login", data={"password": "x"}, headers=spoofed)).status_code == 429
        operator = {"X-Forwarded-For": "192.0.2.10"}
        assert (await client.post("/login", data={"password": PASSWORD}, headers=operator)).status_code == 303


async def test_rotating_what_precedes_the_routers_entry_does_not_escape_the_throttle(
    app_client: ClientFactory,
) -> None:
    async with app_client(DYNO="web.1") as client:
        state_of(client)["login_throttle"] = LoginThrottle(free=0, limit=3, base_delay=0.01)
        # What a client may put in X-Forwarded-For itself; Heroku's router appends the real peer after it.
        forged = ["", "203.0.113.{n}, ", "203.0.113.{n},198.51.100.{n}, ", "unknown, ", "198.51.100.7 , ", " , "]
        statuses = []
        for n in range(12):
            prefix = forged[n % len(forged)].format(n=n)
            headers = {"X-Forwarded-For": f"{prefix}198.51.100.7"}
            statuses.append((await client.post("/login", data={"password": "x"}, headers=headers)).status_code)
        assert statuses == [401] * 3 + [429] * 9
        # Whoever comes next from that address, whatever it claims first, is refused too.
        last = {"X-Forwarded-For": "192.0.2.10, 10.0.0.1, 198.51.100.7"}
        assert (await client.post("/login", data={"password": PASSWORD}, headers=last)).status_code == 429


def test_throttle_window_success_and_memory_bound() -> None:
    now = [1000.0]
    throttle = LoginThrottle(
        free=1, limit=3, window=60, base_delay=1, max_delay=4, max_addresses=3, clock=lambda: now[0]
    )
    delays = [throttle.attempt("a").delay for _ in range(3)]
    assert delays == [0.0, 1.0, 2.0]
    refused = throttle.attempt("a")
    assert not refused.allowed and refused.retry_after == 60
    now[0] += 61  # the failures leave the window
    assert throttle.attempt("a").allowed
    throttle.succeeded("a")
    assert throttle.failures("a") == 0
    for address in ("b", "c", "d", "e"):
        throttle.attempt(address)
    assert len(throttle._failures) <= 3  # an address flood cannot grow memory without bound


def test_password_comparison() -> None:
    assert password_matches("s3cret", "s3cret")
    assert not password_matches("s3cret", "s3cret ")
    assert not password_matches("", "s3cret")
    assert not password_matches("ü", "u")
