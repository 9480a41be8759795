"""The connection seam against a real server: what a client that leaves, or only asks for the
headers, does to the server (issue #6 B10–B12)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import AsyncIterator

import aiohttp
import pytest
import sse
from conftest import BUNDLED_ID, Server, StartServer
from server_helpers import metrics_text
from websockets.asyncio.client import connect as ws_connect

TIMEOUT = 20
PAUSED = {"id": "s", "feed": BUNDLED_ID, "speed": 60, "paused": True}
QUIET = {"sse_heartbeat": 300, "ws_heartbeat": 300}
"""Nothing is written on an idle connection for minutes: only connection loss can count."""

SSE_REQUEST = (
    b"GET /streams/s/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
)
WS_REQUEST = (
    b"GET /streams/s/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)


async def subscribers(server: Server) -> int:
    _, state = await server.get("/api/streams/s")
    return int(state["subscribers"])


@contextlib.asynccontextmanager
async def raw(server: Server, request: bytes) -> AsyncIterator[socket.socket]:
    """A loopback socket that has sent ``request``; closed with an RST (SO_LINGER 0) on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    host, port = server.runner.addresses[0][:2]
    loop = asyncio.get_running_loop()
    try:
        await loop.sock_connect(sock, (host, port))
        await loop.sock_sendall(sock, request)
        yield sock
    finally:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


async def read_head(sock: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await loop.sock_recv(sock, 4096)
        assert chunk, f"closed before the response head: {data!r}"
        data += chunk
    return data


async def wait_subscribers(server: Server, want: int) -> None:
    while await subscribers(server) != want:  # noqa: ASYNC110 (polling the server's API)
        await asyncio.sleep(0.02)


# B10 ----------------------------------------------------------------------------------------


async def test_head_on_events_answers_headers_only_without_subscribing(
    start_server: StartServer,
) -> None:
    server = await start_server(streams=[PAUSED])
    async with asyncio.timeout(TIMEOUT):
        async with server.session.head(server.base + "/streams/s/events") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/event-stream")
            assert await response.read() == b""
        # The same over a raw socket: the server ends the response, no body bytes follow.
        async with raw(server, SSE_REQUEST.replace(b"GET", b"HEAD", 1)) as sock:
            head = await read_head(sock)
            assert head.startswith(b"HTTP/1.1 200 ")
            body = head.split(b"\r\n\r\n", 1)[1]
            assert body == b""
        assert await subscribers(server) == 0


# B11 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("request_bytes", [SSE_REQUEST, WS_REQUEST], ids=["sse", "ws"])
async def test_client_leaving_at_once_logs_no_error(
    start_server: StartServer, caplog: pytest.LogCaptureFixture, request_bytes: bytes
) -> None:
    server = await start_server(streams=[PAUSED], server=QUIET)
    caplog.set_level(logging.DEBUG)
    async with asyncio.timeout(TIMEOUT):
        for _ in range(20):  # right after the request, and right after the response head
            async with raw(server, request_bytes):
                pass
            async with raw(server, request_bytes) as sock:
                await read_head(sock)
        await wait_subscribers(server, 0)
        assert (await server.get("/healthz"))[0] == 200
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert noisy == [], [r.getMessage() for r in noisy]


# B12 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("request_bytes", [SSE_REQUEST, WS_REQUEST], ids=["sse", "ws"])
async def test_abrupt_close_unsubscribes_without_waiting_for_a_write(
    start_server: StartServer, request_bytes: bytes
) -> None:
    # Paused stream, heartbeats minutes away: nothing is written that could reveal the loss.
    server = await start_server(streams=[PAUSED], server=QUIET)
    async with asyncio.timeout(TIMEOUT):
        async with raw(server, request_bytes) as sock:
            await read_head(sock)
            await wait_subscribers(server, 1)
        await wait_subscribers(server, 0)  # long before any heartbeat is due
        # A clean close (FIN, not RST) is noticed the same way.
        host, port = server.runner.addresses[0][:2]
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(request_bytes)
        while b"\r\n\r\n" not in await reader.read(4096):  # noqa: ASYNC110
            pass
        await wait_subscribers(server, 1)
        writer.close()
        await writer.wait_closed()
        await wait_subscribers(server, 0)


# The WebSocket heartbeat is the connection's own ---------------------------------------------


async def test_ws_heartbeat_pings_and_closes_a_client_that_never_answers(
    start_server: StartServer,
) -> None:
    """aiohttp's heartbeat is off; ours pings every period and gives up half a period later."""
    server = await start_server(streams=[PAUSED], server={"ws_heartbeat": "200ms"})
    async with asyncio.timeout(TIMEOUT):
        ws = await server.session.ws_connect(server.ws_base + "/streams/s/ws", autoping=False)
        kinds = []
        while not ws.closed:
            message = await ws.receive()
            kinds.append(message.type)
        assert kinds[0] is aiohttp.WSMsgType.PING
        assert aiohttp.WSMsgType.TEXT not in kinds
        await wait_subscribers(server, 0)


async def test_ws_heartbeat_keeps_a_client_that_answers(start_server: StartServer) -> None:
    server = await start_server(streams=[PAUSED], server={"ws_heartbeat": "100ms"})
    async with asyncio.timeout(TIMEOUT):
        async with server.session.ws_connect(server.ws_base + "/streams/s/ws") as ws:
            with contextlib.suppress(TimeoutError):
                # Ten periods of pings, answered by aiohttp's autoping within ``receive``.
                await asyncio.wait_for(ws.receive(), 1.0)
            assert not ws.closed
            assert await subscribers(server) == 1
            await ws.send_str('{"op": "ping"}')
            reply = await ws.receive(timeout=5)
            assert reply.json()["type"] == "pong"


# Absurd cursors and HEAD (issue #6) -----------------------------------------------------------


@pytest.mark.parametrize("digits", ["9" * 5000, "1" * 19, "0" * 30])
async def test_absurd_cursor_gets_a_reset(server: Server, digits: str) -> None:
    cursor = (await server.get(f"/api/streams/{BUNDLED_ID}"))[1]["cursor"]
    incarnation = cursor.rsplit("-", 1)[0]
    url = f"{server.base}/streams/{BUNDLED_ID}/events"
    async with asyncio.timeout(TIMEOUT):
        async with sse.connect(
            server.session, url, last_event_id=f"{incarnation}-{digits}"
        ) as reader:
            first = await reader.next_event()
        assert sse.envelope(first)["type"] == "stream.reset"
        async with ws_connect(f"{server.ws_base}/streams/{BUNDLED_ID}/ws") as ws:
            await ws.send(f'{{"op": "resume", "since": "{incarnation}-{digits}"}}')
            replies = [await ws.recv() for _ in range(2)]
        assert '"type":"resumed"' in replies[0] and '"type":"stream.reset"' in replies[1]


async def test_head_on_event_streams_sends_no_body_and_starts_nothing(server: Server) -> None:
    for path in (f"/streams/{BUNDLED_ID}/events", f"/feeds/{BUNDLED_ID}/events"):
        async with asyncio.timeout(TIMEOUT), server.session.head(server.base + path) as response:
            assert response.status == 200
            assert response.content_type == "text/event-stream"
            assert await response.read() == b""
    status, metrics = await metrics_text(server)
    assert 'livesim_subscribers{stream="private"' not in metrics
