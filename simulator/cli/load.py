"""``livesim load URL``: many clients on a stream or feed, every event id judged; the exit
status is the verdict (``clients.load`` runs it)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from clients.target import ENV_URL
from clients.verdicts import (
    COULD_NOT_RUN,
    EXIT_CODES_HELP,
    Threshold,
    ThresholdError,
    parse_threshold,
    read_thresholds,
)

from .options import add_bounds, count, duration, positive_duration, rate

MAX_CLIENTS = 100_000
MAX_PROCS = 64


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "load",
        help="many clients on a stream or feed; judge every event id; k6 exit statuses",
        description="Open --clients connections to a stream (/streams/ID: one shared replay) or "
        "a feed (/feeds/ID?speed=…: a private replay per connection), keep them for --duration, "
        "drop and resume some (--churn), and judge what each received from the event ids: "
        "missing, duplicate, out of order (exactly, across reconnects), and lateness "
        "(receive - due_at). Exit status 1 when any event was missing, duplicated or out of "
        "order (the service was wrong: exit 1); fewer clients opened than --clients, a "
        "connection refused or failed (a frame over --max-event-bytes breaks its connection), "
        "lateness over --max-p99 or any --threshold (exit 99); the run could not happen: bad "
        "flags, unreachable, no such stream, nothing opened, the stream's cursor unreadable "
        "at the end (exit 2). Exit 0: pass.",
        epilog=f"{EXIT_CODES_HELP} Thresholds: METRIC OP VALUE with OP one of < <= > >= ==; "
        "METRIC: p50, p95, p99, p99.9, max (lateness; VALUE in ms or s), connect_failures, "
        "refused, reconnects, resets, connection_resets, missing, duplicate, out_of_order, "
        "foreign, malformed (a count, or N%% of connection attempts / expected events). "
        "Without a connect_failures threshold, any connect failure fails the run.",
    )
    parser.add_argument(
        "urls",
        nargs="*",
        metavar="URL",
        help="a stream or feed, e.g. http://127.0.0.1:8080/streams/ID (default: --url, else "
        f"${ENV_URL}); several URLs of the same stream on nodes sharing it (--redis): the "
        "clients are spread over them in turn",
    )
    parser.add_argument("--url", dest="url_option", metavar="URL", help="one URL, as an option")
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
        "--warmup",
        type=duration,
        default=0.0,
        metavar="D",
        help="lateness of events due in the run's first D is not counted (a ramp's connection "
        "storm); they are judged all the same (default 0)",
    )
    parser.add_argument(
        "--churn",
        type=rate,
        default=0.0,
        metavar="N/s",
        help="connections dropped and resumed per second (default 0)",
    )
    parser.add_argument(
        "--switch-nodes",
        action="store_true",
        help="each reconnect (churn, faults, retries) goes to the next URL, resuming from the "
        "client's cursor",
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
    parser.add_argument(
        "--threshold",
        type=_threshold,
        action="append",
        default=[],
        metavar="T",
        help="fail (exit 99) unless T holds, e.g. 'p95<200ms', 'connect_failures<1%%', "
        "'resets<10' (repeatable)",
    )
    parser.add_argument(
        "--thresholds",
        metavar="FILE.toml",
        help="thresholds from a TOML file: thresholds = ['p95<200ms', …] or a [thresholds] "
        "table of metric = '<200ms'",
    )
    add_bounds(parser, snapshot=False)
    parser.set_defaults(handler=run)


def _threshold(text: str) -> Threshold:
    try:
        return parse_threshold(text)
    except ThresholdError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    from clients.load import LoadOptions, main_load

    urls: list[str] = args.urls
    if args.url_option:
        if urls and urls != [args.url_option]:
            print(
                "livesim: give the URLs as arguments or one with --url, not both", file=sys.stderr
            )
            return COULD_NOT_RUN
        urls = [args.url_option]
    if args.switch_nodes and len(urls) < 2:
        print("livesim: --switch-nodes needs two URLs or more (one per node)", file=sys.stderr)
        return COULD_NOT_RUN
    thresholds = list(args.threshold)
    if args.thresholds:
        try:
            thresholds += read_thresholds(args.thresholds)
        except ThresholdError as exc:
            print(f"livesim: --thresholds {exc}", file=sys.stderr)
            return COULD_NOT_RUN

    if args.warmup and args.warmup >= args.duration:
        print(
            f"livesim: --warmup: {args.warmup:g}s leaves no lateness to count in --duration "
            f"{args.duration:g}s; expected a shorter warm-up",
            file=sys.stderr,
        )
        return COULD_NOT_RUN
    options = LoadOptions(
        url=urls[0] if urls else None,
        nodes=tuple(urls[1:]),
        switch_nodes=args.switch_nodes,
        clients=args.clients,
        transport=args.transport,
        ramp=args.ramp,
        duration=args.duration,
        warmup=args.warmup,
        churn=args.churn,
        faults=args.faults,
        procs=min(args.procs, args.clients),
        max_p99=args.max_p99,
        drain=args.drain,
        max_event_bytes=args.max_event_bytes,
        thresholds=tuple(thresholds),
    )
    return main_load(options, args.json)
