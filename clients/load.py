"""``livesim load``: many clients on one stream or feed, and a verdict on what each received.

Every client is one logical subscriber that lives through reconnects: it connects (SSE, WebSocket,
or alternately with ``mix``), is judged by a ``judge.Sequence`` (exact missing / duplicate /
out-of-order from event ids, across reconnects), and when its connection ends (the server closed
it, a fault, or ``--churn`` dropped it on purpose) it reconnects from the highest id it saw.

Lateness is receive time − ``due_at`` per event, in a histogram of whole milliseconds, so
percentiles merge exactly across processes; events due before a client first connected (the
backlog a late joiner gets) are not counted. On a shared stream every client starts from the
stream's cursor when it starts (fetched at most every half second), and at the end the run
waits (up to ``drain`` seconds) until each client reached the cursor the stream had when the
duration was over: whatever did not arrive by then is missing. A private replay (``/feeds/…``)
has no shared cursor to reach, so its tail cannot be judged beyond the last event received.

The work of one process is a ``Share``; ``run_load`` runs one in-process, or ``procs`` of them in
worker processes and merges their results (sums, and histogram buckets).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import queue as queue_module
import random
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from rich.console import Console
from rich.live import Live
from rich.table import Table

from . import reads
from .connection import Connection, HandshakeError, open_connection
from .judge import Counts, Histogram, Sequence, split_id
from .sse import MAX_EVENT_BYTES
from .target import ClientError, Target, find_target, get_json

TRANSPORTS = ("sse", "ws", "mix")
PROGRESS_EVERY = 0.5
PLAIN_EVERY = 5.0
MAX_BACKOFF = 5.0
FD_RESERVE = 64
"""File descriptors kept for the interpreter, the event loop and API requests."""
CURSOR_EVERY = 0.5
END_CURSOR_TIMEOUT = 5.0
"""The end-of-run cursor read waits no longer: a run ends on time if the server is gone."""


@dataclass(frozen=True, slots=True)
class LoadOptions:
    url: str | None
    clients: int = 100
    transport: str = "sse"
    ramp: float = 500.0
    """Connections opened per second; 0 opens them all at once."""
    duration: float = 30.0
    churn: float = 0.0
    """Connections dropped (by us) per second, each reconnecting from its last id."""
    faults: str | None = None
    procs: int = 1
    max_p99: float | None = None
    """Seconds; a run whose lateness p99 is above fails."""
    drain: float = 5.0
    max_event_bytes: int = MAX_EVENT_BYTES
    """A frame over this breaks its connection (counted as failed)."""


def transport_of(number: int, transport: str) -> str:
    if transport == "mix":
        return "sse" if number % 2 == 0 else "ws"
    return transport


# One client ----------------------------------------------------------------------------------


class LoadClient:
    """One subscriber across its connections: the ``frames.Sink`` its connections feed."""

    def __init__(self, share: Share, number: int, start: bytes | None) -> None:
        self.share = share
        self.number = number
        self.transport = transport_of(number, share.options.transport)
        self.sequence = Sequence(start)
        self.hist = share.hist
        self.joined = float("inf")
        self.conn: Connection | None = None
        self.opened = self.failed = self.refused = 0
        self.reconnects = self.churned = self.server_closed = 0
        self.bytes = 0

    def event(
        self,
        event_id: bytes,
        type: bytes,
        due: float | None,
        reset_reason: bytes | None,
        now: float,
    ) -> None:
        self.sequence.event(event_id, reset_reason)
        self.share.received += 1
        if due is not None and due >= self.joined:
            self.hist.add(now - due)

    def malformed(self) -> None:
        self.sequence.counts.malformed += 1

    async def run(self) -> None:
        share = self.share
        backoff = 0.1
        self.joined = time.time() - 0.001  # due_at is truncated to the millisecond
        while not share.stopping:
            try:
                conn = await open_connection(
                    self,
                    share.target,
                    self.transport,
                    self.sequence.cursor,
                    max_event_bytes=share.options.max_event_bytes,
                )
            except (OSError, TimeoutError, HandshakeError) as exc:
                if isinstance(exc, ConnectionRefusedError):
                    self.refused += 1
                else:
                    self.failed += 1
                share.error(exc)
                await asyncio.sleep(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            self.opened += 1
            share.open += 1
            self.conn = conn
            before = self.sequence.counts.received
            try:
                await conn.closed
            finally:
                share.open -= 1
                self.conn = None
                self.bytes += conn.bytes
            if share.stopping:
                return
            self.reconnects += 1
            if conn.error is not None:  # a body we would not take: the connection failed
                self.failed += 1
                share.errors[conn.error] += 1
            elif conn.by_us:
                continue
            else:
                self.server_closed += 1
            if self.sequence.counts.received > before:
                backoff = 0.1
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, MAX_BACKOFF)

    def row(self) -> dict[str, Any]:
        counts = self.sequence.counts
        return {
            "client": self.number,
            "transport": self.transport,
            "opened": self.opened,
            "failed": self.failed,
            "refused": self.refused,
            "reconnects": self.reconnects,
            **counts.as_dict(),
        }


# One process's part --------------------------------------------------------------------------


@dataclass(slots=True)
class Snapshot:
    """Progress so far, cheap to send between processes."""

    open: int = 0
    received: int = 0
    failed: int = 0
    wrong: int = 0
    hist: dict[str, Any] = field(default_factory=dict)


class Share:
    """The clients of one process, run for the duration, then judged."""

    def __init__(self, options: LoadOptions, target: Target, numbers: list[int]) -> None:
        self.options = options
        self.target = target
        self.numbers = numbers
        procs = max(1, options.procs)
        self.ramp = options.ramp / procs
        self.churn = options.churn / procs
        self.hist = Histogram()
        self.clients: list[LoadClient] = []
        self.stopping = False
        self.start: bytes = b""
        self.open = 0
        self.received = 0
        self.errors: Counter[str] = Counter()
        self.problems: list[str] = []
        """What keeps the run from being judged (the end-of-run cursor could not be read)."""

    def error(self, exc: BaseException) -> None:
        text = str(exc) if isinstance(exc, HandshakeError) else type(exc).__name__
        if isinstance(exc, OSError) and exc.strerror:
            text = f"{type(exc).__name__}: {exc.strerror}"
        self.errors[text] += 1

    def snapshot(self) -> Snapshot:
        failed = sum(c.failed + c.refused for c in self.clients)
        wrong = sum(
            c.sequence.counts.duplicate + c.sequence.counts.out_of_order + c.sequence.counts.foreign
            for c in self.clients
        )
        return Snapshot(self.open, self.received, failed, wrong, self.hist.as_dict())

    async def run(self, on_progress: Callable[[Snapshot], None] | None = None) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        async with reads.session() as session:
            self.start = b""
            if not self.target.private:
                self.start = (await self._cursor(session)).encode()
            self.clients = [LoadClient(self, n, self.start) for n in self.numbers]
            tasks: list[asyncio.Task[None]] = []
            began = loop.time()
            helpers = [
                asyncio.create_task(self._ramp(tasks, began, session)),
                asyncio.create_task(self._churn()),
            ]
            if on_progress is not None:
                helpers.append(asyncio.create_task(self._progress(on_progress)))
            try:
                await asyncio.sleep(max(0.0, began + self.options.duration - loop.time()))
                helpers[0].cancel()
                helpers[1].cancel()
                target = None
                if not self.target.private:
                    try:
                        async with asyncio.timeout(END_CURSOR_TIMEOUT):
                            target = split_id((await self._cursor(session)).encode())
                    except (ClientError, TimeoutError) as exc:  # judge what arrived, and fail
                        why = str(exc) or f"no answer within {END_CURSOR_TIMEOUT:g}s"
                        self.errors[f"end of run: {why}"] += 1
                        self.problems.append(f"the stream's cursor at the end: {why}")
                    if target is not None:
                        await self._drain(target)
            finally:
                self.stopping = True
                for helper in helpers:
                    helper.cancel()
                for client in self.clients:
                    if client.conn is not None:
                        client.conn.close()
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, *helpers, return_exceptions=True)
            elapsed = loop.time() - began
        if on_progress is not None:
            on_progress(self.snapshot())
        return self._result(target, elapsed)

    async def _cursor(self, session: aiohttp.ClientSession) -> str:
        info = await get_json(session, f"{self.target.base}/api/streams/{self.target.id}")
        cursor = info.get("cursor") if isinstance(info, dict) else None
        if not isinstance(cursor, str):
            raise ClientError(f"{self.target}: the stream has no cursor")
        return cursor

    async def _ramp(
        self, tasks: list[asyncio.Task[None]], began: float, session: aiohttp.ClientSession
    ) -> None:
        """Start the clients at the ramp's rate, each from the stream's cursor of the moment
        (refreshed every ``CURSOR_EVERY`` s), so a late joiner does not start in an epoch a
        loop has ended meanwhile (it would get a ``resume`` reset instead of its backlog)."""
        loop = asyncio.get_running_loop()
        refreshed = loop.time()
        for i, client in enumerate(self.clients):
            if self.ramp > 0:
                await asyncio.sleep(max(0.0, began + i / self.ramp - loop.time()))
            if not self.target.private and loop.time() - refreshed > CURSOR_EVERY:
                refreshed = loop.time()
                with contextlib.suppress(ClientError):
                    self.start = (await self._cursor(session)).encode()
            if self.start and client.sequence.cursor != self.start.decode():
                client.sequence = Sequence(self.start)
            tasks.append(asyncio.create_task(client.run()))

    async def _churn(self) -> None:
        if self.churn <= 0:
            return
        loop = asyncio.get_running_loop()
        began = loop.time()
        beat = 0
        while True:
            beat += 1
            await asyncio.sleep(max(0.0, began + beat / self.churn - loop.time()))
            for _ in range(20):  # a client that is open right now
                client = random.choice(self.clients)
                if client.conn is not None and client.conn.is_open:
                    client.churned += 1
                    client.conn.close()
                    break

    async def _progress(self, on_progress: Callable[[Snapshot], None]) -> None:
        while True:
            await asyncio.sleep(PROGRESS_EVERY)
            on_progress(self.snapshot())

    async def _drain(self, target: tuple[bytes, int]) -> None:
        """Wait until every started client reached the stream's end-of-run cursor."""
        loop = asyncio.get_running_loop()
        until = loop.time() + self.options.drain
        while loop.time() < until:
            if all(c.sequence.reached(target) for c in self.clients if c.opened or c.failed):
                return
            await asyncio.sleep(0.05)

    def _result(self, target: tuple[bytes, int] | None, elapsed: float) -> dict[str, Any]:
        counts = Counts()
        started = [c for c in self.clients if c.opened or c.failed]
        for client in started:
            counts.add(client.sequence.finish(target))
            counts.bytes += client.bytes
            client.sequence.counts.bytes = client.bytes
        return {
            "clients": len(started),
            "connections": {
                "opened": sum(c.opened for c in started),
                "failed": sum(c.failed for c in started),
                "refused": sum(c.refused for c in started),
                "reconnects": sum(c.reconnects for c in started),
                "churned": sum(c.churned for c in started),
                "closed_by_server": sum(c.server_closed for c in started),
            },
            "counts": counts.as_dict(),
            "hist": self.hist.as_dict(),
            "rows": [c.row() for c in started],
            "errors": dict(self.errors),
            "problems": self.problems,
            "elapsed": elapsed,
        }


# The whole run -------------------------------------------------------------------------------


@dataclass
class LoadReport:
    options: LoadOptions
    target: Target
    clients: int = 0
    connections: Counter[str] = field(default_factory=Counter)
    counts: Counts = field(default_factory=Counts)
    hist: Histogram = field(default_factory=Histogram)
    rows: list[dict[str, Any]] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    def merge(self, result: dict[str, Any]) -> None:
        self.clients += result["clients"]
        self.connections.update(result["connections"])
        self.counts.add(Counts.from_dict(result["counts"]))
        self.hist.merge(Histogram.from_dict(result["hist"]))
        self.rows.extend(result["rows"])
        self.errors.update(result["errors"])
        self.problems.extend(p for p in result["problems"] if p not in self.problems)
        self.elapsed = max(self.elapsed, result["elapsed"])

    def failures(self) -> list[str]:
        """Why the run fails (k6's thresholds): empty when it passes."""
        out = []
        counts = self.counts
        for name in ("missing", "duplicate", "out_of_order", "foreign"):
            value = getattr(counts, name)
            if value:
                bad = sum(1 for row in self.rows if row[name])
                out.append(f"{value} {name.replace('_', '-')} event(s) on {bad} connection(s)")
        p99 = self.hist.percentile(99)
        limit = self.options.max_p99
        if limit is not None and p99 is not None and p99 > limit * 1000:
            out.append(f"lateness p99 {p99:g} ms > --max-p99 {limit * 1000:g} ms")
        if self.connections["refused"]:
            out.append(f"connections refused: {self.connections['refused']}")
        if self.connections["failed"]:
            out.append(f"connections failed: {self.connections['failed']}")
        out.extend(self.problems)
        if not self.connections["opened"]:
            out.append("no connection was opened")
        return out

    def as_json(self) -> dict[str, Any]:
        options = self.options
        rows = sorted(self.rows, key=lambda row: row["client"])
        return {
            "url": str(self.target),
            "transport": options.transport,
            "clients": options.clients,
            "duration_s": options.duration,
            "ramp_per_s": options.ramp,
            "churn_per_s": options.churn,
            "faults": options.faults,
            "procs": options.procs,
            "elapsed_s": round(self.elapsed, 3),
            "connections": {
                k: self.connections[k]
                for k in (
                    "opened",
                    "failed",
                    "refused",
                    "reconnects",
                    "churned",
                    "closed_by_server",
                )
            },
            "events": {k: v for k, v in self.counts.as_dict().items() if k != "bytes"},
            "lateness_ms": self.hist.summary(),
            "bytes": self.counts.bytes,
            "errors": dict(self.errors.most_common()),
            "passed": not self.failures(),
            "failures": self.failures(),
            "per_connection": rows,
        }

    def table(self) -> Table:
        data = self.as_json()
        table = Table(show_header=False)
        table.add_column("")
        table.add_column("", justify="right")
        conn, events, late = data["connections"], data["events"], data["lateness_ms"]
        table.add_row("clients", f"{self.clients} ({self.options.transport})")
        table.add_row(
            "connections opened / failed / refused",
            f"{conn['opened']} / {conn['failed']} / {conn['refused']}",
        )
        table.add_row(
            "reconnects (churned / by server)",
            f"{conn['reconnects']} ({conn['churned']} / {conn['closed_by_server']})",
        )
        table.add_row("events expected / received", f"{events['expected']} / {events['received']}")
        names = ("missing", "duplicate", "out_of_order", "foreign", "resets", "connection_resets")
        for name in (*names, "malformed"):
            bad = sum(1 for row in self.rows if row[name])
            value = events[name]
            shown = f"{value} on {bad} conn." if value else "0"
            table.add_row(name.replace("_", "-"), shown)
        for name in ("p50", "p90", "p99", "max"):
            value = late[name]
            table.add_row(f"lateness {name}", "-" if value is None else f"{value:g} ms")
        table.add_row("bytes", f"{data['bytes']:,}")
        for text, n in list(self.errors.most_common())[:5]:
            table.add_row("error", f"{n} x {text}")
        return table

    def verdict(self) -> str:
        failures = self.failures()
        return "PASS" if not failures else "FAIL: " + "; ".join(failures)


class ProgressView:
    """Live progress: rich when stdout is a terminal, else a plain line every few seconds."""

    def __init__(self, options: LoadOptions, console: Console, live: bool) -> None:
        self.options = options
        self.console = console
        self.live: Live | None = Live(console=console, auto_refresh=False) if live else None
        self.began = time.monotonic()
        self.last_print = self.began
        self.history: list[tuple[float, int]] = []

    def __enter__(self) -> ProgressView:
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def update(self, snapshot: Snapshot) -> None:
        now = time.monotonic()
        self.history.append((now, snapshot.received))
        while len(self.history) > 2 and now - self.history[0][0] > 2.0:
            self.history.pop(0)
        (t0, r0), (t1, r1) = self.history[0], self.history[-1]
        rate = (r1 - r0) / (t1 - t0) if t1 > t0 else 0.0
        p99 = Histogram.from_dict(snapshot.hist).percentile(99) if snapshot.hist else None
        elapsed = now - self.began
        line = (
            f"{elapsed:5.1f}/{self.options.duration:g}s  connections {snapshot.open}/"
            f"{self.options.clients}  events/s {rate:,.0f}  received {snapshot.received:,}  "
            f"p99 {'-' if p99 is None else f'{p99:g} ms'}  "
            f"errors {snapshot.failed + snapshot.wrong}"
        )
        if self.live is not None:
            self.live.update(line, refresh=True)
        elif now - self.last_print >= PLAIN_EVERY:
            self.last_print = now
            print(line, file=self.console.file, flush=True)


def _merge_snapshots(parts: dict[int, Snapshot]) -> Snapshot:
    total = Snapshot()
    hist = Histogram()
    for part in parts.values():
        total.open += part.open
        total.received += part.received
        total.failed += part.failed
        total.wrong += part.wrong
        if part.hist:
            hist.merge(Histogram.from_dict(part.hist))
    total.hist = hist.as_dict()
    return total


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency where it exists
        return None
    return uvloop.new_event_loop


def _run(coro: Any) -> Any:
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(coro)


def ensure_descriptors(options: LoadOptions) -> None:
    """Raise this process's open-file limit to what each process's share of the clients needs
    (the soft limit up to the hard one), or say how to split the run."""
    per_process = -(-options.clients // max(1, options.procs)) + FD_RESERVE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < per_process:
        wanted = per_process if hard == resource.RLIM_INFINITY else min(per_process, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if soft < per_process:
            procs = -(-options.clients // max(1, soft - FD_RESERVE))
            raise ClientError(
                f"--clients {options.clients} needs {per_process} open files per process, "
                f"and a process may open {soft} here: use --procs {procs} or more"
            )


async def prepare(options: LoadOptions) -> Target:
    """The target, checked against the server before any client starts: its stream or feed
    exists and the query (with ``--faults``) is accepted, or one ``ClientError`` line."""
    ensure_descriptors(options)
    async with reads.session() as session:
        target = (await find_target(options.url, session)).with_faults(options.faults)
        api = "streams" if not target.private else "feeds"
        await get_json(session, f"{target.base}/api/{api}/{target.id}")
        url = target.base + target.path("sse")
        deadlines = aiohttp.ClientTimeout(total=15)
        try:
            async with reads.get(session, url, deadlines=deadlines) as response:
                if response.status != 200:
                    try:
                        answer = await reads.read_json(response, reads.ERROR_BODY_BYTES)
                    except reads.ReadError:
                        answer = None
                    error = answer.get("error") if isinstance(answer, dict) else None
                    why = str(error)[:300] if error else f"HTTP {response.status}"
                    raise ClientError(f"{url}: {why}")
        except reads.ReadError as exc:
            raise ClientError(str(exc)) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ClientError(f"{url}: {type(exc).__name__}: {exc}") from None
    return target


async def run_share(
    options: LoadOptions, target: Target, on_progress: Callable[[Snapshot], None] | None = None
) -> LoadReport:
    """The whole run in this event loop (one process): what tests and benchmarks call."""
    share = Share(options, target, list(range(options.clients)))
    report = LoadReport(options, target)
    report.merge(await share.run(on_progress))
    return report


def run_load(options: LoadOptions, console: Console | None = None) -> LoadReport:
    """Check the target, run the clients (in ``procs`` processes), merge, show progress."""
    console = console or Console()
    target = _run(prepare(options))
    live = console.is_terminal
    with ProgressView(options, console, live) as view:
        if options.procs <= 1:
            return _run(run_share(options, target, view.update))  # type: ignore[no-any-return]
        return _run_processes(options, target, view)


def _run_processes(options: LoadOptions, target: Target, view: ProgressView) -> LoadReport:
    context = multiprocessing.get_context("spawn")
    messages: Any = context.Queue()
    workers = []
    for index in range(options.procs):
        numbers = list(range(index, options.clients, options.procs))
        process = context.Process(
            target=_worker, args=(options, target, numbers, index, messages), daemon=True
        )
        process.start()
        workers.append(process)
    report = LoadReport(options, target)
    progress: dict[int, Snapshot] = {}
    done: set[int] = set()
    try:
        while len(done) < len(workers):
            try:
                kind, index, payload = messages.get(timeout=PROGRESS_EVERY)
            except queue_module.Empty:
                for index, process in enumerate(workers):
                    if index not in done and process.exitcode is not None:
                        raise ClientError(
                            f"load worker {index} exited ({process.exitcode})"
                        ) from None
                continue
            if kind == "progress":
                progress[index] = Snapshot(**payload)
                view.update(_merge_snapshots(progress))
            elif kind == "done":
                report.merge(payload)
                done.add(index)
            else:
                raise ClientError(payload)
    finally:
        for process in workers:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
    return report


def _worker(
    options: LoadOptions, target: Target, numbers: list[int], index: int, messages: Any
) -> None:
    def progress(snapshot: Snapshot) -> None:
        messages.put(("progress", index, _snapshot_dict(snapshot)))

    try:
        share = Share(options, target, numbers)
        result = _run(share.run(progress))
    except ClientError as exc:
        messages.put(("error", index, str(exc)))
        return
    except KeyboardInterrupt:
        return
    messages.put(("done", index, result))


def _snapshot_dict(snapshot: Snapshot) -> dict[str, Any]:
    return {
        "open": snapshot.open,
        "received": snapshot.received,
        "failed": snapshot.failed,
        "wrong": snapshot.wrong,
        "hist": snapshot.hist,
    }


def write_json(report: LoadReport, path: str) -> None:
    data = orjson.dumps(report.as_json(), option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    try:
        if path == "-":
            sys.stdout.buffer.write(data + b"\n")
        else:
            with open(path, "wb") as out:
                out.write(data + b"\n")
    except OSError as exc:
        raise ClientError(f"{path}: {exc.strerror or exc}") from None


def main_load(options: LoadOptions, json_path: str | None) -> int:
    """Run, print the table (and JSON), and the exit status: 1 when a check failed."""
    console = Console(stderr=json_path == "-")  # JSON on stdout: the rest goes to stderr
    report = run_load(options, console)
    console.print(f"livesim load {report.target}", soft_wrap=True, highlight=False)
    console.print(report.table())
    console.print(report.verdict(), soft_wrap=True, highlight=False)
    if json_path:
        write_json(report, json_path)
    failures = report.failures()
    return 1 if failures else 0
