"""Fan-out at the floor: livesim against a floor server and a naive aiohttp server, same clients.

Every row starts a server **as a separate process** on 127.0.0.1, opens N lean client
connections from this process, and measures server CPU (``/proc/<pid>/stat``) per delivery and
lateness (client receive time − the event's ``due_at``). Three servers take the same clients:

- ``floor``: a bare ``asyncio.Protocol``; each event is encoded and framed once and written to
  every client with one ``transport.write`` (per event: no coalescing, no flow control). What no
  Python server on this event loop can beat per delivery.
- ``naive``: aiohttp as people write it: per client ``orjson.dumps`` of the event, then
  ``send_str`` (WS) or ``StreamResponse.write`` (SSE), awaited in turn.
- ``livesim``: ``python -m simulator serve`` on a config of one shared stream.

Modes (``--mode``, comma-separated; default ``paced,burst``):

- ``paced``: one event every 1/rate s (livesim: the bundled archive at speed ``30 s × rate`` with
  ``max_gap`` 30 s, so every gap is clamped to exactly one interval; the baselines: a timer on
  absolute deadlines). N and rate per row from ``--paced`` (default 1000@20,5000@5).
- ``burst``: ``--burst-events`` (200) events due at once to ``--burst-clients`` (1000). livesim:
  its paused stream on a long copy of the archive seeks forward past 200 posts, which emits every
  skipped event (about 220 with the archive's edits) in one publish, one write per subscriber;
  the baselines write each event to each client.
- ``capacity``: as many livesim (and naive) subscribers as descriptors allow; idle memory per
  subscriber and the lateness of one event reaching them all.
- ``resume``: ``--storm`` (2000) subscribers reconnect together with a cursor 200 events behind
  on a running stream: time until every one has caught up, and any missing or repeated event.
- ``slow``: paced 1000@20 with 5 % of the clients not reading: the others' p99 against a run
  where all read, and the server's memory over the window.
- ``drift``: livesim at speed 1 (an event every 0.5 s) with ``--drift-clients`` (1000): emission
  lateness (the earliest client's receive − ``due_at``, an upper bound on publish − deadline)
  p99, and its trend over ``--drift-minutes`` (default 0.5).

Lateness includes this process reading N sockets on the same 2 cores; ``due_at`` has millisecond
resolution (truncated), so up to 1 ms of each lateness figure is rounding.

    .venv/bin/python benchmarks/fanout_bench.py                          # paced + burst, ~4 min
    .venv/bin/python benchmarks/fanout_bench.py --quick                  # make bench: < 3 min
    .venv/bin/python benchmarks/fanout_bench.py --mode capacity,resume,slow,drift
    .venv/bin/python benchmarks/fanout_bench.py --mode drift --drift-minutes 5
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import hashlib
import math
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from clients.connection import Connection, open_connection
from clients.judge import Counts, Sequence
from clients.target import Target, parse_target

HOST = "127.0.0.1"
STREAM = "bench"
FEED = "aljazeera-iraq-2014-06"
MAX_GAP = 30.0
"""Every gap in the bundled archive is longer, so at speed ``MAX_GAP × rate`` events are paced
at exactly ``rate`` per second."""
SERVERS = ("floor", "naive", "livesim")
FD_RESERVE = 64
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
ROOT = Path(__file__).resolve().parent.parent


# Clients ---------------------------------------------------------------------------------------
# The connections are ``livesim load``'s client core (clients/connection.py, clients/frames.py):
# the same lean protocols for livesim and both baselines, which frame SSE and WS as livesim does.


class Recorder:
    """What every client saw: (serial, receive time) per connection, ``due_at`` per serial."""

    def __init__(self) -> None:
        self.due: dict[int, float] = {}
        self.last = math.inf
        self.finished = 0
        self.expected = 0
        self.closed_by_server = 0
        self.malformed = 0
        self.all_done = asyncio.Event()

    def saw(self, client: Subscriber, serial: int, now: float) -> None:
        client.got.append((serial, now))
        if serial >= self.last and not client.finished:
            client.finished = True
            self.finished += 1
            self._check()

    def lost(self, client: Subscriber) -> None:
        """The server closed a subscribed connection (a drop, or shutdown) before we did."""
        if not client.connection.by_us:
            self.closed_by_server += 1
            if not client.finished:
                client.finished = True
                self.finished += 1
                self._check()

    def measure_until(self, last: int, clients: list[Subscriber]) -> None:
        self.last = last
        self.finished = 0
        self.all_done.clear()
        self.expected = len(clients)
        for client in clients:
            client.finished = bool(client.got and client.got[-1][0] >= last)
            self.finished += client.finished
        self._check()

    def _check(self) -> None:
        if self.expected and self.finished >= self.expected:
            self.all_done.set()


class Subscriber:
    """One connection's ``frames.Sink``: hands each event's serial to the ``Recorder``."""

    __slots__ = ("recorder", "connection", "got", "resets", "finished", "stall", "subscribed_at")

    def __init__(self, recorder: Recorder, stall: bool) -> None:
        self.recorder = recorder
        self.connection: Connection
        self.got: list[tuple[int, float]] = []
        self.resets: dict[int, bytes] = {}
        """Serial → reason of each ``stream.reset`` (for judging the sequence afterwards)."""
        self.finished = False
        self.stall = stall
        """Stop reading once subscribed: a consumer that never drains its socket."""
        self.subscribed_at = math.nan

    def event(
        self,
        event_id: bytes,
        type: bytes,
        due: float | None,
        reset_reason: bytes | None,
        now: float,
    ) -> None:
        try:  # ``judge.split_id`` without its checks: the three servers send only good ids
            serial = int(event_id[event_id.rfind(b"-") + 1 :])
        except ValueError:
            self.recorder.malformed += 1
            return
        recorder = self.recorder
        if due is not None and serial not in recorder.due:  # once per event, not per client
            recorder.due[serial] = due
        if reset_reason is not None:
            self.resets[serial] = reset_reason
        recorder.saw(self, serial, now)

    def malformed(self) -> None:
        self.recorder.malformed += 1

    def close(self) -> None:
        self.connection.close()

    def judge(self, start: bytes, target: tuple[bytes, int]) -> Counts:
        """Exact missing / duplicate / out-of-order counts of what this connection got."""
        sequence = Sequence(start)
        incarnation = target[0]
        for serial, _ in self.got:
            event_id = b"%b-%d" % (incarnation, serial)
            sequence.event(event_id, self.resets.get(serial))
        return sequence.finish(target)


async def connect_all(
    transport: str,
    recorder: Recorder,
    port: int,
    count: int,
    concurrency: int,
    since: str | None = None,
    stall: int = 0,
) -> tuple[list[Subscriber], list[str]]:
    """``count`` subscribed clients (``stall`` of them spread evenly, never reading)."""
    target = parse_target(f"http://{HOST}:{port}/streams/{STREAM}")
    assert isinstance(target, Target)
    gate = asyncio.Semaphore(concurrency)
    clients: list[Subscriber] = []
    errors: list[str] = []
    every = count // stall if stall else 0

    async def one(index: int) -> None:
        client = Subscriber(recorder, bool(every) and index % every == every - 1)
        async with gate:
            try:
                client.connection = await open_connection(client, target, transport, since)
            except (OSError, TimeoutError) as exc:  # HandshakeError is a ConnectionError
                errors.append(f"{type(exc).__name__}: {exc}")
                return
        client.subscribed_at = time.time()
        if client.stall and client.connection.transport is not None:
            client.connection.transport.pause_reading()  # bytes pile up in the kernel buffers
        client.connection.closed.add_done_callback(lambda _: recorder.lost(client))
        clients.append(client)

    await asyncio.gather(*(one(i) for i in range(count)))
    return clients, errors


# Baseline servers (this file, run with --serve floor|naive) ------------------------------------


def _post_records() -> list[dict[str, Any]]:
    from simulator.sources import bundled_feed

    return [
        {
            "id": post.id,
            "headline": post.headline,
            "body": post.body,
            "author": post.author,
            "editor": post.editor,
            "published_at": post.timed.isoformat().replace("+00:00", "Z"),
            "time_source": str(post.time_source) if post.time_source else None,
            "source": post.source,
            "media": [],
        }
        for post in bundled_feed().posts
    ]


class Baseline:
    """What both baseline servers share: the events (shaped like livesim's) and their pacing."""

    def __init__(self, rate: float):
        self.rate = rate
        self.posts = _post_records()
        self.serial = 0
        self.incarnation = "base"

    def envelope(self, serial: int, due: float) -> dict[str, Any]:
        post = self.posts[serial % len(self.posts)]
        return {
            "id": f"{self.incarnation}-{serial}",
            "type": "post.created",
            "stream": STREAM,
            "archive_time": post["published_at"],
            "due_at": datetime.fromtimestamp(due, UTC).isoformat(timespec="milliseconds")[:-6]
            + "Z",
            "post": post,
        }

    def info(self, subscribers: int) -> bytes:
        cursor = f"{self.incarnation}-{self.serial}"
        body = {"subscribers": subscribers, "cursor": cursor, "dropped_slow": 0}
        return orjson.dumps(body)

    async def pace(self, publish: Callable[[dict[str, Any]], Any]) -> None:
        if self.rate <= 0:
            return
        loop = asyncio.get_running_loop()
        offset = time.time() - loop.time()
        start = loop.time() + 0.5
        beat = 0
        while True:
            beat += 1
            deadline = start + beat / self.rate
            await asyncio.sleep(deadline - loop.time())
            self.serial += 1
            result = publish(self.envelope(self.serial, deadline + offset))
            if asyncio.iscoroutine(result):
                await result

    def burst(self, count: int) -> list[dict[str, Any]]:
        due = time.time()
        out = []
        for _ in range(count):
            self.serial += 1
            out.append(self.envelope(self.serial, due))
        return out


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


def _ws_frame(payload: bytes) -> bytes:
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65536:
        return bytes((0x81, 126)) + size.to_bytes(2) + payload
    return bytes((0x81, 127)) + size.to_bytes(8) + payload


class FloorConnection(asyncio.Protocol):
    """HTTP/1.1 by hand: an SSE response or a WebSocket upgrade, then only our writes."""

    def __init__(self, server: FloorServer):
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.head = b""
        self.kind = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.kind or self.transport is None:
            return  # WebSocket frames from the client (pongs, close): not needed here
        self.head += data
        if b"\r\n\r\n" not in self.head:
            return
        line, _, rest = self.head.partition(b"\r\n")
        method, path = line.split(b" ")[:2]
        if path.startswith(b"/streams/") and path.endswith(b"/events"):
            self.kind = "sse"
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache"
                b"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                + _chunk(b"retry: 2000\n\n")
            )
            self.server.clients["sse"].add(self)
        elif path.startswith(b"/streams/") and b"/ws" in path:
            key = next(
                h.split(b":", 1)[1].strip()
                for h in rest.split(b"\r\n")
                if h.lower().startswith(b"sec-websocket-key:")
            )
            accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
            self.kind = "ws"
            self.transport.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            self.server.clients["ws"].add(self)
        else:
            self.transport.write(self.server.api(method, path))
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.kind:
            self.server.clients[self.kind].discard(self)


class FloorServer:
    def __init__(self, rate: float):
        self.base = Baseline(rate)
        self.clients: dict[str, set[FloorConnection]] = {"sse": set(), "ws": set()}

    def api(self, method: bytes, path: bytes) -> bytes:
        if method == b"POST" and path.endswith(b"/burst"):
            for envelope in self.base.burst(int(path.split(b"/")[-2])):
                self.publish(envelope)
            body = b"{}"
        else:
            body = self.base.info(sum(len(c) for c in self.clients.values()))
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
        return head % len(body) + b"Connection: close\r\n\r\n" + body

    def publish(self, envelope: dict[str, Any]) -> None:
        data = orjson.dumps(envelope)
        sse = _chunk(b"id: %s\nevent: post.created\ndata: %s\n\n" % (envelope["id"].encode(), data))
        for connection in self.clients["sse"]:
            assert connection.transport is not None
            connection.transport.write(sse)
        frame = _ws_frame(data)
        for connection in self.clients["ws"]:
            assert connection.transport is not None
            connection.transport.write(frame)

    async def run(self, port: int) -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: FloorConnection(self), HOST, port, backlog=4096)
        async with server:
            await self.base.pace(self.publish)
            await asyncio.Future()  # bursts only: serve until stopped


async def run_naive(port: int, rate: float) -> None:
    from aiohttp import web

    base = Baseline(rate)
    sse: set[web.StreamResponse] = set()
    sockets: set[web.WebSocketResponse] = set()

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"retry: 2000\n\n")
        sse.add(response)
        try:
            await asyncio.Future()  # until the client goes (the handler is cancelled)
        finally:
            sse.discard(response)
        return response

    async def ws(request: web.Request) -> web.WebSocketResponse:
        socket_ = web.WebSocketResponse()
        await socket_.prepare(request)
        sockets.add(socket_)
        try:
            async for _ in socket_:
                pass
        finally:
            sockets.discard(socket_)
        return socket_

    async def publish(envelope: dict[str, Any]) -> None:
        for response in list(sse):
            data = orjson.dumps(envelope)
            frame = b"id: %s\nevent: post.created\ndata: %s\n\n" % (envelope["id"].encode(), data)
            try:
                await response.write(frame)
            except ConnectionError:
                sse.discard(response)
        for socket_ in list(sockets):
            try:
                await socket_.send_str(orjson.dumps(envelope).decode())
            except ConnectionError:
                sockets.discard(socket_)

    async def info(request: web.Request) -> web.Response:
        return web.Response(
            body=base.info(len(sse) + len(sockets)), content_type="application/json"
        )

    async def burst(request: web.Request) -> web.Response:
        for envelope in base.burst(int(request.match_info["count"])):
            await publish(envelope)
        return web.Response(body=b"{}", content_type="application/json")

    app = web.Application()
    app.add_routes(
        [
            web.get("/healthz", info),
            web.get("/api/streams/{stream}", info),
            web.post("/api/streams/{stream}/{count}/burst", burst),
            web.get("/streams/{stream}/events", events),
            web.get("/streams/{stream}/ws", ws),
        ]
    )
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, HOST, port, backlog=4096).start()
    try:
        await base.pace(publish)
        await asyncio.Future()
    finally:
        await runner.cleanup()


def serve_baseline(kind: str, port: int, rate: float) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    main = FloorServer(rate).run(port) if kind == "floor" else run_naive(port, rate)
    try:
        asyncio.run(main)
    except KeyboardInterrupt:
        pass
    return 0


# Server processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Setup:
    """How a row's server is configured."""

    kind: str
    rate: float = 0.0
    """Events per second (paced); none with ``burst`` (livesim paused, the baselines idle)."""
    burst: bool = False
    speed: float | None = None
    """livesim speed (overrides ``MAX_GAP × rate``), with ``max_gap`` = 1 / rate."""
    max_pending: int | None = None
    extra: str = ""
    """More ``[server]`` lines for livesim."""
    long: bool = False
    """livesim serves ``LONG_FEED`` once (no loop) instead of the bundled archive, looping."""


def livesim_config(directory: str, port: int, setup: Setup, loop: str | None) -> Path:
    server = [f'host = "{HOST}"', f"port = {port}", "bundled = true"]
    if setup.max_pending:
        server.append(f"max_pending = {setup.max_pending}")
    if loop:
        server.append(f'event_loop = "{loop}"')
    if setup.extra:
        server.append(setup.extra)
    if setup.burst:
        stream = f'speed = 60\nmax_gap = "{MAX_GAP:g}s"\npaused = true\nloop = true'
    elif setup.speed is not None:
        stream = f'speed = {setup.speed:g}\nmax_gap = "{1 / setup.rate:g}s"\nloop = true'
    else:
        stream = f'speed = {MAX_GAP * setup.rate:g}\nmax_gap = "{MAX_GAP:g}s"\nloop = true'
    feed = FEED
    text = "[server]\n" + "\n".join(server) + "\n\n"
    if setup.long:
        feed = LONG_FEED
        stream = stream.replace("loop = true", "loop = false")
        text += f'[[feeds]]\npath = "{write_long_feed(directory)}"\nid = "{LONG_FEED}"\n\n'
    text += f'[[streams]]\nid = "{STREAM}"\nfeed = "{feed}"\n{stream}\n'
    path = Path(directory) / f"fanout-{port}.toml"
    path.write_text(text, encoding="utf-8")
    return path


LONG_FEED = "bench-long"
LONG_COPIES = 30


def write_long_feed(directory: str) -> Path:
    """The bundled archive 30 times over (1 260 posts, new ids, each copy an hour after the
    last): one lap long enough that a cursor 200 events back is in the same epoch (a loop's
    new lap starts a new epoch, and the bundled archive is a lap of 46 events)."""
    import dataclasses

    from simulator.core import archive
    from simulator.sources import bundled_feed

    feed = bundled_feed()
    first, last = feed.posts[0].timed, feed.posts[-1].timed
    lap = last - first + timedelta(hours=1)
    posts = tuple(
        dataclasses.replace(post, id=f"{post.id}-{copy}", published_at=post.timed + copy * lap)
        for copy in range(LONG_COPIES)
        for post in feed.posts
    )
    path = Path(directory) / f"{LONG_FEED}.jsonl"
    path.write_bytes(archive.dumps(dataclasses.replace(feed, id=LONG_FEED, posts=posts)))
    return path


def long_feed_post(index: int) -> str:
    """The id of ``LONG_FEED``'s post number ``index`` (from 0)."""
    from simulator.sources import bundled_feed

    posts = bundled_feed().posts
    return f"{posts[index % len(posts)].id}-{index // len(posts)}"


class Server:
    def __init__(self, setup: Setup, tmp: str, loop: str | None):
        self.setup = setup
        self.port = free_port()
        self.log_path = Path(tmp) / f"{setup.kind}-{self.port}.log"
        self.log = self.log_path.open("wb")
        if setup.kind == "livesim":
            config = livesim_config(tmp, self.port, setup, loop)
            command = [sys.executable, "-m", "simulator", "serve", "--config", str(config)]
        else:
            rate = 0 if setup.burst else setup.rate
            command = [sys.executable, __file__, "--serve", setup.kind, "--port", str(self.port)]
            command += ["--rate", str(rate)]
        self.process = subprocess.Popen(
            command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT
        )

    def _stat(self) -> list[str]:
        return Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()

    def cpu(self) -> float:
        """utime + stime of the server process, seconds."""
        fields = self._stat()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        return int(self._stat()[21]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    async def request(self, method: str, path: str, within: float = 10.0, body: Any = None) -> Any:
        data = b"" if body is None else orjson.dumps(body)
        async with asyncio.timeout(within):
            reader, writer = await asyncio.open_connection(HOST, self.port)
            try:
                writer.write(
                    f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {len(data)}\r\n"
                    "Content-Type: application/json\r\nConnection: close\r\n\r\n".encode()
                    + data
                )
                raw = await reader.read()
            finally:
                writer.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        if b" 200 " not in head.split(b"\r\n", 1)[0] + b" ":
            raise RuntimeError(f"{method} {path}: {head.splitlines()[:1]!r}")
        return orjson.loads(body) if body else None

    async def stream(self) -> dict[str, Any]:
        info: dict[str, Any] = await self.request("GET", f"/api/streams/{STREAM}")
        return info

    async def serial(self) -> int:
        return int(str((await self.stream())["cursor"]).rsplit("-", 1)[1])

    async def burst(self, count: int) -> None:
        if self.setup.kind == "livesim":  # a forward seek: every skipped event in one publish
            target = {"to": long_feed_post(count)}
            await self.request("POST", f"/api/streams/{STREAM}/seek", body=target, within=120)
        else:
            await self.request("POST", f"/api/streams/{STREAM}/{count}/burst", within=120)

    async def wait_healthy(self, within: float) -> None:
        deadline = time.monotonic() + within
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited ({self.process.returncode}): {self.tail()}")
            try:
                await self.request("GET", "/healthz", within=2.0)
                return
            except (OSError, RuntimeError, TimeoutError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no /healthz within {within:g} s: {self.tail()}") from None
                await asyncio.sleep(0.1)

    async def wait_subscribers(self, want: int, within: float) -> int:
        deadline = time.monotonic() + within
        while True:
            have = int((await self.stream())["subscribers"])
            if have == want or time.monotonic() > deadline:
                return have
            await asyncio.sleep(0.1)

    def tail(self) -> str:
        self.log.flush()
        text = self.log_path.read_text(errors="replace").strip().splitlines()
        return " | ".join(text[-3:]) or "no output"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


# Rows ------------------------------------------------------------------------------------------


@dataclass
class Row:
    mode: str
    server: str
    transport: str
    clients: int
    rate: float = 0.0
    events: int = 0
    deliveries: int = 0
    lateness: list[float] = field(default_factory=list)
    """Milliseconds, one per (client, event) delivery in the window, sorted."""
    delivered: float = math.nan
    server_cpu: float = math.nan
    window: float = math.nan
    rss_mb: float = math.nan
    rss_idle_mb: float = math.nan
    dropped_slow: int = 0
    notes: list[str] = field(default_factory=list)
    extra: dict[str, float] = field(default_factory=dict)

    def pct(self, q: float) -> float:
        if not self.lateness:
            return math.nan
        rank = max(0, math.ceil(q / 100 * len(self.lateness)) - 1)
        return self.lateness[rank]

    @property
    def us_per_delivery(self) -> float:
        return self.server_cpu / self.deliveries * 1e6 if self.deliveries else math.nan


def lateness_of(
    recorder: Recorder, clients: list[Subscriber], first: int, last: int
) -> tuple[list[float], dict[int, list[float]]]:
    due = {s: d for s, d in recorder.due.items() if first < s <= last}
    by_event: dict[int, list[float]] = {s: [] for s in due}
    for client in clients:
        for serial, seen in client.got:
            if serial in due:
                by_event[serial].append((seen - due[serial]) * 1000)
    late = sorted(value for values in by_event.values() for value in values)
    return late, by_event


async def open_clients(
    server: Server, row: Row, recorder: Recorder, args: argparse.Namespace, **kw: Any
) -> list[Subscriber]:
    budget = 60 + row.clients / 100
    try:
        async with asyncio.timeout(budget):
            clients, errors = await connect_all(
                row.transport, recorder, server.port, row.clients, args.concurrency, **kw
            )
    except TimeoutError:
        raise RuntimeError(f"connecting timed out after {budget:g} s") from None
    if errors:
        row.notes.append(f"{len(errors)} failed to connect ({errors[0]})")
    have = await server.wait_subscribers(len(clients), 30)
    if have != len(clients):
        row.notes.append(f"server counts {have} subscribers for {len(clients)} connections")
    return clients


async def measure(
    server: Server,
    row: Row,
    recorder: Recorder,
    clients: list[Subscriber],
    count: int,
    limit: float,
) -> tuple[int, int]:
    """Run until every reading client has the ``count``-th event from now: CPU, window, RSS.

    A burst is triggered first: the baselines write ``count`` events to every client; livesim
    is paused on ``LONG_FEED`` and seeks forward past ``count`` posts, which emits every
    skipped event at once (one publish, one write per subscriber).

    The garbage of earlier rows is collected and the connections frozen first: a full
    collection over thousands of connections' objects stops this process reading for 10-30 ms,
    which would land on some event's tail at a random moment of the window.
    """
    reading = [c for c in clients if not c.stall]
    for client in clients:
        client.got.clear()
    gc.collect()
    gc.freeze()
    try:
        return await _window(server, row, recorder, reading, count, limit)
    finally:
        gc.unfreeze()


async def _window(
    server: Server,
    row: Row,
    recorder: Recorder,
    reading: list[Subscriber],
    count: int,
    limit: float,
) -> tuple[int, int]:
    cpu_before = server.cpu()
    started = time.monotonic()
    first = await server.serial()
    last = first + count
    if server.setup.burst:
        await server.burst(count)
        last = await server.serial()  # livesim's seek: the skipped posts' events + its state
    recorder.measure_until(last, reading)
    try:
        async with asyncio.timeout(limit):
            await recorder.all_done.wait()
    except TimeoutError:
        row.notes.append(f"window timed out after {limit:.0f} s")
    row.window = time.monotonic() - started
    row.server_cpu = server.cpu() - cpu_before
    row.rss_mb = server.rss_mb()
    row.deliveries = sum(1 for c in reading for s, _ in c.got if first < s <= last)
    if recorder.malformed:
        row.notes.append(f"{recorder.malformed} malformed frames")
    return first, last


async def with_server(
    setup: Setup, args: argparse.Namespace, tmp: str, body: Callable[[Server], Any]
) -> None:
    server = Server(setup, tmp, args.event_loop)
    try:
        await server.wait_healthy(30)
        await body(server)
    finally:
        server.stop()


async def paced_row(
    kind: str,
    transport: str,
    n: int,
    rate: float,
    args: argparse.Namespace,
    tmp: str,
    stall: int = 0,
) -> Row:
    row = Row("paced" if not stall else "slow", kind, transport, n, rate)
    events = max(10, int(rate * args.seconds))

    async def body(server: Server) -> None:
        recorder = Recorder()
        clients = await open_clients(server, row, recorder, args, stall=stall)
        try:
            await asyncio.sleep(1.0)  # settle: handshakes done, first event after subscribing
            first, last = await measure(
                server, row, recorder, clients, events, events / rate * 3 + 10
            )
            reading = [c for c in clients if not c.stall]
            row.lateness, by_event = lateness_of(recorder, reading, first, last)
            row.events = len(by_event)
            row.delivered = len(row.lateness) / max(1, len(reading) * (last - first))
            info = await server.stream()
            row.dropped_slow = int(info.get("dropped_slow", 0))
            if stall:
                row.extra["stalled"] = sum(c.stall for c in clients)
        finally:
            for client in clients:
                client.close()

    try:
        await with_server(Setup(kind, rate=rate, max_pending=args.max_pending), args, tmp, body)
    except RuntimeError as exc:
        row.notes.append(str(exc))
    return row


async def burst_row(kind: str, transport: str, args: argparse.Namespace, tmp: str) -> Row:
    row = Row("burst", kind, transport, args.burst_clients)

    async def body(server: Server) -> None:
        recorder = Recorder()
        clients = await open_clients(server, row, recorder, args)
        try:
            await asyncio.sleep(0.5)
            first, last = await measure(server, row, recorder, clients, args.burst_events, 120)
            row.events = last - first
            got = [c for c in clients if any(s == last for s, _ in c.got)]
            row.delivered = len(got) / max(1, len(clients))
        finally:
            for client in clients:
                client.close()

    try:
        setup = Setup(kind, burst=True, max_pending=args.max_pending, long=True)
        await with_server(setup, args, tmp, body)
    except RuntimeError as exc:
        row.notes.append(str(exc))
    return row


async def capacity_row(
    kind: str, transport: str, n: int, args: argparse.Namespace, tmp: str
) -> Row:
    """N idle subscribers (memory per subscriber), then one event's lateness to all of them."""
    row = Row("capacity", kind, transport, n, rate=0.25)
    extra = f"max_connections = {n + 100}\nmax_connections_per_client = {n + 100}"

    async def body(server: Server) -> None:
        await asyncio.sleep(1.0)
        before = server.rss_mb()
        recorder = Recorder()
        clients = await open_clients(server, row, recorder, args)
        try:
            row.rss_idle_mb = server.rss_mb()
            row.extra["KB/sub"] = (row.rss_idle_mb - before) * 1024 / max(1, len(clients))
            row.extra["connected"] = len(clients)
            first, last = await measure(server, row, recorder, clients, 2, 30)
            row.lateness, by_event = lateness_of(recorder, clients, first, last)
            row.events = len(by_event)
            row.delivered = len(row.lateness) / max(1, len(clients) * (last - first))
        finally:
            for client in clients:
                client.close()

    try:
        setup = Setup(kind, rate=row.rate, extra=extra if kind == "livesim" else "")
        await with_server(setup, args, tmp, body)
    except RuntimeError as exc:
        row.notes.append(str(exc))
    return row


STORM_RATE = 5.0


async def resume_row(transport: str, args: argparse.Namespace, tmp: str) -> Row:
    """``--storm`` clients reconnect together 200 events behind a running stream."""
    rate = 100.0
    row = Row("resume", "livesim", transport, args.storm, rate)

    async def body(server: Server) -> None:
        start = await server.serial()
        while await server.serial() < start + 200:  # noqa: ASYNC110 (polling the API)
            await asyncio.sleep(0.1)
        # Built up fast with nobody listening; the storm then meets a live stream of
        # ``STORM_RATE`` events/s, one the client process can read at 2 000 connections.
        speed = {"speed": MAX_GAP * STORM_RATE}
        await server.request("POST", f"/api/streams/{STREAM}/speed", body=speed)
        behind = f"{(await server.stream())['cursor'].rsplit('-', 1)[0]}-{start}"
        target = await server.serial()
        recorder = Recorder()
        recorder.last = target
        recorder.expected = args.storm
        gc.collect()  # earlier garbage, not this window's: see ``measure``
        cpu_before = server.cpu()
        client_before = time.process_time()
        began = time.monotonic()
        clients, errors = await connect_all(
            transport, recorder, server.port, args.storm, args.storm_concurrency, since=behind
        )
        row.extra["connected s"] = time.monotonic() - began
        recorder.expected = len(clients)
        recorder.measure_until(target, clients)
        try:
            async with asyncio.timeout(30):
                await recorder.all_done.wait()
        except TimeoutError:
            row.notes.append("not all caught up within 30 s")
        row.window = time.monotonic() - began
        row.server_cpu = server.cpu() - cpu_before
        row.extra["cli CPU s"] = time.process_time() - client_before
        wall = time.time() - (time.monotonic() - began)  # the storm's start, wall clock
        ready = sorted(c.subscribed_at - wall for c in clients)
        behind_by = sorted(
            min((t for s, t in c.got if s >= target), default=math.nan) - c.subscribed_at
            for c in clients
        )
        if ready:
            row.extra["subscribed p50 s"] = ready[len(ready) // 2]
            row.extra["subscribed max s"] = ready[-1]
            row.extra["then caught up max s"] = behind_by[-1]
        if errors:
            row.notes.append(f"{len(errors)} failed to connect ({errors[0]})")
        counts = Counts()
        incarnation = behind.rsplit("-", 1)[0].encode()
        for client in clients:  # judged after the window: off the clients' clock
            counts.add(client.judge(behind.encode(), (incarnation, target)))
        missing, repeated, disordered = counts.missing, counts.duplicate, counts.out_of_order
        if counts.foreign or counts.connection_resets:
            row.notes.append(f"{counts.foreign} foreign, {counts.connection_resets} resets")
        row.events = target - start
        row.deliveries = sum(len(c.got) for c in clients)
        row.extra.update(
            missing=missing, repeated=repeated, disordered=disordered, behind=target - start
        )
        row.delivered = 1 - missing / max(1, len(clients) * (target - start))
        for client in clients:
            client.close()

    try:
        await with_server(Setup("livesim", rate=rate, long=True), args, tmp, body)
    except RuntimeError as exc:
        row.notes.append(str(exc))
    return row


async def drift_row(transport: str, args: argparse.Namespace, tmp: str) -> Row:
    """Speed 1, an event every 0.5 s: the earliest receive per event, over minutes."""
    row = Row("drift", "livesim", transport, args.drift_clients, 2.0)
    events = max(10, int(args.drift_minutes * 60 * row.rate))

    async def body(server: Server) -> None:
        recorder = Recorder()
        clients = await open_clients(server, row, recorder, args)
        try:
            await asyncio.sleep(1.0)
            before = await emit_lateness(server)
            first, last = await measure(
                server, row, recorder, clients, events, events / row.rate + 30
            )
            after = await emit_lateness(server)
            if before and after:
                count = after[math.inf] - before[math.inf]
                within = {le: (after[le] - before[le]) / count for le in after if count}
                row.extra["srv count"] = count
                row.extra["srv <=1ms %"] = within.get(0.001, math.nan) * 100
                row.extra["srv <=2ms %"] = within.get(0.002, math.nan) * 100
                row.extra["srv p99 <= ms"] = 1000 * min(
                    (le for le, share in within.items() if share >= 0.99), default=math.nan
                )
            late, by_event = lateness_of(recorder, clients, first, last)
            row.lateness = late
            earliest = [min(v) for _, v in sorted(by_event.items()) if v]
            row.events = len(earliest)
            row.delivered = len(late) / max(1, len(clients) * (last - first))
            ordered = sorted(earliest)
            if ordered:
                rank = max(0, math.ceil(0.99 * len(ordered)) - 1)
                row.extra["emit p99"] = ordered[rank]
                row.extra["emit p50"] = ordered[len(ordered) // 2]
                tenth = max(1, len(earliest) // 10)
                head, tail = sorted(earliest[:tenth]), sorted(earliest[-tenth:])
                row.extra["drift"] = tail[len(tail) // 2] - head[len(head) // 2]
        finally:
            for client in clients:
                client.close()

    try:
        await with_server(Setup("livesim", rate=row.rate, speed=1.0), args, tmp, body)
    except RuntimeError as exc:
        row.notes.append(str(exc))
    return row


# Output ----------------------------------------------------------------------------------------


async def emit_lateness(server: Server) -> dict[float, float] | None:
    """livesim's own ``livesim_emit_lateness_seconds`` histogram (publish time − deadline), as
    cumulative counts per bucket bound; None where the server has no /metrics."""
    try:
        async with asyncio.timeout(10):
            reader, writer = await asyncio.open_connection(HOST, server.port)
            writer.write(
                f"GET /metrics HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()
            )
            raw = await reader.read()
            writer.close()
    except (OSError, TimeoutError):
        return None
    out: dict[float, float] = {}
    for line in raw.decode(errors="replace").splitlines():
        if line.startswith("livesim_emit_lateness_seconds_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            bound = math.inf if le == "+Inf" else float(le)
            out[bound] = out.get(bound, 0.0) + float(line.rsplit(" ", 1)[1])
    return out or None


def _num(value: float, digits: int = 1) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def render(rows: list[Row]) -> str:
    header = [
        "mode", "server", "tr", "N", "ev/s", "events", "deliveries", "delivered", "window s",
        "srv CPU s", "us/deliv", "p50 ms", "p99 ms", "max ms", "srv MB", "dropped", "extra",
        "notes",
    ]  # fmt: skip
    table = [header]
    for r in rows:
        extra = ", ".join(f"{k} {_num(v)}" for k, v in r.extra.items())
        table.append(
            [
                r.mode, r.server, r.transport, f"{r.clients:,}", _num(r.rate, 0) if r.rate else "-",
                str(r.events), f"{r.deliveries:,}", f"{r.delivered:.2%}"
                if not math.isnan(r.delivered) else "-", _num(r.window), _num(r.server_cpu, 2),
                _num(r.us_per_delivery, 2), _num(r.pct(50)), _num(r.pct(99)), _num(r.pct(100)),
                _num(r.rss_mb, 0), str(r.dropped_slow), extra, "; ".join(r.notes),
            ]
        )  # fmt: skip
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = [
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in table
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def ratios(rows: list[Row]) -> list[str]:
    """livesim against the baselines in the same run, with the #9 targets."""
    out = []
    index = {(r.mode, r.server, r.transport, r.clients): r for r in rows}
    for r in rows:
        if r.server != "livesim" or r.mode not in ("paced", "burst"):
            continue
        floor = index.get((r.mode, "floor", r.transport, r.clients))
        naive = index.get((r.mode, "naive", r.transport, r.clients))
        parts = [f"{r.mode:6} {r.transport:3} N={r.clients:,}:"]
        if floor:
            x = r.us_per_delivery / floor.us_per_delivery
            if r.mode == "paced":
                parts.append(f"CPU/delivery {x:.2f}x floor (target <= 1.2: {_ok(x <= 1.2)})")
                p = r.pct(99) / floor.pct(99)
                parts.append(f"p99 {p:.2f}x floor (target <= 1.3: {_ok(p <= 1.3)})")
            else:
                parts.append(
                    f"CPU/delivery {1 / x:.1f}x less than per-event floor "
                    f"(target >= 3: {_ok(1 / x >= 3)})"
                )
        if naive:
            x = r.us_per_delivery / naive.us_per_delivery
            target = f" (target <= 0.7: {_ok(x <= 0.7)})" if r.mode == "paced" else ""
            parts.append(f"{x:.2f}x naive{target}")
        if len(parts) > 1:
            out.append("  " + parts[0] + " " + "; ".join(parts[1:]))
    for r in rows:
        if r.mode == "capacity" and r.server == "livesim":
            naive = index.get(("capacity", "naive", r.transport, r.clients))
            line = f"  capacity {r.transport} N={int(r.extra.get('connected', 0)):,}: "
            line += f"{_num(r.extra.get('KB/sub', math.nan))} KB/subscriber"
            if naive and naive.extra.get("KB/sub"):
                x = r.extra["KB/sub"] / naive.extra["KB/sub"]
                line += f", {x:.2f}x naive (target <= 0.7: {_ok(x <= 0.7)})"
            line += f"; one event p99 {_num(r.pct(99))} ms (target <= 250: {_ok(r.pct(99) <= 250)})"
            out.append(line)
        if r.mode == "resume":
            bad = sum(r.extra.get(k, 0) for k in ("missing", "repeated", "disordered"))
            ok = r.window <= 2 and not bad
            out.append(
                f"  resume {r.transport} N={r.clients:,}: caught up in {r.window:.2f} s, "
                f"missing {int(r.extra.get('missing', 0))}, repeated "
                f"{int(r.extra.get('repeated', 0))} (target <= 2 s, none: {_ok(ok)})"
            )
        if r.mode == "drift":
            p99, drift = r.extra.get("emit p99", math.nan), r.extra.get("drift", math.nan)
            srv = r.extra.get("srv p99 <= ms", math.nan)
            out.append(
                f"  drift {r.transport} N={r.clients:,}: emission lateness p99 (server histogram) "
                f"<= {_num(srv)} ms (target <= 2: {_ok(srv <= 2)}); earliest client receive p99 "
                f"{_num(p99)} ms; drift over {r.window / 60:.1f} min {_num(drift)} ms "
                f"(target <= 5 after 5 min: {_ok(abs(drift) <= 5)})"
            )
    slow = {r.transport: r for r in rows if r.mode == "slow"}
    for transport, r in slow.items():
        base = index.get(("paced", "livesim", transport, r.clients))
        if base:
            x = r.pct(99) / base.pct(99) - 1
            out.append(
                f"  slow {transport} N={r.clients:,} ({int(r.extra.get('stalled', 0))} not "
                f"reading): others' p99 {_num(r.pct(99))} vs {_num(base.pct(99))} ms "
                f"({x:+.0%}; target < +20%: {_ok(x < 0.2)}); server {_num(r.rss_mb, 0)} MB vs "
                f"{_num(base.rss_mb, 0)} MB, dropped {r.dropped_slow}"
            )
    return out


def _ok(good: bool) -> str:
    return "met" if good else "MISSED"


# Main ------------------------------------------------------------------------------------------


def fd_budget() -> int:
    """Connections this process may open: the soft fd limit raised to the hard one, less a
    reserve (the server process has the same limit of its own)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    limit = soft if soft != resource.RLIM_INFINITY else 1 << 20
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        limit = min(limit, high - low + 1)
    except (OSError, ValueError):
        pass
    return limit - FD_RESERVE


def parse_paced(text: str) -> list[tuple[int, float]]:
    try:
        return [(int(n), float(r)) for n, r in (p.split("@") for p in text.split(",") if p)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N@RATE,…: {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--mode", default="paced,burst", help="paced,burst,capacity,resume,slow,drift"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="make bench: paced 1000@20 for 3 s, burst, resume storm (WS only)",
    )
    parser.add_argument("--servers", default=",".join(SERVERS), help="floor,naive,livesim")
    parser.add_argument("--transport", choices=("sse", "ws", "both"), default="both")
    parser.add_argument("--paced", type=parse_paced, default=[(1000, 20.0), (5000, 5.0)])
    parser.add_argument("--seconds", type=float, default=6.0, help="paced window (6 s)")
    parser.add_argument("--burst-clients", type=int, default=1000)
    parser.add_argument("--burst-events", type=int, default=200)
    parser.add_argument("--capacity", type=int, default=0, help="subscribers (default: fd limit)")
    parser.add_argument("--storm", type=int, default=2000)
    parser.add_argument(
        "--storm-concurrency",
        type=int,
        default=0,
        help="resume storm: connections opened at once (default: all of them)",
    )
    parser.add_argument("--drift-clients", type=int, default=1000)
    parser.add_argument("--drift-minutes", type=float, default=0.5)
    parser.add_argument("--max-pending", type=int, help="livesim max_pending (default 1024)")
    parser.add_argument("--concurrency", type=int, default=200, help="handshakes in flight")
    parser.add_argument(
        "--event-loop", choices=("asyncio", "uvloop"), help="livesim server.event_loop"
    )
    parser.add_argument("--serve", choices=("floor", "naive"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, default=0.0, help=argparse.SUPPRESS)
    return parser


async def run(args: argparse.Namespace) -> int:
    modes = args.mode.split(",")
    args.storm_concurrency = args.storm_concurrency or args.storm
    servers = [s for s in SERVERS if s in args.servers.split(",")]
    transports = ("sse", "ws") if args.transport == "both" else (args.transport,)
    budget = fd_budget()
    if args.quick:  # make bench: about 1.5 minutes
        modes = ["paced", "burst", "resume"]
        args.paced, args.seconds = [(1000, 20.0)], 3.0
    print(
        f"livesim fan-out benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; Python "
        f"{platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs; "
        f"modes {','.join(modes)}; livesim event loop {args.event_loop or 'default'}"
    )
    print(
        f"  at most {budget:,} connections per client process (RLIMIT_NOFILE / ports)", flush=True
    )
    rows: list[Row] = []
    started = time.monotonic()

    def show(row: Row) -> None:
        row.notes.append(f"load {os.getloadavg()[0]:.1f}")  # others' work on the same cores
        rows.append(row)
        print(
            f"  {row.mode} {row.server} {row.transport} N={row.clients:,}: "
            f"{_num(row.us_per_delivery, 2)} us/delivery, p50 {_num(row.pct(50))} ms, "
            f"p99 {_num(row.pct(99))} ms, delivered {row.delivered:.2%} "
            + " ".join(f"{k}={_num(v)}" for k, v in row.extra.items())
            + (f"  [{'; '.join(row.notes)}]" if row.notes else ""),
            flush=True,
        )

    with tempfile.TemporaryDirectory(prefix="fanout-bench-") as tmp:
        if "paced" in modes:
            for n, rate in args.paced:
                for transport in transports:
                    for kind in servers:
                        show(await paced_row(kind, transport, min(n, budget), rate, args, tmp))
        if "burst" in modes:
            for transport in transports:
                for kind in servers:
                    show(await burst_row(kind, transport, args, tmp))
        if "slow" in modes:
            n, rate = args.paced[0]
            for transport in transports:
                if not any(r.mode == "paced" and r.server == "livesim" and r.transport == transport
                           and r.clients == n for r in rows):  # fmt: skip
                    show(await paced_row("livesim", transport, n, rate, args, tmp))
                show(await paced_row("livesim", transport, n, rate, args, tmp, stall=n // 20))
        if "resume" in modes:
            for transport in transports[-1:] if args.quick else transports:
                show(await resume_row(transport, args, tmp))
        if "drift" in modes:
            for transport in transports[-1:]:
                show(await drift_row(transport, args, tmp))
        if "capacity" in modes:
            n = min(args.capacity or budget, budget)
            for transport in transports:
                for kind in ("naive", "livesim"):
                    show(await capacity_row(kind, transport, n, args, tmp))
    print()
    print(render(rows))
    print()
    print("\n".join(ratios(rows)))
    print(f"\ntotal wall time {time.monotonic() - started:.0f} s")
    return 0


def main() -> int:
    args = build_parser().parse_args()
    if args.serve:
        return serve_baseline(args.serve, args.port, args.rate)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
