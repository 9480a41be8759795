"""SSE and WebSocket: thin adapters between a subscriber's ``Delivery`` and a socket.

A connection is subscribed the same way whatever its transport: ``_subscribe`` makes the
subscriber, and a ``Connection`` (the hub's ``Sink``) puts itself between the asyncio transport and
aiohttp's protocol, so that it

- writes the hub's pre-framed bytes straight to the transport (no task, no await per event);
- sees ``pause_writing``/``resume_writing``, so the hub queues exactly while the socket is full
  and flushes the queue in one write when it drains;
- sees ``connection_lost``, so a vanished client is unsubscribed at once, not at the next write;
- keeps ONE timer: at the earlier of the delivery's deadline (fault stages) and its keepalive
  (an SSE comment, a WebSocket ping it sends and whose pong it awaits itself).

Everything else the transport does (reading requests and client frames, the close handshake)
still goes through aiohttp, by its public API: the connection forwards every protocol callback.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import struct
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp.client_exceptions import ClientConnectionResetError

from ..core import wire
from ..core.commands import parse_command
from ..core.delivery import Close, Why
from ..core.errors import InputError, join
from ..core.faults import FaultSpec
from ..core.live import TooManyPosts
from ..core.wire import Event
from . import access
from .hub import Framing, Subscriber
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
FAULTS = web.RequestKey("faults", FaultSpec)
"""The spec a subscription request is to suffer (the stream's merged with the connection's)."""
WS_PING = b"\x89\x00"
"""An unmasked WebSocket ping with no payload (RFC 6455 §5.5.2), written whole like an event."""
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
        self.loop = asyncio.get_running_loop()
        self.due: float | None = None
        """The delivery's deadline (``arm``)."""
        self.keepalive_at: float | None = None
        """When ``keepalive`` is next due; moved freely, the timer catches up when it fires."""
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
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
        self.due = self.keepalive_at = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # Sink

    def write(self, data: bytes) -> None:
        """Replaced by the transport's own ``write`` in ``__init__``."""
        self.transport.write(data)

    def close(self, close: Close) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        """Cut the connection unless it is already on its way out."""
        if not self.transport.is_closing():
            self.transport.abort()

    def reset(self) -> None:
        """Cut the TCP connection with an RST: SO_LINGER 0, then abort."""
        self.stop()
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        self.abort()

    def arm(self, deadline: float | None) -> None:
        self.due = None if self.closed else deadline
        self._schedule()

    # The one timer

    def _schedule(self) -> None:
        times = [t for t in (self.due, self.keepalive_at) if t is not None]
        if not times:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            return
        when = min(times)
        if self._timer is not None:
            if self._timer_at <= when:
                return  # it fires first and re-arms for what is left then
            self._timer.cancel()
        self._timer_at = when
        self._timer = self.loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._timer = None
        now = max(self.loop.time(), self._timer_at)  # a loop may run a timer a hair early
        if self.due is not None and self.due <= now:
            self.due = None
            self.subscriber.advance(now)  # re-arms through ``arm``
        if self.keepalive_at is not None and self.keepalive_at <= now and not self.closed:
            self.keepalive_at = self.keepalive(now)
        self._schedule()

    def keepalive(self, now: float) -> float | None:
        """Keep the connection alive; when to come back (None: never)."""
        return None

    @property
    def quiet(self) -> bool:
        """Keepalives are suspended: a fault that must be total silence (``stall``)."""
        return self.subscriber.delivery.quiet

    def detach(self) -> None:
        """Hand the transport back to aiohttp alone (it closes it after the handler), and let go
        of the subscriber and of the stream (``on_lost`` names it). Each is a reference cycle
        otherwise, and aiohttp keeps cycles of its own (its protocol, request and WebSocket
        refer to each other): the stream would live on until a full collection."""
        self.stop()
        if self.transport.get_protocol() is self:
            self.transport.set_protocol(self.inner)
        self.subscriber.sink = None
        self.subscriber.delivery.close(_DETACHED)
        self._on_lost = _nothing


_DETACHED = Close(Why.GOING_AWAY, 1001, "connection ended")
"""What a delivery is left with once its connection is gone: it takes no more events."""


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
    the first live write. A connection with faults (``FAULTS``, set by the app) gets its fault
    stages in its delivery.
    """
    spec = request.get(FAULTS)
    no_resume = bool(spec and spec.no_resume)
    subscriber = stream.subscribe(cursor_of(request), transport, no_resume=no_resume)
    try:
        connection = make(request, subscriber, lambda: stream.unsubscribe(subscriber))
        if not stream.private:
            subscriber.own_faults = request.query.get("faults")
            subscriber.remote = request.remote
            if request.remote is not None and stream.hub.fault_closed.take(request.remote):
                stream.counts.reconnects_without_cursor += cursor_of(request) is None
        subscriber.attach(connection, spec, stream.counts.faults)
    except BaseException:
        stream.unsubscribe(subscriber)
        raise
    request.app[CONNECTIONS].add(subscriber)
    return connection


def _unsubscribe(request: web.Request, stream: Stream, connection: Connection) -> None:
    """The end of ``_subscribe``, whichever way the connection ended."""
    stream.unsubscribe(connection.subscriber)
    request.app[CONNECTIONS].discard(connection.subscriber)
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
        super().__init__(request, subscriber, on_lost)
        self.ended: asyncio.Future[None] = self.loop.create_future()
        """Done when the response should end: the handler's only wait (a future and one
        timer handle per idle connection, not an Event, a deque of waiters and a timeout)."""
        self.reason: Close | None = None
        self.period: float | None = None

    def close(self, close: Close) -> None:
        self.reason = close
        if close.reset:
            self.reset()
        else:
            self.stop()  # aiohttp ends the body once the handler returns; nothing of ours after
        self._end()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._end()

    def _end(self) -> None:
        if not self.ended.done():
            self.ended.set_result(None)
        self.stop()

    def beat_every(self, seconds: float | None) -> None:
        """Send ``heartbeat`` every ``seconds`` until the response ends."""
        if seconds and not self.ended.done():
            self.period = seconds
            self.keepalive_at = self.loop.time() + seconds
            self._schedule()

    def keepalive(self, now: float) -> float | None:
        self.heartbeat()
        return None if self.period is None else now + self.period

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
    await stream.reach(cursor_of(request))
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
    frame is in the transport). Our writes (events, pings) are also whole frames in one
    synchronous call. On one event loop thread two synchronous writes cannot overlap, so pongs,
    replies and the close frame always sit between complete event frames. What remains is order:
    no event frame after the close frame: ``WebSocket.close`` stops our writes before aiohttp
    writes it.

    The heartbeat is ours (aiohttp's is off, and so is its autoping: the handler answers pings
    and reports every message with ``heard``): a ping ``period`` after the client was last
    heard from, and the transport closed, as aiohttp does, if nothing comes back within half a
    period. A stall suspends it, like every other write.
    """

    framing = staticmethod(ws_frames)

    def __init__(
        self,
        request: web.Request,
        subscriber: Subscriber,
        on_lost: Callable[[], None],
        *,
        ws: WebSocket,
        heartbeat: float | None,
    ) -> None:
        self.ws = ws
        self.closing: asyncio.Task[bool] | None = None
        ws.on_close = self.stop
        super().__init__(request, subscriber, on_lost)
        self.period = heartbeat
        self.pong_due: float | None = None
        self.heard(self.loop.time())

    def heard(self, now: float) -> None:
        """The client sent something (a pong, a ping, a message): it is there."""
        self.pong_due = None
        if self.period is not None and not self.closed:
            self.keepalive_at = now + self.period
            self._schedule()

    def keepalive(self, now: float) -> float | None:
        period = self.period
        if period is None or self.ws.closed:
            return None
        if self.quiet:
            self.pong_due = None  # nothing is written during a stall, nor awaited
            return now + period
        if self.pong_due is not None:
            if now < self.pong_due:
                return self.pong_due
            log.debug("WebSocket client %s: no pong within %gs", self.ws, period / 2)
            self.stop()
            self.transport.close()
            return None
        self.write(WS_PING)
        self.pong_due = now + period / 2
        return self.pong_due

    def detach(self) -> None:
        super().detach()
        self.ws.on_close = None

    def close(self, close: Close) -> None:
        if close.reset:
            self.reset()
        elif self.closing is None and not self.ws.closed:
            self.closing = self.loop.create_task(
                self.ws.close(code=close.code, message=close.reason.encode()[:120]),
                name="ws-close",
            )


async def serve_ws(request: web.Request, stream: Stream) -> web.StreamResponse:
    server = request.app[SETTINGS].server
    ws = WebSocket(autoping=False, max_msg_size=server.ws_max_message, compress=False)
    try:
        await ws.prepare(request)
        await stream.reach(cursor_of(request))
        make = functools.partial(WsConnection, ws=ws, heartbeat=server.ws_heartbeat or None)
        connection = _subscribe(request, stream, "ws", make)
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
            connection.heard(loop.time())
            if message.type is WSMsgType.PING:
                await ws.pong(message.data)
                continue
            if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                continue
            if not bucket.take(loop.time()):
                over += 1
                if over == 1:
                    refused["ws_rate"] += 1
                    slow_down = _error("$", f"over server.ws_control_rate ({rate:g} messages/s)")
                    await ws.send_frame(slow_down, WSMsgType.TEXT)
                elif over >= OVER_RATE_CLOSE:
                    await ws.close(
                        code=WSCloseCode.POLICY_VIOLATION, message=b"over ws_control_rate"
                    )
                    break
                continue
            over = 0
            if message.type is WSMsgType.TEXT:
                reply = await _handle(stream, subscriber, message.data, refusal, refused)
            else:
                reply = _error("$", "binary messages are not supported; send JSON text")
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


async def _handle(
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
        return _error(exc.where, exc.message)
    op = message["op"]
    if op == "ping":
        return wire.message("pong")
    if op == "resume" and "since" in message:
        since = message["since"]
        if not isinstance(since, str):
            return _error("$.since", "expected an event id string")
        await stream.reach(since)
        stream.resubscribe(subscriber, since)
        return None
    if refusal is not None:
        if refused is not None:
            refused[refusal.reason] += 1
        return _error("$.op", refusal.message)
    try:
        command = parse_command(op, message, "$")
    except InputError as exc:
        return _error(exc.where, exc.message)
    try:
        await stream.send(command)
    except TooManyPosts as exc:  # names the bound: the stream's own ($) or a setting
        return _error(exc.where, exc.message)
    except InputError as exc:  # the message's place that does not fit the stream: ``$.to``
        return _error(join("$", exc.where), exc.message)
    except StreamFailed as exc:
        return _error("$", str(exc))
    return None


def _error(where: str, message: str, **extra: Any) -> bytes:
    return wire.message("error", error=f"{where}: {message}", where=where, **extra)
