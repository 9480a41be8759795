"""An SSE source that survives its server: reconnects with ``Last-Event-ID`` and backs off.

A connection that ends after delivering new events (the cursor moved) is resumed at once (a
server that drops connections on purpose, as livesim's ``disconnect_after`` fault does, costs no
time); one that fails to connect, answers 5xx, or ends with nothing new (a server that replays
the same events on every connection) waits ``BACKOFF`` doubling up to ``MAX_BACKOFF``, with
jitter.
A 4xx, or an answer that is not an event stream, is the user's to fix: ``ClientError``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp

from clients import reads
from clients.sse import Event, EventTooLarge, SSEReader
from clients.target import ClientError
from simulator.core.model import shown

BACKOFF = 0.25
MAX_BACKOFF = 30.0
CONNECT_TIMEOUT = 10.0
IDLE_TIMEOUT = 120.0
"""No byte for this long (livesim pings every 15 s) and the connection is taken for dead."""


@dataclass(frozen=True, slots=True)
class Seen:
    id: str
    type: str
    data: str
    at: float
    """Wall-clock time it arrived (``time.time()``)."""


async def back_off(failures: int) -> int:
    """``failures`` connections in a row that brought nothing new: none, no wait; else wait
    ``BACKOFF`` doubling with each up to ``MAX_BACKOFF``, with jitter. Returns ``failures``."""
    if failures:
        pause = min(MAX_BACKOFF, BACKOFF * 2 ** min(failures - 1, 16))
        await asyncio.sleep(pause * random.uniform(0.5, 1.0))
    return failures


async def follow(
    url: str,
    last_event_id: Callable[[], str],
    on_reconnect: Callable[[], None],
    max_event_bytes: int,
) -> AsyncIterator[Seen]:
    """Every event the source sends, across reconnects, until the caller stops iterating."""
    failures = 0
    deadlines = aiohttp.ClientTimeout(
        total=None, sock_connect=CONNECT_TIMEOUT, sock_read=IDLE_TIMEOUT
    )
    async with reads.session() as session:
        while True:
            headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
            if cursor := last_event_id():
                headers["Last-Event-ID"] = cursor
            before = cursor
            try:
                async with reads.get(session, url, deadlines=deadlines, headers=headers) as answer:
                    if 400 <= answer.status < 500:
                        quote = await reads.read_quote(answer)
                        raise ClientError(f"{url}: HTTP {answer.status}: {quote}")
                    if answer.status == 200:
                        kind = answer.headers.get("Content-Type", "").split(";")[0].strip()
                        if kind != "text/event-stream":
                            raise ClientError(
                                f"{url}: not an event stream (Content-Type {shown(kind)})"
                            )
                        reader = SSEReader(
                            answer, max_event_bytes=max_event_bytes, chunks=reads.chunks(answer)
                        )
                        async for item in reader:
                            if isinstance(item, Event):
                                yield Seen(item.id, item.event, item.data, time.time())
            except EventTooLarge as exc:
                raise ClientError(f"{url}: {exc} (--max-event-bytes)") from None
            except (aiohttp.ClientError, TimeoutError, ConnectionError, reads.ReadError):
                pass
            failures = await back_off(0 if last_event_id() != before else failures + 1)
            on_reconnect()
