"""Follow a livesim stream, printing each event, and never miss one across faults
(``livesim tail URL``; its options are in ``simulator/cli/tail.py``).

What an alerting client needs: it loads the snapshot once, then follows the stream from the
snapshot's cursor. When the connection fails (server restart, network fault, dropped for being
slow, a silent peer) it reconnects with backoff and resumes from the last event id it saw, so each
event arrives once, in order. A ``stream.reset`` means history changed (a seek back, a loop, or a
cursor the server can no longer serve): it reloads the snapshot and goes on from its cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import orjson
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import WebSocketException
from yarl import URL

from simulator.core.model import shown

from . import reads
from .sse import MAX_EVENT_BYTES, Event, SSEReader

Envelope = dict[str, Any]
FAULTS = (aiohttp.ClientError, OSError, TimeoutError, WebSocketException, ValueError)
"""What a server (or the network) can make happen: reported, then retried with backoff. Bad
answers (``reads.ReadError``, ``sse.EventTooLarge``, ``Malformed``) are ``ValueError``s."""
MAX_ID = 256
SNAPSHOT_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=10, sock_read=15)
STREAM_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10)
"""A stream has no total: ``idle_timeout`` (SSE) and pings (WebSocket) find a dead one."""
CONNECT_TIMEOUT = 10.0
CLOSE_TIMEOUT = 1.0
"""A peer that does not answer our close frame does not hold up the tool's exit."""
_POST_TEXT = ("headline", "body", "source", "author", "editor", "published_at")


class Malformed(ValueError):
    """A snapshot a client cannot use (not an object, no cursor, no post list)."""


def _usable_id(value: object) -> bool:
    """A string a client can send back (``Last-Event-ID``, ``?since=``) as it came."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_ID
        and value.isascii()
        and value.isprintable()
    )


def _id_problem(value: object, where: str) -> str | None:
    if not isinstance(value, str):
        return f"no string '{where}'"
    if not _usable_id(value):
        return f"'{where}' is not 1 to {MAX_ID} printable ASCII characters"
    return None


def post_problem(post: object, where: str = "post") -> str | None:
    """What makes ``post`` unusable as a post record, or None."""
    if not isinstance(post, dict):
        return f"'{where}' is not an object"
    problem = _id_problem(post.get("id"), f"{where}.id")
    if problem:
        return problem
    for key in _POST_TEXT:
        if post.get(key) is not None and not isinstance(post[key], str):
            return f"'{where}.{key}' is not a string"
    return None


def envelope_problem(value: object) -> str | None:
    """What makes a decoded frame unusable as an event envelope (docs/protocol.md,
    "Envelope"), or None: what the tools read must have the type the protocol gives it."""
    if not isinstance(value, dict):
        return "not a JSON object"
    kind = value.get("type")
    if not isinstance(kind, str):
        return "no string 'type'"
    problem = _id_problem(value.get("id"), "id")
    if problem:
        return problem
    for key in ("stream", "archive_time", "due_at"):
        if value.get(key) is not None and not isinstance(value[key], str):
            return f"'{key}' is not a string"
    if "post" in value or kind.startswith("post."):
        problem = post_problem(value.get("post"))
        if problem:
            return problem
    if ("data" in value or kind.startswith("stream.")) and not isinstance(value.get("data"), dict):
        return "'data' is not an object"
    return None


class Follower:
    """Follows one stream; ``on_event`` sees every event envelope once, in order.

    Once even when the connection misbehaves: an event id seen among the last ``REMEMBERED``
    is dropped (counted in ``duplicates``, and in ``reused`` when its content differs: the
    server gave two events one id) and reported through ``on_fault``; a frame that is not an
    event envelope of the protocol's shape is skipped (counted in ``malformed``, reported)
    instead of costing a reconnect. Whatever the server sends, the follower holds a bounded
    amount: an SSE line or event, or a WebSocket message, up to ``max_event_bytes``; a snapshot
    up to ``max_snapshot_bytes`` after decompression; more is a fault, reported and retried.
    Redirects are followed only within the server's origin.
    ``params`` are added to the subscription URLs (e.g. ``{"faults": "duplicate:0.1"}``).
    """

    REMEMBERED = 4096

    def __init__(
        self,
        server: str,
        stream: str,
        on_event: Callable[[Envelope], None],
        *,
        transport: str = "sse",
        idle_timeout: float = 40.0,
        max_backoff: float = 10.0,
        on_fault: Callable[[str], None] | None = None,
        on_snapshot: Callable[[dict[str, Any]], None] | None = None,
        params: Sequence[tuple[str, str]] = (),
        max_event_bytes: int = MAX_EVENT_BYTES,
        max_snapshot_bytes: int = reads.MAX_BODY_BYTES,
    ):
        self.server = server.rstrip("/")
        self.stream = stream
        self.on_event = on_event
        self.transport = transport
        self.idle_timeout = idle_timeout
        self.max_backoff = max_backoff
        self.on_fault = on_fault or (lambda text: None)
        self.on_snapshot = on_snapshot or (lambda snapshot: None)
        self.max_event_bytes = max_event_bytes
        self.max_snapshot_bytes = max_snapshot_bytes
        self.cursor: str | None = None
        self.snapshot: dict[str, Any] | None = None
        self.reconnects = 0
        self.duplicates = 0
        self.reused = 0
        self.malformed = 0
        self.params = tuple(params)
        self._seen: dict[str, int] = {}
        """Event id → a hash of its frame, for the last ``REMEMBERED`` ids."""
        self._order: deque[str] = deque()

    async def run(self) -> None:
        """Follow until cancelled."""
        backoff = 0.25
        async with reads.session() as session:
            while True:
                try:
                    if self.cursor is None:
                        await self._load_snapshot(session)
                    async for envelope, frame in self._events(session):
                        backoff = 0.25
                        if envelope["type"] == "stream.reset":
                            self.on_event(envelope)
                            self.cursor = None
                            break
                        if self._repeated(envelope["id"], frame):
                            continue
                        self.cursor = envelope["id"]
                        self.on_event(envelope)
                    else:
                        self.on_fault("the server ended the stream")
                        await asyncio.sleep(backoff)
                except FAULTS as exc:
                    self.on_fault(f"{type(exc).__name__}: {exc}; retrying in {backoff:g}s")
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
                self.reconnects += 1

    def summary(self) -> list[str]:
        """What was skipped, one line each (none when nothing was)."""
        lines = []
        if self.duplicates:
            other = f" ({self.reused} with other content)" if self.reused else ""
            lines.append(f"{self.duplicates} events skipped: their id was already seen{other}")
        if self.malformed:
            lines.append(f"{self.malformed} malformed events skipped")
        return lines

    def _repeated(self, event_id: str, frame: str | bytes) -> bool:
        fingerprint = hash(frame)
        first = self._seen.get(event_id)
        if first is None:
            self._seen[event_id] = fingerprint
            self._order.append(event_id)
            if len(self._order) > self.REMEMBERED:
                del self._seen[self._order.popleft()]
            return False
        self.duplicates += 1
        if first != fingerprint:
            self.reused += 1
            self.on_fault(
                f"skipped event {event_id}: its id was already seen, with other content "
                f"({self.reused} so far)"
            )
        elif _power_of_ten(self.duplicates):  # a plain repeat (the duplicate fault): now and then
            self.on_fault(
                f"skipped event {event_id}: a repeat of an id already seen "
                f"({self.duplicates} so far)"
            )
        return True

    def _envelope(self, frame: str | bytes) -> Envelope | None:
        """The frame's envelope, or None (reported) when it has not the protocol's shape."""
        try:
            value = orjson.loads(frame)
        except orjson.JSONDecodeError:
            problem: str | None = "not JSON"
        else:
            problem = envelope_problem(value)
        if problem is None:
            return value  # type: ignore[no-any-return]
        self.malformed += 1
        self.on_fault(f"skipped a malformed event ({problem}): {shown(frame, 80)}")
        return None

    def _query(self, **extra: str) -> str:
        query = urlencode([*self.params, *extra.items()], safe=":,")
        return f"?{query}" if query else ""

    async def _load_snapshot(self, session: aiohttp.ClientSession) -> None:
        url = f"{self.server}/api/streams/{quote(self.stream)}/posts"
        async with reads.get(session, url, deadlines=SNAPSHOT_TIMEOUT) as response:
            if response.status != 200:
                raise ValueError(
                    f"{url}: HTTP {response.status}: {await reads.read_quote(response)}"
                )
            body = await reads.read_json(
                response, self.max_snapshot_bytes, "the snapshot", "--max-snapshot-bytes"
            )
        if not isinstance(body, dict):
            raise Malformed(f"{url}: the snapshot is not a JSON object")
        problem = _id_problem(body.get("cursor"), "cursor")
        if problem:
            raise Malformed(f"{url}: the snapshot: {problem}")
        posts = body.get("posts")
        if not isinstance(posts, list):
            raise Malformed(f"{url}: the snapshot's 'posts' is not an array")
        kept = [post for post in posts if post_problem(post) is None]
        if len(kept) < len(posts):
            self.malformed += len(posts) - len(kept)
            first = next(
                post_problem(post, f"posts[{i}]")
                for i, post in enumerate(posts)
                if post_problem(post)
            )
            self.on_fault(
                f"skipped {len(posts) - len(kept)} malformed posts of the snapshot (first: {first})"
            )
            body["posts"] = kept
        self.snapshot = body
        self.cursor = body["cursor"]
        self.on_snapshot(body)

    def _events(
        self, session: aiohttp.ClientSession
    ) -> AsyncIterator[tuple[Envelope, str | bytes]]:
        return self._sse(session) if self.transport == "sse" else self._ws()

    async def _sse(
        self, session: aiohttp.ClientSession
    ) -> AsyncIterator[tuple[Envelope, str | bytes]]:
        url = f"{self.server}/streams/{quote(self.stream)}/events{self._query()}"
        headers = {"Accept": "text/event-stream", "Last-Event-ID": self.cursor or ""}
        async with reads.get(session, url, headers=headers, deadlines=STREAM_TIMEOUT) as response:
            if response.status != 200:
                raise ValueError(f"HTTP {response.status}: {await reads.read_quote(response)}")
            reader = SSEReader(
                response,
                comments=True,
                max_event_bytes=self.max_event_bytes,
                chunks=reads.chunks(response),
            )
            try:
                while True:
                    async with asyncio.timeout(self.idle_timeout):
                        item = await anext(reader, None)
                    if item is None:
                        return
                    if isinstance(item, Event):  # comments (heartbeats) only reset the idle timer
                        envelope = self._envelope(item.data)
                        if envelope is not None:
                            yield envelope, item.data
            finally:
                await reader.aclose()

    async def _ws(self) -> AsyncIterator[tuple[Envelope, str | bytes]]:
        base = URL(self.server)
        url = base.with_scheme("ws").with_path(f"/streams/{quote(self.stream)}/ws")
        async with ws_connect(
            f"{url}{self._query(since=self.cursor or '')}",
            ping_interval=self.idle_timeout / 2,
            max_size=self.max_event_bytes,
            open_timeout=CONNECT_TIMEOUT,
            close_timeout=CLOSE_TIMEOUT,
            # An explicit host and port: websockets then follows no redirect to another origin.
            host=base.host,
            port=base.port,
        ) as ws:
            while True:  # silence is fine here: websockets' pings find a dead peer
                frame = await ws.recv()
                kind = _message_type(frame)
                if kind in ("pong", "resumed"):
                    continue
                if kind == "error":
                    raise ValueError(f"the server says: {_error_text(frame)}")
                envelope = self._envelope(frame)
                if envelope is not None:
                    yield envelope, frame


def _power_of_ten(n: int) -> bool:
    while n % 10 == 0:
        n //= 10
    return n == 1


def _message_type(frame: str | bytes) -> object:
    """``pong``, ``resumed`` and ``error`` are WebSocket messages, not events (no id)."""
    start = frame[:9]
    if start != '{"type":"' and start != b'{"type":"':
        return None
    with contextlib.suppress(orjson.JSONDecodeError, AttributeError):
        return orjson.loads(frame).get("type")
    return None


def _error_text(frame: str | bytes) -> str:
    with contextlib.suppress(orjson.JSONDecodeError, AttributeError):
        return shown(orjson.loads(frame).get("error"), 200)
    return shown(frame, 200)


ID_WIDTH = 15
"""Event ids are padded to this (an epoch of 9 characters, a dash, a serial of up to 5 digits),
so the columns stay put as the serial grows."""


def describe(envelope: Envelope) -> str:
    """One line for a terminal: id, type, archive time, and what happened."""
    post = envelope.get("post")
    if isinstance(post, dict):
        text = post.get("headline") or post.get("body") or _media_text(post.get("media"))
        what = str(text).split("\n", 1)[0][:90]
    else:
        data = envelope.get("data")
        data = data if isinstance(data, dict) else {}
        what = " ".join(f"{k}={data[k]}" for k in ("reason", "state", "speed") if k in data)
    when = str(envelope.get("archive_time") or "-")
    event_id = str(envelope.get("id"))
    return f"{event_id:<{ID_WIDTH}}  {str(envelope.get('type')):<14} {when:<20}  {what}"


def _media_text(media: object) -> str:
    """What an embed-only post shows: its media, e.g. ``[youtube] Clip title · [image]``."""
    if not isinstance(media, list):
        return ""
    parts = []
    for item in media:
        if isinstance(item, dict):
            title = item.get("title") or item.get("caption")
            kind = f"[{item.get('kind') or 'media'}]"
            parts.append(f"{kind} {title}" if title else kind)
    return " · ".join(parts)


async def run_tail(
    url: str | None,
    *,
    ws: bool,
    json: bool,
    count: int | None,
    max_event_bytes: int = MAX_EVENT_BYTES,
    max_snapshot_bytes: int = reads.MAX_BODY_BYTES,
) -> int:
    """``livesim tail URL``: the stream named by a URL, checked before following it."""
    from .target import find_stream

    async with reads.session() as session:
        target = await find_stream(url, session, "tail")
    done = asyncio.Event()
    seen = 0

    def show(envelope: Envelope) -> None:
        nonlocal seen
        if count and seen >= count:  # the rest of a burst delivered with the last one counted
            return
        print(orjson.dumps(envelope).decode() if json else describe(envelope), flush=True)
        seen += 1
        if count and seen >= count:
            done.set()

    follower = Follower(
        target.base,
        target.id,
        show,
        transport="ws" if ws else "sse",
        on_fault=print_fault,
        params=target.query,
        max_event_bytes=max_event_bytes,
        max_snapshot_bytes=max_snapshot_bytes,
    )
    await follow_until(follower, done)
    return 0


def print_fault(text: str) -> None:
    print(f"# {text}", file=sys.stderr, flush=True)


async def follow_until(
    follower: Follower, done: asyncio.Event, duration: float | None = None
) -> None:
    """Run ``follower`` until ``done`` is set or ``duration`` seconds passed. A follower that
    stopped by itself (a callback raised) is a ``ClientError``: a tool never waits on a dead
    follower. What it skipped is reported through its ``on_fault`` at the end."""
    from .target import ClientError

    task = asyncio.create_task(follower.run())
    waiter = asyncio.create_task(done.wait())
    try:
        await asyncio.wait({task, waiter}, timeout=duration, return_when=asyncio.FIRST_COMPLETED)
    finally:
        task.cancel()
        waiter.cancel()
        await asyncio.gather(task, waiter, return_exceptions=True)
        for line in follower.summary():
            follower.on_fault(line)
    error = None if task.cancelled() else task.exception()
    if error is not None:
        raise ClientError(
            f"following {follower.stream} stopped: {type(error).__name__}: {shown(str(error), 200)}"
        )
