"""The ``livesim`` command: import, inspect, validate and serve archives.

Every failure the user can cause ends as one line on stderr naming the place, and exit status 1
(2 for usage errors, as argparse does) — never a traceback.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from simulator.cli.clients import add_client_commands

from ..core import archive, stats
from ..core.importers import FORMATS, check_bytes
from ..core.model import ArchiveError, Feed, shown
from ..core.timeline import parse_duration, parse_speed
from ..sources import ID_PATTERN, ID_RULE, load_feed, read_archive
from .push import add_push_command
from .record import add_record_command
from .script import add_script_command
from .synth import add_synth_command

EXAMPLES = """\
examples:
  livesim serve                                   bundled archive, looping, speed 60, on :8080
  livesim serve --speed 1 blog.jsonl              original timing
  livesim serve --config config/livesim.toml --speed 600
  livesim import export.txt -o blog.jsonl         any supported format -> canonical JSON Lines
  livesim inspect blog.jsonl --json
  livesim validate blog.jsonl
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.handler(args)
        return result
    except ArchiveError as exc:
        print(f"livesim: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="livesim",
        description="Replay archived live-blog posts over WebSocket and Server-Sent Events.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    parser.set_defaults(handler=lambda _: _serve(parser.parse_args(["serve"])))

    imp = commands.add_parser("import", help="convert an archive to canonical JSON Lines")
    imp.add_argument(
        "input", help="archive file: ScribbleLive text, timestamped text, RSS/Atom, JSON"
    )
    imp.add_argument("-o", "--output", help="write here instead of standard output")
    imp.add_argument(
        "--id",
        type=_feed_id,
        metavar="NAME",
        help="the feed's id, and so its stream's (default: from the file's name or header)",
    )
    _add_import_options(imp)
    imp.set_defaults(handler=_import)

    ins = commands.add_parser("inspect", help="posts, time span, inferred times, gaps, rate")
    ins.add_argument("archive")
    ins.add_argument("--json", action="store_true", help="print one JSON object")
    _add_import_options(ins)
    ins.set_defaults(handler=_inspect)

    val = commands.add_parser("validate", help="check an archive; list every problem as FILE:LINE")
    val.add_argument("archive")
    _add_import_options(val)
    val.set_defaults(handler=_validate)

    add_serve_command(commands, _serve)
    add_script_command(commands)
    add_synth_command(commands)
    add_client_commands(commands)
    add_record_command(commands)
    add_push_command(commands)
    return parser


def _add_import_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=sorted(FORMATS), help="skip auto-detection")
    parser.add_argument(
        "--timezone", metavar="TZ", help="zone of times that carry none (IANA name; default UTC)"
    )
    parser.add_argument(
        "--date", metavar="YYYY-MM-DD", help="date of entries that give only a time"
    )


def _date(text: str | None, source: str) -> date | None:
    """``--date``, checked when the file it applies to is known, so the error can name it."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ArchiveError(
            f"--date {text!r} is not a date (expected YYYY-MM-DD)", source=source
        ) from None


def _load(args: argparse.Namespace, path: str) -> Feed:
    day = _date(args.date, path)
    return load_feed(path, format=args.format, timezone=args.timezone, day=day)


def _import(args: argparse.Namespace) -> int:
    feed = _load(args, args.input)
    if args.id is not None:
        feed = replace(feed, id=args.id)
    if args.output:
        try:
            with Path(args.output).open("wb") as file:
                file.writelines(archive.lines(feed))
        except OSError as exc:
            raise ArchiveError(exc.strerror or "cannot write", source=args.output) from None
        print(f"{args.output}: {len(feed.posts)} posts", file=sys.stderr)
    else:
        sys.stdout.buffer.writelines(archive.lines(feed))
    return 0


def _inspect(args: argparse.Namespace) -> int:
    summary = stats.summarize(_load(args, args.archive))
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print(stats.render(summary))
    return 0


def _validate(args: argparse.Namespace) -> int:
    path = Path(args.archive)
    if args.format in (None, "json") and path.suffix in (".jsonl", ".json", ".ndjson"):
        checked, found = check_bytes(read_archive(path), str(path))
        for problem in found:
            print(problem, file=sys.stderr)
        if checked is None:
            return 1
        feed = checked
    else:
        feed = _load(args, args.archive)
    print(f"{path}: valid, {len(feed.posts)} posts")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from .serve import serve

    return serve(args)


def add_serve_command(commands: Any, handler: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve archives as live streams over SSE, WebSocket and REST (the default command)",
        description="Serve archives as live streams. With no ARCHIVE and no --config, serves the "
        "bundled Al Jazeera Iraq live blog as a looping stream at speed 60 with gaps clamped "
        "to 2 minutes, so a demo shows a post every few seconds. Flags win over LIVESIM_* "
        "environment variables (LIVESIM_HOST, LIVESIM_PORT, LIVESIM_TOKEN, LIVESIM_LOG_FORMAT, "
        "LIVESIM_STATE_FILE), which win over the config file; --speed, --max-gap and --no-loop "
        "apply to every stream.",
    )
    serve.add_argument("archives", nargs="*", metavar="ARCHIVE", help="archive files to stream")
    serve.add_argument("--config", metavar="FILE", help="TOML settings (see config/livesim.toml)")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument(
        "--port", type=_port, help="port to bind, 0-65535 (default 8080; 0 picks a free one)"
    )
    serve.add_argument(
        "--speed",
        type=_checked(parse_speed),
        help="replay speed: 1 = original timing, 60, up to 1000000, or max",
    )
    serve.add_argument(
        "--max-gap",
        type=_checked(_optional_duration),
        metavar="DURATION",
        help="clamp quiet stretches to this much archive time (default 2m; none: no clamping)",
    )
    serve.add_argument("--no-loop", action="store_true", help="stop at the end instead of looping")
    serve.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="a line of text (default) or JSON per log record",
    )
    serve.add_argument(
        "--event-loop",
        choices=("asyncio", "uvloop"),
        help="asyncio's event loop (the default) or uvloop's",
    )
    serve.add_argument(
        "--state-file",
        metavar="FILE",
        help="save live posts and API-made streams here, and restore them at start (default: off)",
    )
    serve.set_defaults(handler=handler)


def _checked(parse: Callable[[str, str], object]) -> Callable[[str], str]:
    """An argparse type that checks the text and keeps it: the settings parse it again, as they
    would the same text from the config file (a parsed ``max`` speed is ``inf``, which they
    rightly refuse as a number)."""

    def convert(text: str) -> str:
        try:
            parse(text, "value")
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix("value: ")) from None
        return text

    return convert


def _optional_duration(text: str, where: str) -> object:
    if text.strip().lower() in ("none", "off"):
        return None
    return parse_duration(text, where)


def _port(text: str) -> int:
    try:
        port = int(text) if len(text) < 10 else -1
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(
            f"expected a port number from 0 to 65535, got {shown(text)}"
        )
    return port


def _feed_id(text: str) -> str:
    if not re.match(ID_PATTERN, text):
        raise argparse.ArgumentTypeError(f"expected {ID_RULE}, got {shown(text)}")
    return text
