"""A stream: one running replay shared by its subscribers, and the task that paces it.

Only pacing and subscription live here: what the stream counts is ``metrics.StreamCounts``, its
JSON for the API is ``stream_view``.

The task sleeps until the replay's next absolute deadline (``loop.time()`` is monotonic) or until a
command or subscriber wakes it, then publishes whatever ``advance`` says is due. Commands are
applied synchronously by the caller, so a command and the events it causes are atomic with respect
to subscribers joining.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from ..core import wire
from ..core.commands import SetFaults
from ..core.faults import FaultSpec, FaultSpecError
from ..core.faults import parse as parse_faults
from ..core.model import Feed
from ..core.prepared import PreparedScript
from ..core.replay import MAX_CURSOR_DIGITS, RESET_SUFFIX, Command, Options, Replay
from ..core.script import Script
from ..core.snapshot import Page
from ..core.wire import Event
from .hub import Hub, Subscriber
from .metrics import StreamCounts

MAX_SPEED_WAIT = 0.1
"""At speed max, how long to wait for subscribers to drain before emitting the next batch."""

DRAIN_POLL = 0.002

log = logging.getLogger("livesim.stream")


class StreamFailed(Exception):
    """The stream's replay raised: it is kept (to show why) but serves and obeys nothing more."""


class Unavailable(Exception):
    """What the nodes share (Redis) cannot be reached: control and stream creation answer 503."""


class Link(Protocol):
    """What carries a stream's commands to every node (``cluster.Link``), when it has one."""

    def send(self, command: Command) -> Awaitable[None]:
        """Carry ``command`` out on every node; raise as ``Stream.command`` would here."""

    def close(self) -> Awaitable[None]:
        """Stop reading and let go of the stream's clock."""

    def reach(self, serial: int) -> Awaitable[None]:
        """Return once this node's replay has emitted ``serial`` (or after a short wait)."""


class Incarnations:
    """Names for replays, distinct per replay and per server run, so stale cursors are
    recognised: the time this source was made (in microseconds, so that two apps in one process,
    the tests', differ too), then a count. One per app (``state.py``)."""

    def __init__(self) -> None:
        self._stamp = _base36(time.time_ns() // 1000)
        self._numbers = itertools.count()

    def next(self) -> str:
        return f"{self._stamp}{_base36(next(self._numbers))}"


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


def new_replay(
    stream_id: str,
    script: Script | PreparedScript,
    options: Options,
    now: float,
    incarnations: Incarnations,
) -> Replay:
    """A stream's replay, on the clock of the loop whose ``time()`` is ``now``. Pure: it may be
    made in a worker thread (a replay that starts far into a long archive applies every cue
    before its start)."""
    return Replay(
        script,
        stream=stream_id,
        incarnation=incarnations.next(),
        now=now,
        options=options,
        wall_offset=time.time() - now,
    )


class Stream:
    def __init__(
        self,
        stream_id: str,
        feed: Feed,
        replay: Replay,
        *,
        max_pending: int,
        private: bool = False,
    ):
        """``replay``: from ``new_replay``, with this loop's clock."""
        loop = asyncio.get_running_loop()
        self.id = stream_id
        self.feed = feed
        self.private = private
        self.max_pending = max_pending
        self.replay = replay
        self.hub = Hub()
        self.failed: str | None = None
        self.counts = StreamCounts()
        self.faults: FaultSpec | None = None
        """Faults every connection to this stream suffers (its ``faults`` setting)."""
        self.on_lateness: Callable[[float], None] | None = None
        """Told how late (seconds past its deadline) each timed publication went out."""
        self.on_command: Callable[[Command], None] | None = None
        """Told of each command carried out, whoever sent it (the state file saves live posts)."""
        self.link: Link | None = None
        """Set when the stream is shared between nodes (``cluster.py``): its replay then moves
        only by the inputs every node applies in one order (``apply_input``), never by itself."""
        self.base = 0.0
        """Added to the loop's clock to give the replay's: the nodes' shared clock, or 0."""
        self._loop = loop
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.link is not None:
            return  # its clock is the owner node's (``cluster.Link``)
        self._task = asyncio.create_task(self._run(), name=f"stream:{self.id}")

    async def stop(self, reason: str = "stream deleted") -> None:
        """Close the subscribers, end the pacing task and let go of it: a cancelled task keeps
        its ``CancelledError``, whose traceback holds the task's frames, and so this stream (a
        reference cycle that only the collector would free). The replay then holds nothing and
        gives back what shared budgets counted for it."""
        self.hub.close_all(reason)
        if self.link is not None:
            await self.link.close()
        task, self._task = self._task, None
        if task:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:  # already reported by _run; stopping must not fail again
                pass
        self.replay.close()

    def _fail(self, exc: Exception) -> StreamFailed:
        """Isolate a replay that raised: log one line, close its subscribers, keep the rest up."""
        if self.failed is None:
            self.failed = f"{type(exc).__name__}: {exc}"[:300]
            log.error("stream %s failed: %s", self.id, self.failed)
            self.hub.close_all(f"stream failed: {self.failed}")
        return self._failure()

    def _failure(self) -> StreamFailed:
        return StreamFailed(f"stream {self.id!r} failed: {self.failed}")

    def check(self) -> None:
        """Raise ``StreamFailed`` if the replay failed: such a stream serves and obeys nothing."""
        if self.failed:
            raise self._failure()

    def _publish(self, events: list[Event]) -> None:
        self.counts.published(events)
        self.hub.publish(events)

    def now(self) -> float:
        return self._loop.time() + self.base

    async def send(self, command: Command) -> None:
        """Carry out ``command`` here or, for a shared stream, on every node (its link)."""
        if self.link is None:
            self.command(command)
        else:
            self.check()
            await self.link.send(command)

    async def reach(self, cursor: str | None) -> None:
        """Before subscribing with ``cursor``: a shared stream's replay here may be a few
        milliseconds behind the node that gave the cursor out; wait for it, so that the cursor
        resumes exactly instead of looking like one never issued (a ``stream.reset``)."""
        if self.link is None or cursor is None:
            return
        incarnation, _, number = cursor.rpartition("-")
        number = number.removesuffix(RESET_SUFFIX)
        if incarnation != self.replay.incarnation or not (number.isascii() and number.isdigit()):
            return
        if len(number) <= MAX_CURSOR_DIGITS and int(number) > self.replay.serial:
            await self.link.reach(int(number))

    def apply_input(self, command: Command | None, now: float) -> int:
        """One input of a shared stream, at the shared clock's ``now``: the replay advances
        (``command`` None) or carries the command out. Every node applies the same inputs in
        the same order, so every node's replay emits the same events. Returns how many;
        raises as ``command`` for a command that does not fit (nothing happened)."""
        if isinstance(command, SetFaults):
            self.set_faults(command.spec)
            return 0
        self.check()
        try:
            if command is None:
                events = self.replay.advance(now)
            else:
                events = self.replay.apply(command, now)
        except ValueError:
            raise
        except Exception as exc:
            raise self._fail(exc) from None
        self._publish(events)
        if command is not None and self.on_command:
            self.on_command(command)
        return len(events)

    def command(self, command: Command) -> None:
        """Apply a control command; ``ValueError`` if it makes no sense."""
        if isinstance(command, SetFaults):  # the connections', not the replay's
            self.set_faults(command.spec)
            return
        self.check()
        try:
            events = self.replay.apply(command, self.now())
        except ValueError:
            raise
        except Exception as exc:
            raise self._fail(exc) from None
        self._publish(events)
        self._wake.set()
        if self.on_command:
            self.on_command(command)

    def subscribe(
        self, cursor: str | None, transport: str = "sse", *, no_resume: bool = False
    ) -> Subscriber:
        """A subscriber that resumes after ``cursor`` (exactly, or with a ``stream.reset``).

        Without a cursor a shared stream is followed from now. A private stream always starts at
        its beginning: it exists for this one connection, so a cursor from an earlier connection
        gets a ``stream.reset`` and then the new replay from its first event. ``transport``
        (``"sse"`` or ``"ws"``) is what the subscriber is counted under in the metrics.
        ``no_resume`` (a fault) ignores the cursor and starts with a ``stream.reset``.
        """
        self.catch_up()
        backlog = self._no_resume() if no_resume else self._backlog(cursor)
        subscriber = Subscriber(transport, self.max_pending, backlog)
        self.hub.add(subscriber)
        self._wake.set()
        return subscriber

    def resubscribe(self, subscriber: Subscriber, cursor: str) -> None:
        """Replay from ``cursor`` on an open connection, behind a ``resumed`` marker."""
        self.catch_up()
        subscriber.replace([wire.resumed(cursor), *self._backlog(cursor)])

    def _backlog(self, cursor: str | None) -> list[Event]:
        if self.private:
            found = self.replay.since(cursor or self.replay.origin)
            if found is not None:
                return found
            reset = self.replay.reset_for("private", self.now(), at_origin=True)
            return [reset, *self._from_first()]
        if cursor is None:
            return []
        found = self.replay.since(cursor)
        self.counts.resumes["exact" if found is not None else "reset"] += 1
        return found if found is not None else [self.replay.reset_for("resume", self.now())]

    def _from_first(self) -> list[Event]:
        """A private replay's events from its first, for a subscriber told to discard what it
        holds (it has no snapshot to reload): after the first epoch (a backward seek, a loop, a
        restart), the current epoch from its own ``stream.reset``, which the log then starts
        with; only what the log's byte bound dropped is missing."""
        first = self.replay.since(self.replay.origin)
        return list(self.replay.log) if first is None else first

    def _no_resume(self) -> list[Event]:
        self.counts.faults["no_resume"] += 1
        if self.private:
            reset = self.replay.reset_for("no_resume", self.now(), at_origin=True)
            return [reset, *self._from_first()]
        return [self.replay.reset_for("no_resume", self.now())]

    @property
    def faults_text(self) -> str | None:
        """The faults as a spec reads them back (the API, the state file, a checkpoint)."""
        return str(self.faults) if self.faults else None

    def set_faults(self, spec: FaultSpec | None) -> None:
        """Change the faults every connection suffers, for new connections and the open ones
        (each keeps its own ``faults`` parameter item by item over the stream's)."""
        self.faults = spec
        for subscriber in list(self.hub.subscribers):
            merged = spec or FaultSpec()
            if subscriber.own_faults is not None:
                with contextlib.suppress(FaultSpecError):  # valid alone, not over this spec
                    merged = parse_faults(subscriber.own_faults, spec)
            subscriber.refault(merged, self.counts.faults)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.hub.remove(subscriber)

    def snapshot(self, max_bytes: int) -> tuple[bytes, bytes]:
        """The snapshot's head and its posts (shared by every reader until the posts change),
        after publishing what is due: ``Replay.snapshot_parts``."""
        self.catch_up()
        return self.replay.snapshot_parts(self.now(), max_bytes)

    def page(self, max_bytes: int, page: Page) -> tuple[bytes, bytes]:
        """One page of the snapshot (``Replay.page_parts``), after publishing what is due."""
        self.catch_up()
        return self.replay.page_parts(self.now(), max_bytes, page)

    def catch_up(self) -> None:
        """Publish what is due by now. At speed max nothing is "due": only the pacing task
        advances, so a read (describe, snapshot, a subscriber joining) never emits a batch.
        A shared stream's replay moves only by its inputs: a read takes it as it is."""
        self.check()
        if self.link is not None:
            return
        try:
            if self.replay.next_deadline() != -math.inf:
                self._publish(self.replay.advance(self.now()))
        except Exception as exc:
            raise self._fail(exc) from None

    async def _run(self) -> None:
        try:
            await self._pace()
        except Exception as exc:
            self._fail(exc)

    async def _pace(self) -> None:
        replay = self.replay
        deadline: float | None = None
        while True:
            if replay.next_deadline() == -math.inf and not self.hub.subscribers:
                await self.hub.has_subscribers.wait()  # at speed max, emit nothing unheard
            now = self.now()
            events = replay.advance(now)
            if events and deadline is not None and self.on_lateness:
                self.on_lateness(max(0.0, now - deadline))
            self._publish(events)
            deadline = replay.next_deadline()
            self._wake.clear()
            if deadline == -math.inf:
                deadline = None
                await self._pace_max_speed()
                continue
            try:
                async with asyncio.timeout_at(deadline):
                    await self._wake.wait()
                deadline = None  # woken by a command or a subscriber, not by the clock
            except TimeoutError:
                pass

    async def _pace_max_speed(self) -> None:
        """As fast as subscribers take it: wait for one to exist and for queues to drain."""
        if not self.hub.subscribers:
            await self.hub.has_subscribers.wait()
        await asyncio.sleep(0)
        for _ in range(int(MAX_SPEED_WAIT / DRAIN_POLL)):
            if self.hub.backlog() <= self.max_pending // 2:
                return
            await asyncio.sleep(DRAIN_POLL)
