"""clients/connection.py: subscriptions to a real server, and to a hostile one that answers
what no livesim server would."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from typing import Any

import pytest
from conftest import BUNDLED_ID, StartServer
from hostile import (
    SSE_HEAD,
    WS_GUID,
    Hostile,
    Reader,
    Request,
    Writer,
    head,
    hold,
    not_found,
    sse,
    websocket,
    ws_frame,
)

from clients.connection import Connection, HandshakeError, WsConnection, open_connection
from clients.target import Target, parse_target

TIMEOUT = 20


class Sink:
    def __init__(self) -> None:
        self.ids: list[bytes] = []
        self.types: list[bytes] = []
        self.bad = 0
        self.arrived = asyncio.Event()

    def event(
        self, event_id: bytes, type: bytes, due: float | None, reason: Any, now: float
    ) -> None:
        self.ids.append(event_id)
        self.types.append(type)
        self.arrived.set()

    def malformed(self) -> None:
        self.bad += 1

    async def until(self, count: int) -> None:
        while len(self.ids) < count:
            self.arrived.clear()
            await self.arrived.wait()


def target_of(base: str, stream: str = "s") -> Target:
    target = parse_target(f"{base}/streams/{stream}")
    assert isinstance(target, Target)
    return target


def serials(ids: list[bytes]) -> list[int]:
    return [int(i.rsplit(b"-", 1)[1]) for i in ids]


FAST = {"id": BUNDLED_ID, "feed": BUNDLED_ID, "speed": 60, "max_gap": "3s", "loop": False}


@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_a_subscription_delivers_in_order_and_resumes_after_its_cursor(
    start_server: StartServer, transport: str
) -> None:
    server = await start_server(streams=[FAST])
    target = target_of(server.base, BUNDLED_ID)
    sink = Sink()
    async with asyncio.timeout(TIMEOUT):
        conn = await open_connection(sink, target, transport, None)
        assert conn.is_open
        await sink.until(5)
        conn.close()
        await conn.closed
    assert conn.by_us and conn.error is None and conn.bytes > 0
    numbers = serials(sink.ids)
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    cursor = sink.ids[2].decode()
    again = Sink()
    async with asyncio.timeout(TIMEOUT):
        conn = await open_connection(again, target, transport, cursor)
        await again.until(3)
        conn.close()
        await conn.closed
    assert again.types[0] != b"stream.reset"
    assert serials(again.ids)[:3] == [numbers[2] + 1, numbers[2] + 2, numbers[2] + 3]


@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_a_refusal_is_a_handshake_error_with_the_status(
    start_server: StartServer, transport: str
) -> None:
    server = await start_server()
    with pytest.raises(HandshakeError, match=r"answered 'HTTP/1.1 404 Not Found'"):
        await open_connection(Sink(), target_of(server.base, "nope"), transport, None)


async def started(handlers: dict[str, Any]) -> Hostile:
    server = await Hostile().start()
    for path, handler in handlers.items():
        server.on(path, handler)
    return server


async def open_against(
    handler: Any, transport: str, **options: Any
) -> tuple[Hostile, Connection, Sink]:
    path = "/streams/s/events" if transport == "sse" else "/streams/s/ws"
    server = await started({path: handler})
    sink = Sink()
    conn = await open_connection(sink, target_of(server.base), transport, None, **options)
    return server, conn, sink


def endless_head(extra: bytes) -> Any:
    async def handle(request: Request, reader: Reader, w: Writer) -> None:
        w.write(b"HTTP/1.1 200 OK\r\n" + extra)
        for _ in range(200):
            w.write(b"X-Pad: " + b"y" * 1000 + b"\r\n")
            await w.drain()
        await hold(reader)

    return handle


@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_an_endless_response_head_is_refused(transport: str) -> None:
    server = await started({})
    try:
        server.on("/streams/s/events", endless_head(b""))
        server.on("/streams/s/ws", endless_head(b""))
        async with asyncio.timeout(TIMEOUT):
            with pytest.raises(HandshakeError):
                await open_connection(Sink(), target_of(server.base), transport, None)
    finally:
        await server.close()


async def test_a_response_that_is_not_http_is_refused() -> None:
    async def garbage(request: Request, reader: Reader, w: Writer) -> None:
        w.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        await hold(reader)

    server = await started({"/streams/s/events": garbage})
    try:
        async with asyncio.timeout(TIMEOUT):
            with pytest.raises(HandshakeError, match="not an HTTP/1.1 response"):
                await open_connection(Sink(), target_of(server.base), "sse", None)
    finally:
        await server.close()


async def test_a_wrong_accept_key_is_refused() -> None:
    async def wrong(request: Request, reader: Reader, w: Writer) -> None:
        upgrade = [("Upgrade", "websocket"), ("Connection", "Upgrade")]
        w.write(head(101, [*upgrade, ("Sec-WebSocket-Accept", "AAAA")]))
        await hold(reader)

    server = await started({"/streams/s/ws": wrong})
    try:
        async with asyncio.timeout(TIMEOUT):
            with pytest.raises(HandshakeError, match="Sec-WebSocket-Accept"):
                await open_connection(Sink(), target_of(server.base), "ws", None)
    finally:
        await server.close()


EVENT = b'{"id":"x-1","type":"post.created","due_at":"2026-01-01T00:00:00.000Z","post":{}}'


async def test_sse_events_in_the_same_packet_as_the_head_are_not_lost() -> None:
    chunked = SSE_HEAD.replace(b"\r\n\r\n", b"\r\nTransfer-Encoding: chunked\r\n\r\n")
    body = b"id: x-1\ndata: " + EVENT + b"\n\n"
    chunk = f"{len(body):x}\r\n".encode() + body + b"\r\n"

    async def handle(request: Request, reader: Reader, w: Writer) -> None:
        w.write(chunked + chunk + b"0\r\n\r\n")
        await hold(reader)

    server, conn, sink = await open_against(handle, "sse")
    try:
        async with asyncio.timeout(TIMEOUT):
            await conn.closed
    finally:
        await server.close()
    assert sink.ids == [b"x-1"] and not conn.by_us and conn.error is None  # the server ended it


async def test_ws_events_in_the_same_packet_as_the_handshake_are_not_lost() -> None:
    server, conn, sink = await open_against(websocket(ws_frame(EVENT) * 2), "ws")
    try:
        async with asyncio.timeout(TIMEOUT):
            await sink.until(2)
    finally:
        conn.close()
        await server.close()
    assert sink.ids == [b"x-1", b"x-1"]


@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_a_frame_over_the_bound_breaks_the_connection(transport: str) -> None:
    big = b'{"id":"x-1","type":"post.created","post":{"body":"' + b"x" * 5000 + b'"}}'
    handler = (
        sse(b"id: x-1\ndata: " + big + b"\n\n") if transport == "sse" else websocket(ws_frame(big))
    )
    server, conn, sink = await open_against(handler, transport, max_event_bytes=1024)
    try:
        async with asyncio.timeout(TIMEOUT):
            await conn.closed
    finally:
        await server.close()
    assert conn.error is not None and "over 1024 bytes (--max-event-bytes)" in conn.error
    assert not conn.by_us and sink.ids == []


async def test_a_ping_is_answered_with_a_masked_pong_and_a_close_is_echoed() -> None:
    answers: asyncio.Queue[bytes] = asyncio.Queue()

    async def handle(request: Request, reader: Reader, w: Writer) -> None:
        key = request.headers["sec-websocket-key"].encode()
        accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode()
        upgrade = [("Upgrade", "websocket"), ("Connection", "Upgrade")]
        w.write(head(101, [*upgrade, ("Sec-WebSocket-Accept", accept)]) + ws_frame(b"hello", 0x9))
        await answers.put(await reader.readexactly(2 + 4 + 5))
        w.write(ws_frame((1001).to_bytes(2) + b"bye", 0x8))
        await answers.put(await reader.readexactly(2 + 4 + 2))
        await hold(reader)

    server, conn, _ = await open_against(handle, "ws")
    try:
        async with asyncio.timeout(TIMEOUT):
            pong = await answers.get()
            close = await answers.get()
            await conn.closed
    finally:
        await server.close()
    assert pong[0] == 0x8A and pong[1] == 0x80 | 5
    assert bytes(b ^ pong[2 + i % 4] for i, b in enumerate(pong[6:])) == b"hello"
    assert close[0] == 0x88 and close[1] == 0x80 | 2
    assert bytes(b ^ close[2 + i % 4] for i, b in enumerate(close[6:])) == (1001).to_bytes(2)
    assert isinstance(conn, WsConnection) and conn.close_code == 1001 and not conn.by_us


async def test_a_connection_refused_before_the_answer_is_an_error() -> None:
    async def hang_up(request: Request, reader: Reader, w: Writer) -> None:
        w.transport.abort()

    for transport in ("sse", "ws"):
        server = await started({"/streams/s/events": hang_up, "/streams/s/ws": not_found})
        try:
            async with asyncio.timeout(TIMEOUT):
                with pytest.raises((HandshakeError, ConnectionError)):
                    await open_connection(Sink(), target_of(server.base), transport, None)
        finally:
            await server.close()
