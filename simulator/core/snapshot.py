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
from .errors import InputError, shown
from .model import Feed

DEFAULT_MAX_BYTES = 16 * 1024 * 1024
"""``server.max_snapshot_bytes``' default."""
HEAD_RESERVE = 1024
"""Bytes of a stream's snapshot kept for what precedes its posts: the stream's state and cursor
(a few hundred bytes; stream ids are at most 64 characters)."""
FRAME = 128
"""Bytes of the members around the posts: brackets, ``key_events``' name, the counts (~80)."""
DEFAULT_PAGE = 50
"""Posts on a page when ``before`` is given without ``limit``."""
MAX_PAGE = 1000
"""Posts on a page at the most: a page is encoded per request (the first is shared), so its
cost is bounded by this as well as by ``max_bytes``."""
MAX_BEFORE = 1000
"""Characters of ``before`` at the most (a post id's bound, ``commands.MAX_POST_ID``)."""


@dataclass(frozen=True, slots=True)
class Page:
    """What ``?limit=N&before=POST`` asks for: ``limit`` posts older than post ``before``."""

    limit: int
    before: str | None = None


def parse_page(limit: str | None, before: str | None) -> Page | None:
    """The page the query parameters ask for, or None without either (the whole snapshot, as
    before paging). ``InputError`` at ``limit`` or ``before``."""
    if limit is None and before is None:
        return None
    count = DEFAULT_PAGE
    if limit is not None:
        text = limit.strip()
        if (
            not (text.isascii() and text.isdigit())
            or len(text) > 6
            or not 1 <= int(text) <= MAX_PAGE
        ):
            raise InputError(
                "limit", f"expected a whole number from 1 to {MAX_PAGE}, got {shown(limit)}"
            )
        count = int(text)
    if before is not None and (not before or len(before) > MAX_BEFORE or not before.isprintable()):
        raise InputError(
            "before", f"expected the id of a post (a page's next), got {shown(before)}"
        )
    return Page(count, before)


def page_head(page: Page, next_before: str | None) -> bytes:
    """``"page":{…},`` ahead of a page's posts: what was asked and what to ask next (null: no
    older posts)."""
    head = {"limit": page.limit, "before": page.before, "next": next_before}
    return b'"page":' + orjson.dumps(head) + b","


def page_room(page: Page, candidates: Iterable[str]) -> int:
    """Bytes a page's ``"page"`` member may take: its ``next`` is one of the ``candidates``'
    ids (the page's oldest, or one skipped), so the longest of them is kept room for."""
    longest = max((len(orjson.dumps(post_id)) for post_id in candidates), default=4)
    return len(page_head(page, None)) + longest + FRAME


def unknown_before(before: str) -> InputError:
    return InputError("before", f"no post {shown(before)} here: start again without before")


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


def feed_page(feed: Feed, page: Page, index: Mapping[str, int], max_bytes: int) -> bytes:
    """A page of a feed's post list: the ``limit`` posts before post ``page.before`` (or the
    newest), oldest first as in the full list, within ``max_bytes``; ``index`` maps post ids to
    their place in ``feed.posts``. ``InputError`` at ``before`` for a post not in the feed."""
    end = len(feed.posts)
    if page.before is not None:
        if page.before not in index:
            raise unknown_before(page.before)
        end = index[page.before]
    start = max(0, end - page.limit)
    head = orjson.dumps({"feed": feed.id})[:-1] + b","
    room = len(head) + FRAME + page_room(page, (p.id for p in feed.posts[start:end]))
    newest = (piece(p.id, post_record(p)) for p in reversed(feed.posts[start:end]))
    chosen, _ = fit(newest, max(0, max_bytes - room))
    oldest = end - max(1, len(chosen))  # one that fits in no page is skipped, not looped on
    next_before = feed.posts[oldest].id if oldest > 0 else None
    prefix = head + page_head(page, next_before)
    return posts_tail(chosen[::-1], len(feed.posts), prefix=prefix, key_events=False).body
