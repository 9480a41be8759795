"""The current epoch's events, kept for exact resume: bounded in count and in encoded bytes.

A cursor names a serial. ``since`` answers the events after it while they are still held, and None
once the oldest it would need has been dropped (or it was never issued): the caller then sends a
``stream.reset``. ``clear`` starts a new epoch; the event that follows (the epoch's
``stream.reset``) is then the oldest held, so the cursor just before it still resumes exactly.
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


class EventLog:
    def __init__(self, limit: int, max_bytes: int):
        self.limit = limit
        self.max_bytes = max_bytes
        self._events: deque[Event] = deque()
        self._bytes = 0

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
        self._bytes += event_size(event)
        while len(self._events) > self.limit or self._bytes > self.max_bytes:
            self._bytes -= event_size(self._events.popleft())

    def clear(self) -> None:
        self._events.clear()
        self._bytes = 0

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
