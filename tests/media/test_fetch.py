"""Fetching a send's `url` against real local HTTP servers on 127.0.0.1 and 127.0.0.2: private addresses (written in
the URL, resolved from a name, or reached by a redirect) are refused unless allowed, and so are too large files (with
and without Content-Length), slow servers, wrong types, error answers and other schemes. Names are resolved by a
fixed table in the test, never by real DNS; 127.0.0.2 stands in for a public address where a test says so."""

from __future__ import annotations

import asyncio
import io
import ipaddress
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from app.db.database import Database
from app.media import store as media_store
from app.media.fetch import MAX_REDIRECTS, download, fetch_to_store, refusal
from app.media.intake import MediaRefused, StoredMedia
from app.media.storage import POSTGRES
from app.whatsapp import samples

PUBLIC = ipaddress.ip_address("127.0.0.2")  # a loopback address the tests count as public
LIMIT = 10_000


class TableResolver(AbstractResolver):
    """Names resolved from a fixed table: the test's DNS."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host not in self.table:
            raise OSError(f"{host} is not in the test's table")
        return [
            ResolveResult(hostname=host, host=address, port=port, family=socket.AF_INET, proto=0, flags=0)
            for address in self.table[host]
        ]

    async def close(self) -> None:
        pass


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def server(host: str, routes: Mapping[str, Handler]) -> AsyncIterator[str]:
    """A real aiohttp server on `host`, port chosen by the system; its base URL."""
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_get(path, handler)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def png(request: web.Request) -> web.StreamResponse:
    return web.Response(body=samples.png(), content_type="application/octet-stream")


async def chunked_large(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    for _ in range(20):  # 20 KB without a Content-Length
        await response.write(b"\xff\xd8\xff" + b"x" * 1021)
    await response.write_eof()
    return response


async def refuses(coroutine: Awaitable[object], status: int, *words: str) -> str:
    with pytest.raises(MediaRefused) as refused:
        await coroutine
    assert refused.value.status == status, str(refused.value)
    for word in words:
        assert word in str(refused.value)
    return str(refused.value)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",  # noqa: S104 - an address judged, not bound
        "224.0.0.1", "240.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1",
        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2002:a00:1::", "64:ff9b::a9fe:a9fe", "ff02::1",
    ],
)  # fmt: skip
def test_non_public_addresses_are_refused(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


async def test_private_urls_are_refused_unless_allowed(database: Database) -> None:
    resolver = TableResolver({"localhost": ["127.0.0.1"], "intranet.test": ["8.8.8.8", "10.0.0.5"]})
    async with server("127.0.0.1", {"/a.png": png}) as base:
        port = base.rsplit(":", 1)[1]
        for url in (
            f"{base}/a.png", f"http://localhost:{port}/a.png", f"http://[::1]:{port}/a.png", "http://10.0.0.7/a.png",
            "http://169.254.169.254/latest/meta-data/", "http://[::ffff:127.0.0.1]/a.png",
            "http://intranet.test/a.png",  # one of its addresses is private: the name is refused
        ):  # fmt: skip
            said = await refuses(
                fetch_to_store(database, POSTGRES, url, "image", max_bytes=LIMIT, resolver=resolver),
                422,
                "MEDIA_FETCH_ALLOW_PRIVATE",
            )
            assert "refused" in said, url

        stored = await fetch_to_store(
            database,
            POSTGRES,
            f"http://localhost:{port}/a.png",
            "image",
            max_bytes=LIMIT,
            allow_private=True,
            resolver=resolver,
        )
    assert (stored.mimetype, stored.size, stored.file_name) == ("image/png", len(samples.png()), "a.png")
    async with database.connection() as connection:
        found = await media_store.find(connection, stored.id)
        assert found is not None and (found.origin, found.chat, found.message_id) == ("fetched", None, None)
        assert await media_store.content(connection, stored.id) == samples.png()


async def test_a_redirect_to_a_private_address_is_refused(database: Database) -> None:
    async with server("127.0.0.1", {"/secret": png}) as private:

        async def to_private(request: web.Request) -> web.StreamResponse:
            raise web.HTTPFound(f"{private}/secret")

        async def to_private_name(request: web.Request) -> web.StreamResponse:
            raise web.HTTPFound("http://metadata.test/secret")

        async def to_public(request: web.Request) -> web.StreamResponse:
            raise web.HTTPFound("/a.png")

        routes = {"/to-private": to_private, "/to-name": to_private_name, "/to-public": to_public, "/a.png": png}
        async with server(str(PUBLIC), routes) as public:
            port = public.rsplit(":", 1)[1]
            resolver = TableResolver({"cdn.test": [str(PUBLIC)], "metadata.test": ["169.254.169.254"]})

            def fetch(path: str, into: io.BytesIO) -> Awaitable[tuple[int, str | None, str | None]]:
                url = f"http://cdn.test:{port}{path}"
                return download(url, into, max_bytes=LIMIT, resolver=resolver, treat_as_public={PUBLIC})

            await refuses(fetch("/to-private", io.BytesIO()), 422, "127.0.0.1 is a loopback")
            await refuses(fetch("/to-name", io.BytesIO()), 422, "metadata.test resolves to")
            into = io.BytesIO()
            size, _, name = await fetch("/to-public", into)
            assert into.getvalue() == samples.png() and size == len(samples.png()) and name == "a.png"


async def test_too_many_redirects_are_refused() -> None:
    async def loop(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"/loop?n={int(request.query.get('n', '0')) + 1}")

    async with server("127.0.0.1", {"/loop": loop}) as base:
        await refuses(
            download(f"{base}/loop", io.BytesIO(), max_bytes=LIMIT, allow_private=True),
            422,
            f"more than {MAX_REDIRECTS} times",
        )


async def test_too_large_files_are_refused_with_and_without_content_length(database: Database) -> None:
    async def declared(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"\xff\xd8\xff" + b"x" * (LIMIT + 1))

    async with server("127.0.0.1", {"/declared": declared, "/chunked": chunked_large}) as base:
        for path in ("/declared", "/chunked"):
            await refuses(
                fetch_to_store(database, POSTGRES, base + path, "document", max_bytes=LIMIT, allow_private=True),
                422, f"larger than MEDIA_MAX_BYTES ({LIMIT} bytes)",
            )  # fmt: skip


async def test_a_server_that_does_not_answer_in_time_is_a_504() -> None:
    never = asyncio.Event()

    async def stalls(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "100"})
        await response.prepare(request)
        await response.write(b"\xff\xd8\xff")
        await never.wait()  # the rest never comes
        return response

    async with server("127.0.0.1", {"/stalls": stalls}) as base:
        await refuses(
            download(f"{base}/stalls", io.BytesIO(), max_bytes=LIMIT, allow_private=True, timeout=0.5), 504, "0.5 s"
        )


async def test_the_type_read_from_the_bytes_must_fit_the_kind(database: Database) -> None:
    async def pdf_said_image(request: web.Request) -> web.StreamResponse:
        return web.Response(body=samples.pdf(), content_type="image/jpeg")  # the server's claim is not believed

    async def voice(request: web.Request) -> web.StreamResponse:
        return web.Response(body=samples.ogg(), content_type="application/octet-stream")

    routes = {"/pdf": pdf_said_image, "/a.png": png, "/voice": voice}
    async with server("127.0.0.1", routes) as base:

        def fetch(path: str, kind: str) -> Awaitable[StoredMedia]:
            return fetch_to_store(database, POSTGRES, base + path, kind, max_bytes=LIMIT * 10, allow_private=True)

        await refuses(fetch("/pdf", "image"), 422, "application/pdf", "image/jpeg")
        await refuses(fetch("/a.png", "sticker"), 422, "image/webp")
        await refuses(fetch("/a.png", "video"), 422, "video/mp4")
        await refuses(fetch("/a.png", "gif"), 422, "unknown kind")
        document = await fetch("/pdf", "document")
        audio = await fetch("/voice", "audio")
    assert (document.mimetype, audio.mimetype) == ("application/pdf", "audio/ogg")


async def test_error_answers_and_other_schemes_are_refused() -> None:
    async def missing(request: web.Request) -> web.StreamResponse:
        raise web.HTTPNotFound()

    async with server("127.0.0.1", {"/missing": missing}) as base:
        await refuses(download(f"{base}/missing", io.BytesIO(), max_bytes=LIMIT, allow_private=True), 502, "HTTP 404")
    for url in ("file:///etc/passwd", "ftp://example.com/a.png", "gopher://x/", "not a url", "http:///a.png"):
        await refuses(download(url, io.BytesIO(), max_bytes=LIMIT, allow_private=True), 422, "http:// or https://")
