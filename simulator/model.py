"""The archive model: what a live blog is, independent of where it came from or how it is replayed.

Pure data. Importers build these, the archive module serialises them, the replay engine reads them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


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


def shown(value: object, limit: int = 60) -> str:
    """``repr`` cut to ``limit`` characters: a 10 KB input must not become a 10 KB error."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def timed(self) -> datetime:
        """``published_at`` once timing inference has run; importers' raw posts may lack it."""
        if self.published_at is None:
            raise ValueError(f"post {self.id} has no time")
        return self.published_at


@dataclass(frozen=True, slots=True)
class Feed:
    id: str
    title: str
    posts: tuple[Post, ...]
    description: str | None = None
    timezone: str = "UTC"
    extra: Mapping[str, Any] = field(default_factory=dict)

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


def slug(text: str, default: str = "feed") -> str:
    """A short URL-safe id made from a title."""
    chars = [c.lower() if c.isascii() and c.isalnum() else "-" for c in text]
    out = "-".join(part for part in "".join(chars).split("-") if part)
    return out[:48].strip("-") or default


def assign_ids(posts: Iterable[Post]) -> list[Post]:
    """Give posts without an id a stable one: a hash of their text, so re-importing agrees.

    Identical texts are told apart by their order (``-2``, ``-3`` …).
    """
    out: list[Post] = []
    seen: dict[str, int] = {}
    for post in posts:
        post_id = post.id
        if not post_id:
            media = (m.title or m.caption or m.kind for m in post.media)
            text = "\n".join(filter(None, (post.headline, post.body, *media)))
            post_id = "p-" + hashlib.blake2b(text.encode(), digest_size=5).hexdigest()
        count = seen.get(post_id, 0) + 1
        seen[post_id] = count
        if count > 1:
            post_id = f"{post_id}-{count}"
        out.append(post if post_id == post.id else replace(post, id=post_id))
    return out
