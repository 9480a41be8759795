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
"""

from __future__ import annotations

import codecs
import json
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


class SSEParser:
    """The event-stream interpretation algorithm, one chunk of bytes at a time."""

    def __init__(self, *, comments: bool = False, retries: bool = False) -> None:
        self.comments = comments
        self.retries = retries
        self.last_event_id = ""
        self.retry: int | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._started = False
        self._data: list[str] = []
        self._event = ""
        self._id = ""

    def feed(self, chunk: bytes) -> list[Item]:
        """Everything the bytes so far complete, in order."""
        text = self._decoder.decode(chunk)
        if not self._started and text:
            self._started = True
            text = text.removeprefix("\ufeff")
        self._buffer += text
        out: list[Item] = []
        for line in self._complete_lines():
            self._line(line, out)
        return out

    def close(self) -> list[Item]:
        """End of stream: a CR waiting for a possible LF ends its line after all; an unfinished
        line and a pending event (no blank line after it) are discarded, as the spec says."""
        self._buffer += self._decoder.decode(b"", final=True)
        out: list[Item] = []
        for line in self._complete_lines():
            self._line(line, out)
        if self._buffer.endswith("\r"):
            self._line(self._buffer[:-1], out)
        self._buffer = ""
        self._data.clear()
        self._event = ""
        return out

    def _complete_lines(self) -> list[str]:
        """Split off the lines whose end is known; a CR at the buffer's end waits for the next
        chunk, which may start with the LF of a CRLF."""
        lines: list[str] = []
        start = 0
        buffer = self._buffer
        i = 0
        while i < len(buffer):
            char = buffer[i]
            if char == "\n":
                lines.append(buffer[start:i])
                start = i + 1
            elif char == "\r":
                if i + 1 == len(buffer):
                    break  # CR or CRLF? the next chunk decides
                lines.append(buffer[start:i])
                start = i + 2 if buffer[i + 1] == "\n" else i + 1
                i = start - 1
            i += 1
        self._buffer = buffer[start:]
        return lines

    def _line(self, line: str, out: list[Item]) -> None:
        if not line:
            self._dispatch(out)
            return
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
        self, response: _HasContent, *, comments: bool = False, retries: bool = False
    ) -> None:
        self.response = response
        self.comments = comments
        self.retries = retries
        self.parser = SSEParser(comments=True, retries=True)
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
        async for chunk in self.response.content.iter_any():
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
