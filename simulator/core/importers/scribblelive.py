"""ScribbleLive's plain-text export: a page header, bullet-delimited posts, a footer.

What the export really contains, and how each piece is read:

- ``  • first line`` starts a post; indented lines continue it; a line at column 0 after the posts
  is the page footer (``Powered by ScribbleLive …``).
- ``by AUTHOR edited by EDITOR 6/25/2014 6:52:29 AM`` is a byline with the post's only stated time.
- ``by CHANNEL via YouTube`` closes an embed; the line above it is the embed's title (or, for
  Instagram, its caption).
- ``1 of 3`` is a gallery's counter; ``[AP]`` and ``[Reuters]`` are agency credits; a caption-like
  paragraph that ends in a credit (no full stop) is a photo caption, kept with its picture and not
  in the body.
- The export hard-wraps paragraphs, sometimes inside a word (``the U`` / ``S and``): lines that do
  not end a sentence are joined back together.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from ..model import (
    MAX_BODY_BYTES,
    MAX_LINE_CHARS,
    ArchiveError,
    Feed,
    Media,
    Post,
    TimeSource,
    check_post_size,
    utc,
)
from .credits import split_credit
from .lines import check_line

if TYPE_CHECKING:
    from . import ImportOptions

BULLET = re.compile(r"^\s*•\s?(.*)$")
BYLINE = re.compile(
    r"^by (?P<author>.+?)(?: edited by (?P<editor>.+?))?\s+"
    r"(?P<stamp>\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2}(?::\d{2})? ?[AP]M)$",
    re.IGNORECASE,
)
EMBED = re.compile(
    r"^by (?P<credit>.+?) via (?P<via>YouTube|Instagram|Twitter|Facebook|Vimeo|SoundCloud)$",
    re.IGNORECASE,
)
COUNTER = re.compile(r"^\d+ of (?P<count>\d+)$")
SENTENCE_END = (".", "!", "?", ":", '"', "'", "”", "’", ")", "]", "…")
HEADLINE_MAX = 100


def sniff(text: str) -> bool:
    return "ScribbleLive" in text[-2000:] or sum(1 for _ in _bullets(text)) >= 2


def _bullets(text: str) -> list[str]:
    return [line for line in text.splitlines() if BULLET.match(line)]


def parse(text: str, options: ImportOptions) -> Feed:
    lines = text.splitlines()
    header = _header(lines)
    posts = [_read_post(chunk, start, options) for start, chunk in _chunks(lines, len(header))]
    title, description, extra = _read_header(header)
    return options.feed(title, posts, description, extra)


def _clean(line: str) -> str:
    return line.replace("\u00a0", " ").strip()


def _header(lines: list[str]) -> list[str]:
    """The lines above the first post."""
    header = []
    for number, raw in enumerate(lines, 1):
        if BULLET.match(check_line(raw, number)):
            break
        header.append(raw)
    return header


def _chunks(lines: list[str], start: int) -> Iterator[tuple[int, list[str]]]:
    """Each post's lines with the line number it starts on, one post at a time.

    Each line read is blanked in ``lines``, so that it is freed with its post: a list of every
    line of the file is no longer held beside every post.
    """
    chunk: list[str] = []
    first = 0
    match = BULLET.match
    for index in range(start, len(lines)):
        raw = lines[index]
        lines[index] = ""
        if len(raw) > MAX_LINE_CHARS:
            check_line(raw, index + 1)
        bullet = match(raw)
        if bullet:
            if chunk:
                yield first, chunk
            first, chunk = index + 1, [bullet.group(1)]
        elif raw[:1].isspace() or not raw.strip():
            chunk.append(raw)
        else:
            break
    if chunk:
        yield first, chunk


def _read_header(lines: list[str]) -> tuple[str, str | None, dict[str, str]]:
    texts = [t for t in map(_clean, lines) if t]
    if not texts:
        return "Live blog", None, {}
    page_title = texts[0]
    extra: dict[str, str] = {}
    if " - " in page_title:
        extra["page_title"] = page_title
        extra["publisher"] = page_title.rsplit(" - ", 1)[1]
    rest = texts[1:]
    if rest and len(rest[0]) <= HEADLINE_MAX and not rest[0].endswith("."):
        title, rest = rest[0], rest[1:]
    else:
        title = page_title.split(" - ", 1)[0]
    return title, "\n\n".join(rest) or None, extra


@dataclass
class _PostBuilder:
    paragraphs: list[str] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)
    author: str | None = None
    editor: str | None = None
    stamp: datetime | None = None
    source: str | None = None
    open_paragraph: bool = False

    def add_text(self, text: str) -> None:
        if self.open_paragraph and self.paragraphs:
            last = self.paragraphs[-1]
            self.paragraphs[-1] = last = last + ("" if _split_word(last, text) else " ") + text
            if len(last) > MAX_BODY_BYTES:
                # Joining line by line is quadratic in a paragraph's length: stop at the bound.
                raise _BodyTooLong
        else:
            self.paragraphs.append(text)
        self.open_paragraph = not text.endswith(SENTENCE_END)

    def take_last_line(self) -> str | None:
        """The line just above an embed byline: the embed's title, not body text."""
        if not self.paragraphs:
            return None
        lines = self.paragraphs[-1].split("\n")
        taken = lines.pop()
        if lines:
            self.paragraphs[-1] = "\n".join(lines)
        else:
            self.paragraphs.pop()
        return taken

    def end_paragraph(self) -> None:
        self.open_paragraph = False


class _BodyTooLong(Exception):
    """A paragraph of a post has grown past the bound on a body."""


def _split_word(before: str, after: str) -> bool:
    """``the U`` + ``S and``: a capital letter the export broke away from the rest of its word."""
    last = before.rsplit(" ", 1)[-1]
    first = after.split(" ", 1)[0]
    return len(last) == 1 and last.isupper() and last != "I" and first.isalpha() and first.isupper()


def _read_post(lines: list[str], start: int, options: ImportOptions) -> Post:
    try:
        return _read_lines(lines, start, options)
    except _BodyTooLong:
        message = f"body: more than {MAX_BODY_BYTES} bytes, at most {MAX_BODY_BYTES}"
        raise ArchiveError(message, line=start) from None


def _read_lines(lines: list[str], start: int, options: ImportOptions) -> Post:
    post = _PostBuilder()
    headline = _headline(lines)
    body_lines = lines[1:] if headline else lines
    for offset, raw in enumerate(body_lines, start + (1 if headline else 0)):
        line = _clean(raw)
        if not line:
            post.end_paragraph()
        elif match := BYLINE.match(line):
            post.author, post.editor = match["author"], match["editor"]
            post.stamp = _parse_stamp(match["stamp"], options, offset)
            post.end_paragraph()
        elif match := EMBED.match(line):
            post.end_paragraph()
            post.media.append(_embed(match["via"].lower(), match["credit"], post.take_last_line()))
        elif match := COUNTER.match(line):
            post.end_paragraph()
            post.media.append(Media(kind="gallery", count=int(match["count"])))
        else:
            _add_prose(post, line)
    built = Post(
        id="",
        headline=headline,
        body="\n\n".join(dict.fromkeys(post.paragraphs)),
        author=post.author,
        editor=post.editor,
        published_at=post.stamp,
        time_source=TimeSource.EXPLICIT if post.stamp else None,
        source=post.source,
        media=tuple(post.media),
    )
    return check_post_size(built, start)


def _add_prose(post: _PostBuilder, line: str) -> None:
    text, credit = split_credit(line)
    if credit is None:
        post.add_text(line)
        return
    if text and not text.endswith(SENTENCE_END):
        # A photo caption: it belongs to the picture, and a gallery lists one per photo, so
        # copying it into the body as well would print every caption twice.
        post.end_paragraph()
        post.media.append(Media(kind="image", caption=text, credit=credit))
        return
    post.source = post.source or credit
    if text:
        post.add_text(text)
    post.end_paragraph()


def _headline(lines: list[str]) -> str | None:
    """A short first line that is not a sentence, followed by more text of the post."""
    first = _clean(lines[0])
    # Only whether more text follows, and its first line, matter: not every line cleaned.
    more = next((text for line in lines[1:] if (text := _clean(line))), None)
    if not first or more is None or len(first) > HEADLINE_MAX:
        return None
    if first.rstrip("\"'”’").endswith(SENTENCE_END):
        return None
    if EMBED.match(more) or COUNTER.match(more) or split_credit(first)[1]:
        return None
    following = lines[1] if len(lines) > 1 else ""
    if _clean(following) and not _clean(following)[:1].isupper():
        return None
    return first


def _embed(via: str, credit: str, line: str | None) -> Media:
    if via == "youtube":
        return Media(kind="youtube", title=line, credit=credit)
    return Media(kind=via, caption=line, credit=credit)


def _parse_stamp(text: str, options: ImportOptions, line: int) -> datetime:
    compact = text.replace(" ", "").upper()
    for pattern in ("%m/%d/%Y%I:%M:%S%p", "%m/%d/%Y%I:%M%p"):
        try:
            local = datetime.strptime(compact, pattern)
        except ValueError:
            continue
        return utc(local.replace(tzinfo=options.timezone))
    raise ArchiveError(f"byline time {text!r} is not a real date and time", line=line)
