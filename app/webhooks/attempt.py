"""One delivery attempt on the wire: the signed POST of an event over aiohttp's client, and what came of it as
(status, error); `http_session` makes the one client session the dispatcher keeps for all its POSTs."""

from __future__ import annotations

import asyncio
import ssl
import urllib.request

import aiohttp

from app.times import utcnow
from app.webhooks import signing
from app.webhooks.deliveries import Claimed

ERROR_SNIPPET = 200  # characters of a failed answer's body kept with the error
MAX_BODY = 64 * 1024  # an answer is read up to this much; a longer one is cut off and its connection closed
KEEP_ALIVE = 4.0  # reuse an idle connection only this long: many servers drop idle ones after 5 s (Node's default)


def http_session(ssl_context: ssl.SSLContext | None = None) -> aiohttp.ClientSession:
    """The client for the webhook POSTs. Keep-alive per origin; proxies from the environment (HTTP_PROXY,
    HTTPS_PROXY, NO_PROXY: a static egress IP for receivers that allow-list). No connection limit of its own (the
    dispatcher bounds requests in flight per endpoint), no cookie jar (receivers' cookies must not follow other
    events), no Accept headers (the answer is only read for an error's text), no timeout of its own (`post` has one
    for the whole attempt). Call it inside the event loop that will use it."""
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEP_ALIVE, ssl=ssl_context or True)
    # aiohttp's trust_env looks up the proxy and ~/.netrc in a thread for every request: two thread hops that cost
    # more than the rest of the request (docs/BENCHMARKS.md). So it is on only when the environment names a proxy.
    proxied = any(scheme in ("http", "https") for scheme in urllib.request.getproxies())
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=("Accept", "Accept-Encoding"),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=None, sock_read=None),
        trust_env=proxied,
    )


async def post(
    session: aiohttp.ClientSession, secret: str, row: Claimed, timeout: float
) -> tuple[int | None, str | None]:
    """POST the event of `row`, signed, within `timeout` seconds in all: (HTTP status or None, error or None)."""
    body = signing.envelope(row.event_id, row.event_type, row.created_at, row.data_json)
    headers = signing.headers(secret, body, row.event_id, row.attempts + 1, utcnow())
    try:
        async with asyncio.timeout(timeout):
            try:
                code, content = await _exchange(session, row.url, body, headers)
            except aiohttp.ClientConnectorError:
                raise  # no connection at all: nothing to try again now
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
                # The connection died before an answer began: most often an idle keep-alive connection the server
                # dropped just as we reused it. Once more, on a new one (the receiver deduplicates by event id).
                code, content = await _exchange(session, row.url, body, headers)
    except TimeoutError:
        return None, f"no answer within {timeout:g} s"
    except Exception as failure:  # aiohttp's errors, an invalid URL and the like: an outcome, never a dead sender
        return None, f"{type(failure).__name__}: {failure}".rstrip(": ")
    if 200 <= code < 300:
        return code, None
    snippet = " ".join(content[: ERROR_SNIPPET * 4].decode("utf-8", "replace")[:ERROR_SNIPPET].split())
    error = f"HTTP {code}" + (f": {snippet}" if snippet else "")
    if 300 <= code < 400:
        error += " (redirects are not followed: set WEBHOOK_URL to the final address)"
    return code, error


async def _exchange(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> tuple[int, bytes]:
    """The answer's status and body (up to MAX_BODY). The body is read to its end when it fits, so that the
    connection goes back to the pool for the next request."""
    async with session.post(url, data=body, headers=headers, allow_redirects=False) as response:
        content = await response.content.read(MAX_BODY)
        while len(content) < MAX_BODY and not response.content.at_eof():
            more = await response.content.read(MAX_BODY - len(content))
            if not more:
                break
            content += more
        return response.status, content
