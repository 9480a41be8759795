"""Plain-text live blogs where each entry starts with a clock time: ``2110 GMT: Troops have ...``.

Such archives state only times of day, so the date comes from date lines (``Monday, 9 June 2014``)
or from ``--date``, and crossing midnight has to be read from the times running the wrong way.
Whether the blog is newest- or oldest-first decides which way is wrong, so that is detected first.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from pathlib import PurePath
from typing import TYPE_CHECKING, TypeVar

from ..model import MAX_LINE_CHARS, ArchiveError, Feed, Post, TimeSource, check_post_size
from .credits import split_credit
from .lines import check_line

if TYPE_CHECKING:
    from . import ImportOptions

OUT_OF_ORDER_TOLERANCE = 3600
"""Seconds a time may run the wrong way and still be the same day: a late post, not midnight."""

HEADLINE_MAX = 90

_T = TypeVar("_T")

_ZONES: dict[str, tzinfo] = {
    "gmt": UTC,
    "utc": UTC,
    "bst": timezone(timedelta(hours=1), "BST"),
    "cet": timezone(timedelta(hours=1), "CET"),
    "cest": timezone(timedelta(hours=2), "CEST"),
    "eet": timezone(timedelta(hours=2), "EET"),
    "eest": timezone(timedelta(hours=3), "EEST"),
    "msk": timezone(timedelta(hours=3), "MSK"),
    "est": timezone(timedelta(hours=-5), "EST"),
    "edt": timezone(timedelta(hours=-4), "EDT"),
    "pst": timezone(timedelta(hours=-8), "PST"),
    "pdt": timezone(timedelta(hours=-7), "PDT"),
}
_ZONE_NAME = r"(?:" + "|".join(_ZONES) + r"|local(?:[ \t]+time)?)\b"
_STAMP = re.compile(
    r"[ \t]*(?P<clock>"
    r"(?P<h12>\d{1,2})(?:[:.](?P<m12>\d{2}))?[ \t]*(?P<ampm>[ap])\.?m\b\.?"
    r"|(?P<h>\d{1,2})[:.](?P<m>\d{2})(?::(?P<s>\d{2}))?"
    r"|(?P<hhmm>\d{4})(?=[ \t]*" + _ZONE_NAME + r")"
    r")(?:[ \t]*(?P<zone>" + _ZONE_NAME + r"))?"
    r"[ \t]*(?:[:|\-\u2013\u2014](?=\s|$)|$)",
    re.IGNORECASE,
)
"""A clock time, an optional zone, then a separator (or nothing more on the line)."""

_WEEKDAY = r"(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)(?:day|sday|nesday|rsday|urday)?"
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_MONTH = r"(?:" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")"
_ORDINAL = r"(?:st|nd|rd|th)?"
_DATE_LINE = re.compile(
    r"(?:" + _WEEKDAY + r"\.?,?[ \t]+)?(?:"
    r"(?P<d1>\d{1,2})" + _ORDINAL + r"[ \t]+(?P<m1>" + _MONTH + r")\.?(?:,?[ \t]+(?P<y1>\d{4}))?"
    r"|(?P<m2>" + _MONTH + r")\.?[ \t]+(?P<d2>\d{1,2})" + _ORDINAL + r"(?:,?[ \t]+(?P<y2>\d{4}))?"
    r")|(?P<y3>\d{4})-(?P<m3>\d{1,2})-(?P<d3>\d{1,2})",
    re.IGNORECASE,
)
_DATE_DECORATION = " \t*#=_:-\u2013\u2014"
_SENTENCE_END = ".,;:!?\u2026"
_CLOSERS = "\"')]\u201d\u2019\u00bb "
_OPENERS = "\"'\u201c\u2018\u00ab"


@dataclass(slots=True)
class _Section:
    """A date line, or the start of the document where ``--date`` stands in for one."""

    line: int
    day: int | None = None
    month: int | None = None
    year: int | None = None
    resolved: date | None = None


@dataclass(slots=True)
class _Entry:
    line: int
    clock: time
    zone: tzinfo | None
    section: _Section
    lines: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> int:
        return self.clock.hour * 3600 + self.clock.minute * 60 + self.clock.second


@dataclass(slots=True)
class _Document:
    header: list[str]
    sections: list[_Section]
    entries: list[_Entry]


def sniff(text: str) -> bool:
    """Time-prefixed lines start most paragraphs, or at least two of them."""
    lines = _lines(text)
    stamped = sum(1 for line in lines if _STAMP.match(line))
    starts = sum(
        1 for i, line in enumerate(lines) if line.strip() and (i == 0 or not lines[i - 1].strip())
    )
    return stamped >= 2 or (stamped >= 1 and 2 * stamped > starts)


def parse(text: str, options: ImportOptions) -> Feed:
    doc = _scan(text)
    _resolve_dates(doc.sections, options.date)
    newest_first = _runs_newest_first(doc)
    times = _published_times(doc.entries, newest_first, options.timezone)
    posts = []
    # Last to first, each entry let go once it is a post: never all entries and all posts at once.
    entries = doc.entries
    entries.reverse()
    times.reverse()
    while entries:
        if (post := _post(entries.pop(), times.pop())) is not None:
            posts.append(post)
    if newest_first:
        posts.reverse()
    posts.sort(key=lambda post: post.timed)
    title, description = _title_and_description(doc.header, options.source)
    return options.feed(title, posts, description)


def _scan(text: str) -> _Document:
    header: list[str] = []
    section = _Section(line=0)
    doc = _Document(header=header, sections=[section], entries=[])
    for number, line in enumerate(_lines(text), start=1):
        if len(line) > MAX_LINE_CHARS:
            check_line(line, number)
        stamp = _STAMP.match(line)
        if stamp:
            entry = _entry(stamp, number, section)
            entry.lines.append(line[stamp.end() :])
            doc.entries.append(entry)
        elif (dated := _date_section(line, number)) is not None:
            section = dated
            doc.sections.append(section)
        elif doc.entries:
            doc.entries[-1].lines.append(line)
        else:
            header.append(line)
    return doc


def _lines(text: str) -> list[str]:
    """Lines as editors number them: only ``\\n`` ends one, whatever other breaks Unicode knows."""
    return [line.removesuffix("\r") for line in text.split("\n")]


def _entry(stamp: re.Match[str], number: int, section: _Section) -> _Entry:
    clock_text = stamp.group("clock")
    zone = _ZONES.get((stamp.group("zone") or "").lower())
    try:
        clock = _clock(stamp)
    except ValueError:
        shown = " ".join(filter(None, (clock_text, stamp.group("zone"))))
        raise ArchiveError(f"impossible time {shown!r}", line=number) from None
    return _Entry(line=number, clock=clock, zone=zone, section=section)


def _clock(stamp: re.Match[str]) -> time:
    if stamp.group("ampm"):
        hour, minute = int(stamp.group("h12")), int(stamp.group("m12") or 0)
        if not 1 <= hour <= 12:
            raise ValueError(hour)
        afternoon = stamp.group("ampm").lower() == "p"
        return time(hour % 12 + (12 if afternoon else 0), minute)
    if stamp.group("hhmm"):
        digits = stamp.group("hhmm")
        return time(int(digits[:2]), int(digits[2:]))
    return time(int(stamp.group("h")), int(stamp.group("m")), int(stamp.group("s") or 0))


def _date_section(line: str, number: int) -> _Section | None:
    match = _DATE_LINE.fullmatch(line.strip(_DATE_DECORATION))
    if not match:
        return None
    day = match.group("d1") or match.group("d2") or match.group("d3")
    month = match.group("m1") or match.group("m2") or match.group("m3")
    year = match.group("y1") or match.group("y2") or match.group("y3")
    month_number = int(month) if month.isdigit() else _MONTHS[month.lower()]
    section = _Section(line=number, day=int(day), month=month_number)
    section.year = int(year) if year else None
    return section


def _resolve_dates(sections: list[_Section], fallback: date | None) -> None:
    """Give every date line a full date: a missing year is the nearest stated one, or ``--date``'s.

    The document's start has only ``--date``; entries that need it and lack it fail later.
    """
    stated = [s.year for s in sections if s.year is not None]
    year = stated[0] if stated else (fallback.year if fallback else None)
    for section in sections:
        if section.day is None or section.month is None:
            section.resolved = fallback
            continue
        year = section.year or year
        if year is None:
            raise ArchiveError(
                "date line without a year: add one or pass --date YYYY-MM-DD", line=section.line
            )
        try:
            section.resolved = date(year, section.month, section.day)
        except ValueError:
            raise ArchiveError(
                f"impossible date {section.day}/{section.month}/{year}", line=section.line
            ) from None


def _runs_newest_first(doc: _Document) -> bool:
    """Date lines decide when they run one way; otherwise most steps between times do.

    Steps are read the short way round the clock, so 23:50 → 00:10 counts as forwards.
    """
    days = [s.resolved for s in doc.sections[1:] if s.resolved is not None]
    by_date = sum(_sign((b - a).days) for a, b in _pairs(days))
    if by_date:
        return by_date < 0
    by_time = sum(
        _sign(_circular_step(a.seconds, b.seconds))
        for a, b in _pairs(doc.entries)
        if a.section is b.section
    )
    return by_time < 0


def _circular_step(before: int, after: int) -> int:
    """Seconds from ``before`` to ``after`` the short way round the clock (0 when it is a tie)."""
    half_day = 12 * 3600
    forwards = (after - before) % (2 * half_day)
    if forwards == half_day:
        return 0
    return forwards if forwards < half_day else forwards - 2 * half_day


def _published_times(entries: list[_Entry], newest_first: bool, zone: tzinfo) -> list[datetime]:
    """Each entry's UTC time; within a date section a wrong-way step means the day changed."""
    times: list[datetime] = []
    offset = 0
    previous: _Entry | None = None
    for entry in entries:
        if previous is None or previous.section is not entry.section:
            offset = 0
        elif newest_first and entry.seconds > previous.seconds + OUT_OF_ORDER_TOLERANCE:
            offset -= 1
        elif not newest_first and entry.seconds < previous.seconds - OUT_OF_ORDER_TOLERANCE:
            offset += 1
        day = entry.section.resolved
        if day is None:
            raise ArchiveError(
                "time-only entries need a date: pass --date YYYY-MM-DD", line=entry.line
            )
        try:
            local = datetime.combine(day + timedelta(days=offset), entry.clock, entry.zone or zone)
            times.append(local.astimezone(UTC))
        except OverflowError:
            raise ArchiveError("date out of range", line=entry.line) from None
        previous = entry
    return times


def _post(entry: _Entry, moment: datetime) -> Post | None:
    paragraphs = _paragraphs(entry.lines)
    headline = _headline(paragraphs)
    rest = paragraphs[1:] if headline else paragraphs
    body, source = split_credit("\n\n".join(" ".join(lines) for lines in rest))
    if headline and not body:
        body, headline = headline, None
    if not body:
        return None
    post = Post(
        id="",
        body=body,
        published_at=moment,
        time_source=TimeSource.EXPLICIT,
        headline=headline,
        source=source,
    )
    return check_post_size(post, entry.line)


def _paragraphs(lines: Sequence[str]) -> list[list[str]]:
    """Non-empty stripped lines grouped by the blank lines between them."""
    paragraphs: list[list[str]] = [[]]
    for line in lines:
        stripped = line.strip()
        if stripped:
            paragraphs[-1].append(stripped)
        elif paragraphs[-1]:
            paragraphs.append([])
    return [p for p in paragraphs if p]


def _headline(paragraphs: list[list[str]]) -> str | None:
    """A short capitalised line standing alone above more text, not ending like a sentence.

    Hard-wrapped prose also has short first lines, so a headline must be its own paragraph.
    """
    if len(paragraphs) < 2 or len(paragraphs[0]) != 1:
        return None
    line = paragraphs[0][0]
    bare = line.rstrip(_CLOSERS)
    if len(line) > HEADLINE_MAX or not bare or bare[-1] in _SENTENCE_END:
        return None
    if not (line[0].isupper() or line[0].isdigit() or line[0] in _OPENERS):
        return None
    if split_credit(line)[1] is not None:
        return None
    return line


def _title_and_description(header: list[str], source: str) -> tuple[str, str | None]:
    paragraphs = _paragraphs(header)
    if not paragraphs:
        return _fallback_title(source), None
    title, *first_rest = paragraphs[0]
    rest = ([first_rest] if first_rest else []) + paragraphs[1:]
    description = "\n\n".join(" ".join(lines) for lines in rest)
    return title, description or None


def _fallback_title(source: str) -> str:
    """The file's name stands in for a missing title; standard input has none worth using."""
    stem = PurePath(source).stem
    return stem if stem and not source.startswith("<") else "Live blog"


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


def _pairs(items: Sequence[_T]) -> Iterator[tuple[_T, _T]]:
    return zip(items, items[1:], strict=False)
