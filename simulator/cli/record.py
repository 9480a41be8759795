"""``livesim record SOURCE -o ARCHIVE``: keep a live blog's event stream as an archive.

``simulator.cli`` wires the command with ``add_parser(commands)``. The work is in
``clients.record``; this module reads the command line and reports.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from clients.target import ClientError
from simulator.core.model import ArchiveError, shown

from .options import bounded_duration, count, feed_id, read_small

MAX_DURATION = 366 * 86400.0
"""A year: longer is a typo, and a timer that far off overflows nothing but helps no one."""
MAX_EVENT_BYTES = (1024, 1 << 30)
MAX_MAP_BYTES = 64 * 1024


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "record",
        help="record a live blog (an SSE stream, an RSS/Atom feed, a platform's polling API) as "
        "an archive, with edits",
        description="Follow an SSE event stream (livesim's own: /streams/ID/events), or poll an "
        "RSS/Atom feed or a live-blog platform's API (ScribbleLive, WordPress Liveblog, Guardian "
        "blocks, Liveblog client_blogs: livesim's /compat/... or the real one), and append "
        "what it sees to ARCHIVE: each post at the time it appeared, "
        "then its edits, deletions and pins. Resumes with Last-Event-ID after a disconnect "
        "and never keeps a duplicate; running it again on the same ARCHIVE carries on where "
        "it stopped. Stops at the stream's end, --duration, --until, Ctrl+C or SIGTERM, "
        "with everything seen on disk.",
    )
    parser.add_argument(
        "source",
        metavar="SOURCE",
        help="URL of an SSE stream, a WebSocket, an RSS/Atom feed or a platform's polling API",
    )
    parser.add_argument("-o", "--output", required=True, metavar="ARCHIVE", help="JSON Lines")
    parser.add_argument(
        "--duration",
        type=bounded_duration(0, MAX_DURATION, "more than 0 and at most a year", above=True),
        metavar="DURATION",
        help="stop after this long (90s, 2h)",
    )
    parser.add_argument(
        "--until", type=_until, metavar="TIME", help="stop at this ISO-8601 time (with a zone)"
    )
    parser.add_argument(
        "--id",
        type=feed_id,
        metavar="NAME",
        help="the archive's feed id (default: from URL)",
    )
    parser.add_argument("--title", help="the archive's title (default: 'Recorded from URL')")
    parser.add_argument(
        "--max-event-bytes",
        type=count(*MAX_EVENT_BYTES, "an integer"),
        default=1 << 20,
        metavar="N",
        help="the largest event taken, in bytes (default 1 MiB)",
    )
    parser.add_argument(
        "--type",
        choices=("auto", "sse", "ws", "feed"),
        default="auto",
        help="an SSE stream, a WebSocket or an RSS/Atom feed (default: ws(s):// or a path "
        "ending /ws is WebSocket, /events SSE, else the answer's Content-Type says)",
    )
    parser.add_argument(
        "--source",
        dest="platform",
        choices=("scribblelive", "wp-liveblog", "guardian", "liveblog"),
        help="poll this platform's API (default: from the URL: .../scribblelive/event/ID, "
        ".../entries, show-blocks= or /compat/guardian/ID, .../client_blogs/ID/posts)",
    )
    parser.add_argument(
        "--poll",
        type=bounded_duration(0.1, 86400, "100ms to 24h"),
        default=30.0,
        metavar="DURATION",
        help="how often to fetch a feed (with conditional GET) or a platform's API "
        "(default 30s, at least 100ms)",
    )
    parser.add_argument(
        "--map",
        metavar="JSON",
        help="JSON paths of a foreign stream's id, type, post, headline, body, author, time "
        "(and a types table), inline or @FILE (README: Record a live blog)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from clients.record import Options, record, summary

    url = urlsplit(args.source)
    if url.scheme not in ("http", "https", "ws", "wss") or not url.hostname:
        print(
            f"livesim: SOURCE: expected an http(s) or ws(s) URL, got {shown(args.source)}",
            file=sys.stderr,
        )
        return 2
    if args.platform is not None and (args.type != "auto" or args.map is not None):
        print("livesim: --source: a platform's API takes neither --type nor --map", file=sys.stderr)
        return 2
    if args.platform is not None:
        from clients.record.platforms import Shape, platform_for

        try:
            platform_for(args.source, args.platform)
        except Shape as exc:
            print(f"livesim: --source: {exc}", file=sys.stderr)
            return 2
    try:
        fields = _map(args.map) if args.map is not None else None
    except ValueError as exc:
        print(f"livesim: {exc}", file=sys.stderr)
        return 2
    options = Options(
        source=args.source,
        output=Path(args.output),
        duration=args.duration,
        until=args.until,
        feed_id=args.id,
        title=args.title,
        max_event_bytes=args.max_event_bytes,
        progress=sys.stderr.isatty() and not args.json,
        kind=args.platform or args.type,
        poll=args.poll,
        map=fields,
    )
    try:
        outcome = asyncio.run(record(options))
    except (ClientError, ArchiveError) as exc:
        print(f"livesim: {exc}", file=sys.stderr)
        return 1
    if args.json:
        report = {
            "archive": str(options.output),
            "stopped": outcome.reason,
            "resumed_from": outcome.resumed_from or None,
            "recovered_bytes": outcome.recovered,
            **vars(outcome.counts),
        }
        sys.stdout.buffer.write(orjson.dumps(report) + b"\n")
    else:
        resumed = f", resumed after {outcome.resumed_from}" if outcome.resumed_from else ""
        print(f"{options.output}: {summary(outcome.counts)}; stopped: {outcome.reason}{resumed}")
    return 0


def _map(text: str) -> Any:
    from clients.record.mapping import MapError, parse_map

    if text.startswith("@"):
        path = Path(text[1:])
        try:
            data = read_small(path, MAX_MAP_BYTES)
        except OSError as exc:
            raise MapError(f"--map: {path}: {exc.strerror or 'cannot read'}") from None
        except ValueError as exc:
            raise MapError(f"--map: {path}: {exc}") from None
        text = data.decode("utf-8", "replace")
    return parse_map(text)


def _until(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO-8601 time like 2026-12-06T18:00:00Z, got {shown(text)}"
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a zone (Z or +01:00): {shown(text)}")
    return moment.astimezone(UTC)
