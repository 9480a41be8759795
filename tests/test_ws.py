"""WebSocket: envelopes, client messages, errors that name the path, limits and controls."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from conftest import BUNDLED_ID, Server, StartServer
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from simulator.core.model import Feed

TIMEOUT = 10
PAUSED = {
    "id": "s",
    "feed": BUNDLED_ID,
    "speed": 3600,
    "max_gap": "1s",
    "loop": False,
    "paused": True,
}


async def recv_json(ws: ClientConnection) -> dict[str, Any]:
    value = json.loads(await ws.recv())
    assert isinstance(value, dict)
    return value


async def ping(ws: ClientConnection) -> dict[str, Any]:
    """Send a ping and wait for its pong; the subscription is in place once it comes back."""
    await ws.send(json.dumps({"op": "ping"}))
    reply = await recv_json(ws)
    assert reply["type"] == "pong", reply
    return reply


async def until(ws: ClientConnection, type: str, reason: str | None = None) -> list[dict[str, Any]]:
    """Messages up to and including the first of ``type`` (with ``data.reason``)."""
    out: list[dict[str, Any]] = []
    while True:
        message = await recv_json(ws)
        out.append(message)
        if message["type"] == type and (reason is None or message["data"]["reason"] == reason):
            return out


def serials(messages: list[dict[str, Any]]) -> list[int]:
    return [int(m["id"].rsplit("-", 1)[1]) for m in messages]


async def test_events_are_envelopes_in_order(start_server: StartServer, bundled: Feed) -> None:
    server = await start_server(streams=[PAUSED])
    async with asyncio.timeout(TIMEOUT), connect(server.ws_base + "/streams/s/ws") as ws:
        await ping(ws)
        status, state = await server.post("/api/streams/s/seek", {"to": bundled.posts[8].id})
        assert status == 200
        events = await until(ws, "stream.state", "seek")
    created = [e["post"]["id"] for e in events if e["type"] == "post.created"]
    assert created == [p.id for p in bundled.posts[:8]]
    assert all(e["stream"] == "s" for e in events)
    assert serials(events) == list(range(serials(events)[0], serials(events)[0] + len(events)))
    assert events[-1]["id"] == state["cursor"] == events[-1]["data"]["cursor"]
    assert events[-1]["data"]["state"] == "paused"


async def test_ping_pong(start_server: StartServer) -> None:
    server = await start_server(streams=[PAUSED])
    async with asyncio.timeout(TIMEOUT), connect(server.ws_base + "/streams/s/ws") as ws:
        # No cursor in the pong: the stream's latest id is not what this connection has seen.
        assert await ping(ws) == {"type": "pong"}
        await ws.send('{"op": "ping", "extra": [1, 2, 3]}')  # unknown members are ignored
        assert (await recv_json(ws))["type"] == "pong"


@pytest.mark.parametrize(
    ("message", "where"),
    [
        ("not json", "$"),
        ("{", "$"),
        ("", "$"),
        ("[1, 2]", "$"),
        ('"ping"', "$"),
        ("null", "$"),
        ("{}", "$.op"),
        ('{"op": 1}', "$.op"),
        ('{"op": null}', "$.op"),
        ('{"op": "fly"}', "$.op"),
        ('{"op": "seek"}', "$.to"),
        ('{"op": "seek", "to": ""}', "$.to"),
        ('{"op": "seek", "to": 7}', "$.to"),
        ('{"op": "seek", "to": "nonsense"}', "$.to"),
        ('{"op": "seek", "to": "+soon"}', "$.to"),
        ('{"op": "speed"}', "$.speed"),
        ('{"op": "speed", "speed": "fast"}', "$.speed"),
        ('{"op": "speed", "speed": 0}', "$.speed"),
        ('{"op": "speed", "speed": true}', "$.speed"),
        ('{"op": "resume", "since": 5}', "$.since"),
    ],
)
async def test_bad_message_is_an_error_and_the_connection_stays(
    start_server: StartServer, message: str, where: str
) -> None:
    server = await start_server(streams=[PAUSED])
    async with asyncio.timeout(TIMEOUT), connect(server.ws_base + "/streams/s/ws") as ws:
        await ping(ws)
        await ws.send(message)
        error = await recv_json(ws)
        assert error["type"] == "error"
        assert error["where"] == where
        assert error["error"].startswith(where + ": ")
        await ping(ws)  # still open, still answering
        await ws.send('{"op": "pause"}')  # and still acting on what it is sent
        assert (await recv_json(ws))["data"]["reason"] == "pause"
    _, state = await server.get("/api/streams/s")
    assert state["speed"] == 3600  # the bad message changed nothing


async def test_binary_message_is_an_error(start_server: StartServer) -> None:
    server = await start_server(streams=[PAUSED])
    async with asyncio.timeout(TIMEOUT), connect(server.ws_base + "/streams/s/ws") as ws:
        await ws.send(b'{"op": "ping"}')
        error = await recv_json(ws)
        assert error["type"] == "error"
        assert error["where"] == "$"
        assert "binary" in error["error"]
        await ping(ws)


async def test_oversize_message_closes_1009(start_server: StartServer) -> None:
    server = await start_server(streams=[PAUSED], server={"ws_max_message": 1024})
    async with asyncio.timeout(TIMEOUT), connect(server.ws_base + "/streams/s/ws") as ws:
        await ws.send(json.dumps({"op": "ping", "pad": "x" * 900}))  # under the limit: fine
        assert (await recv_json(ws))["type"] == "pong"
        await ws.send(json.dumps({"op": "ping", "pad": "x" * 2000}))
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009


async def test_controls_over_ws(start_server: StartServer, bundled: Feed) -> None:
    server = await start_server(streams=[{**PAUSED, "paused": False, "speed": 1}])
    async with asyncio.timeout(TIMEOUT), connect(server.ws_base + "/streams/s/ws") as ws:
        await ping(ws)
        await ws.send('{"op": "pause"}')
        paused = (await until(ws, "stream.state"))[-1]
        assert paused["data"]["reason"] == "pause"
        assert paused["data"]["state"] == "paused"
        _, state = await server.get("/api/streams/s")
        assert state["state"] == "paused"

        await ws.send('{"op": "speed", "speed": "max"}')
        changed = (await until(ws, "stream.state"))[-1]
        assert (changed["data"]["reason"], changed["data"]["speed"]) == ("speed", "max")
        await ws.send('{"op": "speed", "speed": 3600}')
        changed = (await until(ws, "stream.state"))[-1]
        assert (changed["data"]["reason"], changed["data"]["speed"]) == ("speed", 3600)

        await ws.send(json.dumps({"op": "seek", "to": bundled.posts[5].id}))
        sought = await until(ws, "stream.state")
        assert sought[-1]["data"]["reason"] == "seek"
        assert [e["post"]["id"] for e in sought if e["type"] == "post.created"][-1] == (
            bundled.posts[4].id
        )

        await ws.send('{"op": "restart"}')
        reset, restarted = await recv_json(ws), await recv_json(ws)
        assert (reset["type"], reset["data"]) == ("stream.reset", {"reason": "restart"})
        assert restarted["data"]["reason"] == "restart"
        assert restarted["data"]["state"] == "playing"

        await ws.send('{"op": "pause"}')
        await until(ws, "stream.state", "pause")
        await ws.send('{"op": "resume"}')  # without ``since``: unpause
        resumed = (await until(ws, "stream.state"))[-1]
        assert (resumed["data"]["reason"], resumed["data"]["state"]) == ("resume", "playing")


async def test_private_replay_over_ws(server: Server, bundled: Feed) -> None:
    url = f"{server.ws_base}/feeds/{BUNDLED_ID}/ws?speed=max&loop=false"
    async with asyncio.timeout(TIMEOUT), connect(url) as ws:
        events = await until(ws, "stream.state", "ended")
    created = [e["post"]["id"] for e in events if e["type"] == "post.created"]
    assert created == [p.id for p in bundled.posts]
    assert events[-1]["data"]["state"] == "ended"


async def test_private_replay_controls_are_its_own(server: Server) -> None:
    url = f"{server.ws_base}/feeds/{BUNDLED_ID}/ws?speed=60&paused=true"
    async with asyncio.timeout(TIMEOUT), connect(url) as ws, connect(url) as other:
        for replay in (ws, other):  # each private replay starts with its own first event
            assert (await until(replay, "stream.state"))[-1]["data"]["reason"] == "start"
        await ws.send('{"op": "resume"}')
        assert (await until(ws, "stream.state"))[-1]["data"]["reason"] == "resume"
        assert (await ping(other))["type"] == "pong"  # the other replay heard nothing


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/streams/nope/ws", 404),
        ("/feeds/nope/ws", 404),
        (f"/feeds/{BUNDLED_ID}/ws?speed=fast", 400),
        (f"/feeds/{BUNDLED_ID}/ws?bogus=1", 400),
    ],
)
async def test_handshake_refused(server: Server, path: str, status: int) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with asyncio.timeout(TIMEOUT), connect(server.ws_base + path):
            pass
    assert refused.value.response.status_code == status
    body = json.loads(refused.value.response.body or b"{}")
    assert body["status"] == status
