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

Every client asked for is accounted for: one that never opened a connection (refused with a
503 or 429, the port closed, or not started before the duration was over) is a row of its own
and "opened N of M clients" fails the run, but it is not charged with the events it would have
received. The exit status is k6's (``clients.verdicts``).

Given several URLs of one stream (nodes sharing it through Redis, docs/scaling.md), client N
first connects to URL number N modulo their count; with ``switch_nodes`` each of its later
connections goes to the next URL, with its cursor: every node sends the same ids, so the
``Sequence`` judges across the switch exactly. Connections and refusals are counted per node.

The work of one process is a ``Share``; ``run_load`` runs one in-process, or ``procs`` of them in
worker processes and merges their results (sums, and histogram buckets).

One module per job: ``options`` (``LoadOptions``), ``client`` (one subscriber across its
connections), ``run`` (ramp, churn, stop, drain, worker processes), ``verdict`` (the merged
``LoadReport`` and its failures), ``report`` (progress, table, JSON).
"""

from __future__ import annotations

import sys

from rich.console import Console

from ..target import ClientError
from ..verdicts import COULD_NOT_RUN
from .client import LoadClient, transport_of
from .options import TRANSPORTS, LoadOptions
from .report import ProgressView, Snapshot, summary, table, write_json
from .run import Share, ensure_descriptors, prepare, prepare_nodes, run_load, run_share
from .verdict import LoadReport

__all__ = [
    "TRANSPORTS",
    "LoadClient",
    "LoadOptions",
    "LoadReport",
    "ProgressView",
    "Share",
    "Snapshot",
    "ensure_descriptors",
    "main_load",
    "prepare",
    "prepare_nodes",
    "run_load",
    "run_share",
    "summary",
    "table",
    "transport_of",
    "write_json",
]


def main_load(options: LoadOptions, json_path: str | None) -> int:
    """Run, print the table (and JSON), and the exit status (``clients.verdicts``)."""
    console = Console(stderr=json_path == "-")  # JSON on stdout: the rest goes to stderr
    try:
        report = run_load(options, console)
    except ClientError as exc:  # unreachable, no such stream, refused query: could not run
        print(f"livesim: {exc}", file=sys.stderr)
        return COULD_NOT_RUN
    shown = " ".join(str(target) for target in report.targets)
    switch = " --switch-nodes" if options.switch_nodes else ""
    console.print(f"livesim load {shown}{switch}", soft_wrap=True, highlight=False)
    console.print(table(report))
    console.print(report.verdict(), soft_wrap=True, highlight=False)
    if json_path:
        write_json(report, json_path)
    return report.status()
