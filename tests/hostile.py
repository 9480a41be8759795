"""A hostile HTTP/1.1 server for the client tools' tests: it sends what a test tells it to, byte
for byte, as no livesim server would (no blank line, endless lines, a WebSocket frame header
claiming 2**62 bytes, gzip bombs, redirects to another port, bad JSON shapes, repeated ids).

``Hostile`` is a raw asyncio server on 127.0.0.1 with routes by path (query ignored); each
handler gets the parsed request and the stream writer and writes whatever it likes. Every
request is recorded in ``requests``, so a test can prove a redirect was *not* followed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
ENDLESS_CAP = 512 * 1024 * 1024
"""An endless body stops here anyway, so a client that never gives up cannot fill the disk."""


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    target: str
    headers: dict[str, str]
    """Lower-case names."""
    body: bytes

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter
Handler = Callable[[Request, Reader, Writer], Awaitable[None]]


class Hostile:
    """``await Hostile().start()``; ``on(path, handler)``; ``base`` is its ``http://`` URL."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.requests: list[Request] = []
        self.base = ""
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    def on(self, path: str, handler: Handler) -> None:
        self.routes[path] = handler

    def hits(self, path: str) -> int:
        return sum(1 for request in self.requests if request.path == path)

    async def start(self) -> Hostile:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        return self

    async def close(self) -> None:
        """Stop listening and end every connection (its handler sees the connection lost)."""
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name:
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            request = Request(method, target, headers, body)
            self.requests.append(request)
            handler = self.routes.get(request.path, not_found)
            await handler(request, reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def head(status: int = 200, headers: Sequence[tuple[str, str]] = ()) -> bytes:
    lines = [f"HTTP/1.1 {status} {'OK' if status < 300 else 'Whatever'}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def hold(reader: Reader) -> None:
    """Keep the connection open until the client goes away."""
    while await reader.read(65536):
        pass


async def not_found(
    request: Request, reader: asyncio.StreamReader, w: asyncio.StreamWriter
) -> None:
    w.write(head(404, [("Content-Length", "2"), ("Connection", "close")]) + b"{}")
    await w.drain()


def answer(body: bytes, status: int = 200, headers: Sequence[tuple[str, str]] = ()) -> Handler:
    """A whole response with a Content-Length."""

    async def handle(
        request: Request, reader: asyncio.StreamReader, w: asyncio.StreamWriter
    ) -> None:
        sized = [("Content-Length", str(len(body))), ("Connection", "close"), *headers]
        w.write(head(status, sized) + body)
        await w.drain()

    return handle


def dumps(value: Any) -> bytes:
    """JSON as a hostile server may write it: integers of any size (orjson stops at 64 bits)."""
    return json.dumps(value, separators=(",", ":")).encode()


def json_answer(value: Any, status: int = 200) -> Handler:
    return answer(dumps(value), status, [("Content-Type", "application/json")])


def in_turn(*handlers: Handler) -> Handler:
    """The first request gets the first handler, and so on; the last one repeats."""
    calls = 0

    async def handle(
        request: Request, reader: asyncio.StreamReader, w: asyncio.StreamWriter
    ) -> None:
        nonlocal calls
        calls += 1
        await handlers[min(calls, len(handlers)) - 1](request, reader, w)

    return handle


def redirect(location: str, status: int = 302) -> Handler:
    return answer(b"", status, [("Location", location)])


def gzip_bomb(size: int) -> bytes:
    """``size`` zero bytes, gzip-compressed (about 1/230 of it)."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    parts = [compressor.compress(block) for _ in range(size >> 20)]
    return b"".join(parts) + compressor.flush()


SSE_HEAD = head(200, [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")])


def sse(body: bytes, then: bytes | None = None) -> Handler:
    """An event stream without a length: ``body``, then ``then`` over and over (endless), or the
    connection held open."""

    async def handle(
        request: Request, reader: asyncio.StreamReader, w: asyncio.StreamWriter
    ) -> None:
        w.write(SSE_HEAD + body)
        await w.drain()
        if then is None:
            await hold(reader)
        else:
            await endless(w, then)

    return handle


async def endless(w: Writer, chunk: bytes) -> None:
    sent = 0
    while sent < ENDLESS_CAP:
        w.write(chunk)
        await w.drain()
        sent += len(chunk)


def frame(event: dict[str, Any] | bytes, event_id: str | None = None) -> bytes:
    """One SSE frame of a JSON envelope (``id:`` line from ``event_id``)."""
    data = event if isinstance(event, bytes) else dumps(event)
    line = f"id: {event_id}\n".encode() if event_id is not None else b""
    return line + b"data: " + data + b"\n\n"


def ws_frame(payload: bytes, opcode: int = 0x1, claimed: int | None = None) -> bytes:
    """An unmasked server frame; ``claimed`` overrides the length the header gives."""
    size = len(payload) if claimed is None else claimed
    if size < 126:
        return bytes((0x80 | opcode, size)) + payload
    if size < 65536:
        return bytes((0x80 | opcode, 126)) + size.to_bytes(2) + payload
    return bytes((0x80 | opcode, 127)) + size.to_bytes(8) + payload


def websocket(body: bytes, then: bytes | None = None) -> Handler:
    """A WebSocket handshake, then raw frames ``body`` and ``then`` endlessly (or hold)."""

    async def handle(
        request: Request, reader: asyncio.StreamReader, w: asyncio.StreamWriter
    ) -> None:
        key = request.headers.get("sec-websocket-key", "").encode()
        accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode()
        upgrade = [("Upgrade", "websocket"), ("Connection", "Upgrade")]
        w.write(head(101, [*upgrade, ("Sec-WebSocket-Accept", accept)]) + body)
        await w.drain()
        if then is None:
            await hold(reader)
        else:
            await endless(w, then)

    return handle


def envelope(serial: int, post: Any = None, **fields: Any) -> dict[str, Any]:
    """A livesim-shaped ``post.created`` envelope of incarnation ``x``."""
    body: dict[str, Any] = {
        "id": f"x-{serial}",
        "type": "post.created",
        "stream": "s",
        "archive_time": "2014-06-25T06:52:29Z",
        "due_at": "2026-01-01T00:00:00.000Z",
        "post": post if post is not None else a_post(f"p-{serial}", f"post {serial}"),
    }
    return body | fields


def a_post(post_id: Any, body: str, **fields: Any) -> dict[str, Any]:
    return {"id": post_id, "headline": None, "body": body, "source": None, **fields}


SNAPSHOT = {"stream": "s", "cursor": "x-0", "posts": []}


def livesim_like(
    hostile: Hostile,
    *,
    events: Handler | None = None,
    ws: Handler | None = None,
    snapshot: Handler | None = None,
) -> str:
    """The routes a client tool reads before subscribing, for one stream ``s``; its URL."""
    stream = "s"
    hostile.on("/api/streams", json_answer([{"id": stream}]))
    hostile.on(f"/api/streams/{stream}", json_answer({"id": stream, "cursor": "x-0"}))
    hostile.on(f"/api/streams/{stream}/posts", snapshot or json_answer(SNAPSHOT))
    hostile.on(f"/streams/{stream}/events", events or sse(b"retry: 1000\n\n"))
    hostile.on(f"/streams/{stream}/ws", ws or websocket(b""))
    return f"{hostile.base}/streams/{stream}"


class Hostiles:
    """Start as many hostile servers as a test needs (``await hostiles()``); ``close()`` ends
    them all."""

    def __init__(self) -> None:
        self.started: list[Hostile] = []

    async def __call__(self) -> Hostile:
        server = await Hostile().start()
        self.started.append(server)
        return server

    async def close(self) -> None:
        for server in self.started:
            await server.close()


# Hostile bytes for the parsers (hypothesis) ------------------------------------------------------

SSE_PIECES = st.one_of(
    st.binary(max_size=40),
    st.sampled_from(
        [
            b"id: x-1\n",
            b"event: stream.reset\n",
            b'data: {"id":"x-1","type":"stream.reset","due_at":"2026-01-01T00:00:00.000Z"}',
            b"data: " + b"y" * 120,
            b"\n\n",
            b"\n",
            b"\r",
            b"\r\n",
            b"\xef\xbb\xbf",
            b": ping\n\n",
            b"retry: 5\n\n",
            b"ff\r\n",
            b"-1\r\n",
            b"0\r\n\r\n",
            b"\xf0\x9f",
        ]
    ),
)


def cut(data: bytes, points: list[int]) -> list[bytes]:
    """``data`` in pieces, cut at ``points`` (any order, any value)."""
    marks = sorted({p % (len(data) + 1) for p in points})
    return [data[a:b] for a, b in zip([0, *marks], [*marks, len(data)], strict=True)]


WS_FRAMES = st.builds(
    lambda payload, opcode, claimed, masked: (
        ws_frame(payload, opcode, claimed)
        if not masked
        else bytes((0x81, 0x80 | min(len(payload), 125))) + payload
    ),
    st.one_of(
        st.binary(max_size=300),
        st.sampled_from([b'{"id":"x-1","type":"post.created","post":{}}', b'{"type":"pong"}']),
    ),
    st.sampled_from([0x0, 0x1, 0x2, 0x8, 0x9, 0xA, 0xF]),
    st.one_of(st.none(), st.integers(min_value=0, max_value=2**64 - 1)),
    st.booleans(),
)
