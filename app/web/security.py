"""Security headers on every response: a Content-Security-Policy without inline script, no framing, same-origin
referrers, no MIME sniffing; `Cache-Control: no-store` on everything but the static assets (pages and API answers
carry the QR code and the session's state, which no cache may keep)."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import Message, Receive, Scope, Send

from app.web.middleware import HTTPMiddleware

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "font-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
STATIC_PREFIX = "/static/"


class SecurityHeadersMiddleware(HTTPMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        static = scope["path"].startswith(STATIC_PREFIX)
        https = scope.get("scheme") == "https"  # deployed, as the platform's router said (app/asgi.py)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
                # Static assets may be cached but must be revalidated (their ETag), so a deploy shows at once.
                headers.setdefault("Cache-Control", "no-cache" if static else "no-store")
                if https:
                    headers.setdefault("Strict-Transport-Security", "max-age=15552000")
            await send(message)

        await self.app(scope, receive, send_with_headers)
