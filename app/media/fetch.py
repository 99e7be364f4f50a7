"""Fetching a file a send names by `url`: http(s) only, never to a loopback, private, link-local or otherwise
non-public address (unless MEDIA_FETCH_ALLOW_PRIVATE), at most MAX_REDIRECTS redirects, within one timeout, at most
MEDIA_MAX_BYTES, and of a type (read from the bytes) the kind of message can carry; then stored as a new file.

The address check sits in the resolver aiohttp connects with, so it judges the very addresses connected to: a name
that resolves to a private address, a redirect to one, or a DNS answer that changes between a check and the connection
(rebinding) cannot slip past it. Addresses written in the URL itself (aiohttp resolves none of them) are checked before
each request. Proxies from the environment are not used: a proxy would resolve the name out of our sight."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import tempfile
from collections.abc import Collection
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from urllib.parse import unquote

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from app.db.database import Database
from app.media.intake import MediaRefused, StoredMedia, clean_file_name, keep
from app.media.sniff import KINDS, SNIFF_BYTES, content_type, fits
from app.media.storage import MediaStorage

FETCH_SECONDS = 30.0  # the whole fetch, redirects and body included
MAX_REDIRECTS = 3
REDIRECTS = frozenset({301, 302, 303, 307, 308})
SCHEMES = ("http", "https")
CHUNK = 64 * 1024

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598): not private to Python, not public
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # IPv6 that a NAT64 gateway turns into the IPv4 address it ends with


def refusal(address: IPAddress) -> str | None:
    """Why a connection to `address` is refused, or None if it is a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is None and address.teredo is not None:
            embedded = address.teredo[1]
        if embedded is not None:
            inner = refusal(embedded)
            return f"{address} carries {inner}" if inner else None
    for is_it, what in (
        (address.is_loopback, "a loopback"),
        (address.is_link_local, "a link-local"),
        (address.is_multicast, "a multicast"),
        (address.is_unspecified, "an unspecified"),
        (address in SHARED, "a shared (carrier-grade NAT)"),
        (address.is_private, "a private"),
        (address.is_reserved, "a reserved"),
        (not address.is_global, "a non-public"),
    ):
        if is_it:
            return f"{address} is {what} address"
    return None


class AddressRefused(Exception):
    """Raised inside aiohttp's connection by the resolver; not an OSError, so aiohttp passes it through unwrapped."""


class GuardedResolver(AbstractResolver):
    """Resolves with `inner` and refuses the name if any of its addresses is not public."""

    def __init__(self, inner: AbstractResolver, treat_as_public: Collection[IPAddress] = ()) -> None:
        self.inner = inner
        self.treat_as_public = frozenset(treat_as_public)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        for result in results:
            reason = checked(ipaddress.ip_address(result["host"]), self.treat_as_public)
            if reason:
                raise AddressRefused(f"{host} resolves to {reason}")
        return results

    async def close(self) -> None:
        await self.inner.close()


def checked(address: IPAddress, treat_as_public: frozenset[IPAddress]) -> str | None:
    return None if address in treat_as_public else refusal(address)


def literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def check_url(url: URL, allow_private: bool, treat_as_public: frozenset[IPAddress]) -> None:
    """Refuse (422) a URL that is not http(s) with a host, or that names a non-public address itself."""
    if url.scheme not in SCHEMES or not url.host:
        raise MediaRefused(422, f"the url must be an http:// or https:// address with a host, not {str(url)[:200]!r}")
    address = literal_address(url.host)
    if address is not None and not allow_private:
        reason = checked(address, treat_as_public)
        if reason:
            raise MediaRefused(422, private_refusal(reason))


def private_refusal(reason: str) -> str:
    return f"the url's host is refused: {reason} (set MEDIA_FETCH_ALLOW_PRIVATE=true to allow such addresses)"


def file_name_of(response: aiohttp.ClientResponse) -> str | None:
    """The name the server gives the file (Content-Disposition), else the last segment of the URL's path."""
    disposition = response.content_disposition
    name = (
        disposition.filename if disposition and disposition.filename else PurePosixPath(unquote(response.url.path)).name
    )
    return clean_file_name(name)


async def read_bounded(response: aiohttp.ClientResponse, max_bytes: int, into: BinaryIO) -> int:
    """Write the body into `into` a piece at a time (never whole in memory), refused (422) as soon as it passes
    `max_bytes`: by its Content-Length before any of it is read, else by counting as it arrives. Its size."""
    too_large = f"the file at the url is larger than MEDIA_MAX_BYTES ({max_bytes} bytes)"
    if response.content_length is not None and response.content_length > max_bytes:
        raise MediaRefused(422, too_large)
    size = 0
    async for chunk in response.content.iter_chunked(CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise MediaRefused(422, too_large)
        into.write(chunk)
    return size


async def download(
    url: str, into: BinaryIO, *, max_bytes: int, allow_private: bool = False, timeout: float = FETCH_SECONDS,
    resolver: AbstractResolver | None = None, treat_as_public: Collection[IPAddress] = (),
) -> tuple[int, str | None, str | None]:  # fmt: skip
    """Write the file at `url` into `into`: its size, the server's Content-Type and the file's name, following at most
    MAX_REDIRECTS redirects, each checked; MediaRefused otherwise. `resolver` and `treat_as_public` are for tests (a
    name mapped to a loopback address that counts as public), never the app's configuration."""
    public = frozenset(treat_as_public)
    inner = resolver or aiohttp.ThreadedResolver()
    guarded = inner if allow_private else GuardedResolver(inner, public)
    connector = aiohttp.TCPConnector(resolver=guarded, use_dns_cache=False, limit=4)
    session = aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=None, sock_read=None),  # one timeout, below
        trust_env=False,
        headers={"Accept-Encoding": "identity", "User-Agent": "whatsapp-gateway media fetch"},
    )
    try:
        async with session, asyncio.timeout(timeout):
            return await _follow(session, URL(url), into, max_bytes, allow_private, public)
    except TimeoutError:
        raise MediaRefused(504, f"the url did not answer with the whole file within {timeout:g} s") from None
    except AddressRefused as refused:
        raise MediaRefused(422, private_refusal(str(refused))) from None
    except aiohttp.InvalidURL as error:
        raise MediaRefused(422, f"the url is invalid: {error}") from None
    except aiohttp.ClientConnectorDNSError as error:
        raise MediaRefused(422, f"the url's host cannot be resolved: {error.host}") from None
    except (aiohttp.ClientError, OSError) as error:
        raise MediaRefused(502, f"the url could not be fetched: {type(error).__name__}: {error}".rstrip(": ")) from None
    except ValueError as error:  # yarl's parse errors of a malformed URL
        raise MediaRefused(422, f"the url is invalid: {error}") from None


async def _follow(
    session: aiohttp.ClientSession, url: URL, into: BinaryIO, max_bytes: int, allow_private: bool,
    public: frozenset[IPAddress],
) -> tuple[int, str | None, str | None]:  # fmt: skip
    for _ in range(MAX_REDIRECTS + 1):
        check_url(url, allow_private, public)
        async with session.get(url, allow_redirects=False) as response:
            if response.status in REDIRECTS:
                location = response.headers.get("Location")
                if not location:
                    raise MediaRefused(502, f"the url answered HTTP {response.status} without a Location")
                url = response.url.join(URL(location))
                continue
            if response.status != 200:
                raise MediaRefused(502, f"the url answered HTTP {response.status}, not 200 with the file")
            size = await read_bounded(response, max_bytes, into)
            return size, response.headers.get("Content-Type"), file_name_of(response)
    raise MediaRefused(422, f"the url redirects more than {MAX_REDIRECTS} times")


async def fetch_to_store(
    database: Database, storage: MediaStorage, url: str, kind: str, *, max_bytes: int, allow_private: bool = False,
    timeout: float = FETCH_SECONDS, resolver: AbstractResolver | None = None,
    treat_as_public: Collection[IPAddress] = (),
) -> StoredMedia:  # fmt: skip
    """Fetch the file at `url` for a `kind` message (image, video, audio, document, sticker), check that its bytes
    are of a type that kind carries, and store it (origin 'fetched'); MediaRefused (with the API's status) if not."""
    if kind not in KINDS:
        raise MediaRefused(422, f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    # Into a file of its own, a piece at a time, which the store streams on (into the row, or the bucket).
    handle, path = tempfile.mkstemp(prefix="fetched-")
    try:
        with os.fdopen(handle, "w+b") as file:
            size, claimed, file_name = await download(
                url, file, max_bytes=max_bytes, allow_private=allow_private, timeout=timeout, resolver=resolver,
                treat_as_public=treat_as_public,
            )  # fmt: skip
            file.seek(0)
            head = file.read(SNIFF_BYTES)  # the type is read from the head alone
        if size == 0:
            raise MediaRefused(422, "the url answered an empty file")
        mimetype = content_type(head, claimed)
        wrong = fits(kind, mimetype)
        if wrong:
            raise MediaRefused(422, f"the file at the url cannot be sent: {wrong}")
        return await keep(database, storage, Path(path), origin="fetched", mimetype=mimetype, file_name=file_name)
    finally:
        os.unlink(path)
