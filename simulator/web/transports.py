"""SSE and WebSocket: one subscription seam for both, and each transport's framing.

A connection is subscribed the same way whatever its transport: ``_subscribe`` makes the
subscriber, and a ``Connection`` (the hub's ``Sink``) puts itself between the asyncio transport and
aiohttp's protocol, so that it

- writes the hub's pre-framed bytes straight to the transport (no task, no await per event);
- sees ``pause_writing``/``resume_writing``, so the hub queues exactly while the socket is full
  and flushes the queue in one write when it drains;
- sees ``connection_lost``, so a vanished client is unsubscribed at once, not at the next write.

Everything else the transport does (reading requests and client frames, aiohttp's heartbeat, the
close handshake) still goes through aiohttp: the connection forwards every protocol callback.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp.client_exceptions import ClientConnectionResetError

from ..core import wire
from ..core.live import TooManyPosts
from ..core.wire import Event
from . import access
from . import fault_stages as faults
from .api import parse_command
from .hub import SLOW, Framing, Subscriber
from .ratelimit import TokenBucket
from .state import CONNECTIONS, METRICS, SETTINGS
from .stream import Stream, StreamFailed

log = logging.getLogger(__name__)

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}
OVER_RATE_CLOSE = 1000
"""Messages over ``server.ws_control_rate`` in a row before the socket is closed (1008)."""
TRY_AGAIN_LATER = 1013
"""WebSocket close code for a slow consumer: reconnect and resume."""
CLIENT_GONE = 499
"""Status logged for a request whose client left before it could be answered (nginx's 499)."""
GONE = (ConnectionError, ClientConnectionResetError)
"""What a client that went away looks like to a handler: expected, never an error."""


def cursor_of(request: web.Request) -> str | None:
    """The resume point: ``Last-Event-ID`` (EventSource reconnects) or a query parameter."""
    return (
        request.headers.get("Last-Event-ID")
        or request.query.get("last_event_id")
        or request.query.get("since")
        or None
    )


# Framing: once per publish per framing, shared by every connection framed alike ---------------


def sse_chunked(events: Sequence[Event]) -> bytes:
    """SSE frames as one HTTP/1.1 chunk (the response is chunked; the chunk is ours to frame)."""
    data = b"".join([event.sse for event in events])
    return b"%x\r\n%b\r\n" % (len(data), data) if data else b""  # an empty chunk would end it


def sse_plain(events: Sequence[Event]) -> bytes:
    """SSE frames for an HTTP/1.0 client: the body is not chunked, it ends with the connection."""
    return b"".join([event.sse for event in events])


def ws_frames(events: Sequence[Event]) -> bytes:
    """WebSocket text frames, a batch coalesced into one write."""
    return b"".join([event.ws_frame for event in events])


# The seam ------------------------------------------------------------------------------------


class Connection(asyncio.Protocol):
    """One subscriber's connection: the hub's ``Sink``, interposed as the transport's protocol.

    ``transport.set_protocol`` is public asyncio API (selector, SSL and uvloop transports). Every
    callback is forwarded to aiohttp's protocol first, so aiohttp reads, parses, flow-controls
    and closes exactly as before; we only learn about it.
    """

    framing: Framing
    plain = True

    def __init__(
        self, request: web.Request, subscriber: Subscriber, on_lost: Callable[[], None]
    ) -> None:
        transport = request.transport
        if transport is None:
            raise ConnectionResetError("connection lost")
        self.transport = transport
        self.inner: Any = transport.get_protocol()
        self.paused = bool(getattr(self.inner, "writing_paused", False))
        self.subscriber = subscriber
        self.closed = False
        """No more writes: we closed it, aiohttp closed it, or it was lost. Keeps ``paused`` set."""
        # The hub's write is the transport's own: nothing of ours between publish and the
        # socket. Safe without checks because every way a connection ends goes through
        # ``stop`` first (our close, aiohttp's close, connection loss), which takes the
        # subscriber off write-through before anything could be written after the end.
        self.write = transport.write  # type: ignore[method-assign]
        self._on_lost = on_lost
        self.quiet = False
        """Keepalives suspended (``hush``)."""
        transport.set_protocol(self)

    # asyncio.Protocol, forwarded to aiohttp

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        result: bool | None = self.inner.eof_received()
        return result

    def pause_writing(self) -> None:
        self.inner.pause_writing()
        self.paused = True
        self.subscriber.pause()

    def resume_writing(self) -> None:
        self.inner.resume_writing()
        self.paused = self.closed
        self.subscriber.flush()  # asyncio allows writing from resume_writing

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop()
        self.inner.connection_lost(exc)
        self._on_lost()

    def stop(self) -> None:
        """Nothing more is written: off write-through, and ``flush`` finds the sink paused."""
        self.closed = self.paused = True
        self.subscriber.direct = False

    # Sink

    def write(self, data: bytes) -> None:
        """Replaced by the transport's own ``write`` in ``__init__``."""
        self.transport.write(data)

    def close(self, reason: str) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        """Cut the connection unless it is already on its way out."""
        if not self.transport.is_closing():
            self.transport.abort()

    def hush(self, quiet: bool) -> None:
        """Suspend (True) or resume the connection's own keepalives, for a fault that must be
        total silence (``stall``)."""
        self.quiet = quiet

    def detach(self) -> None:
        """Hand the transport back to aiohttp alone (it closes it after the handler), and let go
        of the subscriber and of the stream (``on_lost`` names it). Each is a reference cycle
        otherwise, and aiohttp keeps cycles of its own (its protocol, request and WebSocket
        refer to each other): the stream would live on until a full collection."""
        self.stop()
        if self.transport.get_protocol() is self:
            self.transport.set_protocol(self.inner)
        self.subscriber.sink = None
        self.subscriber.pending = []
        self._on_lost = _nothing


def _nothing() -> None:
    pass


C = TypeVar("C", bound=Connection)


def _subscribe(
    request: web.Request,
    stream: Stream,
    transport: str,
    make: Callable[[web.Request, Subscriber, Callable[[], None]], C],
) -> C:
    """The one subscription path for SSE and WebSocket: subscribe, attach, track for shutdown.

    Synchronous from subscribing to attaching, so no event can fall between the backlog and
    the first live write. A connection with faults (``faults.FAULTS``, set by the app) is
    attached through its chain of fault stages instead of directly.
    """
    spec = request.get(faults.FAULTS)
    no_resume = bool(spec and spec.no_resume)
    subscriber = stream.subscribe(cursor_of(request), transport, no_resume=no_resume)
    try:
        connection = make(request, subscriber, lambda: stream.unsubscribe(subscriber))
        if spec is None:
            subscriber.attach(connection)
        else:
            subscriber.attach(faults.around(connection, subscriber, spec, stream.counts.faults))
    except BaseException:
        stream.unsubscribe(subscriber)
        raise
    request.app[CONNECTIONS].add(subscriber)
    return connection


def _unsubscribe(request: web.Request, stream: Stream, connection: Connection) -> None:
    """The end of ``_subscribe``, whichever way the connection ended."""
    stream.unsubscribe(connection.subscriber)
    request.app[CONNECTIONS].discard(connection.subscriber)
    faults.release(connection.subscriber.sink)
    connection.detach()


# SSE -----------------------------------------------------------------------------------------


class SseConnection(Connection):
    """An SSE response: events are chunks we frame ourselves under aiohttp's response, whose
    headers (and the ``retry`` frame) went out through aiohttp before we attached; the
    response's end (the last chunk) is aiohttp's again when the handler returns."""

    def __init__(
        self,
        request: web.Request,
        subscriber: Subscriber,
        on_lost: Callable[[], None],
        *,
        chunked: bool,
    ) -> None:
        self.chunked = chunked
        self.framing = sse_chunked if chunked else sse_plain
        loop = asyncio.get_running_loop()
        self.ended: asyncio.Future[None] = loop.create_future()
        """Done when the response should end: the handler's only wait (a future and one
        timer handle per idle connection, not an Event, a deque of waiters and a timeout)."""
        self.reason: str | None = None
        self._beat: asyncio.TimerHandle | None = None
        super().__init__(request, subscriber, on_lost)

    def close(self, reason: str) -> None:
        self.stop()  # aiohttp ends the body once the handler returns; nothing of ours after it
        self.reason = reason
        self._end()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._end()

    def _end(self) -> None:
        if not self.ended.done():
            self.ended.set_result(None)
        if self._beat is not None:
            self._beat.cancel()

    def beat_every(self, seconds: float | None) -> None:
        """Call ``heartbeat`` every ``seconds`` until the response ends."""
        if seconds and not self.ended.done():
            loop = asyncio.get_running_loop()
            self._beat = loop.call_later(seconds, self._tick, seconds)

    def _tick(self, seconds: float) -> None:
        self.heartbeat()
        self.beat_every(seconds)

    def heartbeat(self) -> None:
        """A comment on schedule, so proxies keep an idle stream open. Sent busy or idle:
        tracking writes would cost every delivery a store; a beat costs one write a period."""
        if not self.subscriber.pending and not self.paused and not self.quiet:
            data = wire.SSE_HEARTBEAT
            self.write(b"%x\r\n%b\r\n" % (len(data), data) if self.chunked else data)


async def serve_sse(request: web.Request, stream: Stream) -> web.StreamResponse:
    server = request.app[SETTINGS].server
    response = web.StreamResponse(headers=SSE_HEADERS)
    response.force_close()  # an event stream's connection is never reused for another request
    try:
        await response.prepare(request)
        await response.write(wire.sse_retry(int(server.sse_retry * 1000)))  # sends the headers
        chunked = response.headers.get("Transfer-Encoding", "").lower() == "chunked"
        make = functools.partial(SseConnection, chunked=chunked)
        connection = _subscribe(request, stream, "sse", make)
    except GONE:
        log.debug("SSE client %s left before subscribing", request.remote)
        return response
    try:
        connection.beat_every(server.sse_heartbeat or None)
        await connection.ended
    finally:
        connection._end()
        _unsubscribe(request, stream, connection)
    return response  # aiohttp ends the chunked body (or finds the connection gone: no error)


# WebSocket -----------------------------------------------------------------------------------


class WebSocket(web.WebSocketResponse):
    """aiohttp's response, telling us before it closes: every close frame aiohttp sends goes
    out through ``close`` (ours on a drop, its own when the client closes, ``write_eof``)."""

    on_close: Callable[[], None] | None = None

    async def close(
        self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True
    ) -> bool:
        if self.on_close is not None:
            self.on_close()
        return await super().close(code=code, message=message, drain=drain)


class WsConnection(Connection):
    """A WebSocket: event frames are written under aiohttp's ``WebSocketResponse``.

    Why raw writes cannot interleave with aiohttp's own frames (aiohttp 3.14,
    ``_websocket/writer.py``): with compression off (we pass ``compress=False``) its
    ``WebSocketWriter.send_frame`` builds each frame and hands it to ``transport.write``
    synchronously, with no await before or within the write (it only awaits drain *after* the
    frame is in the transport). Our writes are also whole frames in one synchronous call. On one
    event loop thread two synchronous writes cannot overlap, so pings, pongs, replies and the
    close frame always sit between complete event frames. What remains is order: no event frame
    after the close frame: ``WebSocket.close`` stops our writes before aiohttp writes it.
    (A heartbeat that gets no pong closes the transport without a close frame; a write after
    that is discarded with the transport, and ``connection_lost`` follows.)
    """

    framing = staticmethod(ws_frames)

    def __init__(
        self,
        request: web.Request,
        subscriber: Subscriber,
        on_lost: Callable[[], None],
        *,
        ws: WebSocket,
    ) -> None:
        self.ws = ws
        self.closing: asyncio.Task[bool] | None = None
        ws.on_close = self.stop
        self._beat: float | None = None
        super().__init__(request, subscriber, on_lost)

    def hush(self, quiet: bool) -> None:
        """aiohttp's pings are suspended too: with ``_heartbeat`` None its heartbeat schedules
        nothing (aiohttp 3.14 ``web_ws.py``); ``_reset_heartbeat`` re-arms it."""
        if quiet == self.quiet:
            return
        super().hush(quiet)
        ws = self.ws
        if quiet:
            self._beat, ws._heartbeat = ws._heartbeat, None
            ws._cancel_heartbeat()
        else:
            ws._heartbeat = self._beat
            if not ws.closed:
                ws._reset_heartbeat()

    def detach(self) -> None:
        super().detach()
        self.ws.on_close = None

    def close(self, reason: str) -> None:
        if self.closing is None and not self.ws.closed:
            code = TRY_AGAIN_LATER if reason == SLOW else WSCloseCode.GOING_AWAY
            if reason.startswith(faults.FAULT):
                code = faults.FAULT_CLOSE
            self.closing = asyncio.get_running_loop().create_task(
                self.ws.close(code=code, message=reason.encode()[:120]), name="ws-close"
            )


async def serve_ws(request: web.Request, stream: Stream) -> web.StreamResponse:
    server = request.app[SETTINGS].server
    ws = WebSocket(
        heartbeat=server.ws_heartbeat or None, max_msg_size=server.ws_max_message, compress=False
    )
    try:
        await ws.prepare(request)
        connection = _subscribe(request, stream, "ws", functools.partial(WsConnection, ws=ws))
    except GONE:
        log.debug("WebSocket client %s left before subscribing", request.remote)
        # Unprepared (the transport was gone before the upgrade), aiohttp would fail closing it.
        return ws if ws.prepared else web.Response(status=CLIENT_GONE, reason="Client Gone")
    subscriber = connection.subscriber
    # Control over a shared stream obeys the same Origin / token rules as the REST API; a private
    # replay belongs to its one connection, which may always steer it.
    refusal = None if stream.private else request.get(access.CONTROL_REFUSAL)
    refused = request.app[METRICS].totals.refused
    loop = asyncio.get_running_loop()
    rate = server.ws_control_rate
    bucket = TokenBucket(rate, burst=2 * rate, now=loop.time())
    over = 0
    try:
        async for message in ws:
            if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                continue
            if not bucket.take(loop.time()):
                over += 1
                if over == 1:
                    refused["ws_rate"] += 1
                    slow_down = _error(f"$: over server.ws_control_rate ({rate:g} messages/s)")
                    await ws.send_frame(slow_down, WSMsgType.TEXT)
                elif over >= OVER_RATE_CLOSE:
                    await ws.close(
                        code=WSCloseCode.POLICY_VIOLATION, message=b"over ws_control_rate"
                    )
                    break
                continue
            over = 0
            if message.type is WSMsgType.TEXT:
                reply = _handle(stream, subscriber, message.data, refusal, refused)
            else:
                reply = _error("$: binary messages are not supported; send JSON text")
            if reply:
                await ws.send_frame(reply, WSMsgType.TEXT)
    except GONE:  # reset, or lost mid-drain
        pass
    finally:
        stream.unsubscribe(subscriber)
        if connection.closing is not None:
            await connection.closing
        _unsubscribe(request, stream, connection)
    return ws


def _handle(
    stream: Stream,
    subscriber: Subscriber,
    data: str,
    refusal: access.Refusal | None = None,
    refused: Counter[str] | None = None,
) -> bytes | None:
    """Act on one client message; the reply, if any (errors, pong)."""
    try:
        message = wire.parse_client_message(data)
    except wire.ClientMessageError as exc:
        return _error(str(exc))
    op = message["op"]
    if op == "ping":
        return wire.message("pong")
    if op == "resume" and "since" in message:
        since = message["since"]
        if not isinstance(since, str):
            return _error("$.since: expected an event id string")
        stream.resubscribe(subscriber, since)
        return None
    if refusal is not None:
        if refused is not None:
            refused[refusal.reason] += 1
        return _error(f"$.op: {refusal.message}")
    try:
        stream.command(parse_command(op, message, "$"))
    except TooManyPosts as exc:  # names the bound: the stream's own ($) or a setting
        return _error(f"{exc.where}: {exc}")
    except ValueError as exc:
        text = str(exc)
        return _error(text if text.startswith("$") else f"$.{text}")
    except StreamFailed as exc:
        return _error(f"$: {exc}")
    return None


def _error(text: str, **extra: Any) -> bytes:
    return wire.message("error", error=text, where=text.split(":", 1)[0], **extra)
