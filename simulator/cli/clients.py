"""``livesim tail``, ``livesim load``, ``livesim alert``: the clients as subcommands.

``add_client_commands(subparsers)`` adds them to the ``livesim`` parser; each sets ``handler``
like the server's commands. Every one takes a full URL (``http://127.0.0.1:8080/streams/ID``) or
``--url``, else ``LIVESIM_URL``. A problem the user can fix (a bad URL, an unreachable server, a
bad rules file) ends as one line ``livesim: …`` on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import re
import sys
from collections.abc import Callable
from typing import Any

from clients.target import ENV_URL, ClientError
from simulator.core.model import shown
from simulator.core.timeline import parse_duration

MAX_CLIENTS = 100_000
MAX_PROCS = 64
MAX_RATE = 1_000_000.0
_RATE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*(?:/\s*s)?\s*$", re.IGNORECASE)
_SIZE = re.compile(r"^\s*([0-9]{1,12})\s*(b|kib|mib|gib)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "kib": 1024, "mib": 1024**2, "gib": 1024**3}
KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
EVENT_BYTES = (1 * KiB, 1 * GiB)
"""Range of ``--max-event-bytes`` (default 1 MiB)."""
SNAPSHOT_BYTES = (1 * KiB, 16 * GiB)
"""Range of ``--max-snapshot-bytes`` (default 64 MiB)."""


def add_client_commands(subparsers: Any) -> None:
    """Add ``tail``, ``load`` and ``alert`` to an argparse subparsers object."""
    _add_tail(subparsers)
    _add_load(subparsers)
    _add_alert(subparsers)


def _add_url(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "url",
        nargs="?",
        metavar="URL",
        help=f"{what} (default: --url, else ${ENV_URL})",
    )
    parser.add_argument("--url", dest="url_option", metavar="URL", help="the same, as an option")


def _url(args: argparse.Namespace) -> str | None:
    if args.url and args.url_option and args.url != args.url_option:
        raise ClientError("give the URL once: as an argument or with --url, not both")
    return args.url or args.url_option  # type: ignore[no-any-return]


def _guarded(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """One line and exit 1 for a ``ClientError``; 130 on Ctrl+C."""

    def handler(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except ClientError as exc:
            print(f"livesim: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130

    return handler


# Argument types ------------------------------------------------------------------------------


def _count(low: int, high: int) -> Callable[[str], int]:
    def convert(text: str) -> int:
        try:
            value = int(text) if len(text) < 12 else -1
        except ValueError:
            value = -1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"expected a whole number from {low} to {high}, got {shown(text)}"
            )
        return value

    return convert


def _rate(text: str) -> float:
    """``20/s`` or ``20``: per second, 0 ≤ rate ≤ 1e6."""
    found = _RATE.match(text)
    value = float(found[1]) if found else math.nan
    if not 0 <= value <= MAX_RATE:
        raise argparse.ArgumentTypeError(
            f"expected a rate such as 20/s (0 to 1000000), got {shown(text)}"
        )
    return value


def _size(low: int, high: int) -> Callable[[str], int]:
    """Bytes: ``1048576``, ``1MiB``, ``512KiB``, ``2GiB``, from ``low`` to ``high``."""

    def convert(text: str) -> int:
        found = _SIZE.match(text)
        value = int(found[1]) * _UNITS[(found[2] or "").lower()] if found else -1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"expected a size such as 1MiB or 65536 ({_shown_size(low)} to "
                f"{_shown_size(high)}), got {shown(text)}"
            )
        return value

    return convert


def _shown_size(value: int) -> str:
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if value % size == 0:
            return f"{value // size}{unit}"
    return str(value)


def _add_bounds(parser: argparse.ArgumentParser, snapshot: bool) -> None:
    """The flags that bound what a client holds of what the server sends."""
    parser.add_argument(
        "--max-event-bytes",
        type=_size(*EVENT_BYTES),
        default=MiB,
        metavar="SIZE",
        help="the largest SSE line, SSE event or WebSocket message taken from the server; a "
        "larger one breaks the connection (default 1MiB, 1KiB to 1GiB)",
    )
    if snapshot:
        parser.add_argument(
            "--max-snapshot-bytes",
            type=_size(*SNAPSHOT_BYTES),
            default=64 * MiB,
            metavar="SIZE",
            help="the largest snapshot (or other API answer) read, after decompression "
            "(default 64MiB, 1KiB to 16GiB)",
        )


def _duration(text: str) -> float:
    try:
        return parse_duration(text, None)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_duration(text: str) -> float:
    value = _duration(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a duration above 0, got {shown(text)}")
    return value


# tail ----------------------------------------------------------------------------------------


def _add_tail(subparsers: Any) -> None:
    tail = subparsers.add_parser(
        "tail",
        help="follow a stream, one line per event, resuming across faults",
        description="Follow a shared stream: load its snapshot, subscribe from its cursor, print "
        "each event; reconnect and resume from the last id after any fault, reload on "
        "stream.reset.",
    )
    _add_url(tail, "the stream, e.g. http://127.0.0.1:8080/streams/aljazeera-iraq-2014-06")
    tail.add_argument("--ws", action="store_true", help="WebSocket instead of SSE")
    tail.add_argument("--json", action="store_true", help="each envelope as one JSON line")
    tail.add_argument("--count", type=_count(1, 10**9), help="stop after this many events")
    _add_bounds(tail, snapshot=True)
    tail.set_defaults(handler=_guarded(_tail))


def _tail(args: argparse.Namespace) -> int:
    from clients.tail import run_tail

    return asyncio.run(
        run_tail(
            _url(args),
            ws=args.ws,
            json=args.json,
            count=args.count,
            max_event_bytes=args.max_event_bytes,
            max_snapshot_bytes=args.max_snapshot_bytes,
        )
    )


# load ----------------------------------------------------------------------------------------


def _add_load(subparsers: Any) -> None:
    load = subparsers.add_parser(
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
    _add_url(load, "a stream or feed, e.g. http://127.0.0.1:8080/streams/ID")
    load.add_argument(
        "--clients", type=_count(1, MAX_CLIENTS), default=100, help="connections (default 100)"
    )
    load.add_argument(
        "--transport",
        choices=("sse", "ws", "mix"),
        default="sse",
        help="default sse; mix alternates",
    )
    load.add_argument(
        "--ramp",
        type=_rate,
        default=500.0,
        metavar="N/s",
        help="connections opened per second (default 500/s; 0: all at once)",
    )
    load.add_argument(
        "--duration",
        type=_positive_duration,
        default=30.0,
        metavar="D",
        help="how long (default 30s)",
    )
    load.add_argument(
        "--churn",
        type=_rate,
        default=0.0,
        metavar="N/s",
        help="connections dropped and resumed per second (default 0)",
    )
    load.add_argument(
        "--faults",
        metavar="SPEC",
        help="passed to the server as ?faults=SPEC, e.g. duplicate:0.1,seed:7",
    )
    load.add_argument(
        "--procs", type=_count(1, MAX_PROCS), default=1, help="worker processes (default 1)"
    )
    load.add_argument("--json", metavar="FILE", help="write the results as JSON ('-': stdout)")
    load.add_argument(
        "--max-p99", type=_duration, metavar="D", help="fail when lateness p99 is above, e.g. 250ms"
    )
    load.add_argument(
        "--drain",
        type=_duration,
        default=5.0,
        metavar="D",
        help="wait at most this long at the end for clients to catch up (default 5s)",
    )
    _add_bounds(load, snapshot=False)
    load.set_defaults(handler=_guarded(_load))


def _load(args: argparse.Namespace) -> int:
    from clients.load import LoadOptions, main_load

    options = LoadOptions(
        url=_url(args),
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


# alert ---------------------------------------------------------------------------------------


def _add_alert(subparsers: Any) -> None:
    alert = subparsers.add_parser(
        "alert",
        help="follow a stream; fire rules (keywords, regex, source, type, numbers) once per post",
        description="Follow a shared stream and, for each post matching a rule, print a JSON "
        "line, POST it to the rule's webhook and/or run its command. A rule fires once per "
        "post (across reconnects, resets and loop laps). Webhooks never follow redirects (a "
        "3xx is a failed delivery, reported); a malformed event, or one whose id was already "
        "seen, is skipped and reported on stderr.",
    )
    _add_url(alert, "the stream, e.g. http://127.0.0.1:8080/streams/aljazeera-iraq-2014-06")
    alert.add_argument(
        "--rules", required=True, metavar="FILE", help="rules TOML (see config/alerts.toml)"
    )
    alert.add_argument("--ws", action="store_true", help="WebSocket instead of SSE")
    alert.add_argument(
        "--backfill", action="store_true", help="also judge the posts already in the first snapshot"
    )
    alert.add_argument("--count", type=_count(1, 10**9), help="stop after this many alerts")
    alert.add_argument(
        "--duration", type=_positive_duration, metavar="D", help="stop after this long"
    )
    _add_bounds(alert, snapshot=True)
    alert.set_defaults(handler=_guarded(_alert))


def _alert(args: argparse.Namespace) -> int:
    from clients.alert import load_rules, run_alert

    rules = load_rules(args.rules)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(
            run_alert(
                _url(args),
                rules,
                transport="ws" if args.ws else "sse",
                backfill=args.backfill,
                count=args.count,
                duration=args.duration,
                max_event_bytes=args.max_event_bytes,
                max_snapshot_bytes=args.max_snapshot_bytes,
            )
        )
    return 130


def main(argv: list[str] | None = None) -> int:
    """``python -m simulator.cli.clients load …``: the same commands without the server's CLI."""
    parser = argparse.ArgumentParser(prog="livesim")
    add_client_commands(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
