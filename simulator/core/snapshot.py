"""Posts lists as bounded JSON bytes: what a stream's snapshot and a feed's post list are sent as.

A snapshot can be as large as a stream's posts (tens of megabytes), and many readers may load it
at once, so it is encoded once per change and the same ``bytes`` are written to every reader.
Its size is bounded (``server.max_snapshot_bytes``): when the posts do not all fit, the newest
are kept up to the first that does not fit (a stream's pinned posts are chosen first, the same
way), and the body says ``"truncated": true`` and how many posts it left out (``omitted``), so a
page still loads. Choosing stops at the bound, so encoding costs about ``max_bytes`` however many
posts there are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from .archive import post_record
from .model import Feed

DEFAULT_MAX_BYTES = 16 * 1024 * 1024
"""``server.max_snapshot_bytes``' default."""
HEAD_RESERVE = 1024
"""Bytes of a stream's snapshot kept for what precedes its posts: the stream's state and cursor
(a few hundred bytes; stream ids are at most 64 characters)."""
FRAME = 128
"""Bytes of the members around the posts: brackets, ``key_events``' name, the counts (~80)."""


@dataclass(frozen=True, slots=True)
class Piece:
    """One post, encoded, and what keeping it costs in the body."""

    post_id: str
    json: bytes
    key_event: bool

    @property
    def cost(self) -> int:
        """Its bytes and a comma; a key event's id (quoted, and a comma) in ``key_events`` too."""
        extra = len(orjson.dumps(self.post_id)) + 1 if self.key_event else 0
        return len(self.json) + 1 + extra


def piece(post_id: str, record: Mapping[str, Any]) -> Piece:
    return Piece(post_id, orjson.dumps(record), record.get("key_event") is True)


@dataclass(frozen=True, slots=True)
class Posts:
    """The tail of a snapshot's JSON object: ``"posts":[…],"key_events":[…],"truncated":…,
    "omitted":N}``. ``body`` is what every reader of this version is sent."""

    body: bytes
    shown: int
    omitted: int


def fit(candidates: Iterable[Piece], budget: int) -> tuple[list[Piece], int]:
    """The candidates, in turn, up to the first that does not fit in ``budget``; what is left."""
    chosen = []
    for candidate in candidates:
        if candidate.cost > budget:
            break
        chosen.append(candidate)
        budget -= candidate.cost
    return chosen, budget


def posts_tail(
    ordered: Sequence[Piece], total: int, *, prefix: bytes = b"", key_events: bool = True
) -> Posts:
    """``prefix``, then the members for ``ordered`` (the posts shown, in order) out of ``total``,
    and the closing brace: one ``join``, so the posts are copied once."""
    omitted = total - len(ordered)
    out = [prefix, b'"posts":[']
    for number, item in enumerate(ordered):
        if number:
            out.append(b",")
        out.append(item.json)
    out.append(b"]")
    if key_events:
        out.append(b',"key_events":')
        out.append(orjson.dumps([p.post_id for p in ordered if p.key_event]))
    out.append(b',"truncated":%s,"omitted":%d}' % (b"true" if omitted else b"false", omitted))
    return Posts(b"".join(out), len(ordered), omitted)


def budget_for(max_bytes: int) -> int:
    """Bytes the posts of a snapshot of at most ``max_bytes`` may take."""
    return max(0, max_bytes - HEAD_RESERVE - FRAME)


def feed_posts(feed: Feed, max_bytes: int) -> bytes:
    """``{"feed": ID, "posts": [...], "truncated": …, "omitted": N}``, oldest first as in the
    archive; over ``max_bytes``, the newest posts that fit. Its posts have no ``pinned`` and the
    list no ``key_events`` (each post says ``key_event`` itself)."""
    head = orjson.dumps({"feed": feed.id})[:-1] + b","
    newest = (piece(p.id, post_record(p)) for p in reversed(feed.posts))
    chosen, _ = fit(newest, max(0, max_bytes - len(head) - FRAME))
    ordered = chosen[::-1]
    return posts_tail(ordered, len(feed.posts), prefix=head, key_events=False).body
