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
"""

from __future__ import annotations

from typing import Protocol

import orjson

from .judge import DUE_KEY, DUE_LEN, parse_due

RESET = b"stream.reset"
ID_PREFIX = b'{"id":"'
TYPE_AFTER_ID = b'","type":"'
_ID_SKIP = len(ID_PREFIX)
_TYPE_SKIP = len(TYPE_AFTER_ID)


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

    def __init__(self, sink: Sink, *, chunked: bool) -> None:
        self.sink = sink
        self.chunked = chunked
        self.ended = False
        """The terminating chunk arrived: the server ended the response."""
        self.heartbeats = 0
        self._raw = bytearray()
        self._left = 0
        self._rest = b""
        """The start of a frame not yet whole."""

    def feed(self, data: bytes, now: float) -> None:
        """``now``: when these bytes were read (the receive time of the events they end)."""
        if self.chunked:
            data = self._dechunk(data)
        # ``bytes``, not a ``bytearray``: slices of it are the ids handed on, with no copy more.
        frames = self._rest + data if self._rest else bytes(data)
        start = 0
        while (end := frames.find(b"\n\n", start)) >= 0:
            self._frame(frames, start, end, now)
            start = end + 2
        self._rest = frames[start:]

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
        raw = self._raw
        raw += data
        out = bytearray()
        pos = 0
        while not self.ended:
            if self._left == 0:
                eol = raw.find(b"\r\n", pos)
                if eol < 0:
                    break
                size = raw[pos:eol].split(b";", 1)[0].strip()
                pos = eol + 2
                if not size:  # the CRLF after a chunk's data
                    continue
                try:
                    self._left = int(size, 16)
                except ValueError:
                    self.sink.malformed()
                    self.ended = True
                    break
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

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.messages = 0
        """Text messages that are not events (``pong``, ``resumed``, ``error``)."""
        self.errors: list[bytes] = []
        self._rest = b""
        """The start of a frame not yet whole."""

    def feed(self, data: bytes, now: float) -> list[tuple[int, bytes]]:
        # ``bytes``, not a ``bytearray``: slices of it are the ids handed on, with no copy more.
        buf = self._rest + data if self._rest else bytes(data)
        control: list[tuple[int, bytes]] = []
        pos = 0
        size = len(buf)
        while size - pos >= 2:
            opcode, length = buf[pos] & 0x0F, buf[pos + 1] & 0x7F
            start = pos + 2
            if length == 126:
                start += 2
                length = int.from_bytes(buf[pos + 2 : start]) if size >= start else -1
            elif length == 127:
                start += 8
                length = int.from_bytes(buf[pos + 2 : start]) if size >= start else -1
            if length < 0 or size < start + length:
                break
            end = start + length
            if opcode == 0x1:
                self._text(buf, start, end, now)
            elif opcode >= 0x8:
                control.append((opcode, buf[start:end]))
            else:  # binary or a continuation: livesim sends neither
                self.sink.malformed()
            pos = end
        self._rest = buf[pos:]
        return control

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
            if buf.startswith(b'{"type":"error"', start) and len(self.errors) < 10:
                self.errors.append(buf[start:end])
        else:
            self.sink.malformed()
