"""Fan-out latency: N subscribers on one paced stream, and how late each event reaches them.

Answers "I point N connections at it: what latency do they see?". For each transport (SSE,
WebSocket) and each N, a fresh ``livesim serve`` is started as a separate process on 127.0.0.1,
serving one shared stream of the bundled archive at speed 60 with ``max_gap`` 30 s, looping, so a
post is due about every 0.5 s. N lean client connections are opened from this process (in
batches, at most ``--concurrency`` handshakes in flight), and once the server reports all N
subscribed, the next ``--events`` events are measured on every connection.

**Lateness** of one event at one client is the client's receive time (``time.time()`` when the
bytes were read) minus the event's ``due_at`` (the wall-clock instant the replay scheduled it
for, ISO-8601 with milliseconds, so up to 1 ms is truncation). It is everything between the
schedule and the client: the server's timer wake-up, publishing, every connection's writer, the
loopback socket, and this process getting round to reading that connection. Client and server
run on the same machine and share its cores, so at large N part of the figure is the client.

The clients are deliberately lean so that the client process is not the bottleneck: raw
``asyncio`` protocols, an HTTP/1.1 request written by hand, a chunked-transfer decoder and an SSE
frame splitter that only reads the ``id:`` line (for the serial); WebSocket handshake by hand,
then unmasked server frames (2-byte header, optional 2/8-byte length), answering the server's
heartbeat pings. No JSON is parsed per client per event; ``due_at`` is cut out of the bytes once
per event, and received times are matched to it after the measurement.

Per row: percentiles of lateness over every (client, event) delivery, the fraction of expected
deliveries received, ``drift`` (the mean of each event's median lateness over the second half of
the window minus the first half: a clearly positive drift means lateness grows, the server is
falling behind), the server's CPU time (``/proc/<pid>/stat`` utime + stime) over the measurement
window, as a share of one core (``srv busy``: one event loop cannot use more than 100%) and per
event, this process's CPU time, the server's resident memory, the slow-consumer drops the server
counted (``dropped_slow``), and p50/p99 relative to N=1 on the same transport (always run).

    .venv/bin/python benchmarks/fanout_bench.py                      # 1..10 000, SSE and WS
    .venv/bin/python benchmarks/fanout_bench.py --quick              # 1, 100, 1000
    .venv/bin/python benchmarks/fanout_bench.py --clients 1,2000 --transport ws --events 40
"""

from __future__ import annotations

import argparse
import asyncio
import base64
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

HOST = "127.0.0.1"
STREAM = "bench"
FEED = "aljazeera-iraq-2014-06"
SPEED = 60.0
MAX_GAP = 30.0
INTERVAL = MAX_GAP / SPEED
"""Seconds between events: every gap in the bundled archive is longer than ``MAX_GAP``."""

DEFAULT_CLIENTS = (1, 100, 1000, 5000, 10000)
QUICK_CLIENTS = (1, 100, 1000)
FD_RESERVE = 64
"""File descriptors kept back for the interpreter, the event loop and the API requests."""

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
DUE_KEY = b'"due_at":"'
DUE_LEN = len("2026-11-25T09:46:10.232Z")
ROOT = Path(__file__).resolve().parent.parent


# Recording -------------------------------------------------------------------------------------


class Recorder:
    """What every client saw: (serial, receive time) per connection, ``due_at`` per serial."""

    def __init__(self) -> None:
        self.due: dict[int, bytes] = {}
        self.last = math.inf
        self.finished = 0
        self.expected = 0
        self.closed_by_server = 0
        self.all_done = asyncio.Event()

    def saw(self, client: Client, serial: int, now: float) -> None:
        client.got.append((serial, now))
        if serial >= self.last and not client.finished:
            client.finished = True
            self.finished += 1
            self._check()

    def lost(self, client: Client) -> None:
        """The server closed a subscribed connection (a drop, or shutdown) before we did."""
        if client.open and not client.closing:
            self.closed_by_server += 1
            if not client.finished:
                client.finished = True
                self.finished += 1
                self._check()

    def measure_until(self, last: int, clients: list[Client]) -> None:
        self.last = last
        self.expected = len(clients)
        for client in clients:
            if not client.finished and client.got and client.got[-1][0] >= last:
                client.finished = True
                self.finished += 1
        self._check()

    def _check(self) -> None:
        if self.expected and self.finished >= self.expected:
            self.all_done.set()


class Client(asyncio.Protocol):
    """One subscriber connection: send the request, wait for the answer, then record events."""

    def __init__(self, recorder: Recorder, request: bytes, ready: asyncio.Future[None]):
        self.recorder = recorder
        self.request = request
        self.ready = ready
        self.transport: asyncio.Transport | None = None
        self.got: list[tuple[int, float]] = []
        self.finished = False
        self.closing = False
        self.head = bytearray()
        self.open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        if self.open:
            self.body(data, now)
            return
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            if len(self.head) > 65536:
                self.fail("response head too long")
            return
        head, rest = bytes(self.head[:end]), bytes(self.head[end + 4 :])
        self.head.clear()
        problem = self.handshake(head)
        if problem:
            self.fail(problem)
            return
        self.open = True
        if rest:
            self.body(rest, now)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed during handshake: {exc}"))
        self.recorder.lost(self)

    def fail(self, problem: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(problem))
        self.close()

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def handshake(self, head: bytes) -> str | None:
        raise NotImplementedError

    def body(self, data: bytes, now: float) -> None:
        raise NotImplementedError


class SseClient(Client):
    """``GET /streams/{id}/events``: chunked transfer decoding, then ``\\n\\n``-split frames."""

    def __init__(self, recorder: Recorder, ready: asyncio.Future[None], port: int):
        request = (
            f"GET /streams/{STREAM}/events HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
            "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
        ).encode()
        super().__init__(recorder, request, ready)
        self.chunked = False
        self.raw = bytearray()
        self.chunk_left = 0
        self.frames = bytearray()

    def handshake(self, head: bytes) -> str | None:
        status = head.split(b"\r\n", 1)[0]
        if b" 200 " not in status + b" ":
            return f"answered {status.decode(errors='replace')!r}"
        self.chunked = b"transfer-encoding: chunked" in head.lower()
        return None

    def body(self, data: bytes, now: float) -> None:
        if self.chunked:
            data = self.dechunk(data)
        frames = self.frames
        frames += data
        start = 0
        while (end := frames.find(b"\n\n", start)) >= 0:
            if frames.startswith(b"id: ", start):
                line = frames.find(b"\n", start)
                serial = int(frames[frames.rfind(b"-", start, line) + 1 : line])
                if serial not in self.recorder.due:  # once per event, not per client
                    self.recorder.due[serial] = _due_in(bytes(frames[line:end]))
                self.recorder.saw(self, serial, now)
            elif not self.ready.done():  # the ``retry:`` frame: we are subscribed
                self.ready.set_result(None)
            start = end + 2
        del frames[:start]

    def dechunk(self, data: bytes) -> bytes:
        raw = self.raw
        raw += data
        out = bytearray()
        pos = 0
        while True:
            if self.chunk_left == 0:
                eol = raw.find(b"\r\n", pos)
                if eol < 0:
                    break
                size = raw[pos:eol].split(b";", 1)[0].strip()
                pos = eol + 2
                if not size:  # the CRLF that ends a chunk's data
                    continue
                self.chunk_left = int(size, 16)
                if self.chunk_left == 0:  # last chunk: the response ended
                    break
            take = min(self.chunk_left, len(raw) - pos)
            if take <= 0:
                break
            out += raw[pos : pos + take]
            pos += take
            self.chunk_left -= take
        del raw[:pos]
        return bytes(out)


class WsClient(Client):
    """``GET /streams/{id}/ws``: RFC 6455 handshake by hand, then unmasked server frames."""

    def __init__(self, recorder: Recorder, ready: asyncio.Future[None], port: int):
        self.key = base64.b64encode(os.urandom(16))
        request = (
            f"GET /streams/{STREAM}/ws HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {self.key.decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        super().__init__(recorder, request, ready)
        self.buf = bytearray()

    def handshake(self, head: bytes) -> str | None:
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            return f"answered {status.decode(errors='replace')!r}"
        accept = base64.b64encode(hashlib.sha1(self.key + WS_GUID).digest())
        if accept not in head:
            return "wrong Sec-WebSocket-Accept"
        self.ready.set_result(None)
        return None

    def body(self, data: bytes, now: float) -> None:
        buf = self.buf
        buf += data
        pos = 0
        while len(buf) - pos >= 2:
            opcode, length = buf[pos] & 0x0F, buf[pos + 1] & 0x7F
            start = pos + 2
            if length == 126:
                start += 2
                length = int.from_bytes(buf[pos + 2 : start]) if len(buf) >= start else -1
            elif length == 127:
                start += 8
                length = int.from_bytes(buf[pos + 2 : start]) if len(buf) >= start else -1
            if length < 0 or len(buf) < start + length:
                break
            end = start + length
            if opcode == 0x1 and buf.startswith(b'{"id":"', start):
                quote = buf.find(b'"', start + 7, end)
                serial = int(buf[buf.rfind(b"-", start, quote) + 1 : quote])
                if serial not in self.recorder.due:  # once per event, not per client
                    self.recorder.due[serial] = _due_in(bytes(buf[start:end]))
                self.recorder.saw(self, serial, now)
            elif opcode == 0x9:  # ping: answer with a pong, masked (a zero mask) as clients must
                self.send(0xA, bytes(buf[start:end]))
            elif opcode == 0x8 and self.transport is not None:  # close: the server dropped us
                self.send(0x8, bytes(buf[start : start + 2]))
                self.transport.close()
            pos = end
        del buf[:pos]

    def send(self, opcode: int, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            header = bytes([0x80 | opcode, 0x80 | len(payload)]) + b"\0\0\0\0"
            self.transport.write(header + payload)

    def close(self) -> None:
        if not self.closing:
            self.send(0x8, (1000).to_bytes(2))
        super().close()


def _due_in(envelope: bytes) -> bytes:
    at = envelope.find(DUE_KEY)
    return envelope[at + len(DUE_KEY) : at + len(DUE_KEY) + DUE_LEN] if at >= 0 else b""


# The server ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def write_config(directory: str, port: int, max_pending: int | None) -> Path:
    pending = f"max_pending = {max_pending}\n" if max_pending else ""
    text = (
        f'[server]\nhost = "{HOST}"\nport = {port}\n{pending}bundled = true\n\n'
        f'[[streams]]\nid = "{STREAM}"\nfeed = "{FEED}"\nspeed = {SPEED:g}\n'
        f'max_gap = "{MAX_GAP:g}s"\nloop = true\n'
    )
    path = Path(directory) / f"fanout-{port}.toml"
    path.write_text(text, encoding="utf-8")
    return path


class Server:
    def __init__(self, config: Path, port: int, log: Path):
        self.port = port
        self.log_path = log
        self.log = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "simulator", "serve", "--config", str(config)],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def cpu(self) -> float:
        """utime + stime of the server process, seconds."""
        stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        pages = int(stat.rsplit(")", 1)[1].split()[21])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20

    async def get(self, path: str, within: float = 10.0) -> Any:
        """A GET answered with JSON, over a connection of its own."""
        async with asyncio.timeout(within):
            reader, writer = await asyncio.open_connection(HOST, self.port)
            try:
                writer.write(
                    f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()
                )
                raw = await reader.read()
            finally:
                writer.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        if b" 200 " not in head.split(b"\r\n", 1)[0] + b" ":
            raise RuntimeError(f"GET {path}: {head.splitlines()[:1]!r}")
        return orjson.loads(body)

    async def stream(self) -> dict[str, Any]:
        info: dict[str, Any] = await self.get(f"/api/streams/{STREAM}")
        return info

    async def wait_healthy(self, within: float) -> None:
        deadline = time.monotonic() + within
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited ({self.process.returncode}): {self.tail()}")
            try:
                await self.get("/healthz", within=2.0)
                return
            except (OSError, RuntimeError, TimeoutError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no /healthz within {within:g} s: {self.tail()}") from None
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


# One row ---------------------------------------------------------------------------------------


@dataclass
class Row:
    transport: str
    clients: int
    requested: int
    events: int = 0
    lateness: list[float] = field(default_factory=list)
    """Milliseconds, one per (client, event) delivery in the window, sorted."""
    delivered: float = 0.0
    drift: float = math.nan
    setup: float = math.nan
    server_cpu: float = math.nan
    client_cpu: float = math.nan
    window: float = math.nan
    rss_mb: float = math.nan
    dropped_slow: int = 0
    closed_by_server: int = 0
    failed: int = 0
    notes: list[str] = field(default_factory=list)
    per_event: list[tuple[int, float, float, int]] = field(default_factory=list)
    """(serial, p50 ms, max ms, deliveries) for each event in the window."""

    def pct(self, q: float) -> float:
        if not self.lateness:
            return math.nan
        rank = max(0, math.ceil(q / 100 * len(self.lateness)) - 1)
        return self.lateness[rank]


def _iso_epoch(text: bytes) -> float:
    return datetime.fromisoformat(text.decode()).timestamp()


ClientFactory = Callable[[Recorder, "asyncio.Future[None]", int], Client]


async def connect_all(
    kind: ClientFactory, recorder: Recorder, port: int, count: int, concurrency: int
) -> tuple[list[Client], list[str]]:
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(concurrency)
    clients: list[Client] = []
    errors: list[str] = []

    async def one() -> None:
        async with gate:
            ready: asyncio.Future[None] = loop.create_future()
            try:
                _, protocol = await loop.create_connection(
                    lambda: kind(recorder, ready, port), HOST, port
                )
                async with asyncio.timeout(15):
                    await ready
            except (OSError, TimeoutError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                return
            clients.append(protocol)

    await asyncio.gather(*(one() for _ in range(count)))
    return clients, errors


async def wait_subscribers(server: Server, want: int, within: float) -> int:
    deadline = time.monotonic() + within
    while True:
        have = int((await server.stream())["subscribers"])
        if have == want or time.monotonic() > deadline:
            return have
        await asyncio.sleep(0.1)


async def run_row(
    transport: str, requested: int, count: int, args: argparse.Namespace, tmp: str
) -> Row:
    row = Row(transport, count, requested)
    if count < requested:
        row.notes.append(f"capped from {requested}")
    port = free_port()
    server = Server(write_config(tmp, port, args.max_pending), port, Path(tmp) / f"{port}.log")
    recorder = Recorder()
    clients: list[Client] = []
    try:
        await server.wait_healthy(30)
        kind: ClientFactory = SseClient if transport == "sse" else WsClient
        started = time.monotonic()
        setup_budget = 30 + count / 100
        try:
            async with asyncio.timeout(setup_budget):
                clients, errors = await connect_all(kind, recorder, port, count, args.concurrency)
        except TimeoutError:
            row.notes.append(f"setup timed out after {setup_budget:g} s")
            return row
        row.setup = time.monotonic() - started
        row.failed = len(errors)
        if errors:
            row.notes.append(f"{len(errors)} failed to connect ({errors[0]})")
        have = await wait_subscribers(server, len(clients), 15)
        if have != len(clients):
            row.notes.append(f"server counts {have} subscribers for {len(clients)} connections")

        cpu_before, client_before = server.cpu(), time.process_time()
        window_start = time.monotonic()
        info = await server.stream()
        first = int(str(info["cursor"]).rsplit("-", 1)[1])
        recorder.measure_until(first + args.events, clients)
        budget = args.events * INTERVAL * 2 + 10 + count / 1000
        try:
            async with asyncio.timeout(budget):
                await recorder.all_done.wait()
        except TimeoutError:
            row.notes.append(f"window timed out after {budget:.0f} s")
        row.window = time.monotonic() - window_start
        row.server_cpu = server.cpu() - cpu_before
        row.client_cpu = time.process_time() - client_before
        row.rss_mb = server.rss_mb()
        after = await server.stream()
        row.dropped_slow = int(after["dropped_slow"])
        row.closed_by_server = recorder.closed_by_server
        summarize(row, recorder, clients, first, first + args.events)

        for client in clients:
            client.close()
        left = await wait_subscribers(server, 0, 15)
        if left:
            row.notes.append(f"{left} subscribers still registered 15 s after clients closed")
    except RuntimeError as exc:
        row.notes.append(str(exc))
    finally:
        for client in clients:
            client.close()
        server.stop()
    return row


def summarize(row: Row, recorder: Recorder, clients: list[Client], first: int, last: int) -> None:
    due = {s: _iso_epoch(d) for s, d in recorder.due.items() if first < s <= last and d}
    emitted = max(due, default=first) - first
    row.events = emitted
    if emitted < last - first:
        row.notes.append(f"only {emitted} of {last - first} events reached any client")
    by_event: dict[int, list[float]] = {s: [] for s in due}
    for client in clients:
        for serial, seen in client.got:
            if serial in due:
                by_event[serial].append((seen - due[serial]) * 1000)
    late = [value for values in by_event.values() for value in values]
    late.sort()
    row.lateness = late
    row.delivered = len(late) / (row.clients * (last - first))
    medians = []
    for serial in sorted(by_event):
        values = sorted(by_event[serial])
        if values:
            median = values[len(values) // 2]
            medians.append(median)
            row.per_event.append((serial, median, values[-1], len(values)))
    if len(medians) >= 2:
        half = len(medians) // 2
        row.drift = sum(medians[-half:]) / half - sum(medians[:half]) / half
    if row.closed_by_server:
        row.notes.append(f"{row.closed_by_server} connections closed by the server")
    if row.dropped_slow:
        row.notes.append(f"SERVER DROPPED {row.dropped_slow} AS SLOW CONSUMERS")


# Output ----------------------------------------------------------------------------------------


COLUMNS = (
    ("transport", "<"),
    ("N", ">"),
    ("events", ">"),
    ("p50 ms", ">"),
    ("p90 ms", ">"),
    ("p99 ms", ">"),
    ("max ms", ">"),
    ("delivered", ">"),
    ("drift ms", ">"),
    ("setup s", ">"),
    ("srv CPU s", ">"),
    ("srv busy", ">"),
    ("ms/event", ">"),
    ("cli CPU s", ">"),
    ("srv MB", ">"),
    ("p50 x1", ">"),
    ("p99 x1", ">"),
    ("dropped", ">"),
    ("notes", "<"),
)


def _num(value: float, digits: int = 1) -> str:
    return "-" if math.isnan(value) else f"{value:,.{digits}f}"


def _ratio(value: float, base: float) -> str:
    if math.isnan(value) or math.isnan(base) or base <= 0:
        return "-"
    return f"{value / base:,.1f}x"


def cells(row: Row, base: Row | None) -> list[str]:
    p50, p99 = row.pct(50), row.pct(99)
    per_event = row.server_cpu / row.events * 1000 if row.events else math.nan
    return [
        row.transport,
        f"{row.clients:,}",
        str(row.events),
        _num(p50),
        _num(row.pct(90)),
        _num(p99),
        _num(row.pct(100)),
        f"{row.delivered:.2%}" if not math.isnan(row.window) else "-",
        _num(row.drift),
        _num(row.setup),
        _num(row.server_cpu, 2),
        f"{row.server_cpu / row.window:.0%}" if row.window > 0 else "-",
        _num(per_event),
        _num(row.client_cpu, 2),
        _num(row.rss_mb, 0),
        _ratio(p50, base.pct(50)) if base else "-",
        _ratio(p99, base.pct(99)) if base else "-",
        f"{row.dropped_slow:,}",
        "; ".join(row.notes),
    ]


def render(rows: list[tuple[Row, Row | None]]) -> str:
    table = [[name for name, _ in COLUMNS]] + [cells(row, base) for row, base in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]

    def line(values: list[str]) -> str:
        out = []
        for (_, align), width, value in zip(COLUMNS, widths, values, strict=True):
            out.append(value.ljust(width) if align == "<" else value.rjust(width))
        return "  ".join(out).rstrip()

    rule = ["-" * w for w in widths]
    return "\n".join([line(table[0]), line(rule), *(line(values) for values in table[1:])])


# Main ------------------------------------------------------------------------------------------


def fd_budget() -> tuple[int, str | None]:
    """Connections one row may open: raise the soft fd limit to the hard one, keep a reserve.

    Each connection is one descriptor here and one in the server (which inherits this limit).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    limit = soft if soft != resource.RLIM_INFINITY else 1 << 20
    ports = 1 << 20
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        ports = high - low + 1
    except (OSError, ValueError):
        pass
    budget = min(limit - FD_RESERVE, ports - FD_RESERVE)
    why = f"RLIMIT_NOFILE {limit}" if limit <= ports else f"{ports} ephemeral ports"
    return budget, why


def parse_clients(text: str) -> list[int]:
    try:
        values = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas: {text!r}"
        ) from None
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError("client counts must be 1 or more")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Lateness of events at N SSE/WebSocket subscribers of one livesim stream."
    )
    parser.add_argument(
        "--clients",
        type=parse_clients,
        default=list(DEFAULT_CLIENTS),
        help="connection counts, comma-separated (default 1,100,1000,5000,10000); 1 is always run",
    )
    parser.add_argument("--quick", action="store_true", help="only 1,100,1000")
    parser.add_argument("--transport", choices=("sse", "ws", "both"), default="both")
    parser.add_argument("--events", type=int, default=20, help="events measured per row (20)")
    parser.add_argument(
        "--concurrency", type=int, default=100, help="handshakes in flight while connecting (100)"
    )
    parser.add_argument(
        "--max-pending", type=int, help="server max_pending (default: the server's, 1024)"
    )
    parser.add_argument(
        "--per-event", action="store_true", help="also print median/max lateness of every event"
    )
    return parser


async def run(args: argparse.Namespace) -> int:
    counts = list(QUICK_CLIENTS) if args.quick else list(args.clients)
    if 1 not in counts:
        counts.insert(0, 1)
    budget, why = fd_budget()
    transports = ("sse", "ws") if args.transport == "both" else (args.transport,)
    print(
        f"livesim fan-out benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; Python "
        f"{platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs"
    )
    print(
        f"  stream: bundled archive, speed {SPEED:g}, max_gap {MAX_GAP:g}s, loop -> one event "
        f"per ~{INTERVAL:g} s; {args.events} events measured per row; server max_pending "
        f"{args.max_pending or 'default (1024)'}"
    )
    print(f"  connections per row at most {budget:,} ({why}); server and clients share the CPUs")
    for count in counts:
        if count > budget:
            print(
                f"  N={count:,} capped to {budget:,}: {why} allows {budget + FD_RESERVE:,} "
                "descriptors (each connection needs one here and one in the server)"
            )
    print(flush=True)

    rows: list[tuple[Row, Row | None]] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fanout-bench-") as tmp:
        for transport in transports:
            base: Row | None = None
            for requested in counts:
                row = await run_row(transport, requested, min(requested, budget), args, tmp)
                if requested == 1:
                    base = row
                rows.append((row, base))
                print(
                    f"  {transport} N={row.clients:,}: {row.events} events, p50 "
                    f"{_num(row.pct(50))} ms, p99 {_num(row.pct(99))} ms, "
                    f"delivered {row.delivered:.2%}, {row.window:.1f} s window"
                    + (f"  [{'; '.join(row.notes)}]" if row.notes else ""),
                    flush=True,
                )
                if args.per_event:
                    for serial, median, worst, count in row.per_event:
                        print(
                            f"      event {serial}: p50 {median:8.1f} ms  max {worst:8.1f} ms"
                            f"  ({count:,} deliveries)"
                        )
    print()
    print(render(rows))
    print(f"\ntotal wall time {time.monotonic() - started:.0f} s")
    return 0


def main() -> int:
    args = build_parser().parse_args()
    if args.events < 1 or args.concurrency < 1:
        print("fanout_bench: --events and --concurrency must be 1 or more", file=sys.stderr)
        return 2
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
