"""Fault stages: a connection that misbehaves on purpose, so a client can be tested against it.

Like toxiproxy's toxics, each fault is one small stage with its own parameters and its own seeded
``random.Random``, and the stages are chained per connection between the hub's subscriber and
the connection's real sink. The chain is itself a hub ``Sink`` that is not ``plain``, so the
hub never writes through to it: every batch comes in through ``Subscriber.flush``, whose call
to ``framing`` is the chain's entrance. It takes the events, returns no bytes, and writes to the
connection (framed by the connection's own framing) whatever it lets through, when it lets it
through. A stage sees events, never bytes, so one chain serves SSE and WebSocket alike.

The order is fixed: delay/jitter and stall (when), then reorder, duplicate, garble (what is
written: a duplicate or a garbled frame goes out right beside its event), then drop,
disconnect_after, reset_after (whether the connection survives the write). A marker that is not
a stream event (``resumed``, serial < 0) is never struck and never counted.

A spec that needs no stage (only ``no_resume``, or only zeros) leaves the connection plain: it
keeps write-through.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Protocol

from aiohttp import web

from ..core.faults import FaultSpec
from ..core.wire import Event
from .hub import SLOW, Framing, Sink, Subscriber

FAULTS = web.RequestKey("faults", FaultSpec)
"""The spec a subscription request is to suffer (the stream's merged with the connection's)."""
GARBLE = "garble"
FAULT = "fault: "
"""How the reason a fault closes a connection with begins (``fault: disconnect_after``)."""
FAULT_CLOSE = 4000
"""WebSocket close code of a connection a fault closed (private use range, RFC 6455 §7.4.2)."""


class Target(Sink, Protocol):
    """The connection under the chain: the hub's sink, plus what a fault needs of it."""

    closed: bool
    """Nothing more may be written (it is closing, or gone)."""

    @property
    def transport(self) -> asyncio.BaseTransport: ...

    def hush(self, quiet: bool) -> None:
        """Suspend (True) or resume the connection's own keepalives (SSE comments, pings)."""


def is_event(event: Event) -> bool:
    return event.serial >= 0


class End:
    """The chain's last link: frames and writes what gets this far, and ends the connection
    when a stage says so. After an end, nothing more is written.

    While a batch goes through the chain (``batching``), what reaches the end is gathered and
    written in one write when the batch is done, or just before the connection ends.
    """

    def __init__(self, target: Target, counts: Counter[str]) -> None:
        self.target = target
        self.counts = counts
        self.over = False
        self.batching = False
        self.gathered: list[Event] = []

    def send(self, events: list[Event]) -> None:
        if self.over or not events:
            return
        if self.batching:
            self.gathered += events
        else:
            self._write(events)

    def flush(self) -> None:
        events, self.gathered = self.gathered, []
        if events and not self.over:
            self._write(events)

    def _write(self, events: list[Event]) -> None:
        """A timer may fire after the connection began to close (the client's close, a lost
        pong): nothing may follow a close frame, so a closing connection gets nothing."""
        target = self.target
        if not (target.closed or target.transport.is_closing()):
            target.write(target.framing(events))

    def close(self, kind: str) -> None:
        """End politely (SSE: the response ends; WebSocket: close code 4000)."""
        if not self.over:
            self.flush()
            self.over = True
            self.counts[kind] += 1
            self.target.close(FAULT + kind)

    def reset(self, kind: str) -> None:
        """Cut the TCP connection with an RST: SO_LINGER 0, then abort."""
        if self.over:
            return
        self.flush()
        self.over = True
        self.counts[kind] += 1
        sock = self.target.transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        self.target.abort()

    def stop(self) -> None:
        self.over = True


class Stage:
    """One fault: takes a batch, passes on what it lets through (maybe later, maybe changed)."""

    kind = ""

    def __init__(self, after: Stage | End, end: End) -> None:
        self.next = after
        self.end = end

    def send(self, events: list[Event]) -> None:
        self.next.send(events)

    def stop(self) -> None:
        self.next.stop()


class Chance(Stage):
    """A stage that strikes each event with probability ``p`` (its toxicity)."""

    def __init__(self, after: Stage | End, end: End, p: float, rng: random.Random) -> None:
        super().__init__(after, end)
        self.p = p
        self.rng = rng

    def strikes(self) -> bool:
        return self.rng.random() < self.p


class Reorder(Chance):
    """Swap a struck event with the one after it: the struck one waits for its successor."""

    kind = "reorder"

    def __init__(self, after: Stage | End, end: End, p: float, rng: random.Random) -> None:
        super().__init__(after, end, p, rng)
        self.held: Event | None = None

    def send(self, events: list[Event]) -> None:
        out: list[Event] = []
        for event in events:
            if not is_event(event):
                if self.held is not None:  # a resume starts over: no swap across it
                    out.append(self.held)
                    self.held = None
                out.append(event)
            elif self.held is not None:
                out += [event, self.held]
                self.held = None
                self.end.counts[self.kind] += 1
            elif self.strikes():
                self.held = event
            else:
                out.append(event)
        if out:
            self.next.send(out)


class Duplicate(Chance):
    """Write a struck event twice, same id."""

    kind = "duplicate"

    def send(self, events: list[Event]) -> None:
        out: list[Event] = []
        for event in events:
            out.append(event)
            if is_event(event) and self.strikes():
                out.append(event)
                self.end.counts[self.kind] += 1
        self.next.send(out)


class Garble(Chance):
    """Write a malformed frame before a struck event: its JSON cut in half, without an id (SSE:
    a ``data:`` line that is not JSON; WebSocket: a text frame that is not JSON)."""

    kind = GARBLE

    def send(self, events: list[Event]) -> None:
        out: list[Event] = []
        for event in events:
            if is_event(event) and self.strikes():
                out.append(garbled(event))
                self.end.counts[self.kind] += 1
            out.append(event)
        self.next.send(out)


def garbled(event: Event) -> Event:
    """Not JSON (a proper prefix of a JSON object never is), cut on a character boundary so the
    WebSocket text frame is still valid UTF-8."""
    text = event.json.decode()
    cut = text[: max(1, len(text) // 2)].encode()
    return Event(-2, "", GARBLE, cut, b"data: %b\n\n" % cut)


class Timed(Stage):
    """A stage that holds events until absolute deadlines (``loop.call_at``), in order, and
    drops the subscriber as slow when it holds more than ``limit`` of them."""

    def __init__(
        self,
        after: Stage | End,
        end: End,
        loop: asyncio.AbstractEventLoop,
        limit: int,
        overflow: Callable[[], None],
    ) -> None:
        super().__init__(after, end)
        self.loop = loop
        self.limit = limit
        self.overflow = overflow
        self.queue: deque[tuple[float, list[Event]]] = deque()
        self.held = 0
        self.timer: asyncio.TimerHandle | None = None

    def hold(self, deadline: float, events: list[Event]) -> None:
        if self.queue and deadline < self.queue[-1][0]:
            deadline = self.queue[-1][0]  # order kept: never before what is already waiting
        self.queue.append((deadline, events))
        self.held += len(events)
        if self.held > self.limit:
            self.overflow()
        elif self.timer is None:
            self._arm()

    def _arm(self) -> None:
        if self.queue:
            self.timer = self.loop.call_at(self.queue[0][0], self._release)
        else:
            self.timer = None

    def _release(self) -> None:
        now = self.loop.time()
        out: list[Event] = []
        while self.queue and self.queue[0][0] <= now:
            out += self.queue.popleft()[1]
        self.held -= len(out)
        self._arm()
        if out:
            self.next.send(out)

    def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.queue.clear()
        super().stop()


class Latency(Timed):
    """Hold every event back ``delay`` plus a random 0..``jitter``, order kept."""

    kind = "delay"

    def __init__(
        self,
        after: Stage | End,
        end: End,
        loop: asyncio.AbstractEventLoop,
        limit: int,
        overflow: Callable[[], None],
        *,
        delay: float,
        jitter: float,
        rng: random.Random,
    ) -> None:
        super().__init__(after, end, loop, limit, overflow)
        self.delay = delay
        self.jitter = jitter
        self.rng = rng

    def send(self, events: list[Event]) -> None:
        now = self.loop.time()
        counts = self.end.counts
        for event in events:
            if not is_event(event):
                self.hold(now, [event])
                continue
            wait = self.delay
            counts["delay"] += self.delay > 0
            if self.jitter:
                wait += self.rng.uniform(0, self.jitter)
                counts["jitter"] += 1
            self.hold(now + wait, [event])


class Stall(Timed):
    """After ``after`` events, send nothing at all for ``duration`` (the connection's own
    keepalives are hushed too), then go on with what arrived meanwhile. Once per connection."""

    kind = "stall"

    def __init__(
        self,
        after: Stage | End,
        end: End,
        loop: asyncio.AbstractEventLoop,
        limit: int,
        overflow: Callable[[], None],
        *,
        count: int,
        duration: float,
        hush: Callable[[bool], None],
    ) -> None:
        super().__init__(after, end, loop, limit, overflow)
        self.count = count
        self.duration = duration
        self.hush = hush
        self.seen = 0
        self.until: float | None = None
        if count == 0:
            self._begin()

    def _begin(self) -> None:
        self.until = self.loop.time() + self.duration
        self.end.counts[self.kind] += 1
        self.hush(True)
        self.timer = self.loop.call_at(self.until, self._finish)

    def _finish(self) -> None:
        self.timer = None
        self.hush(False)
        out = [event for _, events in self.queue for event in events]
        self.queue.clear()
        self.held = 0
        if out:
            self.next.send(out)

    def send(self, events: list[Event]) -> None:
        if self.until is not None:
            if self.timer is not None:  # stalling now
                self.hold(self.until, events)
            else:
                self.next.send(events)
            return
        for index, event in enumerate(events):
            self.seen += is_event(event)
            if self.seen == self.count:
                self.next.send(events[: index + 1])
                self._begin()
                if events[index + 1 :]:
                    self.hold(self.until or 0.0, events[index + 1 :])
                return
        self.next.send(events)

    def hold(self, deadline: float, events: list[Event]) -> None:
        self.queue.append((deadline, events))
        self.held += len(events)
        if self.held > self.limit:
            self.overflow()

    def stop(self) -> None:
        if self.timer is not None:
            self.hush(False)
        super().stop()


class Drop(Chance):
    """Before a struck event, abort the connection (RST)."""

    kind = "drop"

    def send(self, events: list[Event]) -> None:
        for index, event in enumerate(events):
            if is_event(event) and self.strikes():
                self.next.send(events[:index])
                self.end.reset(self.kind)
                return
        self.next.send(events)


class Cut(Stage):
    """After the ``count``-th event written, close the connection (``disconnect_after``) or
    reset it (``reset_after``). Counted per connection: a reconnect starts afresh."""

    def __init__(self, after: Stage | End, end: End, kind: str, count: int) -> None:
        super().__init__(after, end)
        self.kind = kind
        self.count = count
        self.seen = 0
        if count == 0:  # due before any event
            self.cut()

    def send(self, events: list[Event]) -> None:
        if self.seen >= self.count:
            return
        for index, event in enumerate(events):
            self.seen += is_event(event)
            if self.seen >= self.count:
                self.next.send(events[: index + 1])
                self.cut()
                return
        self.next.send(events)

    def cut(self) -> None:
        if self.kind == "reset_after":
            self.end.reset(self.kind)
        else:
            self.end.close(self.kind)


class Faulted:
    """The hub's ``Sink`` for a connection with faults: the chain's entrance and its owner."""

    plain = False

    def __init__(
        self,
        target: Target,
        spec: FaultSpec,
        counts: Counter[str],
        *,
        limit: int,
        overflow: Callable[[], None],
        rng: Callable[[str], random.Random] | None = None,
    ) -> None:
        self.target = target
        self.spec = spec
        self.end = End(target, counts)
        self.framing: Framing = self._enter
        self.head = build(spec, self.end, limit, overflow, rng or seeded(spec.seed))

    @property
    def paused(self) -> bool:
        """The connection's own flow control: the hub queues while it is paused."""
        return self.target.paused

    @paused.setter
    def paused(self, value: bool) -> None:
        self.target.paused = value

    def _enter(self, events: Sequence[Event]) -> bytes:
        """One event at a time through the chain, so that nothing after a connection's end
        is counted as injected; what comes out is still written in one write."""
        end = self.end
        end.batching = True
        try:
            for event in events:
                if end.over:
                    break
                self.head.send([event])
        finally:
            end.batching = False
            end.flush()
        return b""

    def write(self, data: bytes) -> None:
        if not self.end.over:
            self.target.write(data)

    def close(self, reason: str) -> None:
        self.stop()
        self.target.close(reason)

    def abort(self) -> None:
        self.stop()
        self.target.abort()

    def stop(self) -> None:
        """Cancel every timer and write nothing more (the connection is going). ``framing`` is
        a method of this chain: let go of it, or the chain would be a cycle of its own."""
        self.head.stop()
        self.framing = _gone


def _gone(events: Sequence[Event]) -> bytes:
    """The entrance of a chain that was stopped: nothing goes through."""
    return b""


def staged(spec: FaultSpec) -> bool:
    """Some item of ``spec`` needs a stage between the subscriber and the connection."""
    cuts = spec.disconnect_after is not None or spec.reset_after is not None
    return cuts or any(
        getattr(spec, name)
        for name in ("drop", "delay", "jitter", "stall", "duplicate", "reorder", "garble")
    )


def around(target: Target, subscriber: Subscriber, spec: FaultSpec, counts: Counter[str]) -> Sink:
    """The sink to attach ``subscriber`` to: ``target`` behind the stages ``spec`` asks for (or
    ``target`` itself when it asks for none). Events the stages hold count against the
    subscriber's bound, like its queue."""
    if not staged(spec):
        return target
    return Faulted(
        target, spec, counts, limit=subscriber.limit, overflow=lambda: subscriber.drop(SLOW)
    )


def release(sink: Sink | None) -> None:
    """The connection is going: stop a chain's timers (nothing to do for a plain sink)."""
    if isinstance(sink, Faulted):
        sink.stop()


def seeded(seed: int | None) -> Callable[[str], random.Random]:
    """One generator per stage: the same seed gives each stage the same choices, whatever
    other stages are in the chain."""
    if seed is None:
        return lambda kind: random.Random()
    return lambda kind: random.Random(f"{seed}:{kind}")


def build(
    spec: FaultSpec,
    end: End,
    limit: int,
    overflow: Callable[[], None],
    rng: Callable[[str], random.Random],
) -> Stage:
    """The stages ``spec`` asks for, chained in their fixed order, ending at ``end``."""
    loop = asyncio.get_running_loop()
    link: Stage | End = end
    if spec.reset_after is not None:
        link = Cut(link, end, "reset_after", spec.reset_after)
    if spec.disconnect_after is not None:
        link = Cut(link, end, "disconnect_after", spec.disconnect_after)
    if spec.drop:
        link = Drop(link, end, spec.drop, rng("drop"))
    if spec.garble:
        link = Garble(link, end, spec.garble, rng("garble"))
    if spec.duplicate:
        link = Duplicate(link, end, spec.duplicate, rng("duplicate"))
    if spec.reorder:
        link = Reorder(link, end, spec.reorder, rng("reorder"))
    if spec.stall:
        hush = end.target.hush
        count = spec.stall_after or 0
        link = Stall(link, end, loop, limit, overflow, count=count, duration=spec.stall, hush=hush)
    if spec.delay or spec.jitter:
        delay, jitter = spec.delay or 0.0, spec.jitter or 0.0
        link = Latency(
            link, end, loop, limit, overflow, delay=delay, jitter=jitter, rng=rng("jitter")
        )
    return link if isinstance(link, Stage) else Stage(link, end)
