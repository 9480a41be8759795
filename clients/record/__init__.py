"""``livesim record``: follow a live blog's event stream and keep it as an archive.

``record(options)`` runs one recording: open (or resume) the archive, follow the source, add each
envelope's records as it arrives, stop on the source's end, ``--duration``, ``--until`` or a
signal. The archive is valid after every record (``journal``); the envelopes become records in
``recorder``; the source reconnects by itself (``sse``, ``ws``) or is polled (``feed``, and a
platform's API: ``polls``, ``platforms``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from clients.sse import MAX_EVENT_BYTES
from clients.target import ClientError
from simulator.core import archive
from simulator.core.model import slug
from simulator.core.wire import wall_time

from .feed import poll, probe
from .journal import Journal
from .mapping import FieldMap
from .platforms import Platform, Shape, platform_for
from .polls import envelopes, follow_platform
from .recorder import Counts, Recorder
from .sse import follow
from .ws import follow_ws


@dataclass(frozen=True, slots=True)
class Options:
    source: str
    output: Path
    duration: float | None = None
    until: datetime | None = None
    feed_id: str | None = None
    title: str | None = None
    max_event_bytes: int = MAX_EVENT_BYTES
    progress: bool = False
    kind: str = "auto"
    """``sse``, ``ws``, ``feed`` (RSS/Atom, polled), a platform's polling API (``scribblelive``,
    ``wp-liveblog``, ``guardian``, ``liveblog``) or ``auto``: a ``ws(s)://`` URL or one ending
    ``/ws`` is WebSocket, one ending ``/events`` SSE, a platform's URL shape that platform
    (``polls.platform_for``), else the Content-Type says."""
    poll: float = 30.0
    map: FieldMap | None = None
    """How to read a foreign stream's events (``--map``); None: they are livesim's envelopes."""


@dataclass(frozen=True, slots=True)
class Outcome:
    counts: Counts
    reason: str
    """Why it stopped: ``ended``, ``duration``, ``until``, ``signal``."""
    resumed_from: str
    recovered: int


def header(options: Options) -> dict[str, Any]:
    name = options.source.rstrip("/").removesuffix("/events").rsplit("/", 1)[-1]
    try:
        platform = platform_for(options.source, options.kind)
    except Shape:
        platform = None
    if platform is not None:
        name = getattr(platform, "name", name)
    return {
        "type": "feed",
        "version": archive.FORMAT_VERSION,
        "id": options.feed_id or slug(name, "recording"),
        "title": options.title or f"Recorded from {options.source}"[:200],
        "description": None,
        "timezone": "UTC",
        "recorded_from": options.source,
        "recorded_at": wall_time(time.time()),
    }


async def record(options: Options) -> Outcome:
    journal = Journal.open(options.output, header(options))
    recorder = Recorder()
    try:
        head = journal.records[0] if journal.records else {}
        if head.get("type") == "feed" and head.get("recorded_from") == options.source:
            recorder.resume(journal.records[1:])
        else:
            recorder.resume(r for r in journal.records if r.get("type") != "feed")
            recorder.last_event_id = ""  # another source's ids mean nothing to this one
        resumed_from = recorder.last_event_id
        journal.records = []
        reason = await _run(options, journal, recorder)
    finally:
        journal.close()
    return Outcome(recorder.counts, reason, resumed_from, journal.recovered)


async def _run(options: Options, journal: Journal, recorder: Recorder) -> str:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    stopped_by = {"reason": "ended"}

    def halt(reason: str) -> None:
        stopped_by["reason"] = reason
        stop.set()

    for number in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(number, halt, "signal")
    limits = []
    if options.duration is not None:
        limits.append((options.duration, "duration"))
    if options.until is not None:
        limits.append(((options.until - datetime.now(UTC)).total_seconds(), "until"))
    timers = [loop.call_later(max(0.0, delay), halt, why) for delay, why in limits]
    counts = recorder.counts

    def reconnected() -> None:
        counts.reconnects += 1

    async def consume_feed() -> None:
        def failed(_: str) -> None:
            counts.reconnects += 1

        async for batch in poll(options.source, options.poll, recorder, failed):
            counts.polls += 1
            for envelope, seen in batch:
                for line in recorder.see(envelope, "", seen):
                    journal.write(line)
            if live is not None:
                live.update(_progress(counts))

    async def consume_platform(platform: Platform) -> None:
        def failed(_: str) -> None:
            counts.reconnects += 1

        async for batch in follow_platform(platform, options.poll, failed):
            counts.polls += 1
            for item in batch.items:
                for envelope in envelopes(item, recorder, batch.seen):
                    for line in recorder.see(envelope, "", batch.seen):
                        journal.write(line)
            if live is not None:
                live.update(_progress(counts))

    async def consume() -> None:
        source = follow_ws if kind == "ws" else follow
        events = source(
            options.source, lambda: recorder.last_event_id, reconnected, options.max_event_bytes
        )
        async for seen in events:
            try:
                envelope = orjson.loads(seen.data)
            except orjson.JSONDecodeError:
                envelope = None
            event_id = seen.id
            if options.map is not None:
                envelope, event_id = _mapped(options.map, envelope, event_id, recorder)
            for line in recorder.see(envelope, event_id, wall_time(seen.at)):
                journal.write(line)
            if live is not None:
                live.update(_progress(counts))
            if recorder.ended:
                return

    kind = options.kind
    try:
        platform = platform_for(options.source, kind)
    except Shape as exc:
        raise ClientError(str(exc)) from None
    if platform is not None:
        kind = platform.kind
    elif kind == "auto":
        url = urlsplit(options.source)
        path = url.path.rstrip("/")
        if url.scheme in ("ws", "wss") or path.endswith("/ws"):
            kind = "ws"
        elif path.endswith("/events"):
            kind = "sse"
        else:
            kind = await probe(options.source)
    live: Any = None
    if options.progress:
        from rich.console import Console
        from rich.live import Live

        live = Live(_progress(counts), console=Console(stderr=True), refresh_per_second=4)
        live.start()
    if platform is not None:
        task = asyncio.ensure_future(consume_platform(platform))
    else:
        task = asyncio.ensure_future(consume_feed() if kind == "feed" else consume())
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for timer in timers:
            timer.cancel()
        for pending in (task, waiter):
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # raised below
                await pending
        for number in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(number)
        if live is not None:
            live.stop()
    if task.done() and not task.cancelled() and (error := task.exception()) is not None:
        raise error
    return stopped_by["reason"] if stop.is_set() else "ended"


def _mapped(
    fields: FieldMap, value: Any, event_id: str, recorder: Recorder
) -> tuple[dict[str, Any] | None, str]:
    """A foreign event as livesim's envelope; one without a type is a new post, or an edit of a
    known one when its text changed (else nothing: the same post sent again)."""
    envelope, event_id = fields.envelope(value, event_id)
    if envelope is None or envelope["type"] is not None:
        return envelope, event_id
    post = envelope["post"]
    known = recorder.posts.get(post["id"])
    if known is None:
        envelope["type"] = "post.created"
    elif any(post.get(k) != known.get(k) for k in ("headline", "body", "author")):
        envelope["type"] = "post.updated"
    else:
        return None, event_id
    return envelope, event_id


def summary(counts: Counts) -> str:
    refused = f", {counts.refused} refused (over a bound, or no time)" if counts.refused else ""
    return (
        f"{counts.events} events, {counts.posts} posts, {counts.edits} edits, "
        f"{counts.deletions} deletions, {counts.pins} pins, {counts.reconnects} reconnects, "
        f"{counts.duplicates} duplicates dropped{refused}"
    )


def _progress(counts: Counts) -> Any:
    from rich.text import Text

    return Text(
        f"recording: {counts.events} events, {counts.posts} posts, {counts.edits} edits, "
        f"{counts.deletions} deletions, {counts.pins} pins, {counts.reconnects} reconnects"
    )
