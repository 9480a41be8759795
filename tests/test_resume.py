"""Snapshot + cursor, disconnect + resume, pause, seek and resets, over both transports.

The oracle is a subscriber that stays connected throughout: whatever a resuming client sees,
joined up, must be exactly what the oracle saw over the same span (same ids, same order, nothing
twice). Streams start paused and are driven with seek/resume, or play to a natural end
(``loop: false``), so assertions are on content and order, never on timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest
import sse
from conftest import BUNDLED_ID, Server, StartServer
from websockets.asyncio.client import ClientConnection, connect

from simulator.core import script
from simulator.core.model import Feed

TIMEOUT = 15
PAUSED = {"feed": BUNDLED_ID, "speed": 3600, "max_gap": "1s", "loop": False, "paused": True}
PLAYING = {"feed": BUNDLED_ID, "speed": 40, "max_gap": "1s", "loop": False, "paused": True}
"""Paused until the test's subscribers are in place; then about 25 ms per event, to the end."""

TRANSPORTS = ["sse", "sse-query", "ws", "ws-op"]
"""How a cursor is handed over: ``Last-Event-ID``, ``?last_event_id=``, ``?since=``, or a
``{"op": "resume", "since": …}`` message on a fresh WebSocket.

``ws-op`` is only used while nothing is being published between connecting and the resume: the
server does not acknowledge a resume in the event order, so on a live stream a client cannot tell
live events that went out before the resume took effect from the replayed ones."""

Message = dict[str, Any]


class Subscription:
    """One client's view of a stream, whatever the transport: envelopes in arrival order."""

    async def next(self) -> Message:
        raise NotImplementedError

    async def until(self, type: str, reason: str | None = None) -> list[Message]:
        out: list[Message] = []
        while True:
            message = await self.next()
            out.append(message)
            if message["type"] == type and (reason is None or message["data"]["reason"] == reason):
                return out

    async def until_id(self, event_id: str) -> list[Message]:
        out = [await self.next()]
        while out[-1]["id"] != event_id:
            out.append(await self.next())
        return out

    async def take(self, count: int) -> list[Message]:
        return [await self.next() for _ in range(count)]


class SSESubscription(Subscription):
    def __init__(self, reader: sse.SSEReader):
        self.reader = reader

    async def next(self) -> Message:
        event = await self.reader.next_event()
        message = sse.envelope(event)
        assert (event.id, event.event) == (message["id"], message["type"])
        return message


class WSSubscription(Subscription):
    def __init__(self, ws: ClientConnection):
        self.ws = ws
        self.stash: deque[Message] = deque()

    async def _recv(self) -> Message:
        message = json.loads(await self.ws.recv())
        assert isinstance(message, dict)
        return message

    async def ready(self) -> None:
        """Ping, and keep what arrives before the pong (a backlog may race it)."""
        await self.ws.send('{"op": "ping"}')
        while (message := await self._recv())["type"] != "pong":
            self.stash.append(message)

    async def resumed(self) -> None:
        """Drop what the old position sent, up to the marker the server puts before the replay."""
        self.stash.clear()
        while (message := await self._recv())["type"] != "resumed":
            assert message["type"] not in ("error", "pong"), message

    async def next(self) -> Message:
        while True:
            message = self.stash.popleft() if self.stash else await self._recv()
            assert message["type"] not in ("error", "pong", "resumed"), message
            return message


@contextlib.asynccontextmanager
async def subscribe(
    server: Server, stream: str, cursor: str | None = None, transport: str = "sse"
) -> AsyncIterator[Subscription]:
    """Subscribe to ``stream`` from ``cursor`` (None: live only); in place when this yields."""
    if transport.startswith("sse"):
        url = f"{server.base}/streams/{stream}/events"
        header = cursor if transport == "sse" else None
        if cursor is not None and transport == "sse-query":
            url += "?last_event_id=" + quote(cursor)
        if cursor is not None and transport == "sse-since":
            url += "?since=" + quote(cursor)
        async with sse.connect(server.session, url, last_event_id=header) as reader:
            yield SSESubscription(reader)
        return
    url = f"{server.ws_base}/streams/{stream}/ws"
    if cursor is not None and transport == "ws":
        url += "?since=" + quote(cursor)
    async with connect(url) as ws:
        subscription = WSSubscription(ws)
        await subscription.ready()
        if cursor is not None and transport == "ws-op":
            await ws.send(json.dumps({"op": "resume", "since": cursor}))
            await subscription.resumed()
        yield subscription


def ids(messages: list[Message]) -> list[str]:
    return [m["id"] for m in messages]


def serial(event_id: str) -> int:
    return int(event_id.rpartition("-")[2])


def created(messages: list[Message]) -> list[str]:
    return [m["post"]["id"] for m in messages if m["type"] == "post.created"]


def cues(messages: list[Message]) -> list[tuple[str, str]]:
    return [(m["type"], m["post"]["id"]) for m in messages if "post" in m]


def script_cues(feed: Feed) -> list[tuple[str, str]]:
    return [(str(cue.type), cue.post.id) for cue in script.build(feed).cues]


def assert_clean(messages: list[Message]) -> None:
    """Ids strictly increasing, none twice (a per-connection reset's ``….reset`` id counts as
    its serial: the point it marks)."""
    numbers = [int(i.rsplit("-", 1)[1].removesuffix(".reset")) for i in ids(messages)]
    assert numbers == sorted(set(numbers)), numbers


# Snapshot + cursor --------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_snapshot_then_subscribe_from_its_cursor(
    start_server: StartServer, bundled: Feed, transport: str
) -> None:
    server = await start_server(streams=[{"id": "s", **PAUSED}])
    posts = bundled.posts
    async with asyncio.timeout(TIMEOUT), subscribe(server, "s") as oracle:
        await server.post("/api/streams/s/seek", {"to": posts[10].id})
        seen = await oracle.until("stream.state", "seek")
        status, snapshot = await server.get("/api/streams/s/posts")
        assert status == 200
        assert snapshot["cursor"] == seen[-1]["id"]
        await server.post("/api/streams/s/seek", {"to": posts[20].id})  # missed by the page
        seen += await oracle.until("stream.state", "seek")
        async with subscribe(server, "s", snapshot["cursor"], transport) as page:
            await server.post("/api/streams/s/resume")
            seen += await oracle.until("stream.state", "ended")
            later = await page.until("stream.state", "ended")
    after = seen[ids(seen).index(snapshot["cursor"]) + 1 :]
    assert ids(later) == ids(after)
    assert [json.dumps(m) for m in later] == [json.dumps(m) for m in after]
    shown = [p["id"] for p in snapshot["posts"]]
    assert shown == list(reversed(created(seen)[:10]))
    assert not set(shown) & set(created(later))
    assert shown[::-1] + created(later) == created(seen) == [p.id for p in posts]


@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_snapshot_while_playing_has_no_gap(
    start_server: StartServer, bundled: Feed, transport: str
) -> None:
    server = await start_server(streams=[{"id": "s", **PLAYING}])
    async with asyncio.timeout(TIMEOUT), subscribe(server, "s") as oracle:
        await server.post("/api/streams/s/resume")
        seen: list[Message] = []
        while len(created(seen)) < 5:
            seen.append(await oracle.next())
        _, snapshot = await server.get("/api/streams/s/posts")
        async with subscribe(server, "s", snapshot["cursor"], transport) as page:
            later = await page.until("stream.state", "ended")
        if seen[-1]["type"] != "stream.state" or seen[-1]["data"]["reason"] != "ended":
            seen += await oracle.until("stream.state", "ended")
    cut = ids(seen).index(snapshot["cursor"])
    assert ids(later) == ids(seen[cut + 1 :])
    shown = [p["id"] for p in snapshot["posts"]]
    assert shown[::-1] == created(seen[: cut + 1])
    assert shown[::-1] + created(later) == [p.id for p in bundled.posts]


# Disconnect and resume ----------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["sse", "sse-query", "ws"])
async def test_disconnect_mid_stream_and_resume(start_server: StartServer, transport: str) -> None:
    server = await start_server(streams=[{"id": "s", **PLAYING}])
    async with asyncio.timeout(TIMEOUT), subscribe(server, "s") as oracle:
        async with subscribe(server, "s", None, transport) as client:
            await server.post("/api/streams/s/resume")
            before = await client.take(10)
        # Gone; the stream plays on. Reconnect once the oracle is a few events further.
        seen = await oracle.take(15)
        async with subscribe(server, "s", before[-1]["id"], transport) as client:
            after = await client.until("stream.state", "ended")
        seen += await oracle.until("stream.state", "ended")
    assert after[0]["type"] != "stream.reset"
    assert ids(before + after) == ids(seen)
    assert before + after == seen
    assert_clean(before + after)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_disconnect_and_resume_driven(
    start_server: StartServer, bundled: Feed, transport: str
) -> None:
    server = await start_server(streams=[{"id": "s", **PAUSED}])
    posts = bundled.posts
    async with asyncio.timeout(TIMEOUT), subscribe(server, "s") as oracle:
        async with subscribe(server, "s", None, transport) as client:
            await server.post("/api/streams/s/seek", {"to": posts[10].id})
            before = await client.take(4)  # and leaves with the rest unread
        seen = await oracle.until("stream.state", "seek")
        await server.post("/api/streams/s/seek", {"to": posts[20].id})
        seen += await oracle.until("stream.state", "seek")
        async with subscribe(server, "s", before[-1]["id"], transport) as client:
            _, last = await server.post("/api/streams/s/seek", {"to": posts[25].id})
            after = await client.until_id(last["cursor"])
        seen += await oracle.until_id(last["cursor"])
    assert before + after == seen
    assert created(before + after) == [p.id for p in posts[:25]]
    assert_clean(before + after)


async def test_resume_on_an_open_websocket_rewinds(
    start_server: StartServer, bundled: Feed
) -> None:
    server = await start_server(streams=[{"id": "s", **PAUSED}])
    async with asyncio.timeout(TIMEOUT), subscribe(server, "s", None, "ws") as client:
        await server.post("/api/streams/s/seek", {"to": bundled.posts[10].id})
        first = await client.until("stream.state", "seek")
        assert isinstance(client, WSSubscription)
        await client.ws.send(json.dumps({"op": "resume", "since": first[4]["id"]}))
        await client.resumed()
        again = await client.until("stream.state", "seek")
        assert again == first[5:]
        await server.post("/api/streams/s/seek", {"to": bundled.posts[12].id})
        more = await client.until("stream.state", "seek")
    assert created(more) == [p.id for p in bundled.posts[10:12]]
    assert_clean(first + more)


async def test_current_cursor_resumes_with_nothing_replayed(start_server: StartServer) -> None:
    server = await start_server(streams=[{"id": "s", **PAUSED}])
    _, state = await server.post("/api/streams/s/seek", {"to": "+5h"})
    async with asyncio.timeout(TIMEOUT):
        for transport in TRANSPORTS:
            async with subscribe(server, "s", state["cursor"], transport) as client:
                _, moved = await server.post("/api/streams/s/seek", {"to": "+5h"})
                events = await client.until("stream.state", "seek")
            assert events[0]["id"].rsplit("-", 1)[1] == str(int(state["cursor"].split("-")[-1]) + 1)
            assert events[-1]["id"] == moved["cursor"]
            state = moved


# Pause and resume ---------------------------------------------------------------------------


async def test_pause_stops_events_and_resume_skips_nothing(
    start_server: StartServer, bundled: Feed
) -> None:
    server = await start_server(streams=[{"id": "s", **PLAYING}], server={"sse_heartbeat": 0.05})
    url = server.base + "/streams/s/events"
    async with asyncio.timeout(TIMEOUT), sse.connect(server.session, url, comments=True) as reader:
        await server.post("/api/streams/s/resume")
        events: list[sse.Event] = []
        while sum(e.event == "post.created" for e in events) < 5:
            events.append(await reader.next_event())
        status, paused = await server.post("/api/streams/s/pause")
        assert (status, paused["state"]) == (200, "paused")
        events += await reader.until("stream.state", reason="pause")
        assert events[-1].id == paused["cursor"]
        quiet = [await anext(reader) for _ in range(4)]
        assert quiet == [sse.Comment(" ping")] * 4
        _, still = await server.get("/api/streams/s")
        assert still["cursor"] == paused["cursor"]
        assert still["position"] == paused["position"]
        status, resumed = await server.post("/api/streams/s/resume")
        assert (status, resumed["state"]) == (200, "playing")
        rest = await reader.until("stream.state", reason="ended")
    messages = [sse.envelope(e) for e in events + rest]
    assert_clean(messages)
    state = messages[len(events)]  # the resume's own state event; the cursor may be later
    assert (state["type"], state["data"]["reason"]) == ("stream.state", "resume")
    assert serial(state["id"]) <= serial(resumed["cursor"])
    assert cues(messages) == script_cues(bundled)  # every cue, once, in order: nothing skipped


# Seek backwards and resets ------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_seek_backwards_resets_and_old_cursors_get_a_reset(
    start_server: StartServer, bundled: Feed, transport: str
) -> None:
    server = await start_server(streams=[{"id": "s", **PAUSED}])
    posts = bundled.posts
    async with asyncio.timeout(TIMEOUT), subscribe(server, "s", None, transport) as live:
        await server.post("/api/streams/s/seek", {"to": posts[10].id})
        first = await live.until("stream.state", "seek")
        _, back = await server.post("/api/streams/s/seek", {"to": posts[3].id})
        reset, state = await live.take(2)
        assert (reset["type"], reset["data"]) == ("stream.reset", {"reason": "seek"})
        assert (state["type"], state["data"]["reason"]) == ("stream.state", "seek")
        assert state["id"] == back["cursor"]
        assert back["position"]["index"] == script_cues(bundled).index(
            ("post.created", posts[3].id)
        )

        # A cursor from before the reset cannot be served exactly: a stream.reset comes first,
        # with an id of its own (the current cursor + ".reset"), and resuming from it is exact.
        async with subscribe(server, "s", first[2]["id"], transport) as old:
            (told,) = await old.take(1)
            assert (told["type"], told["data"]) == ("stream.reset", {"reason": "resume"})
            assert told["id"] == back["cursor"] + ".reset"
            # The cursor right before the reset is still good: it replays the reset itself.
            async with subscribe(server, "s", first[-1]["id"], transport) as edge:
                await server.post("/api/streams/s/seek", {"to": posts[6].id})
                replayed = await edge.until("stream.state", "seek")
                replayed += await edge.until("stream.state", "seek")
                resumed = await old.until("stream.state", "seek")
            moved = await live.until("stream.state", "seek")
    assert resumed == moved
    assert created(moved) == [p.id for p in posts[3:6]]
    assert replayed == [reset, state, *moved]
    assert_clean(first + [reset, state] + moved)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("kind", ["garbage", "foreign", "future", "not-a-number", "other-server"])
async def test_unservable_cursor_gets_a_reset_first(
    start_server: StartServer, bundled: Feed, transport: str, kind: str
) -> None:
    other_server = await start_server(streams=[{"id": "s", **PAUSED}])
    server = await start_server(streams=[{"id": "s", **PAUSED}, {"id": "t", **PAUSED}])
    _, mine = await server.get("/api/streams/s")
    incarnation = mine["cursor"].rsplit("-", 1)[0]
    cursor = {
        "garbage": "garbage",
        "foreign": (await server.get("/api/streams/t"))[1]["cursor"],
        "future": f"{incarnation}-99999",
        "not-a-number": f"{incarnation}-x1",
        "other-server": (await other_server.get("/api/streams/s"))[1]["cursor"],
    }[kind]
    assert cursor != mine["cursor"]
    async with asyncio.timeout(TIMEOUT), subscribe(server, "s", cursor, transport) as client:
        reset = await client.next()
        assert (reset["type"], reset["data"]) == ("stream.reset", {"reason": "resume"})
        assert reset["id"] == mine["cursor"] + ".reset"
        assert reset["stream"] == "s"
        await server.post("/api/streams/s/seek", {"to": bundled.posts[2].id})
        events = await client.until("stream.state", "seek")
    assert created(events) == [p.id for p in bundled.posts[:2]]
    assert_clean([reset] + events)


@pytest.mark.parametrize("transport", [*TRANSPORTS, "sse-since"])
async def test_a_resume_reset_has_an_id_of_its_own_and_resumes_exactly(
    start_server: StartServer, bundled: Feed, transport: str
) -> None:
    """docs/protocol.md, resume rules: the reset is no real event, yet its id is a cursor."""
    server = await start_server(streams=[{"id": "s", **PAUSED}])
    async with asyncio.timeout(TIMEOUT), subscribe(server, "s") as oracle:
        async with subscribe(server, "s", "garbage") as lost:
            (reset,) = await lost.take(1)
        _, now = await server.get("/api/streams/s")
        assert (reset["type"], reset["data"]) == ("stream.reset", {"reason": "resume"})
        assert reset["id"] == now["cursor"] + ".reset"
        await server.post("/api/streams/s/seek", {"to": bundled.posts[3].id})
        missed = await oracle.until("stream.state", "seek")
        async with subscribe(server, "s", reset["id"], transport) as back:
            resumed = await back.until("stream.state", "seek")
    assert reset["id"] not in ids(missed)
    assert resumed == missed
    assert created(missed) == [p.id for p in bundled.posts[:3]]


async def test_loop_wrap_resets_and_a_cursor_from_the_last_lap_gets_a_reset(
    start_server: StartServer, bundled: Feed
) -> None:
    server = await start_server(streams=[{"id": "s", **PAUSED, "loop": True}])
    async with asyncio.timeout(TIMEOUT), subscribe(server, "s") as live:
        await server.post("/api/streams/s/seek", {"to": bundled.posts[-1].id})
        lap = await live.until("stream.state", "seek")
        await server.post("/api/streams/s/resume")
        wrapped = await live.until("stream.reset")
        await server.post("/api/streams/s/pause")
        _, paused = await server.get("/api/streams/s")
        await live.until("stream.state", "pause")
        async with subscribe(server, "s", lap[0]["id"]) as late:
            first = await late.next()
    assert cues(wrapped)[-1] == script_cues(bundled)[-1]  # the lap played out to its last cue
    assert wrapped[-1]["data"] == {"reason": "loop"}
    assert paused["position"]["lap"] >= 1
    assert (first["type"], first["data"]) == ("stream.reset", {"reason": "resume"})
    assert first["id"] == paused["cursor"] + ".reset"
