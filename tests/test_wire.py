"""Bytes on the wire: the SSE frame, the JSON envelope, wall times and client messages."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from core_helpers import WALL_OFFSET, envelope, make_replay
from websockets.frames import Frame, Opcode

from simulator.core.archive import post_record
from simulator.core.wire import (
    SSE_HEARTBEAT,
    ClientMessageError,
    EventType,
    encode,
    message,
    parse_client_message,
    sse_retry,
    wall_time,
    ws_text_frame,
)

# Frames -----------------------------------------------------------------------------------


def test_sse_frame_is_id_event_data_and_a_blank_line() -> None:
    body = {"id": "abc-7", "type": "post.created", "n": 1}
    event = encode(7, "abc-7", EventType.POST_CREATED, body)
    assert event.serial == 7
    assert event.id == "abc-7"
    assert event.type is EventType.POST_CREATED
    assert event.json == b'{"id":"abc-7","type":"post.created","n":1}'
    assert event.sse == (
        b"id: abc-7\nevent: post.created\ndata: "
        + b'{"id":"abc-7","type":"post.created","n":1}\n\n'
    )


def test_sse_data_is_the_json_bytes_on_one_line() -> None:
    text = "Line one.\nLine two.\r\nCafé — “quoted” ☕\u2028end"
    event = encode(1, "x-1", EventType.POST_UPDATED, {"body": text})
    assert b"\n" not in event.json
    assert b"\r" not in event.json
    assert event.sse.endswith(b"\n\n")
    lines = event.sse[:-2].split(b"\n")
    assert lines == [b"id: x-1", b"event: post.updated", b"data: " + event.json]
    assert orjson.loads(lines[2].removeprefix(b"data: ")) == {"body": text}
    assert "Café".encode() in event.json  # UTF-8, not \u escapes


@pytest.mark.parametrize("type", list(EventType))
def test_sse_event_name_is_the_event_type(type: EventType) -> None:
    event = encode(3, "i-3", type, {})
    assert event.sse == b"id: i-3\nevent: " + str(type).encode() + b"\ndata: {}\n\n"


def test_retry_and_heartbeat_frames() -> None:
    assert sse_retry(2000) == b"retry: 2000\n\n"
    assert SSE_HEARTBEAT == b": ping\n\n"
    assert SSE_HEARTBEAT.startswith(b":")  # an SSE comment, ignored by EventSource


def test_server_message() -> None:
    assert orjson.loads(message("error", error="bad", path="$.op")) == {
        "type": "error",
        "error": "bad",
        "path": "$.op",
    }
    assert message("pong") == b'{"type":"pong"}'


# Wall time --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "1970-01-01T00:00:00.000Z"),
        (1402560000.0, "2014-06-12T08:00:00.000Z"),
        (1402560000.25, "2014-06-12T08:00:00.250Z"),
        (1402560010.5, "2014-06-12T08:00:10.500Z"),
        (0.0019, "1970-01-01T00:00:00.001Z"),  # truncated to the millisecond
        (1700000000.999, "2023-11-14T22:13:20.999Z"),
    ],
)
def test_wall_time(seconds: float, text: str) -> None:
    assert wall_time(seconds) == text


def test_wall_time_parses_back() -> None:
    text = wall_time(1402560123.456)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert moment == datetime(2014, 6, 12, 8, 2, 3, 456000, tzinfo=UTC)


# The envelope -----------------------------------------------------------------------------


def test_post_event_envelope() -> None:
    replay = make_replay([0, 10], wall_offset=WALL_OFFSET)
    [event] = replay.advance(replay.next_deadline() or 0.0)
    body = envelope(event)
    assert list(body) == ["id", "type", "stream", "archive_time", "due_at", "post"]
    assert body == {
        "id": "inc-2",
        "type": "post.created",
        "stream": "s1",
        "archive_time": "2014-06-12T08:00:00Z",
        "due_at": "2014-06-12T08:00:00.000Z",
        "post": post_record(replay.script.feed.posts[0]),
    }
    assert body["post"]["id"] == "p0"
    assert event.id == body["id"]
    assert event.serial == 2
    assert event.sse == b"id: inc-2\nevent: post.created\ndata: " + event.json + b"\n\n"


def test_post_record_in_the_envelope() -> None:
    replay = make_replay([0], wall_offset=WALL_OFFSET)
    [event, _ended] = replay.advance(1000.0)
    post: dict[str, Any] = envelope(event)["post"]
    assert post == {
        "id": "p0",
        "headline": "Headline 0",
        "body": "Body of post 0.",
        "author": "Reporter",
        "editor": None,
        "published_at": "2014-06-12T08:00:00Z",
        "time_source": "explicit",
        "source": None,
        "media": [],
    }


def test_state_event_envelope() -> None:
    replay = make_replay([0, 10], wall_offset=WALL_OFFSET)
    [start] = replay.since("inc-0") or []
    body = envelope(start)
    assert list(body) == ["id", "type", "stream", "archive_time", "due_at", "data"]
    assert body["type"] == "stream.state"
    assert body["archive_time"] == "2014-06-12T08:00:00Z"
    assert body["due_at"] == "2014-06-12T08:00:00.000Z"
    assert body["data"]["reason"] == "start"
    assert body["data"]["cursor"] == body["id"] == "inc-1"


# Client messages --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data", ['{"op": "pause"}', b'{"op":"pause"}', '  {"op": "pause"}  ', '{"op": "pause", "x": 1}']
)
def test_parse_client_message(data: str | bytes) -> None:
    value = parse_client_message(data)
    assert value["op"] == "pause"


def test_parse_client_message_keeps_other_fields() -> None:
    assert parse_client_message('{"op": "seek", "to": "+10m"}') == {"op": "seek", "to": "+10m"}


@pytest.mark.parametrize("data", ["", "{", "not json", b"\xff", "{'op': 'pause'}", '{"op":1,}'])
def test_invalid_json(data: str | bytes) -> None:
    with pytest.raises(ClientMessageError) as info:
        parse_client_message(data)
    assert str(info.value).startswith("$: invalid JSON (")


@pytest.mark.parametrize("data", ["[]", '[{"op": "pause"}]', "3", "null", '"op"', "true"])
def test_not_an_object(data: str) -> None:
    with pytest.raises(ClientMessageError) as info:
        parse_client_message(data)
    assert str(info.value) == "$: expected a JSON object"


@pytest.mark.parametrize("data", ["{}", '{"op": 3}', '{"op": null}', '{"op": ["pause"]}'])
def test_missing_or_bad_op(data: str) -> None:
    with pytest.raises(ClientMessageError) as info:
        parse_client_message(data)
    assert str(info.value) == "$.op: expected a string"


def test_client_message_error_is_a_value_error() -> None:
    assert issubclass(ClientMessageError, ValueError)


def test_a_stored_event_holds_its_bytes_and_little_more() -> None:
    """orjson's bytes keep the buffer it grew while writing (about 4 KB for a small envelope);
    ``encode`` copies the JSON out once, so a stream's history costs its text, not its buffers."""
    body = {"id": "abc-7", "type": "post.created", "post": {"body": "x" * 300}}
    tracemalloc.start()
    try:
        kept = [encode(n, f"abc-{n}", EventType.POST_CREATED, body) for n in range(500)]
        used, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    text = len(kept[0].json) + len(kept[0].sse)
    assert used / len(kept) < text + 512
    assert EventType.POST_CREATED.__module__ == kept[0].__module__  # they live together


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_ws_text_frame_is_what_websockets_serializes(size: int) -> None:
    payload = b"x" * size
    assert ws_text_frame(payload) == Frame(Opcode.TEXT, payload).serialize(mask=False)
