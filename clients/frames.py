"""Sans-I/O decoders for a client holding thousands of livesim connections.

Feed them the bytes a socket delivered; they call ``sink`` once per event with the event's id,
type, ``due_at`` (epoch seconds) and, for ``stream.reset`` only, its reason. Nothing is
JSON-parsed except a reset's data (to learn its reason), and an envelope whose ``due_at`` is not
where livesim puts it.

- ``SseDecoder``: an HTTP/1.1 chunked (or HTTP/1.0 plain) body of SSE frames as livesim writes
  them: ``id: …\\nevent: …\\ndata: {envelope}\\n\\n`` (LF line ends, one ``data`` line; for a
  spec-complete parser of any server's SSE see ``clients/sse.py``). A frame with data and no
  ``id`` is counted as malformed; comments (heartbeats) and ``retry`` are skipped.
- ``WsDecoder``: unmasked server frames (RFC 6455); text frames that are envelopes become
  events, ``{"type": …}`` messages (``pong``, ``resumed``, ``error``) are reported apart,
  anything else is malformed. Pings and the close frame are handed back to be answered.

Both hold a bounded amount whatever the server sends, and are linear in the bytes: a frame not
yet whole is kept up to ``max_frame`` bytes (default 1 MiB, ``--max-event-bytes``), a chunk-size
line up to ``MAX_CHUNK_LINE``; past that, or on bytes that cannot be an HTTP chunked body or a
server's WebSocket frame, ``error`` says why (one line) and the decoder takes nothing more: the
connection is broken, and its owner closes it. ``feed`` raises nothing.
"""

from __future__ import annotations

import re
from typing import Protocol

import orjson

from .judge import DUE_KEY, DUE_LEN, parse_due
from .sse import MAX_EVENT_BYTES

RESET = b"stream.reset"
ID_PREFIX = b'{"id":"'
TYPE_AFTER_ID = b'","type":"'
_ID_SKIP = len(ID_PREFIX)
_TYPE_SKIP = len(TYPE_AFTER_ID)
MAX_CHUNK_LINE = 1024
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")


class Sink(Protocol):
    def event(
        self,
        event_id: bytes,
        type: bytes,
        due: float | None,
        reset_reason: bytes | None,
        now: float,
    ) -> None: ...

    def malformed(self) -> None: ...


_DUES: dict[bytes, float] = {}
"""``due_at`` text → epoch seconds: a fan-out brings each event's ``due_at`` once per connection,
so most are looked up rather than parsed."""
_DUE_SKIP = len(DUE_KEY)


def _due(data: bytes | bytearray, start: int, end: int) -> float | None:
    at = data.find(DUE_KEY, start, end)
    if at >= 0:
        at += _DUE_SKIP
        text = bytes(data[at : at + DUE_LEN])
        due = _DUES.get(text)
        if due is not None:
            return due
        due = parse_due(text)
        if due is not None:
            if len(_DUES) >= 4096:
                _DUES.clear()
            _DUES[text] = due
            return due
    try:  # not where livesim puts it: parse the envelope after all
        value = orjson.loads(bytes(data[start:end])).get("due_at")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return parse_due(value.encode()) if isinstance(value, str) else None


def _reason(envelope: bytes) -> bytes:
    try:
        reason = orjson.loads(envelope)["data"]["reason"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return b"?"
    return str(reason).encode()


class SseDecoder:
    """An SSE response body → events, for livesim's framing (see the module docstring)."""

    def __init__(self, sink: Sink, *, chunked: bool, max_frame: int = MAX_EVENT_BYTES) -> None:
        self.sink = sink
        self.chunked = chunked
        self.max_frame = max_frame
        self.ended = False
        """The terminating chunk arrived: the server ended the response."""
        self.error: str | None = None
        """Why the body cannot be read on (then ``feed`` takes nothing more)."""
        self.heartbeats = 0
        self._raw = bytearray()
        self._left = 0
        self._rest = bytearray()
        """The start of a frame not yet whole."""
        self._scan = 0
        """Where in ``_rest`` to look for the blank line: the bytes before hold none."""

    @property
    def held(self) -> int:
        """Bytes kept between feeds."""
        return len(self._rest) + len(self._raw)

    def feed(self, data: bytes, now: float) -> None:
        """``now``: when these bytes were read (the receive time of the events they end)."""
        if self.error is not None:
            return
        if self.chunked:
            data = self._dechunk(data)
            if self.error is not None:
                self._raw.clear()
                self._rest.clear()
                return
        rest = self._rest
        if rest:
            rest += data
            if rest.find(b"\n\n", self._scan) < 0:
                self._scan = len(rest) - 1  # a blank line may straddle two feeds
                self._bound(len(rest))
                return
            frames = bytes(rest)  # one copy, when a frame is whole
            rest.clear()
        else:
            # ``bytes``, not a ``bytearray``: slices of it are the ids handed on, no copy more.
            frames = bytes(data)
        start = 0
        while (end := frames.find(b"\n\n", start)) >= 0:
            if end - start > self.max_frame:
                self._bound(end - start)
                return
            self._frame(frames, start, end, now)
            start = end + 2
        if start < len(frames):
            rest += memoryview(frames)[start:]
            self._scan = len(rest) - 1
            self._bound(len(rest))

    def _bound(self, size: int) -> None:
        if size > self.max_frame:
            self.error = f"an SSE frame over {self.max_frame} bytes (--max-event-bytes)"
            self._rest = bytearray()

    def _frame(self, frames: bytes, start: int, end: int, now: float) -> None:
        if frames.startswith(b"id: ", start):
            line = frames.find(b"\n", start, end)
            data_at = frames.find(b"\ndata: ", start, end)
            if line < 0 or data_at < 0:
                self.sink.malformed()
                return
            event_id = frames[start + 4 : line]
            type = b""
            if frames.startswith(b"event: ", line + 1):
                type = frames[line + 8 : frames.find(b"\n", line + 1, end + 1)]
            data_at += 7
            reason = _reason(frames[data_at:end]) if type == RESET else None
            self.sink.event(event_id, type, _due(frames, data_at, end), reason, now)
        elif frames.startswith(b":", start):
            self.heartbeats += 1
        elif not frames.startswith(b"retry:", start) and end > start:
            self.sink.malformed()

    def _dechunk(self, data: bytes) -> bytes:
        if not self._raw and not self._left:  # most reads are one whole chunk: no copies
            eol = data.find(b"\r\n", 0, 18)
            if eol > 0 and _CHUNK_SIZE.fullmatch(data, 0, eol):
                end = eol + 2 + int(data[:eol], 16)
                if end > eol + 2 and len(data) == end + 2 and data.endswith(b"\r\n"):
                    return data[eol + 2 : end]
        raw = self._raw
        raw += data
        out = bytearray()
        pos = 0
        while not self.ended and self.error is None:
            if self._left == 0:
                eol = raw.find(b"\r\n", pos)
                if eol < 0:
                    if len(raw) - pos > MAX_CHUNK_LINE:
                        self.error = f"a chunk-size line over {MAX_CHUNK_LINE} bytes"
                    break
                size = raw[pos:eol].split(b";", 1)[0].strip()
                pos = eol + 2
                if not size:  # the CRLF after a chunk's data
                    continue
                if not _CHUNK_SIZE.fullmatch(size):
                    self.error = f"a bad chunk size {bytes(size[:20])!r}"
                    break
                self._left = int(size, 16)
                if self._left == 0:
                    self.ended = True
                    break
            take = min(self._left, len(raw) - pos)
            if take <= 0:
                break
            out += raw[pos : pos + take]
            pos += take
            self._left -= take
        del raw[:pos]
        return bytes(out)


def _whole(buf: bytes, start: int, end: int) -> bool:
    """Whether a text frame is a whole envelope. Its last key is the ``post`` or ``data`` object,
    so it ends with ``}}``, which a cut-off prefix does not (post fields hold no nested objects);
    anything else is parsed to make sure."""
    if buf.endswith(b"}}", start, end):
        return True
    try:
        return isinstance(orjson.loads(buf[start:end]), dict)
    except orjson.JSONDecodeError:
        return False


class WsDecoder:
    """Unmasked server frames → events; control frames are returned to the caller by ``feed``
    as ``(opcode, payload)`` (ping 0x9, close 0x8)."""

    def __init__(self, sink: Sink, *, max_frame: int = MAX_EVENT_BYTES) -> None:
        self.sink = sink
        self.max_frame = max_frame
        self.messages = 0
        """Text messages that are not events (``pong``, ``resumed``, ``error``)."""
        self.error: str | None = None
        """Why the stream of frames cannot be read on (then ``feed`` takes nothing more)."""
        self._rest = bytearray()
        """The start of a frame not yet whole."""
        self._need = 0
        """How many bytes ``_rest`` must hold before it is worth looking at again."""

    @property
    def held(self) -> int:
        """Bytes kept between feeds."""
        return len(self._rest)

    def feed(self, data: bytes, now: float) -> list[tuple[int, bytes]]:
        control: list[tuple[int, bytes]] = []
        if self.error is not None:
            return control
        rest = self._rest
        if rest:
            rest += data
            if len(rest) < self._need:
                return control
            buf = bytes(rest)  # one copy, when a frame is whole
            rest.clear()
        else:
            # ``bytes``, not a ``bytearray``: slices of it are the ids handed on, no copy more.
            buf = bytes(data)
        pos = 0
        size = len(buf)
        self._need = 2
        while size - pos >= 2:
            if buf[pos + 1] & 0x80:
                self.error = "a masked frame from the server"
                return control
            opcode, length = buf[pos] & 0x0F, buf[pos + 1] & 0x7F
            start = pos + 2
            if length == 126:
                start += 2
                length = int.from_bytes(buf[pos + 2 : start]) if size >= start else -1
            elif length == 127:
                start += 8
                length = int.from_bytes(buf[pos + 2 : start]) if size >= start else -1
            if length > self.max_frame:
                self.error = (
                    f"a WebSocket frame of {length} bytes, over {self.max_frame} bytes "
                    "(--max-event-bytes)"
                )
                return control
            if length < 0 or size < start + length:
                self._need = (start - pos) + max(length, 0)
                break
            end = start + length
            if opcode == 0x1:
                self._text(buf, start, end, now)
            elif opcode >= 0x8:
                control.append((opcode, buf[start:end]))
            else:  # binary or a continuation: livesim sends neither
                self.sink.malformed()
            pos = end
        rest += memoryview(buf)[pos:]
        return control

    def text(self, payload: bytes, now: float) -> None:
        """One whole text message (from a WebSocket library that did the framing)."""
        self._text(payload, 0, len(payload), now)

    def _text(self, buf: bytes, start: int, end: int, now: float) -> None:
        is_event = buf.startswith(ID_PREFIX, start)
        if is_event and not buf.endswith(b"}}", start, end) and not _whole(buf, start, end):
            self.sink.malformed()  # a cut-off envelope (the ``garble`` fault): not an event
        elif is_event:
            quote = buf.find(b'"', start + _ID_SKIP, end)
            if quote < 0:
                self.sink.malformed()
                return
            event_id = buf[start + _ID_SKIP : quote]
            type = b""
            if buf.startswith(TYPE_AFTER_ID, quote):
                at = quote + _TYPE_SKIP
                type = buf[at : buf.find(b'"', at, end)]
            reason = _reason(buf[start:end]) if type == RESET else None
            self.sink.event(event_id, type, _due(buf, quote, end), reason, now)
        elif buf.startswith(b'{"type":"', start):
            self.messages += 1
        else:
            self.sink.malformed()
