"""Lean subscriber connections, many per process: raw asyncio protocols, no per-event JSON.

``open_connection(sink, target, transport, cursor)`` makes one SSE or WebSocket subscription and
returns once the server accepted it (200 / 101); the ``frames`` decoders then hand every event to
``sink`` with its receive time. ``connection.closed`` resolves when it ends, whoever ended it;
``close()`` ends it from our side (``by_us``); a body the decoders will not take (a frame over
``max_event_bytes``, bytes that are not HTTP or WebSocket) ends it too, with ``error`` saying why.
SSE resumes with ``Last-Event-ID`` (what EventSource sends), WebSocket with ``?since=`` (a
browser's WebSocket cannot set headers).

The handshakes are the libraries': h11 writes the SSE request and reads its response head;
websockets' sans-I/O ``ClientProtocol`` writes the WebSocket request, checks the answer and
writes our frames (pong, close). What follows the head goes to ``frames``' byte-search
decoders, which cut ids out of it without parsing JSON, undo SSE's chunked encoding and read
WebSocket frames: through the libraries, the body cost about 45 % more client CPU per event
(figures in ``SseConnection`` and ``WsConnection``). As it is, a ``livesim load`` client costs
what the hand-written HTTP it replaced did: 8.1 against 8.5 µs per SSE event, 6.4 against 6.5 µs
per WebSocket event (mean of three runs; the noise between runs is about 10 %). The
libraries' handshakes cost more, once per connection: about 60 µs of CPU against 6 µs
(in-process timing), 0.1 s more for a run that opens 2,000 connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import cast

import h11
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidState, InvalidStatus, ProtocolError
from websockets.protocol import State
from websockets.uri import parse_uri

from .frames import Sink, SseDecoder, WsDecoder
from .sse import MAX_EVENT_BYTES
from .target import Target

MAX_HEAD = 65536
"""Bytes of a response head held while it is not whole."""
CONNECT_TIMEOUT = 10.0


class HandshakeError(ConnectionError):
    """The server answered, but not with a subscription (the status line says why)."""

    def __init__(self, problem: str, status: int | None = None) -> None:
        super().__init__(problem)
        self.status = status
        """The HTTP status it answered, when it answered one: 503 and 429 are refusals."""


class Connection(asyncio.Protocol):
    """One subscription; subclasses drive their protocol library and feed the decoders."""

    def __init__(self, sink: Sink) -> None:
        loop = asyncio.get_running_loop()
        self.sink = sink
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.is_open = False
        self.by_us = False
        self.error: str | None = None
        """Why we broke off a subscription whose body we would not take."""
        self.bytes = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(self.request())

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.bytes += len(data)
        if self.is_open:
            self.body(data, now)
        else:
            self.handshake(data, now)

    def eof_received(self) -> bool | None:
        self.ended()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.is_open = False
        if not self.opened.done():
            self.opened.set_exception(ConnectionResetError(f"closed before subscribing: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def accepted(self) -> None:
        self.is_open = True
        if not self.opened.done():  # a stopping client may have cancelled the attempt meanwhile
            self.opened.set_result(None)

    def refused(self, problem: str, status: int | None = None) -> None:
        """The handshake failed: ``open_connection`` raises ``HandshakeError(problem)``."""
        if not self.opened.done():
            self.opened.set_exception(HandshakeError(problem, status))
        self.close()

    def broken(self, error: str) -> None:
        """End it for what the server sent: not ``by_us`` (no churn), an ``error``."""
        if not self.is_open:
            self.refused(error)
            return
        self.error = error
        if self.transport is not None:
            self.transport.close()

    def close(self) -> None:
        """End it from our side, without ceremony (a dropped connection)."""
        self.by_us = True
        if self.transport is not None:
            self.transport.close()

    def request(self) -> bytes:
        raise NotImplementedError

    def handshake(self, data: bytes, now: float) -> None:
        """Bytes before the subscription was accepted (the response head, and what follows
        it in the same read)."""
        raise NotImplementedError

    def body(self, data: bytes, now: float) -> None:
        raise NotImplementedError

    def ended(self) -> None:
        """The server half-closed the connection."""


def _status(code: int, reason: bytes | str) -> str:
    text = reason.decode(errors="replace") if isinstance(reason, bytes) else reason
    return f"answered {f'HTTP/1.1 {code} {text}'[:80]!r}"


class SseConnection(Connection):
    """``GET /…/events``: h11 writes the request and reads the response head; the body goes
    to an ``SseDecoder``, which also undoes the chunked encoding.

    The body does not go through h11: on a ``livesim load`` run (100 SSE clients, a stream at
    speed 1e6, same server, same machine) h11's chunked reading cost 13.7 µs of client CPU per
    event against 9.5 µs for the decoder's byte search, +45 % (one run each)."""

    def __init__(
        self, sink: Sink, target: Target, cursor: str | None, max_frame: int = MAX_EVENT_BYTES
    ) -> None:
        super().__init__(sink)
        self.http: h11.Connection | None = h11.Connection(
            h11.CLIENT, max_incomplete_event_size=MAX_HEAD
        )
        headers = [
            ("Host", target.host_header),
            ("Accept", "text/event-stream"),
            ("Cache-Control", "no-cache"),
        ]
        if cursor:
            headers.append(("Last-Event-ID", cursor))
        self._request = h11.Request(method="GET", target=target.path("sse"), headers=headers)
        self.max_frame = max_frame
        self.decoder: SseDecoder | None = None

    def request(self) -> bytes:
        assert self.http is not None
        return b"".join(
            self.http.send(event) or b"" for event in (self._request, h11.EndOfMessage())
        )

    def handshake(self, data: bytes, now: float) -> None:
        http = self.http
        assert http is not None
        http.receive_data(data)
        while True:
            try:
                event = http.next_event()
            except h11.RemoteProtocolError as exc:
                self.refused(f"not an HTTP/1.1 response: {exc}"[:200])
                return
            if event is h11.NEED_DATA:
                return
            if type(event) is h11.Response:
                break
            if type(event) is h11.ConnectionClosed:
                self.refused("closed before answering")
                return
        if event.status_code != 200:
            self.refused(_status(event.status_code, event.reason), event.status_code)
            return
        chunked = any(
            name == b"transfer-encoding" and b"chunked" in value.lower()
            for name, value in event.headers
        )
        rest, _ = http.trailing_data
        self.http = None
        self.decoder = SseDecoder(self.sink, chunked=chunked, max_frame=self.max_frame)
        self.accepted()
        if rest:
            self.body(bytes(rest), now)

    def body(self, data: bytes, now: float) -> None:
        decoder = self.decoder
        assert decoder is not None
        decoder.feed(data, now)
        if decoder.error is not None:
            self.broken(decoder.error)
        elif decoder.ended:
            self.close()
            self.by_us = False  # the server ended the response

    def ended(self) -> None:
        if self.http is not None:
            self.handshake(b"", time.time())


class WsConnection(Connection):
    """``GET /…/ws``: websockets' ``ClientProtocol`` writes the handshake request, checks the
    response (status, ``Sec-WebSocket-Accept``) and writes our frames (pong, close: masked);
    the server's frames go to a ``WsDecoder``.

    The frames do not go through ``ClientProtocol``'s reader: on a ``livesim load`` run (100
    WebSocket clients, a stream at speed 1e6, same server, same machine) it cost 13.1 µs of
    client CPU per event against 9.0 µs for the decoder, +46 % (one run each)."""

    def __init__(
        self, sink: Sink, target: Target, cursor: str | None, max_frame: int = MAX_EVENT_BYTES
    ) -> None:
        super().__init__(sink)
        path = target.path("ws", **({"since": cursor} if cursor else {}))
        self.ws = ClientProtocol(parse_uri(f"ws://{target.host_header}{path}"), max_size=max_frame)
        self.decoder = WsDecoder(sink, max_frame=max_frame)
        self.close_code: int | None = None
        self._head: bytearray | None = bytearray()
        """The response head so far; None once it went to ``ClientProtocol``."""

    def request(self) -> bytes:
        self.ws.send_request(self.ws.connect())
        return b"".join(self.ws.data_to_send())

    def handshake(self, data: bytes, now: float) -> None:
        if self._head is None:  # a refusal's body: the protocol reads on until its end
            self._answer(data)
            return
        head = self._head
        searched = max(0, len(head) - 3)  # linear: a blank line may straddle two reads
        head += data
        end = head.find(b"\r\n\r\n", searched) + 4
        if end < 4:
            if len(head) > MAX_HEAD:
                self.refused("response head too long")
            return
        self._head = None
        self._answer(bytes(head[:end]))
        rest = bytes(head[end:])
        if rest and self.is_open:
            self.body(rest, now)
        elif rest and not self.opened.done():
            self._answer(rest)

    def _answer(self, data: bytes) -> None:
        ws = self.ws
        if data:
            ws.receive_data(data)
        else:
            ws.receive_eof()
        ws.events_received()
        problem = ws.handshake_exc
        if problem is None and ws.state is State.OPEN:
            self.accepted()
        elif isinstance(problem, InvalidStatus):
            status = problem.response
            self.refused(_status(status.status_code, status.reason_phrase), status.status_code)
        elif problem is not None:
            self.refused(str(problem)[:200])

    def ended(self) -> None:
        if not self.is_open and self._head is None and not self.opened.done():
            self._answer(b"")

    def body(self, data: bytes, now: float) -> None:
        control = self.decoder.feed(data, now)
        if self.decoder.error is not None:
            self.broken(self.decoder.error)
            return
        for opcode, payload in control:
            if opcode == 0x9 and len(payload) <= 125:
                self.ws.send_pong(payload)
            elif opcode == 0x8:
                self.close_code = int.from_bytes(payload[:2]) if len(payload) >= 2 else 1005
                with contextlib.suppress(InvalidState, ProtocolError):
                    self.ws.send_close(self.close_code if self.close_code != 1005 else None)
                self._send()
                if self.transport is not None:
                    self.transport.close()
                return
        if control:
            self._send()

    def _send(self) -> None:
        transport = self.transport
        for data in self.ws.data_to_send():
            if transport is None or transport.is_closing():
                return
            if data:
                transport.write(data)


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
