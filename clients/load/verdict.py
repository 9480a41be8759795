"""The merged results of a run and its verdict: k6's thresholds, as ``failures``."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..judge import Counts, Histogram
from ..target import Target
from .options import LoadOptions


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

    def verdict(self) -> str:
        failures = self.failures()
        return "PASS" if not failures else "FAIL: " + "; ".join(failures)
