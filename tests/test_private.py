"""Private replays (``/feeds/{feed}/events`` and ``/ws``): what one costs, and what all may hold.

Issue #12: a closed private replay must be freed at once by reference counting (no cycle left for
the collector, which the server runs rarely); the private replays together are bounded (their
number, their live posts' bytes, their event logs' bytes); opening one does not block the loop
(the script of a feed and scenario is built once, off the loop, and shared); and a ``faults``
parameter gets the same answer on a private replay as on a shared stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import math
import weakref
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote

import aiohttp
import pytest
import sse
from conftest import BUNDLED_ID, Server, StartServer
from server_helpers import third_refused

from simulator import settings as settings_module
from simulator.core.faults import parse as parse_faults
from simulator.core.model import ArchiveError, Feed
from simulator.core.synth import synthesize
from simulator.web.state import OPEN, PRIVATE_STREAMS, STREAMS
from simulator.web.stream import Stream

TIMEOUT = 10.0
BODY_40K = "x" * 40_000
BODY_60K = "x" * 60_000
ARCHIVE_POST = "p-66e33032b5"


@pytest.fixture
def no_collector() -> Iterator[None]:
    """The cyclic collector off: what is not freed by reference counting stays."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(TIMEOUT):
        while True:
            if condition():
                return
            await asyncio.sleep(0.005)


async def private_stream(server: Server) -> Stream:
    """The one private replay open on ``server`` (waits for it to appear)."""
    await until(lambda: bool(server.app[PRIVATE_STREAMS]))
    (stream,) = server.app[PRIVATE_STREAMS]
    return stream


async def all_closed(server: Server) -> None:
    """Every private replay stopped and every connection slot given back."""
    streams, open_ = server.app[PRIVATE_STREAMS], server.app[OPEN]
    await until(lambda: not streams and open_.total == 0)


async def assert_freed(server: Server, refs: list[weakref.ref[Any]]) -> None:
    """Each referent is gone once its connection's handler has finished, without a collection."""
    await all_closed(server)
    for _ in range(20):  # a few loop turns for the handler tasks to finish
        if all(ref() is None for ref in refs):
            return
        await asyncio.sleep(0.01)
    alive = [type(ref()).__name__ for ref in refs if ref() is not None]
    assert not alive, f"still alive without the collector: {alive}"


def refs_of(stream: Stream) -> list[weakref.ref[Any]]:
    return [weakref.ref(stream), weakref.ref(stream.replay)]


async def ws_reply(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    """The next message that is not a stream event (an error, a pong)."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            value = json.loads((await ws.receive()).data)
            if "id" not in value:
                return value  # type: ignore[no-any-return]


async def ws_ok(ws: aiohttp.ClientWebSocketResponse, message: dict[str, Any]) -> None:
    """Send an op; the pong that follows it is the first reply (no error in between)."""
    await ws.send_str(json.dumps(message))
    await ws.send_str('{"op": "ping"}')
    reply = await ws_reply(ws)
    assert reply["type"] == "pong", reply


async def ws_error(ws: aiohttp.ClientWebSocketResponse, message: dict[str, Any]) -> dict[str, Any]:
    await ws.send_str(json.dumps(message))
    reply = await ws_reply(ws)
    assert reply["type"] == "error", reply
    return reply


# F1: no cycles -----------------------------------------------------------------------------


@pytest.mark.parametrize("faults", ["", "&faults=delay:100ms,disconnect_after:2"])
async def test_closed_private_sse_replay_is_freed_without_the_collector(
    start_server: StartServer, no_collector: None, faults: str
) -> None:
    server = await start_server(streams=[])
    url = f"{server.base}/feeds/{BUNDLED_ID}/events?max_gap=1s{faults}"
    async with asyncio.timeout(TIMEOUT), sse.connect(server.session, url) as reader:
        refs = refs_of(await private_stream(server))
        await reader.next_event()
        if faults:  # the fault closes it
            with pytest.raises(StopAsyncIteration):
                while True:
                    await reader.next_event()
    await assert_freed(server, refs)


@pytest.mark.parametrize("faults", ["", "&faults=disconnect_after:8"])
async def test_closed_private_ws_replay_with_live_posts_is_freed_without_the_collector(
    start_server: StartServer, no_collector: None, faults: str
) -> None:
    server = await start_server(streams=[])
    url = f"{server.ws_base}/feeds/{BUNDLED_ID}/ws?paused=true{faults}"
    async with asyncio.timeout(TIMEOUT), server.session.ws_connect(url) as ws:
        refs = refs_of(await private_stream(server))
        for n in range(3):
            await ws_ok(ws, {"op": "post", "body": f"live {n}"})
        await ws_ok(ws, {"op": "update_post", "post": "live-1", "body": "edited"})
        if faults:  # resume: the fault closes the connection after its 8th event
            await ws.send_str('{"op": "resume"}')
            async for _ in ws:
                pass
            assert ws.close_code == 4000
    await assert_freed(server, refs)


async def test_deleted_shared_stream_is_freed_without_the_collector(
    start_server: StartServer, no_collector: None
) -> None:
    server = await start_server(streams=[])
    status, _ = await server.post("/api/streams", {"id": "gone", "feed": BUNDLED_ID})
    assert status == 201
    refs = refs_of(server.app[STREAMS]["gone"])
    url = f"{server.base}/streams/gone/events"
    async with asyncio.timeout(TIMEOUT), sse.connect(server.session, url) as reader:
        assert (await server.post("/api/streams/gone/posts", {"body": "hi"}))[0] == 201
        assert (await server.delete("/api/streams/gone"))[0] == 200
        with contextlib.suppress(StopAsyncIteration):
            while True:
                await reader.next_event()
    await assert_freed(server, refs)


# F1: server-wide bounds --------------------------------------------------------------------


async def test_private_replays_are_limited_in_number(start_server: StartServer) -> None:
    server = await start_server(streams=[], server={"max_private_replays": 2})
    url = f"{server.base}/feeds/{BUNDLED_ID}/events?paused=true"
    async with third_refused(server, url) as body:
        assert "server.max_private_replays (2)" in body["error"], body
        assert body["status"] == 503
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await server.session.ws_connect(url.replace("/events", "/ws"))
        assert refused.value.status == 503
        async with server.session.head(url) as response:  # HEAD starts no replay
            assert response.status == 200
    async with server.session.get(f"{server.base}/metrics") as response:
        metrics = await response.text()
    assert 'livesim_connections_refused_total{reason="private_replays"} 2.0' in metrics
    await all_closed(server)
    async with asyncio.timeout(TIMEOUT), sse.connect(server.session, url):
        pass  # slots are given back when replays close


async def test_a_refused_private_replay_gives_its_slot_back(start_server: StartServer) -> None:
    server = await start_server(streams=[], server={"max_private_replays": 1})
    for _ in range(3):
        status, body = await server.get(f"/feeds/{BUNDLED_ID}/events?from=nowhere")
        assert (status, body["where"]) == (400, "query.from"), body
    async with (
        asyncio.timeout(TIMEOUT),
        sse.connect(server.session, f"{server.base}/feeds/{BUNDLED_ID}/events"),
    ):
        pass


async def test_private_live_posts_are_limited_in_bytes_over_all_replays(
    start_server: StartServer,
) -> None:
    limit = 100_000
    server = await start_server(streams=[], server={"max_private_live_bytes": limit})
    url = f"{server.ws_base}/feeds/{BUNDLED_ID}/ws?paused=true&from=end"
    async with asyncio.timeout(TIMEOUT), server.session.ws_connect(url) as one:
        async with server.session.ws_connect(url) as two:
            await ws_ok(one, {"op": "post", "body": BODY_40K})
            await ws_ok(two, {"op": "post", "body": BODY_40K})
            refused = await ws_error(one, {"op": "post", "body": BODY_40K})
            assert refused["where"] == "server.max_private_live_bytes", refused
            assert f"({limit})" in refused["error"], refused
            # An edit counts what it adds, to a live post or to an archive post alike.
            await ws_error(one, {"op": "update_post", "post": "live-1", "body": BODY_60K})
            await ws_error(one, {"op": "update_post", "post": ARCHIVE_POST, "body": BODY_40K})
        # ``two`` closed: what it held is given back.
        await until(lambda: len(server.app[PRIVATE_STREAMS]) == 1)
        await ws_ok(one, {"op": "update_post", "post": ARCHIVE_POST, "body": BODY_40K})
        await ws_error(one, {"op": "post", "body": BODY_40K})  # the archive edit counts
        await ws_ok(one, {"op": "delete_post", "post": "live-1"})
        await ws_ok(one, {"op": "post", "body": BODY_40K})


async def test_private_event_logs_share_one_byte_budget(start_server: StartServer) -> None:
    budget = 65_536
    server = await start_server(
        streams=[],
        server={"max_private_log_bytes": budget, "ws_control_rate": 100_000},
    )
    url = f"{server.ws_base}/feeds/{BUNDLED_ID}/ws?paused=true"
    async with asyncio.timeout(TIMEOUT), contextlib.AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(server.session.ws_connect(url)) for _ in range(3)
        ]
        incarnations = [(await ws.receive_json())["id"].rsplit("-", 1)[0] for ws in sockets]
        for _ in range(60):
            for ws in sockets:
                await ws.send_str('{"op": "post", "body": "%s"}' % ("y" * 300))
        for ws in sockets:  # each has handled its posts
            await ws.send_str('{"op": "ping"}')
            assert (await ws_reply(ws))["type"] == "pong"
        logs = [stream.replay.log for stream in server.app[PRIVATE_STREAMS]]
        assert all(stream.replay.serial > 60 for stream in server.app[PRIVATE_STREAMS])
        assert sum(log.size for log in logs) <= budget
        # The first replay's log lost its oldest events: resuming from its origin is a reset.
        first = sockets[0]
        await first.send_str(json.dumps({"op": "resume", "since": f"{incarnations[0]}-0"}))
        reply = await ws_reply(first)
        assert reply["type"] == "resumed", reply
        event = json.loads((await first.receive()).data)
        assert event["type"] == "stream.reset", event


async def test_private_ws_resume_after_the_first_epoch_loses_nothing(
    start_server: StartServer, bundled: Feed
) -> None:
    """A foreign cursor on a private replay whose first epoch is over (here a backward seek)
    gets the reset, then the current epoch from its own reset: nothing of it is left out."""
    server = await start_server(streams=[])
    url = f"{server.ws_base}/feeds/{BUNDLED_ID}/ws?paused=true&max_gap=1s&loop=false"
    async with asyncio.timeout(TIMEOUT), server.session.ws_connect(url) as ws:
        (start,) = await ws_events(ws, 1)
        await ws.send_str(json.dumps({"op": "seek", "to": bundled.posts[10].id}))
        forward = await ws_events_until_state(ws, "seek")
        await ws.send_str(json.dumps({"op": "seek", "to": bundled.posts[3].id}))
        epoch = await ws_events_until_state(ws, "seek")
        assert [e["type"] for e in epoch] == ["stream.reset", "stream.state"], epoch
        await ws.send_str(json.dumps({"op": "resume", "since": "garbage"}))
        assert (await ws_reply(ws))["type"] == "resumed"
        reset, *replayed = await ws_events(ws, 1 + len(epoch))
    assert (start["data"]["reason"], forward[-1]["data"]["reason"]) == ("start", "seek")
    assert (reset["type"], reset["data"]) == ("stream.reset", {"reason": "private"})
    assert reset["id"] == start["id"].rsplit("-", 1)[0] + "-0"
    assert replayed == epoch


async def ws_events(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[dict[str, Any]]:
    """The next ``count`` stream events, skipping replies (pongs)."""
    out: list[dict[str, Any]] = []
    while len(out) < count:
        value = json.loads((await ws.receive()).data)
        if "id" in value:
            out.append(value)
    return out


async def ws_events_until_state(
    ws: aiohttp.ClientWebSocketResponse, reason: str
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while not out or out[-1]["type"] != "stream.state" or out[-1]["data"]["reason"] != reason:
        out += await ws_events(ws, 1)
    return out


# F7: opening is cheap on the loop ----------------------------------------------------------


async def test_private_replays_share_one_script(start_server: StartServer) -> None:
    server = await start_server(streams=[])
    url = f"{server.base}/feeds/{BUNDLED_ID}/events?paused=true"
    async with (
        asyncio.timeout(TIMEOUT),
        sse.connect(server.session, url),
        sse.connect(server.session, url + "&speed=600"),
    ):
        one, two = (stream.replay for stream in server.app[PRIVATE_STREAMS])
        assert one.script is two.script
        assert one.plays is two.plays  # the same max_gap: the same play times


@pytest.fixture(scope="module")
def big_feed(bundled: Feed) -> Feed:
    return synthesize(bundled, 60_000)


@pytest.mark.parametrize("start", ["", "&from=end"])  # from: every cue before it is applied
async def test_opening_private_replays_of_a_large_archive_keeps_the_server_answering(
    start_server: StartServer, big_feed: Feed, start: str
) -> None:
    server = await start_server(streams=[], feeds={big_feed.id: big_feed})
    url = f"{server.base}/feeds/{big_feed.id}/events?paused=true{start}"
    slowest = 0.0
    opened = 0

    async def open_one() -> None:
        nonlocal opened
        async with sse.connect(server.session, url) as reader:
            await reader.next_event()
            opened += 1

    async def poll() -> None:
        nonlocal slowest
        loop = asyncio.get_running_loop()
        while opened < 6:
            began = loop.time()
            status, _ = await server.get("/healthz")
            assert status == 200
            slowest = max(slowest, loop.time() - began)
            await asyncio.sleep(0.01)

    async with asyncio.timeout(60):
        poller = asyncio.create_task(poll())
        await asyncio.gather(*(open_one() for _ in range(6)))
        await poller
    # Built on the loop, six openings of this archive held it for seconds (F7); off the loop the
    # answer waits only for the machine, which a shared 2-core CI box can make ~1 s (60 000 posts:
    # a script prepared on the loop for each opening takes 0.37 s here, six of them 2.2 s).
    assert slowest < 2.0, f"/healthz took {slowest:.2f} s while private replays opened"


# F8: one fault parser ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec", ["delay:-0", "delay:1e-320", "jitter:%2B1s", "stall:0.0001", "delay:99999999999h"]
)
@pytest.mark.parametrize("path", [f"/streams/{BUNDLED_ID}/events", f"/feeds/{BUNDLED_ID}/events"])
async def test_fault_durations_get_one_answer_everywhere(
    server: Server, path: str, spec: str
) -> None:
    async with (
        asyncio.timeout(TIMEOUT),
        server.session.get(f"{server.base}{path}?faults={spec}") as r,
    ):
        assert r.status == 400, f"{spec} on {path}: {r.status}"
        body = await r.json()
    assert body["where"] == "query.faults", body
    assert unquote(spec) in body["error"], body


def test_fault_specs_are_written_back_exactly() -> None:
    """A stream's ``faults`` setting is kept as text and read again: it must read the same."""
    for text in ["delay:1.23456789s", "jitter:1ms", "delay:0.0012345678s", "stall:3599.999s"]:
        spec = parse_faults(text)
        assert parse_faults(str(spec)) == spec, (text, str(spec))


# The new settings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("max_private_replays", -1),
        ("max_private_replays", 2**64),
        ("max_private_replays", 1e308),
        ("max_private_replays", "x" * 10_000),
        ("max_private_live_bytes", -1),
        ("max_private_live_bytes", math.nan),
        ("max_private_live_bytes", 1.5),
        ("max_private_log_bytes", 0),
        ("max_private_log_bytes", 65_535),
        ("max_private_log_bytes", 2**41),
        ("max_private_log_bytes", [1]),
    ],
)
def test_private_bounds_are_checked(key: str, value: object) -> None:
    with pytest.raises(ArchiveError) as refused:
        settings_module.validate({"server": {key: value}})
    assert str(refused.value).startswith(f"settings: server.{key}: "), refused.value
    assert len(str(refused.value)) < 300


async def test_zero_private_replays_turns_them_off(start_server: StartServer) -> None:
    server = await start_server(server={"max_private_replays": 0})
    status, body = await server.get(f"/feeds/{BUNDLED_ID}/events")
    assert status == 503 and "server.max_private_replays (0)" in body["error"], body
    url = f"{server.base}/streams/{BUNDLED_ID}/events"
    async with asyncio.timeout(TIMEOUT), sse.connect(server.session, url) as reader:
        await reader.next_event()  # shared streams are not affected


async def test_zero_private_live_bytes_refuses_every_post(start_server: StartServer) -> None:
    server = await start_server(streams=[], server={"max_private_live_bytes": 0})
    url = f"{server.ws_base}/feeds/{BUNDLED_ID}/ws?paused=true&from=end"
    async with asyncio.timeout(TIMEOUT), server.session.ws_connect(url) as ws:
        refused = await ws_error(ws, {"op": "post", "body": "x"})
        assert refused["where"] == "server.max_private_live_bytes", refused
        await ws_error(ws, {"op": "update_post", "post": ARCHIVE_POST, "body": "x"})
        await ws_ok(ws, {"op": "pin_post", "post": ARCHIVE_POST})  # a pin holds nothing new
