"""Server-Sent Events: the reader against the spec, then the server's event streams."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sse
from conftest import BUNDLED_ID, Server, StartServer
from sse import Comment, Event, Retry, SSEParser, envelope

TIMEOUT = 10
PAUSED = {"id": "s", "feed": BUNDLED_ID, "speed": 3600, "max_gap": "1s", "loop": False}


def parse(*chunks: bytes, comments: bool = False, retries: bool = False) -> list[Any]:
    parser = SSEParser(comments=comments, retries=retries)
    out: list[Any] = []
    for chunk in chunks:
        out.extend(parser.feed(chunk))
    out.extend(parser.close())
    return out


# The reader, against the WHATWG processing model ---------------------------------------------


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_parser_line_endings(eol: bytes) -> None:
    stream = eol.join([b"id: 1", b"event: a", b"data: x", b"", b"data: y", b"", b""])
    assert parse(stream) == [Event("1", "a", "x"), Event("1", "message", "y")]


def test_parser_any_chunking_gives_the_same_events() -> None:
    stream = (
        "\ufeffretry: 700\r\n: hi\r\nid: 7\r\nevent: e\r\ndata:  two spaces\r\ndata\r\n"
        "data: ü€😀\r\r\ndata: last\n\n"
    ).encode()
    whole = parse(stream, comments=True, retries=True)
    assert whole == [
        Retry(700),
        Comment(" hi"),
        Event("7", "e", " two spaces\n\nü€😀", 700),
        Event("7", "message", "last", 700),
    ]
    for size in (1, 2, 3, 5):
        chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
        assert parse(*chunks, comments=True, retries=True) == whole, size
    for split in range(len(stream)):
        assert parse(stream[:split], stream[split:], comments=True, retries=True) == whole


def test_parser_crlf_split_between_chunks_is_one_line_end() -> None:
    assert parse(b"data: a\r", b"\ndata: b\r", b"\r\n") == [Event("", "message", "a\nb")]


def test_parser_bom_only_at_the_start() -> None:
    assert parse(b"\xef\xbb\xbfdata: a\n\n") == [Event("", "message", "a")]
    # A second BOM is part of a field name, which then is unknown and ignored.
    assert parse(b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\n") == []


def test_parser_fields() -> None:
    events = parse(
        b"data:no space\n\n"  # the space is optional
        b"data:  two\n\n"  # only one space is stripped
        b"data\n\n"  # no colon: the whole line is the name, the value is empty
        b"data\ndata\n\n"  # two empty data lines: one LF between them
        b"event\ndata: x\n\n"  # empty event type: "message"
        b"bogus: 1\ndata: y\n\n"  # unknown field ignored
        b"DATA: z\n\n"  # field names are case-sensitive
    )
    assert [(e.event, e.data) for e in events] == [
        ("message", "no space"),
        ("message", " two"),
        ("message", ""),
        ("message", "\n"),
        ("message", "x"),
        ("message", "y"),
    ]


def test_parser_ids() -> None:
    events = parse(
        b"id: 1\ndata: a\n\n"
        b"data: b\n\n"  # the last event id sticks
        b"id: 2\0x\ndata: c\n\n"  # with NUL: ignored
        b"id\ndata: d\n\n"  # empty: resets it
        b"id: 3\n\n"  # no data: nothing dispatched, but the id is set
        b"data: e\n\n"
    )
    assert [(e.id, e.data) for e in events] == [("1", "a"), ("1", "b"), ("1", "c"), ("", "d")] + [
        ("3", "e")
    ]


def test_parser_retry_and_comments() -> None:
    items = parse(
        b": comment\nretry: 1500\nretry: 1.5\nretry: x\nretry:\nretry: 2000\n\n:\n",
        comments=True,
        retries=True,
    )
    assert items == [Comment(" comment"), Retry(1500), Retry(2000), Comment("")]
    assert parse(b": c\nretry: 10\ndata: x\n\n") == [Event("", "message", "x", 10)]


def test_parser_event_without_data_or_without_blank_line_is_dropped() -> None:
    assert parse(b"event: a\n\ndata: x\n\n") == [Event("", "message", "x")]
    assert parse(b"data: x\n\ndata: unterminated\n") == [Event("", "message", "x")]
    assert parse(b"data: x\n\ndata: no newline") == [Event("", "message", "x")]
    # A CR at the very end of the stream still ends its line.
    assert parse(b"data: x\r\r") == [Event("", "message", "x")]


# The server ---------------------------------------------------------------------------------


async def test_headers_and_retry_first(start_server: StartServer) -> None:
    server = await start_server(streams=[{**PAUSED, "paused": True}], server={"sse_retry": 0.5})
    async with asyncio.timeout(TIMEOUT):
        async with server.session.get(server.base + "/streams/s/events") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/event-stream")
            assert response.headers["Cache-Control"] == "no-cache"
            assert response.headers["Access-Control-Allow-Origin"] == "*"
            reader = sse.SSEReader(response, comments=True, retries=True)
            first = await anext(reader)
            await server.post("/api/streams/s/seek", {"to": "+3h"})
            items = [await anext(reader) for _ in range(3)]
            await reader.aclose()
    assert first == Retry(500)
    assert [type(item) for item in items] == [Event, Event, Event]  # no second retry
    assert all(isinstance(item, Event) and item.retry == 500 for item in items)


async def test_events_carry_envelope_id_and_type_in_order(start_server: StartServer) -> None:
    server = await start_server(streams=[{**PAUSED, "paused": True}])
    _, feed_posts = await server.get(f"/api/feeds/{BUNDLED_ID}/posts")
    tenth = feed_posts["posts"][10]["id"]
    async with (
        asyncio.timeout(TIMEOUT),
        sse.connect(server.session, server.base + "/streams/s/events") as reader,
    ):
        status, state = await server.post("/api/streams/s/seek", {"to": tenth})
        assert status == 200
        events = await reader.until("stream.state", reason="seek")
    envelopes = [envelope(e) for e in events]
    assert [e.id for e in events] == [env["id"] for env in envelopes]
    assert [e.event for e in events] == [env["type"] for env in envelopes]
    assert all(env["stream"] == "s" for env in envelopes)
    incarnation = events[0].id.rsplit("-", 1)[0]
    serials = [int(e.id.rsplit("-", 1)[1]) for e in events]
    assert all(e.id.rsplit("-", 1)[0] == incarnation for e in events)
    assert serials == list(range(serials[0], serials[0] + len(events)))
    created = [env["post"]["id"] for env in envelopes if env["type"] == "post.created"]
    assert created == [p["id"] for p in feed_posts["posts"][:10]]
    assert state["cursor"] == events[-1].id == envelopes[-1]["data"]["cursor"]
    assert state["position"]["index"] == envelopes[-1]["data"]["position"]["index"]


async def test_heartbeat_comments_while_idle(start_server: StartServer) -> None:
    server = await start_server(streams=[{**PAUSED, "paused": True}], server={"sse_heartbeat": 0.1})
    url = server.base + "/streams/s/events"
    async with asyncio.timeout(TIMEOUT), sse.connect(server.session, url, comments=True) as reader:
        items = [await anext(reader) for _ in range(3)]
    assert items == [Comment(" ping")] * 3


async def test_private_replay_plays_the_whole_feed_then_ends(server: Server) -> None:
    _, feed_posts = await server.get(f"/api/feeds/{BUNDLED_ID}/posts")
    url = f"{server.base}/feeds/{BUNDLED_ID}/events?speed=max&loop=false"
    async with asyncio.timeout(TIMEOUT), sse.connect(server.session, url) as reader:
        events = await reader.until("stream.state", reason="ended")
    envelopes = [envelope(e) for e in events]
    created = [env["post"]["id"] for env in envelopes if env["type"] == "post.created"]
    assert created == [p["id"] for p in feed_posts["posts"]]
    # Nothing is lost to the moment between the replay starting and the connection subscribing.
    assert envelopes[0]["type"] == "stream.state"
    assert envelopes[0]["data"]["reason"] == "start"
    assert envelopes[0]["id"].endswith("-1")
    assert {env["type"] for env in envelopes[1:-1]} == {"post.created", "post.updated"}
    assert envelopes[-1]["data"]["state"] == "ended"
    assert envelopes[0]["stream"].startswith("private-")
    # A private replay is nobody else's: it is not listed among the streams.
    _, streams = await server.get("/api/streams")
    assert [s["id"] for s in streams] == [BUNDLED_ID]


async def test_private_replay_from_a_post_and_looping(server: Server) -> None:
    _, feed_posts = await server.get(f"/api/feeds/{BUNDLED_ID}/posts")
    ids = [p["id"] for p in feed_posts["posts"]]
    url = f"{server.base}/feeds/{BUNDLED_ID}/events?speed=max&loop=true&from={ids[-3]}"
    async with asyncio.timeout(TIMEOUT), sse.connect(server.session, url) as reader:
        events = await reader.until("stream.reset")
        after = await reader.until("post.created")
    created = [envelope(e)["post"]["id"] for e in events if e.event == "post.created"]
    assert created == ids[-3:]
    assert envelope(events[-1])["data"] == {"reason": "loop"}
    assert envelope(after[-1])["post"]["id"] == ids[0]


@pytest.mark.parametrize(
    ("query", "where"),
    [
        ("speed=fast", "query.speed"),
        ("speed=0", "query.speed"),
        ("max_gap=abc", "query.max_gap"),
        ("loop=maybe", "query.loop"),
        ("paused=perhaps", "query.paused"),
        ("bogus=1", "query.bogus"),
        ("from=nonsense", "query.from"),
        ("from=%2Bforever", "query.from"),
    ],
)
async def test_private_replay_bad_query(server: Server, query: str, where: str) -> None:
    url = f"{server.base}/feeds/{BUNDLED_ID}/events?{query}"
    async with server.session.get(url) as response:
        assert response.status == 400
        assert response.content_type == "application/json"
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        body = await response.json()
    assert body["where"] == where
    assert body["error"].startswith(where + ": ")


@pytest.mark.parametrize("path", ["/streams/nope/events", "/feeds/nope/events"])
async def test_unknown_stream_or_feed_is_404_json(server: Server, path: str) -> None:
    async with server.session.get(server.base + path) as response:
        assert response.status == 404
        body = await response.json()
    assert body["where"] == "path"
    assert "nope" in body["error"]


async def test_private_replay_with_an_old_cursor_resets_then_starts_over(server: Server) -> None:
    url = f"{server.base}/feeds/{BUNDLED_ID}/events?speed=max&loop=false"
    async with (
        asyncio.timeout(TIMEOUT),
        sse.connect(server.session, url, last_event_id="earlier-connection-7") as reader,
    ):
        first, second, third = [envelope(e) for e in await reader.events(3)]
    assert (first["type"], first["data"]["reason"]) == ("stream.reset", "private")
    assert (second["type"], second["data"]["reason"]) == ("stream.state", "start")
    assert third["type"] == "post.created"
    # Ids keep going forward: the reset stands just before the replay's first event.
    assert [e["id"].rsplit("-", 1)[1] for e in (first, second, third)] == ["0", "1", "2"]
