"""Fan-out: hand each event's bytes to every subscriber without letting one hold up the rest.

Publishing appends a reference to the already-encoded event to each subscriber's pending queue
and wakes its writer; no encoding, no task and no await per subscriber. A queue has a bound: a
subscriber that falls that far behind is dropped (its writer closes the connection) and counted.
It loses nothing: it reconnects with its last event id and resumes.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable

from .wire import Event

SLOW = "slow consumer: fell too far behind; reconnect with your last event id"


class Subscriber:
    """One connection's view of a stream: a backlog to catch up on, then live events."""

    def __init__(self, limit: int, backlog: Iterable[Event] = (), transport: str = "sse"):
        self.limit = limit
        self.transport = transport
        self.pending: deque[Event] = deque(backlog)
        self.catch_up = len(self.pending)
        self.dropped: str | None = None
        self.on_drop: Callable[[str], None] | None = None
        """Set by the transport: closes a connection whose writer may be stuck on a full socket."""
        self._ready = asyncio.Event()
        if self.pending:
            self._ready.set()

    def push(self, events: list[Event]) -> bool:
        """Queue live events; False (and dropped) when past the bound.

        Past the bound means ``limit`` live events were already waiting: judged before this
        batch, so one batch larger than the bound (speed max emits up to 64 at once) does not drop
        a subscriber that has taken everything so far. For single events this is the same test.
        """
        if self.dropped:
            return False
        if len(self.pending) - self.catch_up >= self.limit:
            self.drop(SLOW)
            return False
        self.pending.extend(events)
        self._ready.set()
        return True

    def replace(self, backlog: Iterable[Event]) -> None:
        """Start over from a new position (a client's resume on an open connection)."""
        self.pending = deque(backlog)
        self.catch_up = len(self.pending)
        self._ready.set()

    def drop(self, reason: str) -> None:
        self.dropped = reason
        if self.on_drop:
            self.on_drop(reason)
        self.pending.clear()
        self._ready.set()

    async def next_batch(self, idle: float | None = None) -> list[Event]:
        """Everything queued, waiting up to ``idle`` seconds; [] after that or when dropped."""
        if not self._ready.is_set():
            try:
                async with asyncio.timeout(idle):
                    await self._ready.wait()
            except TimeoutError:
                return []
        self._ready.clear()
        if self.dropped:
            return []
        batch = list(self.pending)
        self.pending.clear()
        self.catch_up = 0
        return batch


class Hub:
    def __init__(self) -> None:
        self.subscribers: set[Subscriber] = set()
        self.dropped_slow = 0
        self.deliveries: dict[str, int] = {}
        """Events handed to subscribers, per transport (read by /metrics)."""
        self.has_subscribers = asyncio.Event()

    def add(self, subscriber: Subscriber) -> None:
        self.subscribers.add(subscriber)
        self.has_subscribers.set()

    def remove(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)
        if not self.subscribers:
            self.has_subscribers.clear()

    def subscriber_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for subscriber in self.subscribers:
            counts[subscriber.transport] = counts.get(subscriber.transport, 0) + 1
        return counts

    def publish(self, events: list[Event]) -> None:
        if not events:
            return
        for transport, count in self.subscriber_counts().items():  # TODO(#9): O(1) counts
            self.deliveries[transport] = self.deliveries.get(transport, 0) + count * len(events)
        for subscriber in list(self.subscribers):
            if not subscriber.push(events):
                self.dropped_slow += subscriber.dropped == SLOW
                self.remove(subscriber)

    def backlog(self) -> int:
        """The longest live queue: how far the slowest subscriber is behind."""
        return max((len(s.pending) - s.catch_up for s in self.subscribers), default=0)

    def close_all(self, reason: str) -> None:
        for subscriber in list(self.subscribers):
            subscriber.drop(reason)
        self.subscribers.clear()
        self.has_subscribers.clear()
