"""clients/frames.py: the SSE and WebSocket decoders, byte by byte, cut anywhere, and fed
what no livesim server sends."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hostile import SSE_PIECES, WS_FRAMES, cut
from hypothesis import given, settings
from hypothesis import strategies as st

from clients.frames import MAX_CHUNK_LINE, SseDecoder, WsDecoder

# Decoders --------------------------------------------------------------------------------------


class Collect:
    def __init__(self) -> None:
        self.events: list[tuple[bytes, bytes, float | None, bytes | None]] = []
        self.bad = 0

    def event(
        self, event_id: bytes, type: bytes, due: float | None, reason: bytes | None, now: float
    ) -> None:
        self.events.append((event_id, type, due, reason))

    def malformed(self) -> None:
        self.bad += 1


def envelope(event_id: str, type: str, **extra: Any) -> bytes:
    body = {
        "id": event_id,
        "type": type,
        "stream": "s",
        "archive_time": None,
        "due_at": "1970-01-01T00:01:02.500Z",
        **extra,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def sse_body() -> bytes:
    frames = [
        b"retry: 2000\n\n",
        b"id: a-1\nevent: post.created\ndata: %s\n\n"
        % envelope("a-1", "post.created", post={"body": '"due_at":"2000-01-01T00:00:00.000Z"'}),
        b": ping\n\n",
        b"data: {not json\n\n",  # a garbled frame: no id
        b"id: a-2\nevent: stream.reset\ndata: %s\n\n"
        % envelope("a-2", "stream.reset", data={"reason": "loop"}),
    ]
    return b"".join(b"%x\r\n%s\r\n" % (len(f), f) for f in frames) + b"0\r\n\r\n"


def test_sse_decoder_whatever_the_chunking() -> None:
    body = sse_body()
    for size in (1, 2, 3, 7, 64, len(body)):
        sink = Collect()
        decoder = SseDecoder(sink, chunked=True)
        for at in range(0, len(body), size):
            decoder.feed(body[at : at + size], 0.0)
        assert sink.events == [
            (b"a-1", b"post.created", 62.5, None),
            (b"a-2", b"stream.reset", 62.5, b"loop"),
        ]
        assert sink.bad == 1 and decoder.heartbeats == 1 and decoder.ended


def ws_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    size = len(payload)
    if size < 126:
        return bytes((0x80 | opcode, size)) + payload
    if size < 65536:
        return bytes((0x80 | opcode, 126)) + size.to_bytes(2) + payload
    return bytes((0x80 | opcode, 127)) + size.to_bytes(8) + payload


def test_ws_decoder_whatever_the_chunking() -> None:
    big = envelope("a-2", "post.created", post={"body": "x" * 70000})
    stream = b"".join(
        [
            ws_frame(envelope("a-1", "post.created")),
            ws_frame(b"ping!", 0x9),
            ws_frame(b'{"type":"pong"}'),
            ws_frame(b"not json at all"),
            ws_frame(envelope("a-9", "post.created", post={"body": "cut"})[:30]),  # garbled
            ws_frame(big),
            ws_frame(envelope("a-3", "stream.reset", data={"reason": "private"})),
            ws_frame(b"\x03\xe8", 0x8),
        ]
    )
    for size in (1, 5, 1000, len(stream)):
        sink = Collect()
        decoder = WsDecoder(sink)
        control: list[tuple[int, bytes]] = []
        for at in range(0, len(stream), size):
            control += decoder.feed(stream[at : at + size], 0.0)
        assert [e[0] for e in sink.events] == [b"a-1", b"a-2", b"a-3"]
        assert sink.events[2][3] == b"private"
        assert control == [(0x9, b"ping!"), (0x8, b"\x03\xe8")]
        assert sink.bad == 2 and decoder.messages == 1


@pytest.mark.parametrize(
    "body,error",
    [
        (b"-5\r\nid: x\r\n", "a bad chunk size"),  # was taken as -5: stuck, buffering forever
        (b"zz\r\n", "a bad chunk size"),
        (b"1" * 2000, "a chunk-size line over 1024 bytes"),
        (b"%x\r\n" % 5000 + b"id: x-1\ndata: " + b"x" * 4990, "an SSE frame over 4096 bytes"),
    ],
)
def test_sse_decoder_refuses_what_is_not_a_chunked_event_stream(body: bytes, error: str) -> None:
    sink = Collect()
    decoder = SseDecoder(sink, chunked=True, max_frame=4096)
    for at in range(0, len(body), 100):
        decoder.feed(body[at : at + 100], 0.0)
        assert decoder.held <= 4096 + 1024
    decoder.feed(b"more" * 1000, 0.0)
    assert decoder.error is not None and decoder.error.startswith(error)
    assert decoder.held == 0 and sink.events == []


def test_ws_decoder_refuses_a_frame_over_its_bound_before_it_arrives() -> None:
    sink = Collect()
    decoder = WsDecoder(sink, max_frame=4096)
    assert decoder.feed(ws_frame(b"x" * 4096)[:3000], 0.0) == []
    assert decoder.error is None and decoder.held == 3000
    decoder = WsDecoder(sink, max_frame=4096)
    decoder.feed(bytes((0x81, 127)) + (2**62).to_bytes(8), 0.0)
    assert decoder.error == (
        f"a WebSocket frame of {2**62} bytes, over 4096 bytes (--max-event-bytes)"
    )
    assert decoder.held == 0
    decoder.feed(b"x" * 65536, 0.0)
    assert decoder.held == 0 and sink.events == []
    decoder = WsDecoder(sink)
    decoder.feed(bytes((0x81, 0x85)) + b"\0\0\0\0hello", 0.0)
    assert decoder.error == "a masked frame from the server"


def test_the_decoders_are_linear_in_a_frame_that_arrives_slowly() -> None:
    sink = Collect()
    frame = b"id: x-1\ndata: " + envelope("x-1", "post.created", post={"body": "x" * 900_000})
    sse_decoder = SseDecoder(sink, chunked=False)
    ws_decoder = WsDecoder(sink)
    ws = ws_frame(frame[14:])
    began = time.monotonic()
    for at in range(0, len(frame), 256):
        sse_decoder.feed(frame[at : at + 256], 0.0)
        ws_decoder.feed(ws[at : at + 256], 0.0)
    sse_decoder.feed(b"\n\n" + ws[len(frame) :], 0.0)
    ws_decoder.feed(ws[len(frame) :], 0.0)
    assert time.monotonic() - began < 2.0  # a copy of the whole rest per chunk: minutes
    assert [e[0] for e in sink.events] == [b"x-1", b"x-1"]


# Any bytes, however cut (hypothesis) ----------------------------------------------------------

BOUND = 256


class Sink:
    def __init__(self) -> None:
        self.events: list[bytes] = []
        self.bad = 0

    def event(
        self, event_id: bytes, type: bytes, due: float | None, reason: Any, now: float
    ) -> None:
        assert isinstance(event_id, bytes) and isinstance(type, bytes)
        self.events.append(event_id)

    def malformed(self) -> None:
        self.bad += 1


@settings(max_examples=300, deadline=None)
@given(
    st.lists(SSE_PIECES, max_size=30),
    st.lists(st.integers(min_value=0), max_size=12),
    st.booleans(),
)
def test_sse_decoder_takes_any_bytes(pieces: list[bytes], points: list[int], chunked: bool) -> None:
    sink = Sink()
    decoder = SseDecoder(sink, chunked=chunked, max_frame=BOUND)
    for chunk in cut(b"".join(pieces), points):
        decoder.feed(chunk, 0.0)
        assert decoder.held <= BOUND + (MAX_CHUNK_LINE + 2 if chunked else 0)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(WS_FRAMES, st.binary(max_size=20)), max_size=20),
    st.lists(st.integers(min_value=0), max_size=12),
)
def test_ws_decoder_takes_any_bytes(frames: list[bytes], points: list[int]) -> None:
    sink = Sink()
    decoder = WsDecoder(sink, max_frame=BOUND)
    for chunk in cut(b"".join(frames), points):
        control = decoder.feed(chunk, 0.0)
        assert all(isinstance(payload, bytes) for _, payload in control)
        assert decoder.held <= BOUND + 14
