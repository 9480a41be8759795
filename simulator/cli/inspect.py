"""``livesim inspect ARCHIVE``: what an archive holds, before serving it."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from ..core import stats
from .options import add_import_options, load_archive


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "inspect",
        help="posts, time span, inferred times, gaps, rate",
        description="Summarize an archive: its posts, time span, how many times were stated "
        "and how many inferred, the gaps between posts and the posting rate.",
    )
    parser.add_argument("archive")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_import_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    summary = stats.summarize(load_archive(args, args.archive))
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print(stats.render(summary))
    return 0
