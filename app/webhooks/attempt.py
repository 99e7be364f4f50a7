"""One delivery attempt on the wire: the signed POST of an event, and what came of it as (status, error)."""

from __future__ import annotations

import asyncio
import logging
import urllib.request

import httpx

from app.times import utcnow
from app.webhooks import signing
from app.webhooks.deliveries import Claimed
from app.webhooks.transport import KeepAliveTransport

log = logging.getLogger(__name__)
logging.getLogger("httpx").setLevel(logging.WARNING)  # it logs every request at INFO; failures are logged by us

ERROR_SNIPPET = 200  # characters of a failed answer's body kept with the error


async def post(
    transport: httpx.AsyncBaseTransport, secret: str, row: Claimed, timeout: float
) -> tuple[int | None, str | None]:
    """POST the event of `row`, signed, within `timeout` seconds in all: (HTTP status or None, error or None)."""
    body = signing.envelope(row.event_id, row.event_type, row.created_at, row.data_json)
    headers = signing.headers(secret, body, row.event_id, row.attempts + 1, utcnow())
    try:
        async with asyncio.timeout(timeout):
            request = httpx.Request("POST", row.url, content=body, headers=headers)
            response = await transport.handle_async_request(request)
            await response.aread()
    except TimeoutError:
        return None, f"no answer within {timeout:g} s"
    except Exception as failure:  # httpx's errors, an invalid URL and the like: an outcome, never a dead sender
        return None, f"{type(failure).__name__}: {failure}".rstrip(": ")
    code = response.status_code
    if 200 <= code < 300:
        return code, None
    snippet = " ".join(response.text[:ERROR_SNIPPET].split())
    error = f"HTTP {code}" + (f": {snippet}" if snippet else "")
    if 300 <= code < 400:
        error += " (redirects are not followed: set WEBHOOK_URL to the final address)"
    return code, error


def http_transport() -> httpx.AsyncBaseTransport:
    """httpx's transport for the webhook POSTs: the lean keep-alive one, or, when the environment names a proxy
    (HTTP_PROXY, HTTPS_PROXY: a static egress IP for receivers that allow-list), httpx's own, which honours it."""
    proxies = {scheme: url for scheme, url in urllib.request.getproxies().items() if scheme in ("http", "https")}
    if proxies:
        log.info("webhooks go through the proxy named in the environment")
        return httpx.AsyncHTTPTransport(proxy=proxies.get("https") or proxies["http"], retries=0)
    return KeepAliveTransport()
