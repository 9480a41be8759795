"""The toxics added for #15: ``bandwidth`` and ``slow_close``, on a fake clock (a delivery driven
by ``now``), and a stream's faults changed at runtime (``PATCH``)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter

import aiohttp
import pytest
from conftest import BUNDLED_ID, Server, StartServer
from test_delivery import event, made, taken

from simulator.core.delivery import Delivery, Why
from simulator.core.faults import FaultSpecError, parse
from simulator.web.hub import RECENT_LIMIT, RECENT_WINDOW, RecentCloses

LOOPING = {"id": "s", "feed": BUNDLED_ID, "speed": 60, "max_gap": "3s", "loop": True}


def test_the_new_items_parse_and_write_back() -> None:
    spec = parse("bandwidth:16,slow_close:2s")
    assert (spec.bandwidth, spec.slow_close) == (16.0, 2.0)
    assert str(spec) == "bandwidth:16,slow_close:2s"
    assert parse(str(parse("bandwidth:0.5"))).bandwidth == 0.5
    for bad in ("bandwidth:0", "bandwidth:-1", "bandwidth:1e3", "bandwidth", "bandwidth:2000000"):
        with pytest.raises(FaultSpecError, match="bandwidth"):
            parse(bad)
    with pytest.raises(FaultSpecError, match="slow_close"):
        parse("slow_close:-1s")


def test_bandwidth_releases_each_event_when_its_bytes_have_crossed_the_link() -> None:
    size = len(event(1).sse)
    rate = size / 1000  # KB/s: one event a second
    delivery, counts = made(f"bandwidth:{rate:.6f}")
    per_event = size / (round(rate, 6) * 1000)
    delivery.offer([event(1), event(2), event(3)], 0.0)
    assert taken(delivery) == []
    assert delivery.next_deadline() == pytest.approx(per_event)
    delivery.advance(per_event)
    assert taken(delivery) == ["inc-1"]
    delivery.advance(2 * per_event - 1e-9)
    assert taken(delivery) == []
    delivery.advance(3 * per_event)
    assert taken(delivery) == ["inc-2", "inc-3"]
    assert delivery.next_deadline() is None
    # an idle link is free again: an event offered later waits only for its own bytes
    delivery.offer([event(4)], 10.0)
    assert delivery.next_deadline() == pytest.approx(10.0 + per_event)
    assert counts["bandwidth"] == 4


def test_slow_close_holds_a_faults_end_back() -> None:
    delivery, counts = made("disconnect_after:2,slow_close:3s")
    delivery.offer([event(1), event(2), event(3)], 5.0)
    assert taken(delivery) == ["inc-1", "inc-2"]
    assert delivery.closing is None and delivery.next_deadline() == 8.0
    delivery.offer([event(4)], 6.0)  # nothing after the end is written
    delivery.advance(7.999)
    assert taken(delivery) == [] and delivery.closing is None
    delivery.advance(8.0)
    assert delivery.closing is not None and delivery.closing.why is Why.FAULT
    assert delivery.closing.reason == "fault: disconnect_after" and not delivery.closing.reset
    assert counts == {"disconnect_after": 1, "slow_close": 1}


def test_slow_close_keeps_a_reset_a_reset_and_acts_from_the_start() -> None:
    delivery, _ = made("reset_after:0,slow_close:500ms", now=1.0)
    assert delivery.closing is None and delivery.next_deadline() == 1.5
    delivery.advance(1.5)
    assert delivery.closing is not None and delivery.closing.reset


# Faults changed at runtime ---------------------------------------------------------------------


def test_refault_hands_what_old_stages_hold_to_the_new_ones() -> None:
    delivery, counts = made("delay:10s")
    delivery.offer([event(1), event(2)], 0.0)
    assert taken(delivery) == [] and delivery.next_deadline() == 10.0
    delivery.refault(parse("duplicate:1"), counts, 1.0)
    assert taken(delivery) == ["inc-1", "inc-1", "inc-2", "inc-2"]
    delivery.refault(parse(""), counts, 2.0)
    assert delivery.plain
    delivery.offer([event(3)], 2.0)
    assert taken(delivery) == ["inc-3"]
    plain = Delivery(100)
    plain.framing = delivery.framing
    plain.refault(parse("disconnect_after:1"), Counter(), 0.0)
    plain.offer([event(1), event(2)], 0.0)
    assert taken(plain) == ["inc-1"] and plain.closing is not None


async def test_patch_changes_the_faults_of_open_and_new_connections(
    start_server: StartServer,
) -> None:
    """An open WebSocket without faults starts getting duplicates when its stream's faults
    change, a connection's own ``faults`` stays over the stream's, and "" clears them."""
    server = await start_server(streams=[LOOPING])
    _, info = await server.get("/api/streams/s")
    base = f"{server.ws_base}/streams/s/ws?since={info['cursor']}"
    async with asyncio.timeout(30):
        async with (
            server.session.ws_connect(base) as plain,
            server.session.ws_connect(base + "&faults=duplicate:0") as own,
        ):
            first = await ids_of(plain, 2)
            assert first[0] != first[1]
            async with server.session.patch(
                f"{server.base}/api/streams/s", json={"faults": "duplicate:1,seed:3"}
            ) as response:
                assert response.status == 200
                state = await response.json()
            assert state["faults"]["spec"] == "duplicate:1,seed:3"
            later = await ids_of(plain, 8)
            assert any(a == b for a, b in itertools.pairwise(later)), later
            mine = await ids_of(own, 10)
            assert len(set(mine)) == len(mine)  # its own duplicate:0 is kept over the stream's
            fresh = await ids_of_new(server, base, 4)
            assert fresh[0] == fresh[1] and fresh[2] == fresh[3]
            async with server.session.patch(
                f"{server.base}/api/streams/s", json={"faults": ""}
            ) as response:
                cleared_at = serial((await response.json())["cursor"])
            again: list[str] = []
            while len(again) < 4:  # what was written before the change may still arrive
                again += [i for i in await ids_of(plain, 1) if serial(i) > cleared_at]
            assert len(set(again)) == len(again), again
    _, state = await server.get("/api/streams/s")
    assert state["faults"]["spec"] is None and state["faults"]["injected"]["duplicate"] > 0


@pytest.mark.parametrize(
    "body,where",
    [
        ({"faults": "drop:2"}, "body.faults: 'drop:2'"),
        ({"faults": 5}, "body.faults: expected a string"),
        ({"speed": 2}, "body.speed: unknown field"),
        ({}, "body.faults: missing"),
    ],
)
async def test_a_bad_patch_is_a_400_naming_the_field(
    start_server: StartServer, body: dict[str, object], where: str
) -> None:
    server = await start_server(streams=[LOOPING])
    async with server.session.patch(f"{server.base}/api/streams/s", json=body) as response:
        assert response.status == 400
        assert (await response.json())["error"].startswith(where)
    async with server.session.patch(f"{server.base}/api/streams/nope", json={}) as response:
        assert response.status == 404


async def ids_of(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[str]:
    out: list[str] = []
    while len(out) < count:
        message = await ws.receive()
        assert message.type is aiohttp.WSMsgType.TEXT, message
        data = json.loads(message.data)
        if data.get("type") != "stream.state":
            out.append(data["id"])
    return out


async def ids_of_new(server: Server, url: str, count: int) -> list[str]:
    async with server.session.ws_connect(url) as ws:
        return await ids_of(ws, count)


def serial(event_id: str) -> int:
    return int(event_id.rsplit("-", 1)[1])


# Clients that do not resume ---------------------------------------------------------------------


async def test_a_reconnect_without_cursor_after_a_fault_is_counted(
    start_server: StartServer,
) -> None:
    server = await start_server(streams=[LOOPING])
    _, info = await server.get("/api/streams/s")
    faulted = f"{server.ws_base}/streams/s/ws?faults=disconnect_after:2"
    async with asyncio.timeout(30):
        seen = await until_closed(server, f"{faulted}&since={info['cursor']}")
        await until_closed(server, faulted)  # came back without its cursor: counted
        await until_closed(server, f"{faulted}&since={seen[-1]}")  # with it: not counted
        await until_closed(server, f"{server.ws_base}/streams/s/ws?since={seen[-1]}")
    _, state = await server.get("/api/streams/s")
    assert state["faults"]["reconnects_without_cursor"] == 1
    async with server.session.get(f"{server.base}/metrics") as response:
        text = await response.text()
    assert 'livesim_reconnects_without_cursor_total{stream="s"} 1.0' in text


async def until_closed(server: Server, url: str) -> list[str]:
    """The ids a WebSocket receives until the server closes it (or 2 if it does not)."""
    out: list[str] = []
    async with server.session.ws_connect(url) as ws:
        while len(out) < 3:
            message = await ws.receive()
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            out.append(json.loads(message.data)["id"])
    return out


def test_recent_closes_are_bounded_and_forgotten_after_the_window() -> None:
    now = [0.0]
    recent = RecentCloses(lambda: now[0])
    recent.note("a")
    recent.note("a")
    assert recent.take("a") and recent.take("a") and not recent.take("a")
    recent.note("b")
    now[0] = RECENT_WINDOW + 1
    assert not recent.take("b")
    for n in range(RECENT_LIMIT + 10):
        recent.note(str(n))
    assert len(recent._closed) == RECENT_LIMIT and not recent.take("0")


async def test_the_new_toxics_over_a_real_server(start_server: StartServer) -> None:
    """Through the transports: ``slow_close`` ends the SSE response no sooner than asked after
    the fault's end (a lower bound: the upper one is the machine's), ``bandwidth`` delivers
    every event in order over WebSocket."""
    server = await start_server(streams=[LOOPING])
    _, info = await server.get("/api/streams/s")
    url = f"{server.base}/streams/s/events?since={info['cursor']}"
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(30):
        async with server.session.get(url + "&faults=disconnect_after:1,slow_close:300ms") as r:
            body = b""
            began: float | None = None
            async for chunk in r.content.iter_any():
                body += chunk
                if began is None and b"\nid: " in body:
                    began = loop.time()  # the one event: the fault ends the connection here
            ended = loop.time()
        assert body.count(b"\nid: ") == 1 and began is not None
        assert ended - began >= 0.3
        ws_url = f"{server.ws_base}/streams/s/ws?since={info['cursor']}&faults=bandwidth:50"
        async with server.session.ws_connect(ws_url) as ws:
            got = await ids_of(ws, 5)
    assert [serial(i) for i in got] == [serial(info["cursor"]) + n for n in range(1, 6)]
