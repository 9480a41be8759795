"""``livesim tail URL``: follow a shared stream, one line per event, resuming across faults
(``clients.tail.Follower`` is the loop)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from .options import add_bounds, add_url, count, url


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "tail",
        help="follow a stream, one line per event, resuming across faults",
        description="Follow a shared stream: load its snapshot, subscribe from its cursor, print "
        "each event; reconnect and resume from the last id after any fault, reload on "
        "stream.reset. Ctrl+C stops it (exit status 130).",
    )
    add_url(parser, "the stream, e.g. http://127.0.0.1:8080/streams/aljazeera-iraq-2014-06")
    parser.add_argument("--ws", action="store_true", help="WebSocket instead of SSE")
    parser.add_argument("--json", action="store_true", help="each envelope as one JSON line")
    parser.add_argument("--count", type=count(1, 10**9), help="stop after this many events")
    add_bounds(parser, snapshot=True)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from clients.tail import run_tail

    return asyncio.run(
        run_tail(
            url(args),
            ws=args.ws,
            json=args.json,
            count=args.count,
            max_event_bytes=args.max_event_bytes,
            max_snapshot_bytes=args.max_snapshot_bytes,
        )
    )
