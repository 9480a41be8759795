"""The current epoch's events, kept for exact resume: bounded in count and in encoded bytes.

A cursor names a serial. ``since`` answers the events after it while they are still held, and None
once the oldest it would need has been dropped (or it was never issued): the caller then sends a
``stream.reset``. ``clear`` starts a new epoch; the event that follows (the epoch's
``stream.reset``) is then the oldest held, so the cursor just before it still resumes exactly.

Logs may also share a ``LogPool``, a budget of bytes for a group of them (the private replays'):
when the pool is over, logs give up their oldest events, down to an equal share each, starting
with the one that just grew. Nothing is refused; older cursors get a ``stream.reset`` sooner.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from .wire import Event

WS_HEADER = 10
"""The most a server WebSocket frame adds to its payload (RFC 6455: 2 + 8 length bytes)."""


def event_size(event: Event) -> int:
    """What an event can cost the log: its JSON, its SSE frame, and its WebSocket frame, counted
    whether or not it was built yet (it is built on first use), so the bound holds either way."""
    return 2 * len(event.json) + WS_HEADER + len(event.sse)


class LogPool:
    """Encoded bytes a group of event logs may hold together."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._logs: set[EventLog] = set()

    def __len__(self) -> int:
        return len(self._logs)

    def join(self, log: EventLog) -> None:
        self._logs.add(log)

    def leave(self, log: EventLog) -> None:
        self._logs.discard(log)

    def settle(self, grown: EventLog) -> None:
        """Back within the limit: ``grown`` (which just appended) first, then any log over its
        share. Every log at its share or below makes the sum at most the limit; a log is only
        scanned for while the pool is over, which its own appends then cure."""
        if self.used <= self.limit:
            return
        share = self.limit // max(1, len(self._logs))
        grown.trim(share)
        for log in list(self._logs):
            if self.used <= self.limit:
                return
            log.trim(share)


class EventLog:
    def __init__(self, limit: int, max_bytes: int):
        self.limit = limit
        self.max_bytes = max_bytes
        self._events: deque[Event] = deque()
        self._bytes = 0
        self._pool: LogPool | None = None

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[Event]:
        return iter(self._events)

    @property
    def size(self) -> int:
        """Encoded bytes held."""
        return self._bytes

    def append(self, event: Event) -> None:
        self._events.append(event)
        self._count(event_size(event))
        while len(self._events) > self.limit or self._bytes > self.max_bytes:
            self._count(-event_size(self._events.popleft()))
        if self._pool is not None:
            self._pool.settle(self)

    def share(self, pool: LogPool) -> None:
        """Count what is held in ``pool`` from now on, and give up events when it is over."""
        pool.join(self)
        pool.used += self._bytes
        self._pool = pool
        pool.settle(self)

    def trim(self, max_bytes: int) -> None:
        """Drop the oldest events until at most ``max_bytes`` are held."""
        while self._bytes > max_bytes and self._events:
            self._count(-event_size(self._events.popleft()))

    def clear(self) -> None:
        self._events.clear()
        self._count(-self._bytes)

    def close(self) -> None:
        """The replay is over: hold nothing, and leave the pool (giving back what it counted)."""
        self.clear()
        if self._pool is not None:
            self._pool.leave(self)
            self._pool = None

    def _count(self, delta: int) -> None:
        self._bytes += delta
        if self._pool is not None:
            self._pool.used += delta

    def since(self, serial: int, latest: int) -> list[Event] | None:
        """Events after ``serial`` (``latest`` is the newest issued), or None if not held."""
        if serial > latest:
            return None
        first = self._events[0].serial if self._events else latest + 1
        if serial < first - 1:
            return None
        if serial == latest:
            return []
        return [e for e in self._events if e.serial > serial]
