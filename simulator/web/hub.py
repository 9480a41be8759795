"""Fan-out: hand each event's bytes to every subscriber without letting one hold up the rest.

Each event is framed once per publish for each framing in use (SSE chunk, WebSocket frame), and
those same bytes go to every subscriber of that transport. Delivery has two paths:

- **write-through**: a subscriber with nothing pending, no faults, whose connection is not paused
  by flow control gets the bytes written straight to its transport inside ``publish``: no queue,
  no task wake-up, no await. This is the common case for a paced stream.
- **offered**: otherwise the events go to the subscriber's ``Delivery`` (``core/delivery.py``),
  which queues them (bounded), puts them through the connection's fault stages and frames what
  is due; the subscriber writes that when the connection can take it (at once, on
  ``resume_writing``, or when the connection's one timer fires at the delivery's deadline).

A subscriber that falls ``limit`` events behind is dropped (its connection is closed with a
reason, and cut if it does not go in time) and counted. It loses nothing: it reconnects with its
last event id and resumes.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from typing import Protocol

from ..core.delivery import SLOW, Close, Delivery, Framing, Why, going_away
from ..core.faults import FaultSpec
from ..core.wire import Event

__all__ = ["SLOW", "Close", "Framing", "Hub", "Sink", "Subscriber"]


def loop_time() -> float:
    """The running event loop's clock, which its timers keep (uvloop's is not ``monotonic``)."""
    return asyncio.get_running_loop().time()


SLOW_CLOSE_GRACE = 1.0
"""Seconds a dropped slow consumer's connection gets to close politely before it is cut."""
TRANSPORTS = ("sse", "ws")


class Sink(Protocol):
    """One connection's write side, as the hub sees it."""

    framing: Framing
    """The same function object for every connection framed alike: publish frames once per
    framing, not once per subscriber."""
    paused: bool
    """The transport asked us to stop writing (asyncio flow control)."""

    def write(self, data: bytes) -> None:
        """Put framed bytes on the connection now; never blocks, never raises."""

    def close(self, close: Close) -> None:
        """End the connection as ``close`` says (politely, telling the client why, or a reset)."""

    def abort(self) -> None:
        """Cut a connection that has not gone after ``close`` (a stuck socket)."""

    def arm(self, deadline: float | None) -> None:
        """Call the subscriber's ``advance`` at ``deadline`` (the clock's time), or never."""


class Subscriber:
    """One connection's view of a stream: its ``Delivery``, and the connection it writes to."""

    def __init__(self, transport: str, limit: int, backlog: Iterable[Event] = ()):
        self.transport = transport
        """``"sse"`` or ``"ws"``: which metrics this subscriber counts under."""
        self.delivery = Delivery(limit, backlog)
        self.hub: Hub | None = None
        """The hub it is subscribed to, which counts it if it is dropped as slow."""
        self.sink: Sink | None = None
        self.direct = False
        """Publish may write straight to the sink: attached, plain, not paused, nothing pending.
        Kept up to date at each change so that publish tests one attribute."""
        self.clock: Callable[[], float] = loop_time
        """The time the sink's timer keeps, for the fault stages (its hub's, once added)."""
        self.ended = False
        """The sink was told to close."""
        self.remote: str | None = None
        """The client's address, remembered for a while if a fault closes the connection."""
        self.own_faults: str | None = None
        """The connection's own ``faults`` parameter, laid over its stream's when those
        change at runtime."""

    @property
    def limit(self) -> int:
        return self.delivery.limit

    @property
    def pending(self) -> list[Event]:
        return self.delivery.pending

    @property
    def dropped(self) -> Close | None:
        return self.delivery.closing

    def attach(
        self, sink: Sink, faults: FaultSpec | None = None, counts: Counter[str] | None = None
    ) -> None:
        """Connect the write side, through the fault stages ``faults`` asks for (counted in
        ``counts``); the backlog goes out at once (one write)."""
        self.sink = sink
        self.delivery.framing = sink.framing
        if faults is not None and self.delivery.closing is None:
            self.delivery.fault(faults, Counter() if counts is None else counts, self.clock())
        self.flush()

    def refault(self, faults: FaultSpec, counts: Counter[str]) -> None:
        """New fault stages for a connection already open (its stream's faults changed)."""
        self.direct = False
        self.delivery.refault(faults, counts, self.clock())
        self.flush()

    def flush(self) -> None:
        """Write everything due in one write if the sink can take it, then write through.

        Called when the sink is attached, when it resumes writing, after an offer or an advance.
        Everything pending is written before ``direct`` is set again, so events reach the
        connection in order whichever path they take.
        """
        delivery = self.delivery
        if delivery.closing is not None:
            self._end(delivery.closing)
            return
        sink = self.sink
        if sink is None or sink.paused:
            self.direct = False
            if sink is not None and delivery.head is not None:
                sink.arm(delivery.next_deadline())  # a stall ends on time, written or not
            return
        if delivery.pending:
            data = delivery.data_to_send()
            if data:
                sink.write(data)
        if delivery.head is None:
            self.direct = not sink.paused  # the write itself may have paused it
        else:
            sink.arm(delivery.next_deadline())

    def advance(self, now: float | None = None) -> None:
        """The sink's timer: what the fault stages hold until ``now`` is due."""
        self.delivery.advance(self.clock() if now is None else now)
        self.flush()

    def pause(self) -> None:
        """The transport's buffer is full: queue from now on."""
        self.direct = False

    def push(self, events: list[Event], now: float | None = None) -> bool:
        """Offer live events; False (and closing) when the delivery takes no more. Inlined in
        ``Hub.publish``, which reads the clock once for all its subscribers."""
        taken = self.delivery.offer(events, self.clock() if now is None else now)
        sink = self.sink
        if not taken or (sink is not None and not sink.paused):
            self.flush()
        return taken

    def replace(self, backlog: Iterable[Event]) -> None:
        """Start over from a new position (a client's resume on an open connection)."""
        self.delivery.replace(backlog, self.clock())
        self.flush()

    def drop(self, reason: Close | str) -> None:
        """Stop delivering and close the connection (a text reason: the stream is going)."""
        close = reason if isinstance(reason, Close) else going_away(reason)
        self.delivery.close(close)
        self._end(self.delivery.closing or close)

    def _end(self, close: Close) -> None:
        """Tell the connection, once, to end; write first what the faults let through before
        the end. A slow consumer is counted, and cut after a grace period, since a client that
        stopped reading may never let it close."""
        self.direct = False
        if self.ended:
            return
        slow = close.why is Why.SLOW
        if slow and self.hub is not None:
            self.hub.dropped_as_slow(self)
        if close.why is Why.FAULT and self.hub is not None and self.remote is not None:
            self.hub.fault_closed.note(self.remote)
        sink = self.sink
        if sink is None:
            return
        self.ended = True
        data = self.delivery.data_to_send()
        if data:
            sink.write(data)
        sink.close(close)
        if slow:
            asyncio.get_running_loop().call_later(SLOW_CLOSE_GRACE, sink.abort)


RECENT_WINDOW = 30.0
"""How long a fault-closed connection's address waits for its client to come back, seconds."""
RECENT_LIMIT = 4096
"""Addresses remembered at most; the oldest is forgotten first."""


class RecentCloses:
    """Addresses whose connection a fault just closed, and how many: a heuristic for "did the
    client come back with its cursor?". A new subscription from such an address within
    ``RECENT_WINDOW`` takes one of them, whether it has a cursor or not; bounded in memory."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._closed: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def note(self, address: str) -> None:
        _, count = self._closed.pop(address, (0.0, 0))
        self._closed[address] = (self.clock() + RECENT_WINDOW, count + 1)
        if len(self._closed) > RECENT_LIMIT:
            self._closed.popitem(last=False)

    def take(self, address: str) -> bool:
        """Whether a connection from ``address`` was fault-closed within the window."""
        until, count = self._closed.get(address, (0.0, 0))
        if not count:
            return False
        if until < self.clock():
            del self._closed[address]
            return False
        if count == 1:
            del self._closed[address]
        else:
            self._closed[address] = (until, count - 1)
        return True


class Hub:
    """A stream's subscribers, grouped by transport, and what was delivered to them."""

    def __init__(self) -> None:
        self.subscribers: set[Subscriber] = set()
        self._by_transport: dict[str, set[Subscriber]] = {name: set() for name in TRANSPORTS}
        self.deliveries: dict[str, int] = dict.fromkeys(TRANSPORTS, 0)
        """Events delivered (written or queued) per transport, cumulative: plain ints, cheap to
        read at scrape time, updated once per publish per transport."""
        self.dropped_slow = 0
        self.has_subscribers = asyncio.Event()
        self.clock: Callable[[], float] = loop_time
        """What ``now`` is for its subscribers' deliveries (a test's fake clock)."""
        self.fault_closed = RecentCloses()

    def add(self, subscriber: Subscriber) -> None:
        subscriber.hub = self
        subscriber.clock = self.clock
        self.subscribers.add(subscriber)
        self._by_transport.setdefault(subscriber.transport, set()).add(subscriber)
        self.deliveries.setdefault(subscriber.transport, 0)
        self.has_subscribers.set()

    def remove(self, subscriber: Subscriber) -> None:
        if subscriber.hub is self:
            subscriber.hub = None
        self.subscribers.discard(subscriber)
        group = self._by_transport.get(subscriber.transport)
        if group is not None:
            group.discard(subscriber)
        if not self.subscribers:
            self.has_subscribers.clear()

    def dropped_as_slow(self, subscriber: Subscriber) -> None:
        """Count a slow consumer once, wherever it was found slow, and stop publishing to it."""
        self.dropped_slow += 1
        self.remove(subscriber)

    def subscriber_counts(self) -> dict[str, int]:
        return {name: len(group) for name, group in self._by_transport.items()}

    def publish(self, events: list[Event]) -> None:
        """Write ``events`` through to every idle subscriber, queue them for the others.

        The bytes for each framing are built once, by the first subscriber that needs them.
        Writing to a transport never re-enters this loop (a failed write reports the lost
        connection later, from the event loop), but a drop removes a subscriber, so each
        group is walked as a snapshot.
        """
        if not events:
            return
        count = len(events)
        framed: dict[Framing, bytes] = {}
        now: float | None = None
        for transport, group in self._by_transport.items():
            if not group:
                continue
            members = tuple(group)
            lost = 0
            for subscriber in members:
                if subscriber.direct:
                    sink = subscriber.sink
                    assert sink is not None
                    data = framed.get(sink.framing)
                    if data is None:
                        data = framed[sink.framing] = sink.framing(events)
                    sink.write(data)
                    continue
                if now is None:
                    now = self.clock()
                if subscriber.delivery.offer(events, now):
                    sink = subscriber.sink
                    if sink is not None and not sink.paused:
                        subscriber.flush()
                else:
                    subscriber.flush()  # tells the connection how it ends
                    lost += 1
                    self.remove(subscriber)
            self.deliveries[transport] += (len(members) - lost) * count

    def backlog(self) -> int:
        """The longest live queue: how far the slowest subscriber is behind."""
        return max((s.delivery.backlog for s in self.subscribers), default=0)

    def close_all(self, reason: str) -> None:
        for subscriber in list(self.subscribers):
            subscriber.drop(reason)
        self.subscribers.clear()
        for group in self._by_transport.values():
            group.clear()
        self.has_subscribers.clear()
