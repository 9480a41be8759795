"""HTTP reads a client tool can afford whatever its server sends: capped bodies, decompression
in bounded steps, and redirects followed only within the origin.

A server a tool reads from may be wrong, or hostile: a gzip bomb (a megabyte that inflates to a
gigabyte), an endless body, a redirect to another host that would receive the tool's requests.
``session()`` turns aiohttp's automatic decompression off, because it inflates each chunk whole;
``chunks`` inflates in steps of at most ``STEP`` bytes, so a reader that stops at its cap never
held more than the cap and a step. ``get`` follows a redirect only to the same scheme, host and
port; any other is a ``ReadError``, as is a body over its cap or an encoding it cannot decode.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import aiohttp
import orjson
from yarl import URL

from simulator.core.model import shown

STEP = 64 * 1024
"""Bytes inflated at most per step."""
MAX_REDIRECTS = 5
MAX_BODY_BYTES = 64 * 1024 * 1024
"""Default cap on an API answer (a snapshot, the stream list) after decompression."""
ERROR_BODY_BYTES = 4096
"""What is read of an error answer, to quote it."""
REDIRECTS = frozenset({301, 302, 303, 307, 308})
_ENCODINGS = {"gzip", "x-gzip", "deflate"}


class ReadError(ValueError):
    """One line naming the URL: what the server sent that the tool will not take."""


def session() -> aiohttp.ClientSession:
    """A session that leaves decompression to ``chunks`` (which bounds it)."""
    return aiohttp.ClientSession(
        auto_decompress=False, headers={"Accept-Encoding": "gzip, deflate"}
    )


def _origin(url: URL) -> tuple[str, str | None, int | None]:
    return (url.scheme, url.host, url.port)


@asynccontextmanager
async def get(
    session: aiohttp.ClientSession,
    url: str,
    *,
    deadlines: aiohttp.ClientTimeout,
    headers: Mapping[str, str] | None = None,
) -> AsyncIterator[aiohttp.ClientResponse]:
    """``async with get(...) as response``: a GET whose redirects stay within ``url``'s
    origin (at most ``MAX_REDIRECTS``); a redirect elsewhere is a ``ReadError``. ``deadlines``
    apply to each request of the chain."""
    origin = _origin(URL(url))
    for _ in range(MAX_REDIRECTS + 1):
        response = await session.get(url, headers=headers, timeout=deadlines, allow_redirects=False)
        location = response.headers.get("Location")
        if response.status not in REDIRECTS or location is None:
            break
        response.release()
        try:
            moved = URL(url).join(URL(location))
        except ValueError:
            moved = None
        if moved is None or not moved.absolute:
            raise ReadError(f"{url}: HTTP {response.status} to {shown(location)}: not a URL")
        if _origin(moved) != origin:
            raise ReadError(
                f"{url}: HTTP {response.status} redirect to {shown(str(moved), 120)} not "
                "followed: another origin"
            )
        url = str(moved)
    else:
        raise ReadError(f"{url}: more than {MAX_REDIRECTS} redirects")
    try:
        yield response
    finally:
        response.release()


async def chunks(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """The body as it arrives, decoded as its ``Content-Encoding`` says (gzip or deflate), in
    pieces of at most ``STEP`` bytes when it was compressed."""
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("", "identity"):
        async for chunk in response.content.iter_any():
            yield chunk
        return
    if encoding not in _ENCODINGS:
        raise ReadError(f"{response.url}: Content-Encoding {shown(encoding)} is not supported")
    inflate = zlib.decompressobj(32 + zlib.MAX_WBITS)  # a gzip or a zlib header
    try:
        async for chunk in response.content.iter_any():
            data = chunk
            while not inflate.eof:
                piece = inflate.decompress(data, STEP)
                data = inflate.unconsumed_tail
                if piece:
                    yield piece
                if not data and len(piece) < STEP:
                    break  # this chunk is used up, and nothing is held back
    except zlib.error as exc:
        raise ReadError(f"{response.url}: a bad {encoding} body: {exc}") from None


async def read_body(
    response: aiohttp.ClientResponse, limit: int, what: str = "the answer", flag: str = ""
) -> bytes:
    """The whole (decoded) body, or a ``ReadError`` once it goes over ``limit`` bytes."""
    body = bytearray()
    async for piece in chunks(response):
        if len(body) + len(piece) > limit:
            hint = f" ({flag})" if flag else ""
            raise ReadError(f"{response.url}: {what} is over {limit} bytes{hint}")
        body += piece
    return bytes(body)


async def read_json(
    response: aiohttp.ClientResponse, limit: int, what: str = "the answer", flag: str = ""
) -> object:
    """``read_body``, parsed (orjson: an integer beyond 64 bits becomes a float)."""
    body = await read_body(response, limit, what, flag)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ReadError(f"{response.url}: {what} is not JSON: {exc}") from None


async def read_quote(response: aiohttp.ClientResponse) -> str:
    """The start of an error answer, to quote in one line."""
    text = bytearray()
    try:
        async for piece in chunks(response):
            text += piece[: ERROR_BODY_BYTES - len(text)]
            if len(text) >= ERROR_BODY_BYTES:
                break
    except ReadError:
        pass
    line = " ".join(text.decode("utf-8", "replace").split())
    return line if len(line) <= 200 else line[:197] + "..."
