"""The merged results of a run and its verdict: k6's thresholds and exit statuses.

Each finding is a line and a status (``clients.verdicts``): events judged wrong are the
service's fault (1); fewer clients opened than asked, a connect failure or refusal, lateness
over a bound are thresholds (99) — a run that did not open every client it was asked for never
passes; nothing opened at all, or the end of the run could not be read, and it could not run (2).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from simulator.core.faults import ITEMS, parse

from ..judge import Counts, Histogram
from ..target import Target
from ..verdicts import (
    COULD_NOT_RUN,
    PASS,
    SERVICE_WRONG,
    THRESHOLD_FAILED,
    Outcome,
    Threshold,
    parse_threshold,
    worst,
)
from .options import LoadOptions

WRONG = ("missing", "duplicate", "out_of_order", "foreign")
UNJUDGED = {"delay": "lateness", "bandwidth": "lateness", "stall": "lateness", "slow_close": "n/a"}
"""Faults of timing: nothing to handle but the wait, which shows in lateness."""
DEFAULT_CONNECT = parse_threshold("connect_failures==0")
"""Unless the run bounds connect failures itself, none is tolerated."""


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
    injected: Counter[str] | None = None
    elapsed: float = 0.0
    targets: tuple[Target, ...] = ()
    """Every node's URL of the stream (``target`` is the first)."""
    nodes: list[Counter[str]] = field(default_factory=list)
    """Per node, as ``targets``: clients started there, connections opened, refused, failed."""

    def __post_init__(self) -> None:
        if not self.targets:
            self.targets = (self.target,)
        self.nodes = [Counter() for _ in self.targets]

    def merge(self, result: dict[str, Any]) -> None:
        self.clients += result["clients"]
        self.connections.update(result["connections"])
        self.counts.add(Counts.from_dict(result["counts"]))
        self.hist.merge(Histogram.from_dict(result["hist"]))
        for node, counts in zip(self.nodes, result.get("nodes", ()), strict=False):
            node.update(counts)
        self.rows.extend(result["rows"])
        self.errors.update(result["errors"])
        self.problems.extend(p for p in result["problems"] if p not in self.problems)
        self.elapsed = max(self.elapsed, result["elapsed"])
        if result.get("injected") is not None:
            self.injected = (self.injected or Counter()) + Counter(result["injected"])

    def faults(self) -> dict[str, dict[str, int | str | None]]:
        """Per fault kind asked for: injected (the server's count, shared streams) and handled
        (what the clients saw and dealt with; docs/testing-clients.md says what each means)."""
        if not self.options.faults:
            return {}
        try:
            spec = parse(self.options.faults)
        except ValueError:
            return {}
        conn, counts = self.connections, self.counts
        handled: dict[str, int | str | None] = {
            "duplicate": counts.duplicate,
            "reorder": counts.out_of_order,
            "garble": counts.malformed,
            "no_resume": counts.connection_resets,
            "disconnect_after": conn["closed_by_server"],
            "reset_after": conn["closed_by_server"],
            "drop": conn["closed_by_server"],
        }
        out: dict[str, dict[str, int | str | None]] = {}
        for name, value in spec.items():
            if not value or ITEMS[name] == "seed" or name in ("stall_after", "jitter"):
                continue
            injected = None if self.injected is None else self.injected.get(name, 0)
            if name == "delay" and self.injected is not None:
                injected = self.injected.get("delay", 0) + self.injected.get("jitter", 0)
            out[name] = {"injected": injected, "handled": handled.get(name, UNJUDGED.get(name))}
        return out

    def thresholds(self) -> list[Threshold]:
        given = list(self.options.thresholds)
        if self.options.max_p99 is not None:
            limit = self.options.max_p99 * 1000
            given.insert(0, parse_threshold(f"p99<={limit:.10g}ms"))
        if not any(t.metric == "connect_failures" for t in given):
            given.append(DEFAULT_CONNECT)
        return given

    def value(self, threshold: Threshold) -> float | None:
        metric = threshold.metric
        if metric == "lateness_max":
            return round(self.hist.max_ms, 3) if self.hist.count else None
        if metric.startswith("lateness_p"):
            return self.hist.percentile(float(metric.removeprefix("lateness_p")))
        conn = self.connections
        if metric == "connect_failures":
            count = conn["refused"] + conn["connect_failed"]
            whole = count + conn["opened"]
        elif metric in ("refused", "reconnects"):
            count, whole = conn[metric], conn["opened"] + conn["refused"] + conn["connect_failed"]
        else:
            count, whole = getattr(self.counts, metric), self.counts.expected
        if threshold.unit != "%":
            return float(count)
        return count / whole if whole else 0.0

    def outcomes(self) -> list[Outcome]:
        return [Outcome(t, self.value(t)) for t in self.thresholds()]

    def findings(self) -> list[tuple[int, str]]:
        """Why the run fails, each with its exit status: empty when it passes."""
        out: list[tuple[int, str]] = []
        opened = self.connections["clients_opened"]
        if not self.connections["opened"]:
            out.append((COULD_NOT_RUN, f"no connection was opened ({self.options.clients} asked)"))
        elif opened < self.options.clients:
            why = f"opened {opened} of {self.options.clients} clients"
            options = self.options
            if options.ramp > 0 and options.clients / options.ramp > options.duration:
                can = int(options.ramp * options.duration)
                why += (
                    f" (--ramp {options.ramp:g}/s starts {can} in --duration {options.duration:g}s)"
                )
            out.append((THRESHOLD_FAILED, why))
        for name in WRONG:
            value = getattr(self.counts, name)
            if value:
                bad = sum(1 for row in self.rows if row[name])
                what = f"{value} {name.replace('_', '-')} event(s) on {bad} connection(s)"
                out.append((SERVICE_WRONG, what))
        broken = self.connections["failed"] - self.connections["connect_failed"]
        if broken > 0:
            out.append((SERVICE_WRONG, f"connections failed: {broken} (broken by what was sent)"))
        for outcome in self.outcomes():
            if not outcome.passed:
                out.append((THRESHOLD_FAILED, f"threshold {outcome.line()}"))
        out.extend((COULD_NOT_RUN, problem) for problem in self.problems)
        return out

    def failures(self) -> list[str]:
        return [text for _, text in self.findings()]

    def status(self) -> int:
        return worst(status for status, _ in self.findings()) if self.findings() else PASS

    def verdict(self) -> str:
        failures = self.failures()
        return "PASS" if not failures else "FAIL: " + "; ".join(failures)
