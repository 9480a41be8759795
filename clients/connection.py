"""Lean subscriber connections, many per process: raw asyncio protocols, no per-event JSON.

``open_connection(sink, target, transport, cursor)`` makes one SSE or WebSocket subscription and
returns once the server accepted it (200 / 101); the ``frames`` decoders then hand every event to
``sink`` with its receive time. ``connection.closed`` resolves when it ends, whoever ended it;
``close()`` ends it from our side (``by_us``); a body the decoders will not take (a frame over
``max_event_bytes``, a bad chunk) ends it too, with ``error`` saying why. The request is
HTTP/1.1 written by hand; SSE resumes with ``Last-Event-ID`` (what EventSource sends),
WebSocket with ``?since=`` (a browser's WebSocket cannot set headers).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import time
from typing import cast

from .frames import Sink, SseDecoder, WsDecoder
from .sse import MAX_EVENT_BYTES
from .target import Target

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_HEAD = 65536
CONNECT_TIMEOUT = 10.0


class HandshakeError(ConnectionError):
    """The server answered, but not with a subscription (the status line says why)."""


class Connection(asyncio.Protocol):
    """One subscription; subclasses know the handshake and the body."""

    transport_name = ""

    def __init__(self, sink: Sink, request: bytes) -> None:
        loop = asyncio.get_running_loop()
        self.sink = sink
        self.request = request
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.is_open = False
        self.by_us = False
        self.error: str | None = None
        """Why we broke off a subscription whose body we would not take."""
        self.bytes = 0
        self.events = 0
        self._head = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.bytes += len(data)
        if self.is_open:
            self.body(data, now)
            return
        head = self._head
        head += data
        end = head.find(b"\r\n\r\n")
        if end < 0:
            if len(head) > MAX_HEAD:
                self._fail("response head too long")
            return
        status = bytes(head[: head.find(b"\r\n")])
        problem = self.handshake(status, bytes(head[:end]).lower())
        if problem:
            self._fail(problem)
            return
        rest = bytes(head[end + 4 :])
        head.clear()
        self.is_open = True
        self.opened.set_result(None)
        if rest:
            self.body(rest, now)

    def connection_lost(self, exc: Exception | None) -> None:
        self.is_open = False
        if not self.opened.done():
            self.opened.set_exception(ConnectionResetError(f"closed before subscribing: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def _fail(self, problem: str) -> None:
        if not self.opened.done():
            self.opened.set_exception(HandshakeError(problem))
        self.close()

    def broken(self, error: str) -> None:
        """End it for what the server sent: not ``by_us`` (no churn), an ``error``."""
        self.error = error
        if self.transport is not None:
            self.transport.close()

    def close(self) -> None:
        """End it from our side, without ceremony (a dropped connection)."""
        self.by_us = True
        if self.transport is not None:
            self.transport.close()

    def handshake(self, status: bytes, head: bytes) -> str | None:
        raise NotImplementedError

    def body(self, data: bytes, now: float) -> None:
        raise NotImplementedError


def _status(status: bytes) -> str:
    return f"answered {status.decode(errors='replace')[:80]!r}"


class SseConnection(Connection):
    transport_name = "sse"

    def __init__(
        self, sink: Sink, target: Target, cursor: str | None, max_frame: int = MAX_EVENT_BYTES
    ) -> None:
        resume = f"Last-Event-ID: {cursor}\r\n" if cursor else ""
        request = (
            f"GET {target.path('sse')} HTTP/1.1\r\nHost: {target.host_header}\r\n"
            f"Accept: text/event-stream\r\nCache-Control: no-cache\r\n{resume}\r\n"
        ).encode()
        super().__init__(sink, request)
        self.max_frame = max_frame
        self.decoder: SseDecoder | None = None

    def handshake(self, status: bytes, head: bytes) -> str | None:
        if not status.startswith(b"HTTP/1.1 200 ") and not status.startswith(b"HTTP/1.0 200 "):
            return _status(status)
        chunked = b"transfer-encoding: chunked" in head
        self.decoder = SseDecoder(self.sink, chunked=chunked, max_frame=self.max_frame)
        return None

    def body(self, data: bytes, now: float) -> None:
        assert self.decoder is not None
        self.decoder.feed(data, now)
        if self.decoder.error is not None:
            self.broken(self.decoder.error)
        elif self.decoder.ended:
            self.close()
            self.by_us = False  # the server ended the response


class WsConnection(Connection):
    transport_name = "ws"

    def __init__(
        self, sink: Sink, target: Target, cursor: str | None, max_frame: int = MAX_EVENT_BYTES
    ) -> None:
        self.key = base64.b64encode(os.urandom(16))
        path = target.path("ws", **({"since": cursor} if cursor else {}))
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {target.host_header}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {self.key.decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        super().__init__(sink, request)
        self.decoder = WsDecoder(sink, max_frame=max_frame)
        self.close_code: int | None = None

    def handshake(self, status: bytes, head: bytes) -> str | None:
        if not status.startswith(b"HTTP/1.1 101 "):
            return _status(status)
        accept = base64.b64encode(hashlib.sha1(self.key + WS_GUID).digest()).lower()
        if b"sec-websocket-accept: " + accept not in head:
            return "wrong Sec-WebSocket-Accept"
        return None

    def body(self, data: bytes, now: float) -> None:
        control = self.decoder.feed(data, now)
        if self.decoder.error is not None:
            self.broken(self.decoder.error)
            return
        for opcode, payload in control:
            if opcode == 0x9:
                self.send(0xA, payload)
            elif opcode == 0x8:
                self.close_code = int.from_bytes(payload[:2]) if len(payload) >= 2 else 1005
                self.send(0x8, payload[:2])
                if self.transport is not None:
                    self.transport.close()

    def send(self, opcode: int, payload: bytes) -> None:
        """A client frame, masked as RFC 6455 requires (an all-zero key: we hide nothing)."""
        if self.transport is not None and not self.transport.is_closing() and len(payload) < 126:
            self.transport.write(
                bytes((0x80 | opcode, 0x80 | len(payload))) + b"\0\0\0\0" + payload
            )


CONNECTIONS: dict[str, type[SseConnection] | type[WsConnection]] = {
    "sse": SseConnection,
    "ws": WsConnection,
}


async def open_connection(
    sink: Sink,
    target: Target,
    transport: str,
    cursor: str | None,
    *,
    max_event_bytes: int = MAX_EVENT_BYTES,
) -> Connection:
    """A subscription the server accepted; ``HandshakeError``, ``OSError`` or ``TimeoutError``
    otherwise (the socket is closed then). A frame over ``max_event_bytes`` breaks it."""
    loop = asyncio.get_running_loop()
    connection = CONNECTIONS[transport](sink, target, cursor, max_event_bytes)
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            await loop.create_connection(lambda: connection, target.host, target.port)
            await connection.opened
    except BaseException:
        if not connection.opened.done():
            connection.opened.cancel()
        connection.close()
        raise
    return connection
