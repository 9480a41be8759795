"""Faults on demand (issue #7 §1): the spec parser, each stage driven through a hub subscriber
with a recording connection, then every fault seen by a real client against a real server."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

import aiohttp
import pytest
import sse
from conftest import BUNDLED_ID, Server, StartServer
from sse import Event as Event_
from sse import envelope

from simulator.core import wire
from simulator.core.delivery import SLOW, Close, fault
from simulator.core.faults import ITEMS, FaultSpec, FaultSpecError, parse
from simulator.core.model import ArchiveError
from simulator.core.wire import Event, EventType
from simulator.web.hub import Framing, Hub, Subscriber
from simulator.web.state import STREAMS

# The spec ------------------------------------------------------------------------------------


def test_parse_every_item() -> None:
    spec = parse(
        "disconnect_after:5, reset_after:9,drop:0.01,delay:1s,jitter:200ms,stall_after:3,"
        "stall:2s,duplicate:1,reorder:.5,garble:0,no_resume,seed:7"
    )
    assert spec == FaultSpec(
        disconnect_after=5,
        reset_after=9,
        drop=0.01,
        delay=1.0,
        jitter=0.2,
        stall_after=3,
        stall=2.0,
        duplicate=1.0,
        reorder=0.5,
        garble=0.0,
        no_resume=True,
        seed=7,
    )
    assert str(spec) == (
        "disconnect_after:5,reset_after:9,drop:0.01,delay:1s,jitter:200ms,stall_after:3,"
        "stall:2s,duplicate:1,reorder:0.5,garble:0,no_resume,seed:7"
    )
    assert parse(str(spec)) == spec
    assert set(ITEMS) == {name for name, _ in spec.items()}


@pytest.mark.parametrize(
    "text",
    ["drop:0.1234567", "bandwidth:12.3456789", "drop:0.00001", "reorder:0.000000000000000001"],
)
def test_a_spec_writes_back_to_text_that_reads_as_exactly_itself(text: str) -> None:
    """Nodes pass a stream's faults on as this text, and the state file keeps them so: six
    significant digits (``0.123457``) or an exponent (``1e-05``, refused) would not do."""
    spec = parse(text)
    assert str(spec) == text
    assert parse(str(spec)) == spec


def test_empty_spec_is_no_faults_and_seed_alone_is_not_active() -> None:
    assert parse("") == parse("  ") == FaultSpec()
    assert not FaultSpec().active
    assert not parse("seed:3").active
    assert not parse("drop:0,delay:0s,no_resume:false").active
    assert parse("disconnect_after:0").active
    assert parse("no_resume").active


def test_connection_overrides_its_stream_item_by_item() -> None:
    stream = parse("duplicate:0.5,seed:1,stall_after:3,stall:2s")
    assert parse("duplicate:0,delay:1s", stream) == FaultSpec(
        duplicate=0.0, seed=1, stall_after=3, stall=2.0, delay=1.0
    )
    assert parse("stall:5s", stream).stall_after == 3
    assert parse("no_resume:false", parse("no_resume")).no_resume is False


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("drop:2", "'drop:2'"),
        ("drop:-0.1", "'drop:-0.1'"),
        ("drop:nan", "'drop:nan'"),
        ("drop:inf", "'drop:inf'"),
        ("drop:1e308", "'drop:1e308'"),
        ("drop:1_0", "'drop:1_0'"),
        ("drop", "'drop'"),
        ("drop:", "'drop:'"),
        ("disconnect_after:-1", "'disconnect_after:-1'"),
        ("disconnect_after:1.5", "'disconnect_after:1.5'"),
        ("disconnect_after:1000000001", "'disconnect_after:1000000001'"),
        ("disconnect_after:" + "9" * 900, "'disconnect_after:999"),
        ("disconnect_after:²", "'disconnect_after:²'"),
        ("seed:18446744073709551616", "'seed:18446744073709551616'"),
        ("delay:2h", "'delay:2h'"),
        ("delay:-1s", "'delay:-1s'"),
        ("jitter:1e308", "'jitter:1e308'"),
        ("stall:forever", "'stall:forever'"),
        ("no_resume:maybe", "'no_resume:maybe'"),
        ("explode:1", "unknown fault 'explode'"),
        ("drop:0.1,drop:0.2", "drop is given twice"),
        ("drop:0.1,,delay:1s", "empty item"),
        ("drop:0.1,", "empty item"),
        ("stall_after:3", "stall_after:3: needs stall"),
    ],
)
def test_bad_items_are_named(text: str, names: str) -> None:
    with pytest.raises(FaultSpecError) as caught:
        parse(text)
    message = str(caught.value)
    assert names in message
    assert len(message) < 200


def test_huge_specs_get_one_short_error() -> None:
    for text in ("x" * 10_000, ",".join(["drop:0.1"] * 1000)):
        with pytest.raises(FaultSpecError, match=r"^too long \(\d+ characters; at most 1000\)$"):
            parse(text)
    with pytest.raises(FaultSpecError, match="expected a string"):
        parse(7)


# The stages, through a hub subscriber (each stage alone: tests/test_delivery.py) ----------------


def event(serial: int) -> Event:
    return wire.encode(serial, f"inc-{serial}", EventType.POST_CREATED, {"id": f"p{serial}"})


class Line:
    """A connection that records what is written (frames as ids), its timer and its end."""

    def __init__(self) -> None:
        self.paused = False
        self.writes: list[list[str]] = []
        self.closed: Close | None = None
        self.aborted = False
        self.armed: list[float | None] = []
        self.framing: Framing = self.frame

    def frame(self, events: Sequence[Event]) -> bytes:
        return b"|".join(
            e.id.encode() if e.serial >= 0 else b"<" + e.type.encode() + b">" for e in events
        )

    def write(self, data: bytes) -> None:
        self.writes.append(data.decode().split("|"))

    def close(self, close: Close) -> None:
        self.closed = close

    def abort(self) -> None:
        self.aborted = True

    def arm(self, deadline: float | None) -> None:
        self.armed.append(deadline)

    @property
    def seen(self) -> list[str]:
        return [i for write in self.writes for i in write]


def faulted(
    text: str, backlog: Sequence[Event] = (), limit: int = 100
) -> tuple[Hub, Subscriber, Line, list[float], Counter[str]]:
    hub = Hub()
    clock = [0.0]
    hub.clock = lambda: clock[0]
    subscriber = Subscriber("sse", limit, backlog)
    hub.add(subscriber)
    line = Line()
    counts: Counter[str] = Counter()
    subscriber.attach(line, parse(text), counts)
    assert not subscriber.direct  # never written through: every batch goes through the stages
    return hub, subscriber, line, clock, counts


def ids(*serials: int) -> list[str]:
    return [f"inc-{n}" for n in serials]


async def test_disconnect_after_closes_the_sink_once_and_leaves_the_hub() -> None:
    hub, subscriber, line, _, counts = faulted("disconnect_after:5", [event(1), event(2)])
    hub.publish([event(3)])
    hub.publish([event(4), event(5), event(6)])
    hub.publish([event(7)])
    assert line.seen == ids(1, 2, 3, 4, 5)
    assert line.closed == fault("disconnect_after") and not line.aborted
    assert subscriber not in hub.subscribers and hub.dropped_slow == 0
    assert counts == {"disconnect_after": 1}


async def test_reset_after_tells_the_sink_to_reset() -> None:
    hub, _, line, _, _ = faulted("reset_after:2")
    hub.publish([event(1), event(2), event(3)])
    assert line.seen == ids(1, 2)
    assert line.closed is not None and line.closed.reset


async def test_the_sink_timer_is_armed_at_the_delivery_deadline() -> None:
    hub, subscriber, line, clock, _ = faulted("delay:200ms")
    clock[0] = 1.0
    hub.publish([event(1)])
    assert line.seen == [] and line.armed[-1] == pytest.approx(1.2)
    clock[0] = 1.2
    subscriber.advance()  # what the sink's timer calls
    assert line.seen == ids(1) and line.armed[-1] is None


async def test_a_paused_sink_gets_what_came_due_when_it_resumes() -> None:
    hub, subscriber, line, clock, _ = faulted("delay:1s")
    hub.publish([event(1)])
    line.paused = True
    subscriber.pause()
    clock[0] = 1.0
    subscriber.advance()
    assert line.seen == []
    line.paused = False
    subscriber.flush()
    assert line.seen == ids(1)


async def test_held_events_past_the_bound_drop_a_slow_consumer() -> None:
    hub, subscriber, line, _, _ = faulted("delay:1h", limit=3)
    hub.publish([event(1), event(2), event(3)])
    assert line.closed is None
    hub.publish([event(4)])
    assert line.closed is SLOW and hub.dropped_slow == 1
    assert subscriber not in hub.subscribers


# Against a real server, seen by real clients -------------------------------------------------

TIMEOUT = 20
FAST = {"id": "s", "feed": BUNDLED_ID, "speed": 60, "max_gap": "3s", "loop": False}
"""Roughly an event every 50 ms for the length of the test."""


def serial(event_id: str) -> int:
    return int(event_id.rsplit("-", 1)[1].removesuffix(".reset"))


async def cursor_of(server: Server, stream: str = "s") -> str:
    status, snapshot = await server.get(f"/api/streams/{stream}/posts")
    assert status == 200
    return str(snapshot["cursor"])


async def sse_events(server: Server, path: str, last_event_id: str | None = None) -> list[Event_]:
    """Every event of one SSE connection, until the server ends it."""
    async with sse.connect(server.session, server.base + path, last_event_id=last_event_id) as r:
        return [item async for item in r if isinstance(item, Event_)]


async def ws_messages(
    server: Server, path: str, count: int | None = None
) -> tuple[list[str], int | None, str]:
    """Text messages of one WebSocket connection (``count`` of them, or until it closes), and
    its close code and reason."""
    texts: list[str] = []
    code, reason = None, ""
    async with server.session.ws_connect(server.ws_base + path) as ws:
        while True:
            message = await ws.receive()
            if message.type is aiohttp.WSMsgType.TEXT:
                texts.append(message.data)
                if count is not None and len(texts) == count:
                    break
            else:
                if message.type is aiohttp.WSMsgType.CLOSE:
                    code, reason = message.data, message.extra or ""
                break
    return texts, code, reason


async def test_disconnect_after_5_closes_and_an_eventsource_client_resumes_losing_nothing(
    start_server: StartServer,
) -> None:
    server = await start_server(streams=[FAST])
    last = await cursor_of(server)
    seen: list[str] = []
    async with asyncio.timeout(TIMEOUT):
        for _ in range(4):  # what EventSource does: reconnect with Last-Event-ID
            events = await sse_events(server, "/streams/s/events?faults=disconnect_after:5", last)
            assert len(events) == 5
            seen += [e.id for e in events]
            last = events[-1].id
    first = serial(seen[0])
    assert [serial(i) for i in seen] == list(range(first, first + 20))
    _, state = await server.get("/api/streams/s")
    assert state["faults"] == {
        "spec": None,
        "injected": {"disconnect_after": 4},
        "reconnects_without_cursor": 0,  # an EventSource resumes with Last-Event-ID
    }


async def test_disconnect_after_over_websocket_closes_with_4000(start_server: StartServer) -> None:
    server = await start_server(streams=[FAST])
    since = await cursor_of(server)
    async with asyncio.timeout(TIMEOUT):
        texts, code, reason = await ws_messages(
            server, f"/streams/s/ws?since={since}&faults=disconnect_after:5"
        )
    assert [serial(json.loads(t)["id"]) for t in texts] == [serial(since) + n for n in range(1, 6)]
    assert (code, reason) == (4000, "fault: disconnect_after")


@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_duplicate_1_doubles_every_event(start_server: StartServer, transport: str) -> None:
    server = await start_server(streams=[FAST])
    since = await cursor_of(server)
    spec = "duplicate:1,disconnect_after:12"  # duplicates are events written: six, twice each
    async with asyncio.timeout(TIMEOUT):
        if transport == "sse":
            events = await sse_events(server, f"/streams/s/events?faults={spec}", since)
            ids_ = [e.id for e in events]
            assert [e.data for e in events[::2]] == [e.data for e in events[1::2]]
        else:
            texts, code, _ = await ws_messages(server, f"/streams/s/ws?since={since}&faults={spec}")
            ids_ = [json.loads(t)["id"] for t in texts]
            assert texts[::2] == texts[1::2] and code == 4000
    assert len(ids_) == 12 and ids_[::2] == ids_[1::2]
    assert [serial(i) for i in ids_[::2]] == [serial(since) + n for n in range(1, 7)]


@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_no_resume_ignores_the_cursor_and_starts_with_a_reset(
    start_server: StartServer, transport: str
) -> None:
    server = await start_server(streams=[FAST])
    since = await cursor_of(server)
    await asyncio.sleep(0.3)  # events the cursor could resume with
    async with asyncio.timeout(TIMEOUT):
        if transport == "sse":
            path = "/streams/s/events?faults=no_resume,disconnect_after:2"
            first = [envelope(e) for e in await sse_events(server, path, since)]
        else:
            path = f"/streams/s/ws?since={since}&faults=no_resume,disconnect_after:2"
            first = [json.loads(t) for t in (await ws_messages(server, path))[0]]
    assert first[0]["type"] == "stream.reset" and first[0]["data"] == {"reason": "no_resume"}
    assert serial(first[0]["id"]) > serial(since)  # the cursor's backlog was not sent
    assert serial(first[1]["id"]) == serial(first[0]["id"]) + 1  # live from the reset on


async def test_stall_is_silent_for_its_duration_no_heartbeat_no_ping(
    start_server: StartServer,
) -> None:
    """The acceptance measures the gap: the one timing assertion in this file."""
    server = await start_server(
        streams=[FAST], server={"sse_heartbeat": "100ms", "ws_heartbeat": "300ms"}
    )
    since = await cursor_of(server)
    spec = "stall_after:3,stall:2s"

    async def sse_arrivals() -> list[tuple[float, bytes]]:
        loop = asyncio.get_running_loop()
        out: list[tuple[float, bytes]] = []
        url = f"{server.base}/streams/s/events?faults={spec}"
        async with server.session.get(url, headers={"Last-Event-ID": since}) as response:
            async for chunk in response.content.iter_any():
                out.append((loop.time(), chunk))
                if sum(chunk.count(b"\nid: ") + chunk.startswith(b"id: ") for _, chunk in out) >= 6:
                    return out
        return out

    async def ws_arrivals() -> list[tuple[float, str]]:
        loop = asyncio.get_running_loop()
        out: list[tuple[float, str]] = []
        url = f"{server.ws_base}/streams/s/ws?since={since}&faults={spec}"
        async with server.session.ws_connect(url, autoping=False) as ws:
            async for message in ws:
                if message.type is aiohttp.WSMsgType.PING:
                    await ws.pong(message.data)
                    out.append((loop.time(), "ping"))
                    if sum(kind != "ping" for _, kind in out) >= 6:
                        return out  # the heartbeat is back after the stall
                elif message.type is aiohttp.WSMsgType.TEXT:
                    out.append((loop.time(), json.loads(message.data)["id"]))
        return out

    async with asyncio.timeout(TIMEOUT):
        sse_seen, ws_seen = await asyncio.gather(sse_arrivals(), ws_arrivals())

    def gap_after_third(arrivals: list[tuple[float, Any]], is_event: Any) -> tuple[float, Any]:
        events = 0
        for index, (when, what) in enumerate(arrivals):
            events += is_event(what)
            if events == 3:
                after, then = arrivals[index + 1]
                return after - when, then
        raise AssertionError(arrivals)

    gap, then = gap_after_third(sse_seen, lambda chunk: chunk.count(b"id: "))
    assert gap >= 1.9 and then.startswith(b"id: "), (gap, then)  # an event, not a ping
    gap, then = gap_after_third(ws_seen, lambda kind: kind != "ping")
    assert gap >= 1.9 and then != "ping", (gap, then)


@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_same_seed_same_faults(start_server: StartServer, transport: str) -> None:
    server = await start_server(streams=[FAST])
    since = await cursor_of(server)

    async def run(seed: int) -> list[str]:
        spec = f"duplicate:0.3,garble:0.3,reorder:0.2,seed:{seed}"
        if transport == "sse":
            path = f"/streams/s/events?faults={spec}"
            url = server.base + path
            headers = {"Last-Event-ID": since}
            out: list[str] = []
            async with server.session.get(url, headers=headers) as response:
                parser = sse.SSEParser()
                async for chunk in response.content.iter_any():
                    out += [
                        e.id or f"garbled {e.data[:10]}"
                        for e in parser.feed(chunk)
                        if isinstance(e, Event_)
                    ]
                    if len(out) >= 40:
                        return out[:40]
            return out
        texts, _, _ = await ws_messages(server, f"/streams/s/ws?since={since}&faults={spec}", 40)
        return [_id_or_garbled(t) for t in texts]

    async with asyncio.timeout(TIMEOUT):
        first, again, other = await asyncio.gather(run(7), run(7), run(8))
    assert first == again
    assert first != other
    assert any(i.startswith("garbled") for i in first)
    assert len(set(first)) < len(first)  # some duplicated
    _, state = await server.get("/api/streams/s")
    injected = state["faults"]["injected"]
    assert injected["duplicate"] > 0 and injected["garble"] > 0 and injected["reorder"] > 0


def _id_or_garbled(text: str) -> str:
    try:
        return str(json.loads(text)["id"])
    except ValueError:
        return f"garbled {text[:10]}"


@pytest.mark.parametrize("spec", ["reset_after:2", "drop:1"])
@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_reset_after_and_drop_reset_the_connection(
    start_server: StartServer, spec: str, transport: str
) -> None:
    server = await start_server(streams=[FAST])
    since = await cursor_of(server)
    host, port = server.runner.addresses[0][:2]
    path = f"/streams/s/{'events' if transport == 'sse' else 'ws'}?since={since}&faults={spec}"
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode()
        + (SSE_HEADERS if transport == "sse" else WS_HEADERS)
        + b"\r\n"
    )
    reader, writer = await asyncio.open_connection(host, port)
    received = b""
    try:
        writer.write(request)
        async with asyncio.timeout(TIMEOUT):
            with pytest.raises(ConnectionResetError):
                while chunk := await reader.read(65536):
                    received += chunk
    finally:
        writer.close()
    events = received.count(b'"stream":"s"')
    assert events == (2 if spec == "reset_after:2" else 0)
    _, state = await server.get("/api/streams/s")
    assert state["faults"]["injected"] == {spec.split(":")[0]: 1}


SSE_HEADERS = b"Accept: text/event-stream\r\n"
WS_HEADERS = (
    b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)


async def test_garble_writes_frames_that_are_not_json(start_server: StartServer) -> None:
    server = await start_server(streams=[FAST])
    since = await cursor_of(server)
    async with asyncio.timeout(TIMEOUT):
        events = await sse_events(
            server, "/streams/s/events?faults=garble:1,disconnect_after:3", since
        )
        texts, _, _ = await ws_messages(
            server, f"/streams/s/ws?since={since}&faults=garble:1,disconnect_after:3"
        )
    assert len(events) == len(texts) == 6
    for bad, good in zip(events[::2], events[1::2], strict=True):
        assert bad.event == "message" and bad.id != good.id  # no id of its own
        with pytest.raises(ValueError):
            json.loads(bad.data)
        envelope(good)
    for bad_text, good_text in zip(texts[::2], texts[1::2], strict=True):
        with pytest.raises(ValueError):
            json.loads(bad_text)
        json.loads(good_text)


@pytest.mark.parametrize(
    ("path", "item"),
    [
        ("/streams/s/events?faults=drop:2", "'drop:2'"),
        ("/streams/s/ws?faults=drop:0.1,explode:1", "unknown fault 'explode'"),
        ("/feeds/{feed}/events?faults=stall_after:3", "stall_after:3: needs stall"),
        ("/feeds/{feed}/ws?faults=delay:2h", "'delay:2h'"),
        ("/streams/s/events?faults=" + "x" * 5000, "too long (5000 characters"),
        ("/streams/s/events?faults=" + ",".join(["x"] * 1000), "too long (1999 characters"),
    ],
)
async def test_a_bad_spec_is_a_400_naming_the_item(
    start_server: StartServer, path: str, item: str
) -> None:
    server = await start_server(streams=[FAST])
    async with server.session.get(server.base + path.format(feed=BUNDLED_ID)) as response:
        body = await response.json()
    assert response.status == 400
    assert body["where"] == "query.faults"
    assert body["error"].startswith("query.faults: ") and item in body["error"]
    _, state = await server.get("/api/streams/s")
    assert state["subscribers"] == 0


async def test_stream_level_faults_from_the_api_and_metrics(start_server: StartServer) -> None:
    server = await start_server(streams=[FAST])
    status, bad = await server.post("/api/streams", {"feed": BUNDLED_ID, "faults": "dup:1"})
    assert status == 400 and bad["where"] == "body.faults" and "'dup'" in bad["error"]
    status, bad = await server.post("/api/streams", {"feed": BUNDLED_ID, "faults": 5})
    assert status == 400 and bad["where"] == "body.faults"
    status, bad = await server.post("/api/streams", {"feed": BUNDLED_ID, "faults": "x" * 10_000})
    assert status == 400 and bad["error"] == (
        "body.faults: too long (10000 characters; at most 1000)"
    )
    body = {**FAST, "id": "d", "faults": "duplicate:0.5, seed:1"}
    status, made = await server.post("/api/streams", body)
    assert status == 201, made
    assert made["faults"] == {
        "spec": "duplicate:0.5,seed:1",
        "injected": {},
        "reconnects_without_cursor": 0,
    }
    since = await cursor_of(server, "d")
    async with asyncio.timeout(TIMEOUT):
        faulted = await sse_events(server, "/streams/d/events?faults=disconnect_after:20", since)
        # the connection's own item overrides the stream's
        clean = await sse_events(
            server, "/streams/d/events?faults=duplicate:0,disconnect_after:20", since
        )
    assert len({e.id for e in faulted}) < 20
    assert len({e.id for e in clean}) == 20
    _, state = await server.get("/api/streams/d")
    duplicated = state["faults"]["injected"]["duplicate"]
    assert duplicated == 20 - len({e.id for e in faulted})
    async with server.session.get(server.base + "/metrics") as response:
        text = await response.text()
    assert f'livesim_faults_injected_total{{kind="duplicate"}} {duplicated}.0' in text
    assert 'livesim_faults_injected_total{kind="disconnect_after"} 2.0' in text


async def test_private_replay_faults_and_plain_connections_stay_write_through(
    start_server: StartServer,
) -> None:
    server = await start_server(streams=[FAST])
    since = await cursor_of(server)
    stream = server.app[STREAMS]["s"]
    base = server.base + "/streams/s/events"
    async with (
        asyncio.timeout(TIMEOUT),
        sse.connect(server.session, base, last_event_id=since),
        sse.connect(server.session, base + "?faults=delay:1ms"),
        sse.connect(server.session, base + "?faults=no_resume,drop:0,seed:3") as reset,
    ):
        assert (await reset.next_event()).event == "stream.reset"
        direct = sorted(s.direct for s in stream.hub.subscribers)
        assert direct == [False, True, True]  # only a staged fault goes through a chain
        path = (
            f"/feeds/{BUNDLED_ID}/events?speed=max&loop=false&faults=duplicate:1,disconnect_after:4"
        )
        events = await sse_events(server, path)
    assert [e.id for e in events[::2]] == [e.id for e in events[1::2]]
    async with server.session.get(server.base + "/metrics") as response:
        assert 'livesim_faults_injected_total{kind="duplicate"} 2.0' in await response.text()


def test_config_faults_name_the_key() -> None:
    from simulator import settings

    raw = {"streams": [{"id": "a", "feed": "b", "faults": "reorder:1.5"}]}
    with pytest.raises(ArchiveError, match=r"livesim.toml: streams\[0\].faults: 'reorder:1.5'"):
        settings.validate(raw, "livesim.toml")
    raw["streams"][0]["faults"] = "reorder: .5 ,seed:3"
    assert settings.validate(raw).streams[0].faults == "reorder:0.5,seed:3"
