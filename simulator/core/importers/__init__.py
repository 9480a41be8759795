"""Turn archive bytes of any supported format into a timed ``Feed``.

Each format is one module with ``parse(text, options) -> Feed`` (posts in document order, times
only where the input states them) and ``sniff(text) -> bool``. This package decodes, detects,
parses, then runs timing inference and id assignment, so every importer gets the same treatment.

Memory: the canonical format is read from the file's bytes, the other formats from its text, and
whichever is not needed is let go; posts are then given ids and times in place, in one list.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, tzinfo
from typing import Any, Protocol

from .. import archive, timing
from ..model import (
    MAX_DESCRIPTION_BYTES,
    MAX_TEXT_BYTES,
    ArchiveError,
    Feed,
    Post,
    assign_ids,
    oversize,
    slug,
)
from . import rss, scribblelive, timestamped


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """What the input may not say itself: where it came from, its zone, the date of bare times."""

    source: str = "<input>"
    timezone: tzinfo = field(default=UTC)
    timezone_name: str = "UTC"
    date: date | None = None
    feed_id: str | None = None
    """The feed's id for formats that carry none (the file's name, usually)."""

    def feed(
        self,
        title: str,
        posts: Iterable[Post],
        description: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Feed:
        """The feed an importer read, in this import's timezone (ids and times come later)."""
        for name, text, limit in (
            ("title", title, MAX_TEXT_BYTES),
            ("description", description or "", MAX_DESCRIPTION_BYTES),
        ):
            if problem := oversize(text, limit):
                raise ArchiveError(f"feed {name}: {problem}")
        return Feed(
            id=slug(title),
            title=title,
            description=description,
            timezone=self.timezone_name,
            posts=tuple(posts),
            extra=extra or {},
        )


class Importer(Protocol):
    def __call__(self, text: str, options: ImportOptions) -> Feed: ...


def _canonical(text: str, options: ImportOptions) -> Feed:
    return archive.loads(text, options.source)


def _sniff_json(text: str) -> bool:
    first = _CONTENT.search(text)
    return first is not None and first[0] in ("{", "[")


_CONTENT = re.compile(r"\S")
"""The first character that is not white space (found without copying the text, as strip does)."""
_BYTE_CONTENT = re.compile(rb"\S")


# Order matters for detection: the first whose sniff matches wins.
FORMATS: dict[str, tuple[Callable[[str], bool], Importer]] = {
    "json": (_sniff_json, _canonical),
    "rss": (rss.sniff, rss.parse),
    "scribblelive": (scribblelive.sniff, scribblelive.parse),
    "timestamped": (timestamped.sniff, timestamped.parse),
}


def decode(data: bytes, source: str) -> str:
    """UTF-8 text, or an error that says where the bytes stop being text."""
    if _BYTE_CONTENT.search(data) is None:
        raise ArchiveError("empty file", source=source)
    if b"\x00" in data[:8192]:
        raise ArchiveError("binary file, not a text archive", source=source)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ArchiveError(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            source=source,
            line=line,
        ) from None


def detect(text: str) -> str:
    for name, (sniff, _) in FORMATS.items():
        if sniff(text):
            return name
    return "scribblelive"


def import_text(text: str, options: ImportOptions, format: str | None = None) -> Feed:
    name = format or detect(text)
    if name not in FORMATS:
        raise ArchiveError(f"unknown format {name!r} (choose from {', '.join(FORMATS)})")
    try:
        feed = FORMATS[name][1](text, options)
    except ArchiveError as exc:
        raise exc if exc.source else exc.at(options.source) from None
    posts = list(feed.posts)
    feed = feed.with_posts(())
    return _finish(feed, posts, name, options)


def import_bytes(data: bytes, options: ImportOptions, format: str | None = None) -> Feed:
    """Import a file's bytes. Pass them straight in (not from a variable kept meanwhile): the
    canonical format is read from them, other formats from their text, and the bytes let go."""
    if format == "json" or (format is None and _looks_like_json(data)):
        decode(data, options.source)  # only to check it is text: the bytes are read
        feed = archive.loads(data, options.source)
        del data
        posts = list(feed.posts)
        feed = feed.with_posts(())
        return _finish(feed, posts, "json", options)
    text = decode(data, options.source)
    del data
    return import_text(text, options, format)


def _looks_like_json(data: bytes) -> bool:
    """``_sniff_json`` on the bytes (text that starts with a Unicode space is decoded first,
    and then sniffed as text)."""
    first = _BYTE_CONTENT.search(data, 3 if data.startswith(codecs.BOM_UTF8) else 0)
    return first is not None and first[0] in (b"{", b"[")


def check_bytes(data: bytes, source: str) -> tuple[Feed | None, list[ArchiveError]]:
    """``livesim validate`` of a canonical archive: every problem, read as ``import`` reads it."""
    decode(data, source)
    return archive.check(data, source)


def _finish(feed: Feed, posts: list[Post], name: str, options: ImportOptions) -> Feed:
    """Ids and times for the posts of ``feed`` (which holds none itself, so each post replaced
    in ``posts`` is freed at once)."""
    if not posts:
        raise ArchiveError(f"no posts found (read as {name})", source=options.source)
    assign_ids(posts)
    if options.feed_id and name != "json":
        feed = replace(feed, id=options.feed_id)
    try:
        timing.place(posts, options.date, options.timezone)
    except OverflowError:
        raise ArchiveError(
            "inferred times fall outside the calendar", source=options.source
        ) from None
    return feed.with_posts(posts)
