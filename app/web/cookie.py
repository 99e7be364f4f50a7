"""The page's login session: a cookie signed with SECRET_KEY that carries a session id and the session's CSRF token.

The cookie is HttpOnly, SameSite=Lax, and Secure whenever the request came over https (directly or, deployed, as
the platform's router says: app/asgi.py puts its word in the request's scheme). It expires after `MAX_AGE`; it also
stops being valid when ADMIN_PASSWORD or SECRET_KEY changes, and when its holder logs out (revoked in memory until it
would have expired).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
import time
from urllib.parse import urlsplit

from itsdangerous import BadData, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

COOKIE = "wag_session"
MAX_AGE = 12 * 3600  # an operator logs in once a working day
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


@dataclasses.dataclass(frozen=True)
class Session:
    sid: str
    csrf: str


def same_origin(request: Request) -> bool:
    """False only when the browser says the request comes from another site (Origin, else Referer, vs Host)."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source:
        return True  # not a browser, or one that sends neither: the CSRF token still has to match
    if source == "null":
        return False
    return urlsplit(source).netloc.lower() == request.headers.get("host", "").lower()


class CookieSessions:
    """Issues, reads and revokes login sessions. One per app, in the lifespan's state (app/web/state.py)."""

    def __init__(self, secret_key: str | None, admin_password: str | None, max_age: int = MAX_AGE) -> None:
        self.max_age = max_age
        self.enabled = bool(secret_key and admin_password)
        # Bound to the password: changing ADMIN_PASSWORD (or SECRET_KEY) signs everybody out.
        fingerprint = hmac.new((secret_key or "").encode(), (admin_password or "").encode(), hashlib.sha256)
        self._password_tag = fingerprint.hexdigest()[:16]
        self._serializer = URLSafeTimedSerializer(secret_key or secrets.token_hex(32), salt="wag.session.v1")
        self._revoked: dict[str, float] = {}  # sid -> when its cookie expires anyway (monotonic)

    def issue(self, request: Request, response: Response) -> Session:
        session = Session(sid=secrets.token_urlsafe(16), csrf=secrets.token_urlsafe(24))
        value = self._serializer.dumps({"sid": session.sid, "csrf": session.csrf, "pw": self._password_tag})
        response.set_cookie(
            COOKIE,
            value,
            max_age=self.max_age,
            path="/",
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="lax",
        )
        return session

    def load(self, request: Request) -> Session | None:
        """The request's valid, unrevoked session, or None."""
        value = request.cookies.get(COOKIE)
        if not self.enabled or not value or len(value) > 1024:
            return None
        try:
            data = self._serializer.loads(value, max_age=self.max_age)
        except BadData:
            return None
        if not isinstance(data, dict) or data.get("pw") != self._password_tag:
            return None
        sid, csrf = data.get("sid"), data.get("csrf")
        if not isinstance(sid, str) or not isinstance(csrf, str) or sid in self._revoked:
            return None
        return Session(sid=sid, csrf=csrf)

    def revoke(self, session: Session, response: Response) -> None:
        now = time.monotonic()
        self._revoked = {sid: until for sid, until in self._revoked.items() if until > now}
        self._revoked[session.sid] = now + self.max_age
        self.clear(response)

    def clear(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")


def csrf_problem(request: Request, session: Session, submitted: str | None = None) -> str | None:
    """Why a state-changing request authenticated by the cookie must be refused, or None if it may go ahead."""
    if request.method in SAFE_METHODS:
        return None
    if not same_origin(request):
        return "the request comes from another site"
    token = submitted if submitted is not None else request.headers.get(CSRF_HEADER, "")
    if not token or not hmac.compare_digest(token.encode(), session.csrf.encode()):
        return f"the CSRF token is missing or wrong (send the page's token in {CSRF_HEADER}; reload the page)"
    return None
