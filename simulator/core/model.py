"""The archive model: what a live blog is, independent of where it came from or how it is replayed.

Pure data. Importers build these, the archive module serialises them, the replay engine reads them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from .errors import shown as shown  # re-exported: the importers quote values with it

# Bounds of an archive (docs/archive-format.md, "Bounds"): whatever the file, reading it holds a
# small multiple of its size, and no post is larger than a live blog's ever was.
MAX_LINE_BYTES = 1 << 20
"""A line of JSON Lines holds one post, a line of a text export less: checked before parsing."""
MAX_LINE_CHARS = MAX_LINE_BYTES
"""The same bound for a line of a text export, in characters (at least as many bytes)."""
MAX_DOCUMENT_BYTES = 64 << 20
"""A JSON document (not JSON Lines) is parsed whole, and its parser needs several times its size."""
MAX_BODY_BYTES = 256 << 10
"""UTF-8 bytes of a post's body: four times a live post's (``simulator/live.py``)."""
MAX_TEXT_BYTES = 4 << 10
"""UTF-8 bytes of an id, headline, author, editor, source, title, timezone or media text."""
MAX_DESCRIPTION_BYTES = 64 << 10
MAX_URL_BYTES = 8 << 10
MAX_MEDIA = 100
"""Media items of one post (a gallery lists one per picture)."""
MAX_MEDIA_COUNT = 10_000
"""A gallery's picture count."""
MAX_EXTRA_DEPTH = 32
"""Nesting of a field the format does not know: orjson reads 1024 levels but writes only 254."""

NO_EXTRA: Mapping[str, Any] = MappingProxyType({})
"""The extra fields of most posts: one shared empty mapping, not an empty dict per post."""


class ArchiveError(ValueError):
    """Bad input, with the place it was found: ``file:line: message`` when both are known."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None):
        self.message = message
        self.source = source
        self.line = line
        super().__init__(self.__str__())

    def at(self, source: str) -> ArchiveError:
        """The same error, named after the file it came from."""
        return ArchiveError(self.message, source=source, line=self.line)

    def __str__(self) -> str:
        where = ":".join(str(p) for p in (self.source, self.line) if p is not None)
        return f"{where}: {self.message}" if where else self.message


class TimeSource(StrEnum):
    EXPLICIT = "explicit"
    INTERPOLATED = "interpolated"
    EXTRAPOLATED = "extrapolated"


@dataclass(frozen=True, slots=True)
class Media:
    """An embed or picture attached to a post.

    ``kind`` is ``youtube``, ``instagram``, ``image``, ``gallery``, ``video`` or ``link``;
    ``credit`` is who published it (a channel, an account, an agency).
    """

    kind: str
    title: str | None = None
    caption: str | None = None
    credit: str | None = None
    url: str | None = None
    count: int | None = None


@dataclass(frozen=True, slots=True)
class Post:
    id: str
    body: str
    published_at: datetime | None = None
    time_source: TimeSource | None = None
    headline: str | None = None
    author: str | None = None
    editor: str | None = None
    source: str | None = None
    media: tuple[Media, ...] = ()
    key_event: bool = False
    """A key moment of the story (Guardian and WordPress live blogs flag these), listed apart."""
    extra: Mapping[str, Any] = field(default_factory=lambda: NO_EXTRA)

    @property
    def timed(self) -> datetime:
        """``published_at`` once timing inference has run; importers' raw posts may lack it."""
        if self.published_at is None:
            raise ValueError(f"post {self.id} has no time")
        return self.published_at


CHANGE_ACTIONS = ("update", "delete", "pin", "unpin")
CHANGE_FIELDS = ("headline", "body", "author", "editor", "source", "media", "key_event")
"""What a recorded ``update`` may change: every field of a post but its id and times."""


@dataclass(frozen=True, slots=True)
class Change:
    """Something that happened to a post after it appeared, as a recording saw it (format v2).

    Exported archives hold only posts; a recorded live blog also has edits, deletions and pins,
    each at the archive time it happened. ``fields`` are an ``update``'s new values (media as
    ``Media``); ``extra`` keeps what the recorder noted (``seen_at``, ``event_id``).
    """

    action: str
    post: str
    at: datetime
    fields: Mapping[str, Any] = field(default_factory=lambda: NO_EXTRA)
    extra: Mapping[str, Any] = field(default_factory=lambda: NO_EXTRA)


@dataclass(frozen=True, slots=True)
class Feed:
    id: str
    title: str
    posts: tuple[Post, ...]
    description: str | None = None
    timezone: str = "UTC"
    extra: Mapping[str, Any] = field(default_factory=lambda: NO_EXTRA)
    changes: tuple[Change, ...] = ()
    """Recorded edits, deletions and pins, in the order they were seen."""

    def post(self, post_id: str) -> Post:
        for post in self.posts:
            if post.id == post_id:
                return post
        raise KeyError(post_id)

    def with_posts(self, posts: Iterable[Post]) -> Feed:
        return replace(self, posts=tuple(posts))


def utc(moment: datetime) -> datetime:
    """A timezone-aware datetime in UTC; naive input is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def format_time(moment: datetime) -> str:
    """ISO-8601 in UTC with a ``Z``, to the second unless the archive had finer times."""
    moment = utc(moment)
    text = moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")
    return text.replace("+00:00", "Z")


SLUG_LENGTH = 48
_WORD = re.compile(r"[A-Za-z0-9]+")


def slug(text: str, default: str = "feed") -> str:
    """A short URL-safe id made from a title: its ASCII words, lower case, joined by ``-``.

    Words are read only until the slug is long enough, so a long title costs no more than a short.
    """
    out = ""
    for word in _WORD.finditer(text):
        out = f"{out}-{word[0].lower()}" if out else word[0].lower()
        if len(out) >= SLUG_LENGTH:
            break
    return out[:SLUG_LENGTH].strip("-") or default


def assign_ids(posts: list[Post]) -> None:
    """Give posts without an id a stable one: a hash of their text, so re-importing agrees.

    Identical texts are told apart by their order (``-2``, ``-3`` …). The list is changed in
    place, so each post replaced is freed at once rather than all of them at the end.
    """
    seen: dict[str, int] = {}
    for i, post in enumerate(posts):
        post_id = post.id
        if not post_id:
            media = (m.title or m.caption or m.kind for m in post.media)
            text = "\n".join(filter(None, (post.headline, post.body, *media)))
            post_id = "p-" + hashlib.blake2b(text.encode(), digest_size=5).hexdigest()
        count = seen.get(post_id, 0) + 1
        seen[post_id] = count
        if count > 1:
            post_id = f"{post_id}-{count}"
        if post_id != post.id:
            posts[i] = replace(post, id=post_id)


def oversize(text: str, limit: int) -> str | None:
    """``"N bytes, at most LIMIT"`` when ``text`` is over ``limit`` UTF-8 bytes, else ``None``.

    Only a text that could be over is encoded to count: most are far shorter than a quarter of it.
    """
    if len(text) * 4 <= limit:
        return None
    size = len(text.encode("utf-8", "surrogatepass"))
    return f"{size} bytes, at most {limit}" if size > limit else None


def depth(value: object) -> int:
    """How deeply a decoded JSON value nests arrays and objects (a string, a number: 0)."""
    deepest = 0
    pending: list[tuple[object, int]] = [(value, 0)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level + 1)
            pending.extend((child, level + 1) for child in item)
    return deepest


POST_TEXT_BOUNDS = (
    ("id", MAX_TEXT_BYTES),
    ("headline", MAX_TEXT_BYTES),
    ("body", MAX_BODY_BYTES),
    ("author", MAX_TEXT_BYTES),
    ("editor", MAX_TEXT_BYTES),
    ("source", MAX_TEXT_BYTES),
)
MEDIA_TEXT_BOUNDS = (
    ("kind", MAX_TEXT_BYTES),
    ("title", MAX_TEXT_BYTES),
    ("caption", MAX_TEXT_BYTES),
    ("credit", MAX_TEXT_BYTES),
    ("url", MAX_URL_BYTES),
)


def post_oversize(post: Post) -> Iterator[str]:
    """Each field of an imported post over its bound, as ``"body: N bytes, at most LIMIT"``."""
    for name, limit in POST_TEXT_BOUNDS:
        value = getattr(post, name)
        if value and (problem := oversize(value, limit)):
            yield f"{name}: {problem}"
    if len(post.media) > MAX_MEDIA:
        yield f"media: {len(post.media)} items, at most {MAX_MEDIA}"
        return
    for i, media in enumerate(post.media):
        for name, limit in MEDIA_TEXT_BOUNDS:
            value = getattr(media, name)
            if value and (problem := oversize(value, limit)):
                yield f"media[{i}].{name}: {problem}"
        if media.count is not None and not 0 <= media.count <= MAX_MEDIA_COUNT:
            yield f"media[{i}].count: expected an integer from 0 to {MAX_MEDIA_COUNT}"


def check_post_size(post: Post, line: int | None = None, where: str = "") -> Post:
    """The post, or an ``ArchiveError`` naming its first field over a bound (and its line)."""
    texts = (post.id, post.headline or "", post.author or "", post.editor or "", post.source or "")
    if not post.media and len(post.body) * 4 <= MAX_BODY_BYTES:
        if max(map(len, texts)) * 4 <= MAX_TEXT_BYTES:
            return post  # far within every bound: most posts, told at a glance
    for problem in post_oversize(post):
        raise ArchiveError(f"{where}{problem}", line=line)
    return post
