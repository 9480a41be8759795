"""``livesim synth``: write a synthetic archive for load tests (the generator is ``synth``).

The file is written in batches through ``archive.dumps``, the canonical writer, so a ten-million
post archive never has to sit in memory, and the bytes are exactly ``archive.dumps`` of the whole
``synth.synthesize`` feed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO

from ..core import archive, synth
from ..core.model import ArchiveError, Feed, Post
from ..sources import MAX_ARCHIVE_BYTES, bundled_feed

BATCH = 10_000
"""Posts encoded per write."""

EXAMPLES = """\
examples:
  livesim synth --posts 100000 --seed 1 -o load.jsonl
  livesim serve load.jsonl --speed max --no-loop
"""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "synth",
        help="write a synthetic archive for load tests (the bundled archive's cadence and words)",
        description="Write a synthetic archive of --posts posts in the canonical JSON Lines "
        "format. Its gaps follow the bundled archive's, with bursts of 3-10 posts seconds "
        "apart; its text is recombined from the bundled archive's posts. The same --posts and "
        "--seed always write the same bytes.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--posts",
        required=True,
        metavar="N",
        help=f"how many posts: {synth.MIN_POSTS} to {synth.MAX_POSTS:_}".replace("_", " "),
    )
    parser.add_argument(
        "--seed", default="0", metavar="S", help=f"0 to {synth.MAX_SEED} (default 0)"
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write here, not to stdout")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    posts = _whole(args.posts, "--posts", synth.MIN_POSTS, synth.MAX_POSTS)
    seed = _whole(args.seed, "--seed", 0, synth.MAX_SEED)
    source = bundled_feed()
    chunks = encode(synth.header(source, posts, seed), synth.generate(source, posts, seed))
    if not args.output:
        _write(sys.stdout.buffer, chunks, "<stdout>")
        return 0
    try:
        with Path(args.output).open("wb") as file:
            written = _write(file, chunks, args.output)
    except OSError as exc:
        raise ArchiveError(exc.strerror or "cannot write", source=args.output) from None
    note = ""
    if written > MAX_ARCHIVE_BYTES:
        limit = MAX_ARCHIVE_BYTES // 2**20
        note = f" (more than the {limit} MiB that livesim import and serve read)"
    print(f"{args.output}: {posts} posts, seed {seed}, {written:,} bytes{note}", file=sys.stderr)
    return 0


def encode(head: Feed, posts: Iterable[Post]) -> Iterator[bytes]:
    """``archive.dumps(head.with_posts(posts))``, in pieces of ``BATCH`` posts."""
    first = True
    iterator = iter(posts)
    while batch := tuple(islice(iterator, BATCH)):
        data = archive.dumps(head.with_posts(batch))
        yield data if first else data.split(b"\n", 1)[1]
        first = False


def _write(file: BinaryIO, chunks: Iterator[bytes], where: str) -> int:
    written = 0
    while True:
        try:
            chunk = next(chunks, None)
        except ValueError as exc:  # the generator's: a cadence that runs past the year 9999
            raise ArchiveError(str(exc), source=where) from None
        if chunk is None:
            return written
        try:
            file.write(chunk)
        except OSError as exc:
            raise ArchiveError(exc.strerror or "cannot write", source=where) from None
        written += len(chunk)


def _whole(text: str, flag: str, low: int, high: int) -> int:
    """A decimal whole number in [low, high], or one line naming the flag: no 1e6, no 0x10."""
    cleaned = text.strip().replace("_", "")
    if (
        cleaned.isascii()
        and cleaned.isdigit()
        and len(cleaned) <= 20
        and low <= int(cleaned) <= high
    ):
        return int(cleaned)
    shown = repr(text) if len(text) <= 40 else repr(text[:37] + "...")
    raise ArchiveError(f"{flag}: expected a whole number from {low} to {high}, got {shown}")
