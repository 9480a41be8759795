"""``livesim validate ARCHIVE``: exit 0, or every problem as FILE:LINE: message and exit 1.

A JSON Lines archive is checked line by line so every problem is listed, not only the first;
other formats are imported, and the first problem stops them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..core.importers import check_bytes
from ..sources import read_archive
from .options import add_import_options, load_archive

JSON_SUFFIXES = (".jsonl", ".json", ".ndjson")


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "validate",
        help="check an archive; list every problem as FILE:LINE",
        description="Check an archive as serve would read it. A JSON Lines archive gets every "
        "problem listed as FILE:LINE: message; other formats stop at the first. Exit status 0 "
        "when valid, 1 otherwise.",
    )
    parser.add_argument("archive")
    add_import_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    path = Path(args.archive)
    if args.format in (None, "json") and path.suffix in JSON_SUFFIXES:
        feed, found = check_bytes(read_archive(path), str(path))
        for problem in found:
            print(problem, file=sys.stderr)
        if feed is None:
            return 1
    else:
        feed = load_archive(args, args.archive)
    print(f"{path}: valid, {len(feed.posts)} posts")
    return 0
