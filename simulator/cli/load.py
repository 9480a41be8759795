"""``livesim load URL``: many clients on a stream or feed, every event id judged; the exit
status is the verdict (``clients.load`` runs it)."""

from __future__ import annotations

import argparse
from typing import Any

from .options import add_bounds, add_url, count, duration, positive_duration, rate, url

MAX_CLIENTS = 100_000
MAX_PROCS = 64


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "load",
        help="many clients on a stream or feed; judge every event id; exit 1 on any loss",
        description="Open --clients connections to a stream (/streams/ID: one shared replay) or "
        "a feed (/feeds/ID?speed=…: a private replay per connection), keep them for --duration, "
        "drop and resume some (--churn), and judge what each received from the event ids: "
        "missing, duplicate, out of order (exactly, across reconnects), and lateness "
        "(receive - due_at). Exit status 1 when any event was missing, duplicated or out of "
        "order, lateness p99 went over --max-p99, any connection was refused or failed (a "
        "frame over --max-event-bytes breaks its connection), or the stream's cursor could "
        "not be read at the end.",
    )
    add_url(parser, "a stream or feed, e.g. http://127.0.0.1:8080/streams/ID")
    parser.add_argument(
        "--clients", type=count(1, MAX_CLIENTS), default=100, help="connections (default 100)"
    )
    parser.add_argument(
        "--transport",
        choices=("sse", "ws", "mix"),
        default="sse",
        help="default sse; mix alternates",
    )
    parser.add_argument(
        "--ramp",
        type=rate,
        default=500.0,
        metavar="N/s",
        help="connections opened per second (default 500/s; 0: all at once)",
    )
    parser.add_argument(
        "--duration",
        type=positive_duration,
        default=30.0,
        metavar="D",
        help="how long (default 30s)",
    )
    parser.add_argument(
        "--churn",
        type=rate,
        default=0.0,
        metavar="N/s",
        help="connections dropped and resumed per second (default 0)",
    )
    parser.add_argument(
        "--faults",
        metavar="SPEC",
        help="passed to the server as ?faults=SPEC, e.g. duplicate:0.1,seed:7",
    )
    parser.add_argument(
        "--procs", type=count(1, MAX_PROCS), default=1, help="worker processes (default 1)"
    )
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON ('-': stdout)")
    parser.add_argument(
        "--max-p99", type=duration, metavar="D", help="fail when lateness p99 is above, e.g. 250ms"
    )
    parser.add_argument(
        "--drain",
        type=duration,
        default=5.0,
        metavar="D",
        help="wait at most this long at the end for clients to catch up (default 5s)",
    )
    add_bounds(parser, snapshot=False)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from clients.load import LoadOptions, main_load

    options = LoadOptions(
        url=url(args),
        clients=args.clients,
        transport=args.transport,
        ramp=args.ramp,
        duration=args.duration,
        churn=args.churn,
        faults=args.faults,
        procs=min(args.procs, args.clients),
        max_p99=args.max_p99,
        drain=args.drain,
        max_event_bytes=args.max_event_bytes,
    )
    return main_load(options, args.json)
