"""Follow a livesim stream, printing each event, and never miss one across faults.

    python -m clients.tail aljazeera-iraq-2014-06                 # SSE from http://127.0.0.1:8080
    python -m clients.tail aljazeera-iraq-2014-06 --ws --count 20
    python -m clients.tail s1 --server http://127.0.0.1:9000 --json

What an alerting client needs: it loads the snapshot once, then follows the stream from the
snapshot's cursor. When the connection fails (server restart, network fault, dropped for being
slow, a silent peer) it reconnects with backoff and resumes from the last event id it saw, so each
event arrives once, in order. A ``stream.reset`` means history changed (a seek back, a loop, or a
cursor the server can no longer serve): it reloads the snapshot and goes on from its cursor.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import websockets
from websockets.asyncio.client import connect as ws_connect

from .sse import Event, SSEReader

Envelope = dict[str, Any]
FAULTS = (aiohttp.ClientError, OSError, TimeoutError, websockets.ConnectionClosed, ValueError)


class Follower:
    """Follows one stream; ``on_event`` sees every event envelope once, in order.

    Once even when the connection misbehaves: an event id seen among the last ``REMEMBERED``
    is dropped (counted in ``duplicates``), and a frame that is not a JSON envelope is skipped
    (counted in ``malformed``, reported through ``on_fault``) instead of costing a reconnect.
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
    ):
        self.server = server.rstrip("/")
        self.stream = stream
        self.on_event = on_event
        self.transport = transport
        self.idle_timeout = idle_timeout
        self.max_backoff = max_backoff
        self.on_fault = on_fault or (lambda text: None)
        self.on_snapshot = on_snapshot or (lambda snapshot: None)
        self.cursor: str | None = None
        self.snapshot: dict[str, Any] | None = None
        self.reconnects = 0
        self.duplicates = 0
        self.malformed = 0
        self.params = tuple(params)
        self._seen: set[str] = set()
        self._order: deque[str] = deque()

    async def run(self) -> None:
        """Follow until cancelled."""
        backoff = 0.25
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    if self.cursor is None:
                        await self._load_snapshot(session)
                    async for envelope in self._events(session):
                        backoff = 0.25
                        if envelope["type"] == "stream.reset":
                            self.on_event(envelope)
                            self.cursor = None
                            break
                        if self._repeated(envelope["id"]):
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

    def _repeated(self, event_id: str) -> bool:
        if event_id in self._seen:
            self.duplicates += 1
            return True
        self._seen.add(event_id)
        self._order.append(event_id)
        if len(self._order) > self.REMEMBERED:
            self._seen.discard(self._order.popleft())
        return False

    def _parse(self, data: str | bytes) -> Envelope | None:
        try:
            value = json.loads(data)
        except ValueError:
            value = None
        if not isinstance(value, dict) or not isinstance(value.get("type"), str):
            self.malformed += 1
            self.on_fault(f"skipped a frame that is not an event: {str(data)[:60]!r}")
            return None
        return value

    def _query(self, **extra: str) -> str:
        query = urlencode([*self.params, *extra.items()], safe=":,")
        return f"?{query}" if query else ""

    async def _load_snapshot(self, session: aiohttp.ClientSession) -> None:
        url = f"{self.server}/api/streams/{quote(self.stream)}/posts"
        async with session.get(url) as response:
            body = await response.json()
            if response.status != 200:
                raise ValueError(body.get("error", response.reason))
        self.snapshot = body
        self.cursor = body["cursor"]
        self.on_snapshot(body)

    def _events(self, session: aiohttp.ClientSession) -> AsyncIterator[Envelope]:
        return self._sse(session) if self.transport == "sse" else self._ws()

    async def _sse(self, session: aiohttp.ClientSession) -> AsyncIterator[Envelope]:
        url = f"{self.server}/streams/{quote(self.stream)}/events{self._query()}"
        headers = {"Accept": "text/event-stream", "Last-Event-ID": self.cursor or ""}
        async with session.get(url, headers=headers, timeout=_no_total_timeout()) as response:
            if response.status != 200:
                raise ValueError(f"HTTP {response.status}: {await response.text()}")
            reader = SSEReader(response, comments=True)
            try:
                while True:
                    async with asyncio.timeout(self.idle_timeout):
                        item = await anext(reader, None)
                    if item is None:
                        return
                    if isinstance(item, Event):  # comments (heartbeats) only reset the idle timer
                        envelope = self._parse(item.data)
                        if envelope is not None:
                            yield envelope
            finally:
                await reader.aclose()

    async def _ws(self) -> AsyncIterator[Envelope]:
        base = self.server.replace("http", "ws", 1)
        url = f"{base}/streams/{quote(self.stream)}/ws{self._query(since=self.cursor or '')}"
        async with ws_connect(url, ping_interval=self.idle_timeout / 2) as ws:
            while True:  # silence is fine here: websockets' pings find a dead peer
                message = self._parse(await ws.recv())
                if message is None:
                    continue
                if message.get("type") == "error":
                    raise ValueError(message["error"])
                if message.get("type") not in ("pong", "resumed"):
                    yield message


def _no_total_timeout() -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, sock_connect=10)


def describe(envelope: Envelope) -> str:
    """One line for a terminal: id, type, archive time, and what happened."""
    post = envelope.get("post")
    if post:
        text = post.get("headline") or post.get("body") or ""
        what = text.split("\n", 1)[0][:90]
    else:
        data = envelope.get("data") or {}
        what = " ".join(f"{k}={data[k]}" for k in ("reason", "state", "speed") if k in data)
    when = envelope.get("archive_time") or "-"
    return f"{envelope['id']}  {envelope['type']:<14} {when:<20}  {what}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m clients.tail", description=__doc__.split("\n")[0]
    )
    parser.add_argument("stream", help="stream id, e.g. aljazeera-iraq-2014-06")
    parser.add_argument("--server", default="http://127.0.0.1:8080", help="livesim base URL")
    parser.add_argument("--ws", action="store_true", help="use WebSocket instead of SSE")
    parser.add_argument("--json", action="store_true", help="print each envelope as JSON")
    parser.add_argument("--count", type=int, help="stop after this many events")
    args = parser.parse_args(argv)
    return asyncio.run(_tail(args))


async def run_tail(url: str | None, *, ws: bool, json: bool, count: int | None) -> int:
    """``livesim tail URL``: the stream named by a URL, checked before following it."""
    import aiohttp

    from .target import ClientError, find_target, get_json

    async with aiohttp.ClientSession() as session:
        target = await find_target(url, session)
        if target.private:
            raise ClientError(f"{target}: tail follows a shared stream (/streams/ID), not a feed")
        await get_json(session, f"{target.base}/api/streams/{quote(target.id)}")
    args = argparse.Namespace(
        server=target.base, stream=target.id, ws=ws, json=json, count=count, params=target.query
    )
    return await _tail(args)


async def _tail(args: argparse.Namespace) -> int:
    done = asyncio.Event()
    seen = 0

    def show(envelope: Envelope) -> None:
        nonlocal seen
        print(json.dumps(envelope) if args.json else describe(envelope), flush=True)
        seen += 1
        if args.count and seen >= args.count:
            done.set()

    follower = Follower(
        args.server,
        args.stream,
        show,
        transport="ws" if args.ws else "sse",
        on_fault=lambda text: print(f"# {text}", file=sys.stderr, flush=True),
        params=getattr(args, "params", ()),
    )
    task = asyncio.create_task(follower.run())
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        await done.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return 0


if __name__ == "__main__":
    sys.exit(main())
