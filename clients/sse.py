"""A small Server-Sent Events reader that follows the WHATWG EventSource processing model.

https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation

``SSEParser`` is sans-I/O: feed it bytes in chunks of any size, get back what they complete.
``SSEReader`` wraps it as an async iterator over an aiohttp response (or any ``StreamReader``).

What a browser does, this does: lines end at LF, CRLF or CR (also when a CRLF is split between
chunks); a UTF-8 BOM at the very start is dropped; ``field: value`` loses one optional space after
the colon; a line without a colon is a field with an empty value; ``data`` lines are joined with
LF; ``id`` sets the last event id unless it contains NUL, and that id sticks to later events;
``retry`` takes effect only when it is all ASCII digits; a blank line dispatches, unless no data
was given, in which case the event is dropped; a trailing event without its blank line is dropped
at end of stream; unknown fields are ignored. Comments (lines starting with ``:``) and ``retry``
changes are dropped too unless asked for.

What a browser does not promise, this does: it holds a bounded amount whatever the server sends.
An event (its data lines, and a line not yet whole) over ``max_event_bytes`` (default 1 MiB) raises
``EventTooLarge`` (a ``ValueError``), the only error ``feed`` raises; and parsing is linear in
the bytes, however they are chunked.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Event:
    """A dispatched event: ``id`` is the last event id at dispatch, ``retry`` the reconnection
    time in milliseconds then in effect (None until the server sets one)."""

    id: str
    event: str
    data: str
    retry: int | None = None


@dataclass(frozen=True, slots=True)
class Comment:
    """A comment line, without its leading colon (``": ping"`` → ``" ping"``)."""

    text: str


@dataclass(frozen=True, slots=True)
class Retry:
    """A valid ``retry`` field: the reconnection time changed to ``milliseconds``."""

    milliseconds: int


Item = Event | Comment | Retry


MAX_EVENT_BYTES = 1024 * 1024
"""Default bound on one line and on one event's data (``--max-event-bytes``)."""

_LINE_END = re.compile(rb"[\r\n]")
_BOM = b"\xef\xbb\xbf"


class EventTooLarge(ValueError):
    """An event (its data lines, or a line of it not yet whole) went over ``max_event_bytes``:
    the server is not sending an event stream a client can hold. The parser is unusable
    afterwards."""


class SSEParser:
    """The event-stream interpretation algorithm, one chunk of bytes at a time.

    Linear in the bytes fed (each byte is scanned once, however the stream is cut) and bounded:
    the data lines of an event not yet dispatched and a line not yet whole hold at most
    ``max_event_bytes`` together; more raises ``EventTooLarge``."""

    def __init__(
        self,
        *,
        comments: bool = False,
        retries: bool = False,
        max_event_bytes: int = MAX_EVENT_BYTES,
    ) -> None:
        self.comments = comments
        self.retries = retries
        self.max_event_bytes = max_event_bytes
        self.last_event_id = ""
        self.retry: int | None = None
        self._buffer = bytearray()
        """The start of a line whose end has not arrived (none of it is a CR or LF)."""
        self._after_cr = False
        """The last line ended with CR: an LF right after it is the rest of a CRLF."""
        self._started = False
        self._data: list[str] = []
        self._data_bytes = 0
        self._event = ""
        self._id = ""

    @property
    def held(self) -> int:
        """Bytes kept between feeds: an unfinished line and the pending event's data."""
        return len(self._buffer) + self._data_bytes

    def feed(self, chunk: bytes) -> list[Item]:
        """Everything the bytes so far complete, in order."""
        out: list[Item] = []
        if not self._started:
            self._buffer += chunk
            if len(self._buffer) < len(_BOM) and _BOM.startswith(self._buffer):
                return out  # a BOM may be arriving a byte at a time
            self._started = True
            chunk = bytes(self._buffer).removeprefix(_BOM)
            self._buffer.clear()
        start = 0
        if self._after_cr and chunk[:1] == b"\n":
            start = 1
        self._after_cr = False
        for end in _LINE_END.finditer(chunk, start):
            at = end.start()
            if at < start:  # the LF of a CRLF, skipped below
                continue
            if self._buffer:
                self._buffer += chunk[start:at]
                line = bytes(self._buffer)
                self._buffer.clear()
            else:
                line = chunk[start:at]
            self._check(len(line))
            self._line(line, out)
            start = at + 1
            if chunk[at] == 13:  # CR: a CRLF is one line end
                if start == len(chunk):
                    self._after_cr = True
                elif chunk[start] == 10:
                    start += 1
        self._check(len(self._buffer) + len(chunk) - start)
        self._buffer += chunk[start:]
        return out

    def close(self) -> list[Item]:
        """End of stream: an unfinished line and a pending event (no blank line after it) are
        discarded, as the spec says."""
        self._buffer.clear()
        self._data.clear()
        self._data_bytes = 0
        self._event = ""
        return []

    def _check(self, line: int) -> None:
        """The event so far (its data lines, and a ``line`` of it not yet whole) within bounds."""
        if self._data_bytes + line > self.max_event_bytes:
            raise EventTooLarge(
                f"an event of the event stream is over {self.max_event_bytes} bytes "
                "(--max-event-bytes)"
            )

    def _line(self, raw: bytes, out: list[Item]) -> None:
        if not raw:
            self._dispatch(out)
            return
        line = raw.decode("utf-8", "replace")
        if line.startswith(":"):
            if self.comments:
                out.append(Comment(line[1:]))
            return
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "event":
            self._event = value
        elif field == "data":
            self._data_bytes += len(raw) - (len(line) - len(value)) + 1  # the prefix is ASCII
            self._check(0)
            self._data.append(value)
        elif field == "id":
            if "\0" not in value:
                self._id = value
        elif field == "retry":
            if value and value.isascii() and value.isdigit():
                self.retry = int(value)
                if self.retries:
                    out.append(Retry(self.retry))

    def _dispatch(self, out: list[Item]) -> None:
        self.last_event_id = self._id
        if not self._data:
            self._event = ""
            return
        out.append(Event(self._id, self._event or "message", "\n".join(self._data), self.retry))
        self._data.clear()
        self._data_bytes = 0
        self._event = ""


class _Content(Protocol):
    def iter_any(self) -> AsyncIterator[bytes]: ...


class _HasContent(Protocol):
    @property
    def content(self) -> _Content: ...


class SSEReader:
    """``async for item in SSEReader(response)``: Events (and Comments / Retry if asked) as the
    bytes arrive; ends when the server ends the response. ``aclose()`` when done early."""

    def __init__(
        self,
        response: _HasContent,
        *,
        comments: bool = False,
        retries: bool = False,
        max_event_bytes: int = MAX_EVENT_BYTES,
        chunks: AsyncIterator[bytes] | None = None,
    ) -> None:
        """``chunks``: the body to read instead of ``response.content`` (e.g. decompressed)."""
        self.response = response
        self.comments = comments
        self.retries = retries
        self.parser = SSEParser(comments=True, retries=True, max_event_bytes=max_event_bytes)
        self._chunks = chunks if chunks is not None else response.content.iter_any()
        self._stash: deque[Item] = deque()
        self._items = self._iterate()

    @property
    def last_event_id(self) -> str:
        return self.parser.last_event_id

    @property
    def retry(self) -> int | None:
        return self.parser.retry

    def __aiter__(self) -> SSEReader:
        return self

    async def __anext__(self) -> Item:
        while True:
            item = self._stash.popleft() if self._stash else await anext(self._items)
            if isinstance(item, Event):
                return item
            if isinstance(item, Comment) and self.comments:
                return item
            if isinstance(item, Retry) and self.retries:
                return item

    async def aclose(self) -> None:
        await self._items.aclose()

    async def _iterate(self) -> AsyncGenerator[Item, None]:
        async for chunk in self._chunks:
            for item in self.parser.feed(chunk):
                yield item
        for item in self.parser.close():
            yield item

    async def ready(self) -> int:
        """Wait for the server's first ``retry`` field; the reconnection time it set.

        livesim writes it after the subscription is in place, so what is published from then on
        reaches this reader. Whatever came before it is kept for iteration."""
        while self.parser.retry is None:
            item = await anext(self._items)
            if not isinstance(item, Retry) or self.retries:
                self._stash.append(item)
        return self.parser.retry

    async def next_event(self) -> Event:
        """The next Event, skipping anything else; ``StopAsyncIteration`` at end of stream."""
        while True:
            item = await anext(self)
            if isinstance(item, Event):
                return item

    async def events(self, count: int) -> list[Event]:
        """The next ``count`` Events."""
        return [await self.next_event() for _ in range(count)]

    async def until(self, event: str, *, reason: str | None = None) -> list[Event]:
        """Events up to and including the first of type ``event`` (with ``data.reason``)."""
        out: list[Event] = []
        while True:
            item = await self.next_event()
            out.append(item)
            if item.event != event:
                continue
            if reason is None or json.loads(item.data)["data"]["reason"] == reason:
                return out
