"""What changed in a stream's posts, and when: the cursor every polling platform API needs.

The snapshot (``core.projection``) says what a reader sees now, not what changed since a poll,
and forgets deleted posts. Polling APIs (ScribbleLive's ``Since``, WordPress Liveblog's
``entries/{start}/{end}``, the Guardian's ``published-since``, Superdesk's ``_updated``) answer
"what is new, edited or deleted after T". ``Changes`` remembers that by comparing each look at the
projection with the previous one: every post keeps the stamp of its first sight and of its last
change, every deleted post a tombstone. Pure: the caller passes the visible posts and ``now``.

Stamps are milliseconds of the server's wall clock, strictly increasing from one look that finds
a change to the next, so no two changes seen at different looks share a stamp: a client that asks
for what changed at or after the stamp of its last answer misses nothing, and what it sees again
(the same stamp, or the same second for the second-precision APIs) it recognises by id and stamp.
A seek back or a restart shows as the deletes and re-creations it amounts to for a reader.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

MAX_TOMBSTONES = 10_000
"""Deleted posts remembered; a client that polls less often than that many deletes reloads."""


@dataclass(slots=True)
class Tracked:
    """A visible post: its record as the projection holds it, its pin, and its two stamps."""

    post_id: str
    record: Mapping[str, Any]
    pinned: bool
    created: int
    modified: int
    order: int
    """Its place among the posts ever seen, in the projection's order: posts first seen at the
    same look share ``created`` but not this."""


def numeric_id(post_id: str) -> int:
    """A post's integer id for APIs whose ids are numbers: stable across restarts and servers
    (a hash of the id), below 2**53 so JavaScript reads it exactly."""
    return int.from_bytes(hashlib.blake2b(post_id.encode(), digest_size=6).digest(), "big")


class Changes:
    def __init__(self, max_tombstones: int = MAX_TOMBSTONES) -> None:
        self.posts: dict[str, Tracked] = {}
        """Visible posts in the projection's order (creation, oldest first)."""
        self.deleted: dict[str, int] = {}
        """Deleted post ids and the stamp of their deletion, oldest deletion first."""
        self.gone: dict[str, Tracked] = {}
        """Each deleted post as it was last seen (a cursor may name a post deleted since)."""
        self.seen = 0
        """Posts ever first seen (the next ``order``)."""
        self.last = 0
        """The newest stamp given; 0 before the first look."""
        self.max_tombstones = max_tombstones
        self.source: str | None = None
        """The caller's name for the state last observed (a stream's cursor): a look at the same
        state again can be skipped, which keeps a poll of an idle stream O(1)."""

    def observe(self, visible: Iterable[tuple[str, Mapping[str, Any], bool]], now: int) -> int:
        """Take in the visible posts (oldest first) as of ``now`` (ms); the newest stamp."""
        stamp = max(now, self.last + 1)
        changed = False
        old = self.posts
        posts: dict[str, Tracked] = {}
        for post_id, record, pinned in visible:
            seen = old.pop(post_id, None)
            if seen is None:
                seen = Tracked(post_id, record, pinned, stamp, stamp, self.seen)
                self.seen += 1
                self.deleted.pop(post_id, None)
                self.gone.pop(post_id, None)
                changed = True
            elif seen.record is not record or seen.pinned != pinned:
                seen.record, seen.pinned, seen.modified = record, pinned, stamp
                changed = True
            posts[post_id] = seen
        for post_id, gone in old.items():
            self.deleted.pop(post_id, None)
            self.deleted[post_id] = stamp
            self.gone[post_id] = gone
            changed = True
        while len(self.deleted) > self.max_tombstones:
            oldest = next(iter(self.deleted))
            del self.deleted[oldest], self.gone[oldest]
        self.posts = posts
        if changed or not self.last:
            self.last = stamp
        return self.last

    def created_since(self, since: int) -> Iterator[Tracked]:
        return (p for p in self.posts.values() if p.created >= since)

    def edited_since(self, since: int) -> Iterator[Tracked]:
        """Posts changed at or after ``since`` after their creation (an edit, a pin, an unpin)."""
        return (p for p in self.posts.values() if p.modified >= since and p.modified > p.created)

    def deleted_since(self, since: int) -> Iterator[tuple[str, int]]:
        return ((post_id, at) for post_id, at in self.deleted.items() if at >= since)

    def changed_since(self, since: int) -> list[Tracked]:
        """Posts created or changed at or after ``since``, oldest change first."""
        return sorted((p for p in self.posts.values() if p.modified >= since), key=modified)

    def find(self, post_id: str) -> Tracked | None:
        """A post, visible or deleted since (as it was last seen); None if unknown."""
        post = self.posts.get(post_id)
        return post if post is not None else self.gone.get(post_id)


def modified(post: Tracked) -> int:
    return post.modified
