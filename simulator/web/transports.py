"""SSE and WebSocket: write a subscriber's events to one connection, read its client's messages.

Both transports take the bytes the replay already encoded (``Event.sse`` / ``Event.json``) and add
nothing per client but framing. One writer loop per connection; a dropped subscriber (too slow, or
the stream went away) ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp.client_exceptions import ClientConnectionResetError

from .. import wire
from ..hub import SLOW, Subscriber
from ..stream import Stream
from .api import parse_command
from .state import CONNECTIONS, SETTINGS

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}
SLOW_CLOSE_GRACE = 1.0
TRY_AGAIN_LATER = 1013
"""WebSocket close code for a slow consumer: reconnect and resume."""


def cursor_of(request: web.Request) -> str | None:
    """The resume point: ``Last-Event-ID`` (EventSource reconnects) or a query parameter."""
    return (
        request.headers.get("Last-Event-ID")
        or request.query.get("last_event_id")
        or request.query.get("since")
        or None
    )


async def serve_sse(request: web.Request, stream: Stream) -> web.StreamResponse:
    server = request.app[SETTINGS].server
    response = web.StreamResponse(headers=SSE_HEADERS)
    response.force_close()  # an event stream's connection is never reused for another request
    await response.prepare(request)
    subscriber = stream.subscribe(cursor_of(request))
    subscriber.on_drop = _closer(request)
    request.app[CONNECTIONS].add(subscriber)
    try:
        await response.write(wire.sse_retry(int(server.sse_retry * 1000)))
        while True:
            batch = await subscriber.next_batch(idle=server.sse_heartbeat or None)
            if subscriber.dropped:
                break
            await response.write(b"".join(e.sse for e in batch) if batch else wire.SSE_HEARTBEAT)
    except (ConnectionError, ClientConnectionResetError):  # reset, or lost mid-drain
        pass
    finally:
        stream.unsubscribe(subscriber)
    return response


async def serve_ws(request: web.Request, stream: Stream) -> web.WebSocketResponse:
    server = request.app[SETTINGS].server
    ws = web.WebSocketResponse(
        heartbeat=server.ws_heartbeat or None, max_msg_size=server.ws_max_message, compress=False
    )
    await ws.prepare(request)
    subscriber = stream.subscribe(cursor_of(request))
    subscriber.on_drop = _closer(request)
    request.app[CONNECTIONS].add(subscriber)
    pump = asyncio.create_task(_pump(ws, subscriber), name=f"ws-pump:{stream.id}")
    try:
        async for message in ws:
            if message.type is WSMsgType.TEXT:
                reply = _handle(stream, subscriber, message.data)
            elif message.type is WSMsgType.BINARY:
                reply = _error("$: binary messages are not supported; send JSON text")
            else:
                continue
            if reply:
                await ws.send_frame(reply, WSMsgType.TEXT)
    except (ConnectionError, ClientConnectionResetError):  # reset, or lost mid-drain
        pass
    finally:
        stream.unsubscribe(subscriber)
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
    return ws


def _closer(request: web.Request) -> Callable[[str], None]:
    """On a slow-consumer drop, cut the connection if its writer has not closed it in time.

    A consumer that stopped reading can leave our writer blocked on a full socket, where it
    would never see the drop; aborting the transport frees it. Until then the writer may still
    end the response (SSE) or send its 1013 close frame (WebSocket) the polite way.
    """
    transport = request.transport

    def abort() -> None:
        if transport is not None and not transport.is_closing():
            transport.abort()

    def on_drop(reason: str) -> None:
        if reason == SLOW:
            asyncio.get_running_loop().call_later(SLOW_CLOSE_GRACE, abort)

    return on_drop


async def _pump(ws: web.WebSocketResponse, subscriber: Subscriber) -> None:
    try:
        while not ws.closed:
            batch = await subscriber.next_batch()
            if subscriber.dropped:
                code = TRY_AGAIN_LATER if subscriber.dropped == SLOW else WSCloseCode.GOING_AWAY
                await ws.close(code=code, message=subscriber.dropped.encode()[:120])
                return
            for event in batch:
                await ws.send_frame(event.json, WSMsgType.TEXT)
    except (ConnectionError, ClientConnectionResetError):  # reset, or lost mid-drain
        pass


def _handle(stream: Stream, subscriber: Subscriber, data: str) -> bytes | None:
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
    try:
        stream.command(parse_command(op, message, "$"))
    except ValueError as exc:
        text = str(exc)
        return _error(text if text.startswith("$") else f"$.{text}")
    return None


def _error(text: str, **extra: Any) -> bytes:
    return wire.message("error", error=text, where=text.split(":", 1)[0], **extra)
