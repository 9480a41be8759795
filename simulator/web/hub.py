"""Fan-out: hand each event's bytes to every subscriber without letting one hold up the rest.

Each event is framed once per publish for each framing in use (SSE chunk, WebSocket frame), and
those same bytes go to every subscriber of that transport. Delivery has two paths:

- **write-through**: a subscriber with nothing pending whose connection is not paused by flow
  control gets the bytes written straight to its transport inside ``publish``: no queue, no task
  wake-up, no await. This is the common case for a paced stream.
- **queued**: while a connection is paused (``pause_writing``) or not yet attached, events wait in
  the subscriber's ``pending`` queue; ``resume_writing`` writes them all in one write and the
  subscriber goes back to write-through. A resume's backlog takes the same path.

A queue has a bound: a subscriber that falls that far behind is dropped (its connection is closed
with a reason, and cut if it does not go in time) and counted. It loses nothing: it reconnects
with its last event id and resumes.

The connection side is a ``Sink`` (one per SSE response or WebSocket). A future fault stage
(delay, drop, duplicate …) is a sink that is not ``plain``: its subscriber never writes through,
so every batch reaches it through ``flush`` and the stage can work per event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from ..core.wire import Event

SLOW = "slow consumer: fell too far behind; reconnect with your last event id"
SLOW_CLOSE_GRACE = 1.0
"""Seconds a dropped slow consumer's connection gets to close politely before it is cut."""
TRANSPORTS = ("sse", "ws")

Framing = Callable[[Sequence[Event]], bytes]
"""Events → the bytes one write puts on a connection (a batch coalesced into one write)."""


class Sink(Protocol):
    """One connection's write side, as the hub sees it."""

    framing: Framing
    """The same function object for every connection framed alike: publish frames once per
    framing, not once per subscriber."""
    plain: bool
    """Nothing stands between the queue and the transport: write-through is allowed."""
    paused: bool
    """The transport asked us to stop writing (asyncio flow control)."""

    def write(self, data: bytes) -> None:
        """Put framed bytes on the connection now; never blocks, never raises."""

    def close(self, reason: str) -> None:
        """End the connection politely, telling the client why (SSE end, WebSocket close)."""

    def abort(self) -> None:
        """Cut a connection that has not gone after ``close`` (a stuck socket)."""


class Subscriber:
    """One connection's view of a stream: a backlog to catch up on, then live events."""

    def __init__(self, transport: str, limit: int, backlog: Iterable[Event] = ()):
        self.transport = transport
        """``"sse"`` or ``"ws"``: which metrics this subscriber counts under."""
        self.limit = limit
        self.pending: list[Event] = list(backlog)
        """Events waiting for the connection (a list: it is empty nearly always, and an empty
        list costs a tenth of an empty deque, per subscriber)."""
        self.catch_up = len(self.pending)
        self.dropped: str | None = None
        self.hub: Hub | None = None
        """The hub it is subscribed to, which counts it if it is dropped as slow (by its queue
        or by a fault stage's: ``web/faults.py``)."""
        self.sink: Sink | None = None
        self.direct = False
        """Publish may write straight to the sink: attached, plain, not paused, nothing pending.
        Kept up to date at each change so that publish tests one attribute."""

    def attach(self, sink: Sink) -> None:
        """Connect the write side; the backlog goes out at once (one write)."""
        self.sink = sink
        if self.dropped is not None:
            sink.close(self.dropped)
        else:
            self.flush()

    def flush(self) -> None:
        """Write everything pending in one write if the sink can take it, then write through.

        Called when the sink is attached, when it resumes writing, and after a resume replaces
        the queue. Everything pending is written before ``direct`` is set again, so events
        reach the connection in order whichever path they take.
        """
        sink = self.sink
        if sink is None or self.dropped is not None or sink.paused:
            self.direct = False
            return
        if self.pending:
            batch, self.pending = self.pending, []
            self.catch_up = 0
            data = sink.framing(batch)
            if data:
                sink.write(data)
        self.direct = sink.plain and not sink.paused  # the write itself may have paused it

    def pause(self) -> None:
        """The transport's buffer is full: queue from now on."""
        self.direct = False

    def push(self, events: list[Event]) -> bool:
        """Queue live events; False (and dropped) when past the bound.

        Past the bound means ``limit`` live events were already waiting: judged before this
        batch, so one batch larger than the bound (speed max emits up to 64 at once) does not drop
        a subscriber that has taken everything so far. For single events this is the same test.
        """
        if self.dropped is not None:
            return False
        if len(self.pending) - self.catch_up >= self.limit:
            self.drop(SLOW)
            return False
        self.pending.extend(events)
        if self.sink is not None and not self.sink.paused:
            self.flush()  # a sink that is not plain takes every batch this way
        return True

    def replace(self, backlog: Iterable[Event]) -> None:
        """Start over from a new position (a client's resume on an open connection)."""
        self.pending = list(backlog)
        self.catch_up = len(self.pending)
        self.flush()

    def drop(self, reason: str) -> None:
        """Stop delivering and close the connection with ``reason``; a slow consumer's is cut
        after a grace period, since a client that stopped reading may never let it close."""
        if self.dropped is not None:
            return
        self.dropped = reason
        self.direct = False
        self.pending.clear()
        if reason == SLOW and self.hub is not None:
            self.hub.dropped_as_slow(self)
        sink = self.sink
        if sink is not None:
            sink.close(reason)
            if reason == SLOW:
                asyncio.get_running_loop().call_later(SLOW_CLOSE_GRACE, sink.abort)


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

    def add(self, subscriber: Subscriber) -> None:
        subscriber.hub = self
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
                elif not subscriber.push(events):
                    lost += 1
                    self.remove(subscriber)
            self.deliveries[transport] += (len(members) - lost) * count

    def backlog(self) -> int:
        """The longest live queue: how far the slowest subscriber is behind."""
        return max((len(s.pending) - s.catch_up for s in self.subscribers), default=0)

    def close_all(self, reason: str) -> None:
        for subscriber in list(self.subscribers):
            subscriber.drop(reason)
        self.subscribers.clear()
        for group in self._by_transport.values():
            group.clear()
        self.has_subscribers.clear()
