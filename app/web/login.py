"""GET/POST /login and POST /logout: the admin password in, a signed session cookie out (app/web/cookie.py).

The password is compared in constant time; failed attempts per client address are slowed and then refused with 429
(app/web/throttle.py). A login from another site's form is refused (Origin); logout needs the session's CSRF token.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from app.web.cookie import CookieSessions, csrf_problem, same_origin
from app.web.render import LOGO, layout
from app.web.state import state
from app.web.throttle import client_address
from app.web.words import h

log = logging.getLogger(__name__)


def password_matches(given: str, expected: str) -> bool:
    """Constant time, and the length of the password does not show either (both sides are hashed first)."""
    return hmac.compare_digest(hashlib.sha256(given.encode()).digest(), hashlib.sha256(expected.encode()).digest())


async def form_fields(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (all the login and logout forms send), first value of each field.
    Its size is bounded while it streams (app/web/body.py): a larger one never gets here."""
    body = await request.body()
    try:
        fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=20)
    except ValueError:  # more fields than any of our forms has
        return {}
    return {name: values[0] for name, values in fields.items() if values}


def sessions_of(request: Request) -> CookieSessions:
    return state(request)["cookie_sessions"]


def login_page(*, error: str | None = None, notice: str | None = None, disabled: str | None = None) -> str:
    message = ""
    if error:
        message = f'<p class="alert" role="alert">{h(error)}</p>'
    elif notice:
        message = f'<p class="notice-text" role="status">{h(notice)}</p>'
    if disabled:
        form = f'<p class="alert" role="alert">{h(disabled)}</p>'
    else:
        form = (
            '<form method="post" action="/login" class="login-form">'
            # One account; the name is there for password managers, which expect one.
            '<input type="text" name="username" value="admin" autocomplete="username" hidden>'
            '<label for="password">Admin password</label>'
            '<input id="password" name="password" type="password" autocomplete="current-password" required autofocus>'
            '<button type="submit" class="primary wide">Sign in</button></form>'
        )
    body = (
        '<main class="login"><div class="card login-card">'
        f'<div class="brand">{LOGO}<span>WhatsApp gateway</span></div>'
        "<h1>Sign in</h1>"
        '<p class="muted">The password is the app\'s <code>ADMIN_PASSWORD</code>. '
        "Running locally without one, it was printed when the app started.</p>"
        f"{message}{form}</div></main>"
    )
    return layout("Sign in", body, css="login-body")


async def login_form(request: Request) -> Response:
    if sessions_of(request).load(request) is not None:
        return RedirectResponse("/", 303)
    if not sessions_of(request).enabled:
        return HTMLResponse(login_page(disabled="Signing in is off: ADMIN_PASSWORD and SECRET_KEY must be set."), 503)
    notice = "You are signed out." if request.query_params.get("signed_out") else None
    return HTMLResponse(login_page(notice=notice))


async def login_submit(request: Request) -> Response:
    sessions = sessions_of(request)
    if not sessions.enabled:
        return HTMLResponse(login_page(disabled="Signing in is off: ADMIN_PASSWORD and SECRET_KEY must be set."), 503)
    if not same_origin(request):
        return HTMLResponse(login_page(error="Refused: the form was sent from another site."), 403)
    throttle = state(request)["login_throttle"]
    address = client_address(request)
    verdict = throttle.attempt(address)
    if not verdict.allowed:
        log.warning("login refused for %s: too many failed attempts", address)
        minutes = max(1, round(verdict.retry_after / 60))
        page = login_page(error=f"Too many failed attempts. Try again in about {minutes} min.")
        return HTMLResponse(page, 429, headers={"Retry-After": str(verdict.retry_after)})
    if verdict.delay:
        await asyncio.sleep(verdict.delay)  # slows a guessing script; a person barely notices
    password = (await form_fields(request)).get("password", "")
    expected = state(request)["settings"].admin_password or ""
    if not password or not password_matches(password, expected):
        log.warning("failed login from %s (%d recent failures)", address, throttle.failures(address))
        return HTMLResponse(login_page(error="Wrong password."), 401)
    throttle.succeeded(address)
    log.info("login from %s", address)
    response = RedirectResponse("/", 303)
    sessions.issue(request, response)
    return response


async def logout(request: Request) -> Response:
    sessions = sessions_of(request)
    session = sessions.load(request)
    response = RedirectResponse("/login?signed_out=1", 303)
    if session is None:
        sessions.clear(response)
        return response
    problem = csrf_problem(request, session, (await form_fields(request)).get("csrf", ""))
    if problem:
        return HTMLResponse(login_page(error=f"Not signed out: {problem}."), 403)
    sessions.revoke(session, response)
    return response
