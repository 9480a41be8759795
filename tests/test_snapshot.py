"""Snapshots under load (issue #12, F2): encoded once per change, shared, streamed, bounded.

F2: a stream with 32 MiB of live posts and 30 slow readers of its snapshot took ~60 MB of server
memory per reader, 1.8 GB at the peak, then SIGSEGV; PATCHed archive posts escaped the live-post
bound. Here the same shape at a smaller scale, set through the settings: megabytes of live posts,
readers that read a few bytes and stall, and the server's Python memory measured with tracemalloc
(the server runs in this process).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from typing import Any

import orjson
import pytest
from conftest import BUNDLED_ID, Server, StartServer
from core_helpers import START, T0, make_replay

from simulator import settings
from simulator.core import live
from simulator.core.model import ArchiveError, Feed, Post
from simulator.core.projection import SHARED_PAGES
from simulator.core.replay import CreatePost, Options, PinPost, UpdatePost
from simulator.core.snapshot import DEFAULT_PAGE, MAX_PAGE, Page, feed_page
from simulator.core.wire import EventType
from simulator.web.state import STREAMS

TIMEOUT = 10
PAUSED = {"id": "s", "feed": BUNDLED_ID, "paused": True, "loop": False}
AT_END = {**PAUSED, "start": "end"}
"""Every archive post visible, nothing pending."""
BIG_BODY = "x" * 64_000
BIG_POSTS = 100
"""100 posts of 64 KB: a 6.4 MB snapshot, more than loopback's socket buffers take at once, so a
reader that stops reading leaves the server with most of it still to write."""
MiB = 1024 * 1024
LONG_FEED = "big" + "g" * 2000
"""A feed id (a JSON archive's own) longer than a stream's can be: the bound still holds."""


async def add_posts(server: Server, count: int, body: str, stream: str = "s") -> None:
    for _ in range(count):
        status, answer = await server.post(f"/api/streams/{stream}/posts", {"body": body})
        assert status == 201, answer


@asynccontextmanager
async def stalled(server: Server, path: str) -> AsyncIterator[tuple[bytes, asyncio.StreamReader]]:
    """A GET whose reader takes the status line and a little more, then reads no more (a small
    receive buffer, so the server's writes back up); yields the status line and the reader."""
    port = int(server.base.rsplit(":", 1)[1])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        async with asyncio.timeout(TIMEOUT):
            status = await reader.readline()
            await reader.readexactly(64)
        yield status, reader
    finally:
        writer.transport.abort()


async def get_raw(server: Server, path: str) -> tuple[int, dict[str, str], bytes]:
    async with server.session.get(server.base + path) as response:
        return response.status, dict(response.headers), await response.read()


async def refused(server: Server, reason: str) -> float:
    async with server.session.get(server.base + "/metrics") as response:
        text = await response.text()
    for line in text.splitlines():
        if line.startswith(f'livesim_connections_refused_total{{reason="{reason}"}}'):
            return float(line.split()[-1])
    return 0.0


# F2: shared, streamed -------------------------------------------------------------------------


async def test_slow_readers_share_one_snapshot(start_server: StartServer) -> None:
    """Eight readers that stall after a few bytes cost the server about one snapshot, not eight
    (before: each held its own encoding of all of it, plus what the socket had not taken)."""
    server = await start_server(streams=[PAUSED])
    await add_posts(server, BIG_POSTS, BIG_BODY)
    status, _, body = await get_raw(server, "/api/streams/s/posts")
    assert status == 200
    size = len(body)
    assert size > BIG_POSTS * len(BIG_BODY)
    del body
    readers = 8
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        async with asyncio.timeout(TIMEOUT), AsyncExitStack() as stack:
            for _ in range(readers):
                line, _ = await stack.enter_async_context(stalled(server, "/api/streams/s/posts"))
                assert line.startswith(b"HTTP/1.1 200")
            await asyncio.sleep(0.2)  # lets the writes back up; not an assertion on time
            growth = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    assert growth < 2 * size, f"{growth / MiB:.1f} MiB for {readers} readers of {size / MiB:.1f}"


def test_the_encoded_posts_are_one_object_until_the_stream_changes() -> None:
    replay = make_replay([0, 60, 120])
    replay.advance(START + 60)
    head, posts = replay.snapshot_parts(START + 61, 1 * MiB)
    again_head, again = replay.snapshot_parts(START + 70, 1 * MiB)
    assert again is posts  # the same bytes, not an equal copy
    assert again_head != head  # the position moved: the head is encoded per reader
    replay.apply(PinPost("p0"), START + 71)
    pinned = replay.snapshot_parts(START + 71, 1 * MiB)[1]
    assert pinned is not posts and b'"pinned":true' in pinned
    replay.apply(UpdatePost("p1", {"body": "Edited."}), START + 72)
    assert b"Edited." in replay.snapshot_parts(START + 72, 1 * MiB)[1]
    replay.advance(START + 120)  # a scripted post.created
    shown = orjson.loads(b"".join(replay.snapshot_parts(START + 120, 1 * MiB)))
    assert [p["id"] for p in shown["posts"]] == ["p2", "p1", "p0"]
    assert shown["cursor"] == replay.cursor


async def test_snapshot_matches_its_cursor_and_the_stream(start_server: StartServer) -> None:
    """The shape the clients rely on, unchanged but for ``truncated`` and ``omitted``."""
    server = await start_server(streams=[AT_END])
    status, snapshot = await server.get("/api/streams/s/posts")
    assert status == 200
    _, stream = await server.get("/api/streams/s")
    assert snapshot["cursor"] == stream["cursor"]
    assert list(snapshot) == [
        "stream",
        "cursor",
        "state",
        "speed",
        "loop",
        "max_gap",
        "position",
        "timestamps",
        "posts",
        "key_events",
        "truncated",
        "omitted",
    ]
    assert snapshot["truncated"] is False and snapshot["omitted"] == 0
    replay = server.app[STREAMS]["s"].replay
    assert [p["id"] for p in snapshot["posts"]] == [pid for pid, _ in replay.view.newest_first()]


# Bounded: max_snapshot_bytes -------------------------------------------------------------------


async def test_a_snapshot_over_max_snapshot_bytes_keeps_the_newest_and_the_pinned(
    start_server: StartServer,
) -> None:
    limit = 64 * 1024
    server = await start_server(streams=[PAUSED], server={"max_snapshot_bytes": limit})
    status, first = await server.post(
        "/api/streams/s/posts", {"body": "y" * 10_000, "pinned": True, "key_event": True}
    )
    assert status == 201, first
    await add_posts(server, 19, "z" * 10_000)
    status, headers, body = await get_raw(server, "/api/streams/s/posts")
    assert status == 200
    assert len(body) <= limit
    assert int(headers["Content-Length"]) == len(body)
    snapshot = orjson.loads(body)
    ids = [p["id"] for p in snapshot["posts"]]
    assert snapshot["truncated"] is True
    assert snapshot["omitted"] == 20 - len(ids) > 0
    assert ids[-1] == "live-1"  # the pinned post, kept, in its place (oldest)
    newest = [f"live-{n}" for n in range(20, 20 - len(ids) + 1, -1)]
    assert ids[:-1] == newest  # the newest others, without a gap
    assert snapshot["key_events"] == ["live-1"]
    assert len(ids) >= 5  # 64 KiB holds six 10 KB posts


async def test_the_bound_holds_with_the_longest_stream_id(start_server: StartServer) -> None:
    """The head (state, cursor, a 64-character id) fits in what the bound keeps for it."""
    limit = 64 * 1024
    stream = {**PAUSED, "id": "a" * 64, "speed": 999_999.5, "max_gap": 3_000_000_000.123}
    server = await start_server(streams=[stream], server={"max_snapshot_bytes": limit})
    for size in range(1, 200):  # posts of every size near the bound, so one lands close to it
        status, _ = await server.post(f"/api/streams/{'a' * 64}/posts", {"body": "q" * size * 9})
        assert status == 201
    status, _, body = await get_raw(server, f"/api/streams/{'a' * 64}/posts")
    assert status == 200 and limit - 2048 < len(body) <= limit, len(body)


async def test_key_events_name_only_the_posts_shown(start_server: StartServer) -> None:
    server = await start_server(streams=[PAUSED], server={"max_snapshot_bytes": 64 * 1024})
    status, _ = await server.post("/api/streams/s/posts", {"body": "old", "key_event": True})
    assert status == 201
    await add_posts(server, 10, "z" * 10_000)
    _, snapshot = await server.get("/api/streams/s/posts")
    assert snapshot["truncated"] is True
    assert "live-1" not in [p["id"] for p in snapshot["posts"]]
    assert snapshot["key_events"] == []


def test_a_post_larger_than_the_whole_bound_is_left_out() -> None:
    from simulator.core.snapshot import HEAD_RESERVE

    replay = make_replay([0, 60])
    replay.advance(START + 60)
    replay.apply(CreatePost({"body": "x" * 60_000}), START + 61)
    shown = orjson.loads(b"".join(replay.snapshot_parts(START + 61, 2 * HEAD_RESERVE)))
    assert [p["id"] for p in shown["posts"]] == []
    assert shown["truncated"] is True and shown["omitted"] == 3


async def test_feed_posts_are_encoded_once_and_bounded(
    start_server: StartServer, bundled: Feed
) -> None:
    server = await start_server()
    status, headers, body = await get_raw(server, f"/api/feeds/{BUNDLED_ID}/posts")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    feed = orjson.loads(body)
    assert [p["id"] for p in feed["posts"]] == [p.id for p in bundled.posts]
    assert feed["truncated"] is False and feed["omitted"] == 0
    assert (await get_raw(server, f"/api/feeds/{BUNDLED_ID}/posts"))[2] == body

    big = Feed(
        id=LONG_FEED,
        title="Big",
        posts=tuple(
            Post(id=f"b{n}", body="w" * 10_000, published_at=T0 + timedelta(minutes=n))
            for n in range(30)
        ),
    )
    server = await start_server(
        streams=[], feeds={LONG_FEED: big}, server={"max_snapshot_bytes": 64 * 1024}
    )
    status, _, body = await get_raw(server, f"/api/feeds/{LONG_FEED}/posts")
    assert status == 200 and len(body) <= 64 * 1024
    shown = orjson.loads(body)
    ids = [p["id"] for p in shown["posts"]]
    assert ids == [f"b{n}" for n in range(30 - len(ids), 30)]  # the newest, oldest first
    assert shown["truncated"] is True and shown["omitted"] == 30 - len(ids)


# Bounded: max_snapshot_bytes_in_flight ---------------------------------------------------------


async def test_snapshot_bytes_in_flight_are_bounded(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Two stalled readers of a 6.4 MB snapshot hold 12.8 MB of a 16 MiB bound: the third is
    refused with 503 and Retry-After, counted; once they go, snapshots are served again, and
    readers that left half-way are no error."""
    caplog.set_level(logging.WARNING)
    server = await start_server(
        streams=[PAUSED],
        server={"max_snapshot_bytes": 8 * MiB, "max_snapshot_bytes_in_flight": 16 * MiB},
    )
    await add_posts(server, BIG_POSTS, BIG_BODY)
    path = "/api/streams/s/posts"
    async with stalled(server, path) as (one, _), stalled(server, path) as (two, _):
        assert one.startswith(b"HTTP/1.1 200") and two.startswith(b"HTTP/1.1 200")
        status, headers, body = await get_raw(server, path)
        assert status == 503, body[:200]
        assert headers["Retry-After"].isdigit()
        error = orjson.loads(body)
        assert error["where"] == "server.max_snapshot_bytes_in_flight"
        assert error["status"] == 503 and "retry" in error["error"]
        status, _, _ = await get_raw(server, f"/api/feeds/{BUNDLED_ID}/posts")
        assert status == 200  # a small one still fits
        assert (await get_raw(server, "/healthz"))[0] == 200
    assert await refused(server, "snapshot_bytes") == 1
    async with asyncio.timeout(5):  # the stalled readers' bytes are released when they go
        while (status := (await get_raw(server, path))[0]) == 503:  # noqa: ASYNC110 (polling)
            await asyncio.sleep(0.05)
    assert status == 200
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_a_reader_stalled_past_snapshot_timeout_is_cut_off(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Over a second (the smallest snapshot_timeout) on purpose: a stalled reader must not hold
    its bytes in flight for ever."""
    caplog.set_level(logging.WARNING)
    server = await start_server(
        streams=[PAUSED],
        server={
            "max_snapshot_bytes": 8 * MiB,
            "max_snapshot_bytes_in_flight": 8 * MiB,
            "snapshot_timeout": 1,
        },
    )
    await add_posts(server, BIG_POSTS, BIG_BODY)
    path = "/api/streams/s/posts"
    async with stalled(server, path) as (one, reader):
        assert one.startswith(b"HTTP/1.1 200")
        assert (await get_raw(server, path))[0] == 503
        async with asyncio.timeout(5):
            while (status := (await get_raw(server, path))[0]) == 503:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        assert status == 200
        received = 0
        with contextlib.suppress(ConnectionResetError):  # cut off: reset, or ended early
            async with asyncio.timeout(TIMEOUT):
                while chunk := await reader.read(65536):
                    received += len(chunk)
        assert received < BIG_POSTS * len(BIG_BODY)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_head_of_a_snapshot_sends_no_body(start_server: StartServer) -> None:
    server = await start_server(streams=[AT_END])
    async with server.session.head(server.base + "/api/streams/s/posts") as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        assert await response.read() == b""


# PATCHed archive posts count toward the live posts' bytes ---------------------------------------


async def test_edits_of_archive_posts_count_toward_the_live_bytes(
    start_server: StartServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "MAX_LIVE_BYTES", 200_000)
    server = await start_server(streams=[AT_END])
    _, snapshot = await server.get("/api/streams/s/posts")
    archive = [p["id"] for p in snapshot["posts"]]
    assert len(archive) > 10
    answers = []
    for post in archive[:10]:
        status, answer = await send(server, "PATCH", f"/api/streams/s/posts/{post}", BIG_EDIT)
        answers.append(status)
    assert answers[:3] == [200, 200, 200]
    assert 429 in answers, answers  # before: every edit of an archive post was free
    status, answer = await send(server, "PATCH", f"/api/streams/s/posts/{archive[0]}", BIG_EDIT)
    assert status == 429 and answer["where"] == "path", answer


async def test_an_archive_edit_replaced_deleted_or_reset_frees_its_bytes(
    start_server: StartServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "MAX_LIVE_BYTES", 200_000)
    server = await start_server(streams=[AT_END])
    _, snapshot = await server.get("/api/streams/s/posts")
    archive = [p["id"] for p in snapshot["posts"]]
    for _ in range(10):  # the same post edited again: its old edit's bytes are given back
        status, answer = await send(server, "PATCH", f"/api/streams/s/posts/{archive[0]}", SMALL)
        assert status == 200, answer
    for post in archive[1:4]:
        assert (await send(server, "PATCH", f"/api/streams/s/posts/{post}", BIG_EDIT))[0] == 200
    assert (await send(server, "PATCH", f"/api/streams/s/posts/{archive[4]}", BIG_EDIT))[0] == 429
    assert (await send(server, "DELETE", f"/api/streams/s/posts/{archive[1]}"))[0] == 200
    assert (await send(server, "PATCH", f"/api/streams/s/posts/{archive[4]}", BIG_EDIT))[0] == 200
    assert (await send(server, "PATCH", f"/api/streams/s/posts/{archive[5]}", BIG_EDIT))[0] == 429
    status, _ = await server.post("/api/streams/s/restart")  # the archive as it was: edits gone
    assert status == 200
    assert (await server.post("/api/streams/s/seek", {"to": "end"}))[0] == 200
    for post in archive[5:8]:
        assert (await send(server, "PATCH", f"/api/streams/s/posts/{post}", BIG_EDIT))[0] == 200


def test_a_pin_by_patch_is_no_edit_and_is_not_refused_at_the_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    replay = make_replay([0, 60])
    replay.advance(START + 60)
    replay.apply(UpdatePost("p0", {"body": "Edited."}), START + 61)
    edited = replay.view.get("p0")
    assert edited is not None
    monkeypatch.setattr(live, "MAX_LIVE_BYTES", len(orjson.dumps(edited.post)))
    with pytest.raises(live.TooManyPosts):
        replay.apply(UpdatePost("p1", {"body": "x"}), START + 62)
    replay.apply(UpdatePost("p1", {"pinned": True}), START + 62)
    assert [(p["id"], p["pinned"]) for p in replay.snapshot(START + 62)["posts"]] == [
        ("p1", True),
        ("p0", False),
    ]


BIG_EDIT = {"body": "e" * 60_000}
SMALL = {"body": "e" * 1_000}


async def send(server: Server, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with server.session.request(method, server.base + path, json=body) as response:
        return response.status, await response.json()


# The settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("max_snapshot_bytes", 0),
        ("max_snapshot_bytes", -1),
        ("max_snapshot_bytes", 65535),
        ("max_snapshot_bytes", 2**64),
        ("max_snapshot_bytes", 1e308),
        ("max_snapshot_bytes", float("nan")),
        ("max_snapshot_bytes", "x" * 10_000),
        ("max_snapshot_bytes", [1]),
        ("max_snapshot_bytes_in_flight", 0),
        ("max_snapshot_bytes_in_flight", 2**64),
        ("max_snapshot_bytes_in_flight", float("nan")),
        ("max_snapshot_bytes_in_flight", True),
        ("snapshot_timeout", 0),
        ("snapshot_timeout", -5),
        ("snapshot_timeout", 1e308),
        ("snapshot_timeout", float("nan")),
        ("snapshot_timeout", "x" * 10_000),
    ],
)
def test_bad_snapshot_settings_are_one_line_naming_the_key(key: str, value: object) -> None:
    with pytest.raises(ArchiveError) as caught:
        settings.validate({"server": {key: value}}, "livesim.toml")
    message = str(caught.value)
    assert message.startswith(f"livesim.toml: server.{key}: "), message
    assert "\n" not in message and len(message) < 400, message


def test_the_in_flight_bound_holds_at_least_one_snapshot() -> None:
    with pytest.raises(ArchiveError) as caught:
        settings.validate(
            {"server": {"max_snapshot_bytes": 2 * MiB, "max_snapshot_bytes_in_flight": MiB}}, "f"
        )
    assert str(caught.value).startswith("f: server.max_snapshot_bytes_in_flight: "), caught.value
    assert "max_snapshot_bytes" in str(caught.value)


# core/snapshot.py on its own: pieces, the fit, the tail's bytes -----------------------------


def test_a_pieces_cost_counts_its_comma_and_its_key_event_id() -> None:
    from simulator.core.snapshot import piece

    plain = piece("p1", {"id": "p1", "body": "x"})
    assert plain.json == b'{"id":"p1","body":"x"}' and not plain.key_event
    assert plain.cost == len(plain.json) + 1
    key = piece("p1", {"id": "p1", "body": "x", "key_event": True})
    assert key.key_event and key.cost == len(key.json) + 1 + len(b'"p1"') + 1
    assert not piece("p1", {"key_event": 1}).key_event  # only a JSON true


def test_fit_stops_at_the_first_piece_that_does_not_fit() -> None:
    from simulator.core.snapshot import Piece, fit

    pieces = [Piece(f"p{n}", b"x" * size, False) for n, size in enumerate([9, 19, 4])]
    chosen, left = fit(pieces, 29)
    assert [p.post_id for p in chosen] == ["p0"] and left == 19  # p2 would fit; not after p1
    assert fit(pieces, 35) == (pieces, 0)
    assert fit([], 0) == ([], 0)


def test_the_tail_is_valid_json_with_its_counts() -> None:
    from simulator.core.snapshot import piece, posts_tail

    ordered = [piece("a", {"id": "a"}), piece("b", {"id": "b", "key_event": True})]
    tail = posts_tail(ordered, 5, prefix=b'{"stream":"s",')
    assert (tail.shown, tail.omitted) == (2, 3)
    assert orjson.loads(tail.body) == {
        "stream": "s",
        "posts": [{"id": "a"}, {"id": "b", "key_event": True}],
        "key_events": ["b"],
        "truncated": True,
        "omitted": 3,
    }
    empty = posts_tail([], 0, prefix=b"{", key_events=False)
    assert orjson.loads(empty.body) == {"posts": [], "truncated": False, "omitted": 0}


def test_budget_and_feed_posts_keep_the_newest_within_max_bytes() -> None:
    from core_helpers import make_feed

    from simulator.core.snapshot import FRAME, HEAD_RESERVE, budget_for, feed_posts

    assert budget_for(HEAD_RESERVE + FRAME + 10) == 10 and budget_for(0) == 0
    feed = make_feed([0, 10, 20, 30])
    whole = orjson.loads(feed_posts(feed, 1 << 20))
    assert [p["id"] for p in whole["posts"]] == ["p0", "p1", "p2", "p3"]
    assert (whole["feed"], whole["truncated"], whole["omitted"]) == ("feed", False, 0)
    one_post = len(orjson.dumps(whole["posts"][-1]))
    bound = len(b'{"feed":"feed",') + FRAME + 2 * (one_post + 1)
    cut = feed_posts(feed, bound)
    assert [p["id"] for p in orjson.loads(cut)["posts"]] == ["p2", "p3"]
    assert orjson.loads(cut)["omitted"] == 2 and len(cut) <= bound


# Paging (#15) -------------------------------------------------------------------------------


async def test_pages_walk_the_whole_snapshot_newest_first(start_server: StartServer) -> None:
    server = await start_server(streams=[AT_END])
    _, whole = await server.get("/api/streams/s/posts")
    ids: list[str] = []
    before = ""
    for _ in range(100):
        status, page = await server.get(f"/api/streams/s/posts?limit=7{before}")
        assert status == 200 and page["cursor"] == whole["cursor"]
        assert page["page"]["limit"] == 7 and len(page["posts"]) <= 7
        assert page["omitted"] == whole["omitted"] + len(whole["posts"]) - len(page["posts"])
        ids += [p["id"] for p in page["posts"]]
        if page["page"]["next"] is None:
            break
        assert page["page"]["next"] == page["posts"][-1]["id"]
        before = f"&before={page['page']['next']}"
    assert ids == [p["id"] for p in whole["posts"]]
    _, default = await server.get(f"/api/streams/s/posts?before={ids[0]}")
    assert default["page"]["limit"] == DEFAULT_PAGE
    assert [p["id"] for p in default["posts"]] == ids[1 : 1 + DEFAULT_PAGE]


async def test_feed_pages_walk_the_feed_oldest_first_within_each(
    server: Server, bundled: Feed
) -> None:
    pages: list[list[str]] = []
    before = ""
    for _ in range(100):
        status, page = await server.get(f"/api/feeds/{BUNDLED_ID}/posts?limit=9{before}")
        assert status == 200 and page["feed"] == BUNDLED_ID
        pages.append([p["id"] for p in page["posts"]])
        if page["page"]["next"] is None:
            break
        assert page["page"]["next"] == pages[-1][0]
        before = f"&before={page['page']['next']}"
    assert [i for ids in reversed(pages) for i in ids] == [p.id for p in bundled.posts]
    assert len(pages[0]) == 9


def test_first_pages_are_shared_until_the_stream_changes() -> None:
    replay = make_replay([0, 60, 120], options=Options(start="end"))
    first = replay.view.page(Page(2), 1 << 20)
    assert replay.view.page(Page(2), 1 << 20) is first
    assert replay.view.page(Page(2, "p2"), 1 << 20) is not replay.view.page(Page(2, "p2"), 1 << 20)
    replay.apply(CreatePost({"body": "new"}), START)
    assert replay.view.page(Page(2), 1 << 20) is not first
    for limit in range(1, 20):
        replay.view.page(Page(limit), 1 << 20)
    assert len(replay.view._pages) <= SHARED_PAGES


def test_a_page_is_bounded_by_max_bytes_and_skips_a_post_no_page_holds() -> None:
    replay = make_replay([0, 60, 120], options=Options(start="end"))
    replay.apply(CreatePost({"body": "x" * 5000}), START)
    page = orjson.loads(b"{" + replay.view.page(Page(10), 4096).body)
    assert page["posts"] == [] and page["page"]["next"] == "live-1"
    page = orjson.loads(b"{" + replay.view.page(Page(10, "live-1"), 4096).body)
    assert [p["id"] for p in page["posts"]] == ["p2", "p1", "p0"]
    assert page["page"]["next"] is None


@pytest.mark.parametrize(
    ("query", "where"),
    [
        ("limit=0", "query.limit"),
        ("limit=-1", "query.limit"),
        ("limit=1001", "query.limit"),
        (f"limit={2**64}", "query.limit"),
        ("limit=1e308", "query.limit"),
        ("limit=NaN", "query.limit"),
        ("limit=", "query.limit"),
        ("limit=ten", "query.limit"),
        ("limit=%EF%BC%93", "query.limit"),  # a full-width digit: isdigit() says yes
        ("limit=1&limit=2", "query.limit"),
        ("before=", "query.before"),
        ("before=nope", "query.before"),
        ("before=" + "x" * 5000, "query.before"),
        ("before=%00", "query.before"),
    ],
)
async def test_bad_page_parameters_are_400_naming_them(
    server: Server, query: str, where: str
) -> None:
    for path in (f"/api/streams/{BUNDLED_ID}/posts", f"/api/feeds/{BUNDLED_ID}/posts"):
        status, body = await server.get(f"{path}?{query}")
        assert (status, body["where"]) == (400, where), body
        assert len(body["error"]) <= 300


def test_a_page_with_the_longest_ids_stays_within_max_bytes() -> None:
    long_id = "é" * 999  # two bytes a character: the longest post ids there can be
    replay = make_replay([0, 60, 120], options=Options(start="end"))
    for number in range(40):
        record = {"id": f"{long_id}{number}", "body": "x" * 1500}
        replay.view.apply(EventType.POST_CREATED, f"{long_id}{number}", record)
    limit = 16 * 1024
    before = f"{long_id}39"
    for page in (Page(MAX_PAGE), Page(MAX_PAGE, before)):
        head, body = replay.page_parts(START, limit, page)
        assert len(head) + len(body) <= limit
        value = orjson.loads(head + body)
        assert value["posts"] and value["page"]["next"] == value["posts"][-1]["id"]


def test_a_feed_page_with_the_longest_ids_stays_within_max_bytes() -> None:
    long_id = "é" * 999
    posts = tuple(
        Post(id=f"{long_id}{n}", body="x" * 1500, published_at=T0 + timedelta(minutes=n))
        for n in range(40)
    )
    feed = Feed(id="f", title="long ids", posts=posts)
    index = {p.id: i for i, p in enumerate(posts)}
    limit = 16 * 1024
    for page in (Page(MAX_PAGE), Page(MAX_PAGE, f"{long_id}39")):
        body = feed_page(feed, page, index, limit)
        assert len(body) <= limit
        value = orjson.loads(body)
        assert value["posts"] and value["page"]["next"] == value["posts"][0]["id"]
