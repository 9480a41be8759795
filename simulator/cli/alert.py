"""``livesim alert URL --rules FILE``: fire rules once per post of a stream (``clients.alert``
matches and acts)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from .options import add_bounds, add_url, count, positive_duration, url


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "alert",
        help="follow a stream; fire rules (keywords, regex, source, type, numbers) once per post",
        description="Follow a shared stream and, for each post matching a rule, print a JSON "
        "line, POST it to the rule's webhook and/or run its command. A rule fires once per "
        "post (across reconnects, resets and loop laps). Webhooks never follow redirects (a "
        "3xx is a failed delivery, reported); a malformed event, or one whose id was already "
        "seen, is skipped and reported on stderr.",
    )
    add_url(parser, "the stream, e.g. http://127.0.0.1:8080/streams/aljazeera-iraq-2014-06")
    parser.add_argument(
        "--rules", required=True, metavar="FILE", help="rules TOML (see config/alerts.toml)"
    )
    parser.add_argument("--ws", action="store_true", help="WebSocket instead of SSE")
    parser.add_argument(
        "--backfill", action="store_true", help="also judge the posts already in the first snapshot"
    )
    parser.add_argument("--count", type=count(1, 10**9), help="stop after this many alerts")
    parser.add_argument(
        "--duration", type=positive_duration, metavar="D", help="stop after this long"
    )
    add_bounds(parser, snapshot=True)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from clients.alert import load_rules, run_alert

    rules = load_rules(args.rules)
    return asyncio.run(
        run_alert(
            url(args),
            rules,
            transport="ws" if args.ws else "sse",
            backfill=args.backfill,
            count=args.count,
            duration=args.duration,
            max_event_bytes=args.max_event_bytes,
            max_snapshot_bytes=args.max_snapshot_bytes,
        )
    )
