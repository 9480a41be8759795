"""What a client points at: a shared stream or a feed's private replays, from one URL.

``http://127.0.0.1:8080/streams/ID`` (also ``…/ID/events``, ``…/ID/ws``, ``/api/streams/ID``) or
``http://127.0.0.1:8080/feeds/ID?speed=600`` (query options are the private replay's). A URL with
no path means the server's only stream. Errors are ``ClientError`` with one line to print.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

if TYPE_CHECKING:  # aiohttp is imported where it is used: `livesim import` need not load it
    import aiohttp

ENV_URL = "LIVESIM_URL"
_PATH = re.compile(
    r"^/(?:api/)?(streams|feeds)/([A-Za-z0-9][A-Za-z0-9_.-]{0,63})(?:/(events|ws))?/?$"
)


class ClientError(Exception):
    """A problem the user can fix, as one line (``livesim: …`` is added by the CLI)."""


def read_file(path: str, limit: int, error: type[Exception] = ClientError) -> bytes:
    """The bytes of a file the user named; unreadable or over ``limit`` bytes is ``error``."""
    try:
        with open(path, "rb") as file:
            data = file.read(limit + 1)
    except OSError as exc:
        raise error(f"{path}: {exc.strerror or 'cannot read'}") from None
    if len(data) > limit:
        raise error(f"{path}: over {limit} bytes")
    return data


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str
    port: int
    kind: str
    """``streams`` (one shared replay) or ``feeds`` (a private replay per connection)."""
    id: str
    query: tuple[tuple[str, str], ...] = ()

    @property
    def base(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def private(self) -> bool:
        return self.kind == "feeds"

    def path(self, transport: str, **extra: str) -> str:
        """``/streams/ID/events?…`` for ``sse``, ``…/ws?…`` for ``ws``."""
        end = "events" if transport == "sse" else "ws"
        query = urlencode([*self.query, *extra.items()], safe=":,")
        return f"/{self.kind}/{quote(self.id)}/{end}" + (f"?{query}" if query else "")

    def with_faults(self, faults: str | None) -> Target:
        if not faults:
            return self
        query = tuple((k, v) for k, v in self.query if k != "faults") + (("faults", faults),)
        return Target(self.scheme, self.host, self.port, self.kind, self.id, query)

    def __str__(self) -> str:
        query = urlencode(self.query, safe=":,")
        return f"{self.base}/{self.kind}/{self.id}" + (f"?{query}" if query else "")


def resolve_url(url: str | None) -> str:
    """The URL given, else ``LIVESIM_URL``, else an error naming both."""
    chosen = url or os.environ.get(ENV_URL, "").strip()
    if not chosen:
        raise ClientError(
            f"no URL: give one (e.g. http://127.0.0.1:8080/streams/ID) or set {ENV_URL}"
        )
    return chosen


def parse_target(url: str) -> Target | str:
    """A ``Target``, or the base URL (``http://host:port``) when the URL names no stream."""
    shown = url if len(url) <= 120 else url[:117] + "..."
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ClientError(f"{shown}: {exc}") from None
    if parts.scheme != "http":
        raise ClientError(f"{shown}: expected an http:// URL")
    if not parts.hostname:
        raise ClientError(f"{shown}: no host")
    port = port or 80
    host = parts.hostname
    if parts.path in ("", "/"):
        return f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    found = _PATH.match(parts.path)
    if not found:
        raise ClientError(f"{shown}: expected a path /streams/ID or /feeds/ID")
    query = tuple(parse_qsl(parts.query, keep_blank_values=True))
    return Target("http", host, port, found[1], found[2], query)


async def find_target(url: str | None, session: aiohttp.ClientSession) -> Target:
    """``parse_target``, asking the server for its stream when the URL names none."""
    parsed = parse_target(resolve_url(url))
    if isinstance(parsed, Target):
        return parsed
    streams = await get_json(session, f"{parsed}/api/streams")
    listing = streams if isinstance(streams, list) else []
    ids = [s["id"] for s in listing if isinstance(s, dict) and "id" in s]
    if len(ids) != 1:
        listed = ", ".join(ids[:10]) or "none"
        raise ClientError(f"{parsed}: name a stream, /streams/ID (streams here: {listed})")
    target = parse_target(f"{parsed}/streams/{ids[0]}")
    assert isinstance(target, Target)
    return target


async def find_stream(url: str | None, session: aiohttp.ClientSession, tool: str) -> Target:
    """``find_target`` for a tool that follows a shared stream: a feed is refused, and the
    stream is asked for once, so a wrong id fails before anything is followed."""
    target = await find_target(url, session)
    if target.private:
        raise ClientError(f"{target}: {tool} follows a shared stream (/streams/ID), not a feed")
    await get_json(session, f"{target.base}/api/streams/{quote(target.id)}")
    return target


async def get_json(session: aiohttp.ClientSession, url: str, limit: int | None = None) -> object:
    """GET → JSON; a refused connection, a non-200 answer, a non-JSON body, a body over
    ``limit`` bytes or a redirect to another origin is a ClientError with the server's own
    ``error`` line when it sent one. Best with a ``reads.session()`` (bounded decompression);
    ``limit`` defaults to ``reads.MAX_BODY_BYTES``."""
    import aiohttp

    from .reads import MAX_BODY_BYTES, ReadError, get, read_json

    try:
        async with get(session, url, deadlines=aiohttp.ClientTimeout(total=15)) as response:
            try:
                body = await read_json(response, limit or MAX_BODY_BYTES)
            except ReadError:
                if response.status == 200:
                    raise
                body = None
            if response.status != 200:
                error = body.get("error") if isinstance(body, dict) else None
                why = str(error)[:300] if error else f"HTTP {response.status}"
                raise ClientError(f"{url}: {why}")
            return body
    except aiohttp.ClientConnectorError as exc:
        error = exc.os_error
        number = error.errno if isinstance(error.errno, int) else 0
        why = os.strerror(number) if number > 0 else (error.strerror or str(error))
        raise ClientError(f"cannot connect to {exc.host}:{exc.port}: {why}") from None
    except ReadError as exc:
        raise ClientError(str(exc)) from None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ClientError(f"{url}: {type(exc).__name__}: {exc}".rstrip(": ")) from None
