"""How a run is shown: live progress, the end-of-run table, the JSON summary."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from rich.console import Console
from rich.live import Live
from rich.table import Table

from ..judge import Histogram
from ..target import ClientError
from .options import LoadOptions
from .verdict import LoadReport

PLAIN_EVERY = 5.0
NODE_COUNTS = ("clients", "opened", "refused", "connect_failed", "failed")


@dataclass(slots=True)
class Snapshot:
    """Progress so far, cheap to send between processes."""

    open: int = 0
    received: int = 0
    failed: int = 0
    wrong: int = 0
    hist: dict[str, Any] = field(default_factory=dict)


def merge_snapshots(parts: dict[int, Snapshot]) -> Snapshot:
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


def snapshot_dict(snapshot: Snapshot) -> dict[str, Any]:
    return {
        "open": snapshot.open,
        "received": snapshot.received,
        "failed": snapshot.failed,
        "wrong": snapshot.wrong,
        "hist": snapshot.hist,
    }


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


def summary(report: LoadReport) -> dict[str, Any]:
    """The JSON summary (``--json``)."""
    options = report.options
    rows = sorted(report.rows, key=lambda row: row["client"])
    return {
        "url": str(report.target),
        "urls": [str(target) for target in report.targets],
        "switch_nodes": options.switch_nodes,
        "transport": options.transport,
        "clients": options.clients,
        "clients_opened": report.connections["clients_opened"],
        "duration_s": options.duration,
        "ramp_per_s": options.ramp,
        "warmup_s": options.warmup,
        "churn_per_s": options.churn,
        "faults": options.faults,
        "procs": options.procs,
        "elapsed_s": round(report.elapsed, 3),
        "connections": {
            k: report.connections[k]
            for k in (
                "opened",
                "failed",
                "refused",
                "connect_failed",
                "reconnects",
                "churned",
                "closed_by_server",
            )
        },
        "nodes": [
            {"url": str(target), **{k: node[k] for k in NODE_COUNTS}}
            for target, node in zip(report.targets, report.nodes, strict=True)
        ],
        "events": {k: v for k, v in report.counts.as_dict().items() if k != "bytes"},
        "lateness_ms": report.hist.summary(),
        "bytes": report.counts.bytes,
        "errors": dict(report.errors.most_common()),
        "faults_seen": report.faults(),
        "thresholds": [outcome.as_dict() for outcome in report.outcomes()],
        "passed": not report.failures(),
        "failures": report.failures(),
        "exit": report.status(),
        "per_connection": rows,
    }


def table(report: LoadReport) -> Table:
    """The end-of-run table."""
    data = summary(report)
    out = Table(show_header=False)
    out.add_column("")
    out.add_column("", justify="right")
    conn, events, late = data["connections"], data["events"], data["lateness_ms"]
    out.add_row(
        "clients opened / asked",
        f"{data['clients_opened']} / {report.options.clients} ({report.options.transport})",
    )
    out.add_row(
        "connections opened / failed / refused",
        f"{conn['opened']} / {conn['failed']} / {conn['refused']}",
    )
    if len(report.targets) > 1:
        for target, node in zip(report.targets, data["nodes"], strict=True):
            failed = node["connect_failed"] + node["failed"]
            out.add_row(
                f"  on node {target.host_header}",
                f"{node['opened']} / {failed} / {node['refused']} ({node['clients']} clients)",
            )
    out.add_row(
        "reconnects (churned / by server)",
        f"{conn['reconnects']} ({conn['churned']} / {conn['closed_by_server']})",
    )
    out.add_row("events expected / received", f"{events['expected']} / {events['received']}")
    names = ("missing", "duplicate", "out_of_order", "foreign", "resets", "connection_resets")
    for name in (*names, "malformed"):
        bad = sum(1 for row in report.rows if row[name])
        value = events[name]
        shown = f"{value} on {bad} conn." if value else "0"
        out.add_row(name.replace("_", "-"), shown)
    after = f" (after {report.options.warmup:g}s)" if report.options.warmup else ""
    for name in ("p50", "p90", "p99", "max"):
        value = late[name]
        out.add_row(f"lateness {name}{after}", "-" if value is None else f"{value:g} ms")
    out.add_row("bytes", f"{data['bytes']:,}")
    for kind, seen in report.faults().items():
        injected = "?" if seen["injected"] is None else seen["injected"]
        out.add_row(f"fault {kind}", f"injected {injected} / handled {seen['handled']}")
    for outcome in report.outcomes():
        value = "no data" if outcome.value is None else outcome.threshold.shown(outcome.value)
        out.add_row(
            f"threshold {outcome.threshold.text}", f"{value} {'ok' if outcome.passed else 'FAILED'}"
        )
    for text, n in list(report.errors.most_common())[:5]:
        out.add_row("error", f"{n} x {text}")
    return out


def write_json(report: LoadReport, path: str) -> None:
    data = orjson.dumps(summary(report), option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    try:
        if path == "-":
            sys.stdout.buffer.write(data + b"\n")
        else:
            with open(path, "wb") as out:
                out.write(data + b"\n")
    except OSError as exc:
        raise ClientError(f"{path}: {exc.strerror or exc}") from None
