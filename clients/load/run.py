"""Orchestration: check the target, ramp the clients up, churn them, stop, drain, and merge
what one or several processes saw."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import queue as queue_module
import random
import resource
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

import aiohttp
from rich.console import Console

from .. import reads
from ..connection import HandshakeError
from ..judge import Counts, Histogram, Sequence, split_id
from ..target import ClientError, Target, find_target, get_json, parse_target, resolve_url
from .client import LoadClient
from .options import LoadOptions
from .report import ProgressView, Snapshot, merge_snapshots, snapshot_dict
from .verdict import LoadReport

PROGRESS_EVERY = 0.5
FD_RESERVE = 64
"""File descriptors kept for the interpreter, the event loop and API requests."""
CURSOR_EVERY = 0.5
END_CURSOR_TIMEOUT = 5.0
"""The end-of-run cursor read waits no longer: a run ends on time if the server is gone."""


class Share:
    """The clients of one process, run for the duration, then judged."""

    def __init__(
        self, options: LoadOptions, targets: Target | tuple[Target, ...], numbers: list[int]
    ) -> None:
        self.options = options
        self.targets = targets if isinstance(targets, tuple) else (targets,)
        self.target = self.targets[0]
        """Where the stream's cursor is read: every node has the same ids."""
        self.nodes: list[Counter[str]] = [Counter() for _ in self.targets]
        """Per node: connections opened, refused, failed to connect, broken."""
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
        self.injected: Counter[str] | None = None
        """Faults the server counts as injected on the stream during the run (shared streams,
        the first process only); None when unknown."""
        self._injected_at_start: Counter[str] | None = None
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
                        target = split_id((await self._end_cursor(session)).encode())
                    except ClientError as exc:  # judge what arrived, and fail
                        self.errors[f"end of run: {exc}"] += 1
                        self.problems.append(f"the stream's cursor at the end: {exc}")
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
        if self.options.faults and self.numbers[:1] == [0]:
            now = _injected(info)
            # Each node injects into its own connections: the run's count is their sum.
            for base in dict.fromkeys(t.base for t in self.targets[1:]):
                if now is not None and base != self.target.base:
                    other = await get_json(session, f"{base}/api/streams/{self.target.id}")
                    more = _injected(other)
                    now = None if more is None else now + more
            if now is not None:
                if self._injected_at_start is None:
                    self._injected_at_start = now
                else:
                    self.injected = now - self._injected_at_start
        if not isinstance(cursor, str):
            raise ClientError(f"{self.target}: the stream has no cursor")
        return cursor

    async def _end_cursor(self, session: aiohttp.ClientSession) -> str:
        """The cursor, asked again while the server refuses (a saturated server sheds API
        requests too, with a 503), until ``END_CURSOR_TIMEOUT``."""
        why = f"no answer within {END_CURSOR_TIMEOUT:g}s"
        try:
            async with asyncio.timeout(END_CURSOR_TIMEOUT):
                while True:
                    try:
                        return await self._cursor(session)
                    except ClientError as exc:
                        why = str(exc)
                    await asyncio.sleep(0.2)
        except TimeoutError:
            raise ClientError(why) from None

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
            if all(c.sequence.reached(target) for c in self.clients if c.opened):
                return
            await asyncio.sleep(0.05)

    def _nodes(self) -> list[dict[str, int]]:
        out = [Counter(node) for node in self.nodes]
        for client in self.clients:
            out[client.first_node]["clients"] += 1
        return [dict(node) for node in out]

    def _result(self, target: tuple[bytes, int] | None, elapsed: float) -> dict[str, Any]:
        """Every client asked for is in the result. One that never opened a connection is
        counted as not opened (refused or failed), never as events lost: what it would have
        been sent was not the service's to deliver."""
        counts = Counts()
        for client in self.clients:
            if client.opened:
                counts.add(client.sequence.finish(target))
            counts.bytes += client.bytes
            client.sequence.counts.bytes = client.bytes
        clients = self.clients
        return {
            "clients": len(clients),
            "connections": {
                "clients_opened": sum(1 for c in clients if c.opened),
                "opened": sum(c.opened for c in clients),
                "failed": sum(c.failed for c in clients),
                "refused": sum(c.refused for c in clients),
                "connect_failed": sum(c.connect_failed for c in clients),
                "reconnects": sum(c.reconnects for c in clients),
                "churned": sum(c.churned for c in clients),
                "closed_by_server": sum(c.server_closed for c in clients),
            },
            "counts": counts.as_dict(),
            "hist": self.hist.as_dict(),
            "nodes": self._nodes(),
            "rows": [c.row() for c in clients],
            "errors": dict(self.errors),
            "problems": self.problems,
            "injected": None if self.injected is None else dict(self.injected),
            "elapsed": elapsed,
        }


def _injected(info: object) -> Counter[str] | None:
    faults = info.get("faults") if isinstance(info, dict) else None
    injected = faults.get("injected") if isinstance(faults, dict) else None
    if not isinstance(injected, dict):
        return None
    return Counter({str(k): int(v) for k, v in injected.items() if isinstance(v, int)})


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
    return (await prepare_nodes(options))[0]


async def prepare_nodes(options: LoadOptions) -> tuple[Target, ...]:
    """``prepare`` for every URL (``url`` and ``nodes``), which must all name the same stream
    or feed with the same query: clients switch between them with their cursor."""
    ensure_descriptors(options)
    for url in options.urls:
        parsed = parse_target(resolve_url(url))
        if isinstance(parsed, Target):  # a mismatch is refused before any request
            _same_stream(options, parsed, url)
    targets: list[Target] = []
    async with reads.session() as session:
        for url in options.urls:
            target = await _check(session, url, options.faults)
            if targets:
                _same_stream(options, target, url, targets[0])
            targets.append(target)
    return tuple(targets)


def _same_stream(
    options: LoadOptions, target: Target, url: str | None, first: Target | None = None
) -> None:
    if first is None:
        parsed = parse_target(resolve_url(options.url))
        if not isinstance(parsed, Target):
            return
        first = parsed
    if (target.kind, target.id, target.query) != (first.kind, first.id, first.query):
        raise ClientError(
            f"{url}: names {target.kind}/{target.id}{_query(target)}, not "
            f"{first.kind}/{first.id}{_query(first)} as the first URL: every URL must name "
            "the same stream (one per node)"
        )


def _query(target: Target) -> str:
    return f"?{urlencode(target.query, safe=':,')}" if target.query else ""


async def _check(session: aiohttp.ClientSession, url: str | None, faults: str | None) -> Target:
    target = (await find_target(url, session)).with_faults(faults)
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
    options: LoadOptions,
    target: Target | tuple[Target, ...],
    on_progress: Callable[[Snapshot], None] | None = None,
) -> LoadReport:
    """The whole run in this event loop (one process): what tests and benchmarks call.
    ``target`` is every node's (``prepare_nodes``) or the one node's (``prepare``)."""
    share = Share(options, target, list(range(options.clients)))
    report = LoadReport(options, share.target, targets=share.targets)
    report.merge(await share.run(on_progress))
    return report


def run_load(options: LoadOptions, console: Console | None = None) -> LoadReport:
    """Check the target, run the clients (in ``procs`` processes), merge, show progress."""
    console = console or Console()
    targets = _run(prepare_nodes(options))
    if options.warmup:
        options = replace(options, warm_until=time.time() + options.warmup)
    live = console.is_terminal
    with ProgressView(options, console, live) as view:
        if options.procs <= 1:
            return _run(run_share(options, targets, view.update))  # type: ignore[no-any-return]
        return _run_processes(options, targets, view)


def _run_processes(
    options: LoadOptions, targets: tuple[Target, ...], view: ProgressView
) -> LoadReport:
    context = multiprocessing.get_context("spawn")
    messages: Any = context.Queue()
    workers = []
    for index in range(options.procs):
        numbers = list(range(index, options.clients, options.procs))
        process = context.Process(
            target=_worker, args=(options, targets, numbers, index, messages), daemon=True
        )
        process.start()
        workers.append(process)
    report = LoadReport(options, targets[0], targets=targets)
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
                view.update(merge_snapshots(progress))
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
    options: LoadOptions,
    targets: tuple[Target, ...],
    numbers: list[int],
    index: int,
    messages: Any,
) -> None:
    def progress(snapshot: Snapshot) -> None:
        messages.put(("progress", index, snapshot_dict(snapshot)))

    try:
        share = Share(options, targets, numbers)
        result = _run(share.run(progress))
    except ClientError as exc:
        messages.put(("error", index, str(exc)))
        return
    except KeyboardInterrupt:
        return
    messages.put(("done", index, result))
