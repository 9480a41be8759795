"""``livesim import ARCHIVE``: any supported format to canonical JSON Lines (``import`` is a
keyword, hence the module's underscore)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..core import archive
from ..core.model import ArchiveError
from .options import add_import_options, feed_id, load_archive


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "import",
        help="convert an archive to canonical JSON Lines",
        description="Read an archive in any supported format (detected, or --format) and write "
        "it as canonical JSON Lines: a header line, then one post a line with its time, "
        "explicit or inferred. Exit status 1, with one line naming the file and line, on bad "
        "input.",
    )
    parser.add_argument(
        "input", help="archive file: ScribbleLive text, timestamped text, RSS/Atom, JSON"
    )
    parser.add_argument("-o", "--output", help="write here instead of standard output")
    parser.add_argument(
        "--id",
        type=feed_id,
        metavar="NAME",
        help="the feed's id, and so its stream's (default: from the file's name or header)",
    )
    add_import_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    feed = load_archive(args, args.input)
    if args.id is not None:
        feed = replace(feed, id=args.id)
    if not args.output:
        sys.stdout.buffer.writelines(archive.lines(feed))
        return 0
    try:
        with Path(args.output).open("wb") as file:
            file.writelines(archive.lines(feed))
    except OSError as exc:
        raise ArchiveError(exc.strerror or "cannot write", source=args.output) from None
    print(f"{args.output}: {len(feed.posts)} posts", file=sys.stderr)
    return 0
