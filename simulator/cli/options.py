"""Argument types and option groups shared by several subcommands.

An argument type turns a bad value into argparse's usage error naming the flag (exit status 2);
one that the settings parse again keeps the text, so the file and the flag go through one parser.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path

from clients.target import ENV_URL, ClientError

from ..core.importers import FORMATS
from ..core.model import ArchiveError, Feed, shown
from ..core.timeline import parse_duration, parse_speed
from ..sources import ID_PATTERN, ID_RULE, load_feed

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
MAX_RATE = 1_000_000.0
_RATE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*(?:/\s*s)?\s*$", re.IGNORECASE)
_SIZE = re.compile(r"^\s*([0-9]{1,12})\s*(b|kib|mib|gib)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "kib": 1024, "mib": 1024**2, "gib": 1024**3}
EVENT_BYTES = (1 * KiB, 1 * GiB)
"""Range of ``--max-event-bytes`` (default 1 MiB)."""
SNAPSHOT_BYTES = (1 * KiB, 16 * GiB)
"""Range of ``--max-snapshot-bytes`` (default 64 MiB)."""


# Archives: import, inspect, validate ---------------------------------------------------------


def add_import_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=sorted(FORMATS), help="skip auto-detection")
    parser.add_argument(
        "--timezone", metavar="TZ", help="zone of times that carry none (IANA name; default UTC)"
    )
    parser.add_argument(
        "--date", metavar="YYYY-MM-DD", help="date of entries that give only a time"
    )


def load_archive(args: argparse.Namespace, path: str) -> Feed:
    """The feed at ``path`` read with the import options (``add_import_options``)."""
    day = _date(args.date, path)
    return load_feed(path, format=args.format, timezone=args.timezone, day=day)


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


def feed_id(text: str) -> str:
    if not re.match(ID_PATTERN, text):
        raise argparse.ArgumentTypeError(f"expected {ID_RULE}, got {shown(text)}")
    return text


def read_small(path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes of a small file given by a flag (a secret, a map), a pipe from
    ``<(…)`` included: ``OSError`` as raised, ``ValueError`` naming the size past ``limit``."""
    with path.open("rb") as file:
        data = file.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"over {limit} bytes")
    return data


# Numbers, durations, sizes -------------------------------------------------------------------


def checked(parse: Callable[[str, str], object]) -> Callable[[str], str]:
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


def optional_duration(text: str, where: str) -> object:
    if text.strip().lower() in ("none", "off"):
        return None
    return parse_duration(text, where)


def port(text: str) -> int:
    try:
        value = int(text) if len(text) < 10 else -1
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(
            f"expected a port number from 0 to 65535, got {shown(text)}"
        )
    return value


def count(low: int, high: int, noun: str = "a whole number") -> Callable[[str], int]:
    """An argparse type: an integer from ``low`` to ``high``, refused as "expected ``noun``
    from …" (push and record say "an integer")."""

    def convert(text: str) -> int:
        try:
            value = int(text) if len(text) <= 12 else low - 1
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"expected {noun} from {low} to {high}, got {shown(text)}"
            )
        return value

    return convert


def rate(text: str) -> float:
    """``20/s`` or ``20``: per second, 0 ≤ rate ≤ 1e6."""
    found = _RATE.match(text)
    value = float(found[1]) if found else math.nan
    if not 0 <= value <= MAX_RATE:
        raise argparse.ArgumentTypeError(
            f"expected a rate such as 20/s (0 to 1000000), got {shown(text)}"
        )
    return value


def size(low: int, high: int) -> Callable[[str], int]:
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
    for unit, unit_size in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if value % unit_size == 0:
            return f"{value // unit_size}{unit}"
    return str(value)


def duration(text: str) -> float:
    try:
        return parse_duration(text, None)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def speed(text: str) -> float:
    """A speed as the settings take it (``60``, ``max``), parsed."""
    try:
        return parse_speed(text, None)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def bounded_duration(
    low: float, high: float, expected: str, *, above: bool = False
) -> Callable[[str], float]:
    """A duration from ``low`` (excluded when ``above``) to ``high``; ``expected`` words the
    range in the error."""

    def convert(text: str) -> float:
        value = duration(text)
        if not (low < value if above else low <= value) or value > high:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {shown(text)}")
        return value

    return convert


def positive_duration(text: str) -> float:
    value = duration(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a duration above 0, got {shown(text)}")
    return value


# Clients: tail, load, alert ------------------------------------------------------------------


def add_url(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "url",
        nargs="?",
        metavar="URL",
        help=f"{what} (default: --url, else ${ENV_URL})",
    )
    parser.add_argument("--url", dest="url_option", metavar="URL", help="the same, as an option")


def url(args: argparse.Namespace) -> str | None:
    if args.url and args.url_option and args.url != args.url_option:
        raise ClientError("give the URL once: as an argument or with --url, not both")
    return args.url or args.url_option  # type: ignore[no-any-return]


def add_bounds(parser: argparse.ArgumentParser, snapshot: bool) -> None:
    """The flags that bound what a client holds of what the server sends."""
    parser.add_argument(
        "--max-event-bytes",
        type=size(*EVENT_BYTES),
        default=MiB,
        metavar="SIZE",
        help="the largest SSE line, SSE event or WebSocket message taken from the server; a "
        "larger one breaks the connection (default 1MiB, 1KiB to 1GiB)",
    )
    if snapshot:
        parser.add_argument(
            "--max-snapshot-bytes",
            type=size(*SNAPSHOT_BYTES),
            default=64 * MiB,
            metavar="SIZE",
            help="the largest snapshot (or other API answer) read, after decompression "
            "(default 64MiB, 1KiB to 16GiB)",
        )
