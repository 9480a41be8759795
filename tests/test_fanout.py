"""Fan-out: every subscriber gets the same events, byte for byte, and a slow one cannot hold up
the rest: it is dropped, counted and told so, while the others keep receiving."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sse
from conftest import BUNDLED_ID, Server, StartServer
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from simulator.core.model import Feed

TIMEOUT = 20
MAX = {"id": "s", "feed": BUNDLED_ID, "speed": "max", "loop": False, "paused": True}
SLOW_REASON = "slow consumer"


async def ws_ready(ws: ClientConnection) -> None:
    await ws.send('{"op": "ping"}')
    assert json.loads(await ws.recv())["type"] == "pong"


async def ws_until_ended(ws: ClientConnection) -> list[bytes]:
    """Raw text frames (as bytes, undecoded) up to the stream's ``ended`` state."""
    out: list[bytes] = []
    while True:
        frame = await ws.recv(decode=False)
        assert isinstance(frame, bytes)
        out.append(frame)
        message = json.loads(frame)
        if message["type"] == "stream.state" and message["data"]["reason"] == "ended":
            return out


def serial(event_id: str) -> int:
    return int(event_id.rsplit("-", 1)[1])


async def test_sse_and_ws_get_identical_ids_and_bytes(server_max: Server, bundled: Feed) -> None:
    server = server_max
    url = server.base + "/streams/s/events"
    async with (
        asyncio.timeout(TIMEOUT),
        sse.connect(server.session, url) as reader,
        connect(server.ws_base + "/streams/s/ws") as ws,
    ):
        await ws_ready(ws)
        await server.post("/api/streams/s/resume")
        events = await reader.until("stream.state", reason="ended")
        frames = await ws_until_ended(ws)
        # A latecomer resuming from an early cursor gets the very same bytes from the log.
        since = json.loads(frames[4])["id"]
        async with connect(f"{server.ws_base}/streams/s/ws?since={since}") as late:
            replayed = await ws_until_ended(late)
    assert [e.id for e in events] == [json.loads(f)["id"] for f in frames]
    assert [e.event for e in events] == [json.loads(f)["type"] for f in frames]
    assert [e.data.encode() for e in events] == frames
    assert replayed == frames[5:]
    assert [serial(e.id) for e in events] == list(
        range(serial(events[0].id), serial(events[0].id) + len(events))
    )
    posts = [json.loads(f)["post"]["id"] for f in frames if json.loads(f)["type"] == "post.created"]
    assert posts == [p.id for p in bundled.posts]


async def test_many_subscribers_see_the_same_sequence(server_max: Server) -> None:
    server = server_max
    url = server.base + "/streams/s/events"
    async with contextlib.AsyncExitStack() as stack, asyncio.timeout(TIMEOUT):
        readers = [
            await stack.enter_async_context(sse.connect(server.session, url)) for _ in "abcd"
        ]
        sockets = [
            await stack.enter_async_context(connect(server.ws_base + "/streams/s/ws"))
            for _ in "abcd"
        ]
        for ws in sockets:
            await ws_ready(ws)
        _, state = await server.get("/api/streams/s")
        assert state["subscribers"] == 8
        await server.post("/api/streams/s/resume")
        seen = [
            [e.data.encode() for e in await r.until("stream.state", reason="ended")]
            for r in readers
        ]
        seen += [await ws_until_ended(ws) for ws in sockets]
    assert all(sequence == seen[0] for sequence in seen)
    _, state = await server.get("/api/streams/s")
    assert state["dropped_slow"] == 0


# A slow subscriber --------------------------------------------------------------------------


async def small_socket(server: Server) -> socket.socket:
    """A connected loopback socket with a tiny receive buffer: a reader that stops reading
    pushes back on the server after a few kilobytes instead of megabytes."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    host, port = server.runner.addresses[0][:2]
    try:
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
    except BaseException:
        sock.close()
        raise
    return sock


@contextlib.asynccontextmanager
async def stalled_sse(server: Server) -> AsyncIterator[socket.socket]:
    """An SSE request on a raw socket that sends its request and then reads nothing."""
    sock = await small_socket(server)
    try:
        request = (
            b"GET /streams/s/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Accept: text/event-stream\r\n\r\n"
        )
        await asyncio.get_running_loop().sock_sendall(sock, request)
        yield sock
    finally:
        sock.close()


async def wait_for_drop(server: Server, receive: Any) -> int:
    """Keep the healthy subscriber reading until the stream reports a slow drop."""
    received = 0
    while True:
        for _ in range(100):
            await receive()
            received += 1
        _, state = await server.get("/api/streams/s")
        if state["dropped_slow"]:
            assert state["dropped_slow"] == 1
            assert state["subscribers"] == 1
            return received


@pytest.fixture
async def server_max(start_server: StartServer) -> Server:
    """One paused stream ``s`` at speed max, not looping."""
    return await start_server(streams=[MAX])


async def test_slow_ws_subscriber_is_dropped_and_the_other_keeps_up(
    start_server: StartServer,
) -> None:
    server = await start_server(
        streams=[{**MAX, "loop": True}], server={"max_pending": 8, "ws_heartbeat": 60}
    )
    url = server.ws_base + "/streams/s/ws"
    sock = await small_socket(server)
    # max_queue=1: the client stops reading its socket as soon as one message is waiting.
    async with (
        asyncio.timeout(TIMEOUT),
        connect(url, sock=sock, max_queue=1) as slow,
        connect(url) as fast,
    ):
        await ws_ready(slow)
        await ws_ready(fast)
        await server.post("/api/streams/s/resume")
        ids: list[str] = []

        async def receive() -> None:
            ids.append(json.loads(await fast.recv())["id"])

        await wait_for_drop(server, receive)
        for _ in range(300):  # the healthy one goes on, and misses nothing
            await receive()
        numbers = [serial(i) for i in ids]
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
        # Done: delete the stream (a command at speed max would emit one more unpaced batch,
        # which could push the healthy one, still writing its last batch, over this tiny bound).
        assert (await server.delete("/api/streams/s"))[0] == 200
        with pytest.raises(ConnectionClosed) as gone:
            while True:
                await fast.recv()
        assert gone.value.rcvd is not None and gone.value.rcvd.code == 1001
        # The slow one, once it reads again, finds what was already on its way, then a close
        # telling it to come back later and resume.
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await slow.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1013
    assert closed.value.rcvd.reason.startswith(SLOW_REASON)


async def test_slow_sse_subscriber_is_dropped_and_the_other_keeps_up(
    start_server: StartServer,
) -> None:
    server = await start_server(streams=[{**MAX, "loop": True}], server={"max_pending": 8})
    url = server.base + "/streams/s/events"
    async with (
        asyncio.timeout(TIMEOUT),
        stalled_sse(server) as stalled,
        sse.connect(server.session, url) as reader,
    ):
        # The stalled request is in once the stream counts two subscribers.
        while (await server.get("/api/streams/s"))[1]["subscribers"] < 2:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        await server.post("/api/streams/s/resume")
        events: list[sse.Event] = []

        async def receive() -> None:
            events.append(await reader.next_event())

        await wait_for_drop(server, receive)
        for _ in range(300):
            await receive()
        numbers = [serial(e.id) for e in events]
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
        assert (await server.delete("/api/streams/s"))[0] == 200
        async for _ in reader:  # its response ends
            pass
        # Reading again, the stalled client gets what was in flight, then the response ends.
        loop = asyncio.get_running_loop()
        tail = b""
        while not tail.endswith(b"\r\n0\r\n\r\n"):
            chunk = await loop.sock_recv(stalled, 1 << 16)
            assert chunk, "the server closed the connection instead of ending the response"
            tail = (tail + chunk)[-16:]


@contextlib.asynccontextmanager
async def stalled_ws(server: Server) -> AsyncIterator[socket.socket]:
    """A WebSocket handshake done by hand on a raw socket that then reads nothing."""
    sock = await small_socket(server)
    try:
        request = (
            b"GET /streams/s/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        await asyncio.get_running_loop().sock_sendall(sock, request)
        yield sock
    finally:
        sock.close()


@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_stalled_client_going_away_mid_write_is_no_server_error(
    start_server: StartServer, caplog: pytest.LogCaptureFixture, transport: str
) -> None:
    server = await start_server(streams=[{**MAX, "loop": True}], server={"max_pending": 8})
    stalled = stalled_sse if transport == "sse" else stalled_ws
    async with (
        asyncio.timeout(TIMEOUT),
        sse.connect(server.session, server.base + "/streams/s/events") as reader,
    ):
        async with stalled(server):
            while (await server.get("/api/streams/s"))[1]["subscribers"] < 2:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            await server.post("/api/streams/s/resume")
            await wait_for_drop(server, reader.next_event)
        # The stalled socket is closed while its writer waits for the socket to drain.
        await reader.events(200)
        await asyncio.sleep(0.2)  # give its handler a moment to notice (only a miss can result)
        assert (await server.delete("/api/streams/s"))[0] == 200
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]


# Raw frame writes beside aiohttp's own frames ------------------------------------------------


async def test_event_frames_and_aiohttp_pings_never_interleave(start_server: StartServer) -> None:
    """Events are written straight to the transport while aiohttp pings every 50 ms and answers
    client messages: the client's frame parser (websockets) would fail on any torn frame, and
    the close after the last event must arrive intact."""
    server = await start_server(streams=[{**MAX, "loop": True}], server={"ws_heartbeat": 0.05})
    async with asyncio.timeout(TIMEOUT), connect(server.ws_base + "/streams/s/ws") as ws:
        await ws_ready(ws)
        await server.post("/api/streams/s/resume")
        numbers: list[int] = []
        pongs = 0
        while len(numbers) < 3000:
            if len(numbers) % 500 == 0:
                await ws.send('{"op": "ping"}')  # a reply written by aiohttp mid-stream
            message = json.loads(await ws.recv())
            if message["type"] == "pong":
                pongs += 1
            else:
                numbers.append(serial(message["id"]))
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
        assert pongs >= 1
        assert (await server.delete("/api/streams/s"))[0] == 200
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                message = json.loads(await ws.recv())
                assert "type" in message
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
