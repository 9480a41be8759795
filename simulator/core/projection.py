"""What a reader of the blog sees now: the visible posts in creation order, their pins and the
key events among them. The snapshot is this projection; every post event changes it in one way.

Its encoding (``encoded``) is kept until the next change, so the readers of a snapshot share one
``bytes``; every change goes through ``apply`` or ``clear``, which drop it.

A post's place is its creation: an edit or a pin does not move it. An update, pin or unpin of a post
that is not visible changes nothing (a scripted edit of a post a scenario already deleted).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Any

from .snapshot import (
    Page,
    Piece,
    Posts,
    budget_for,
    fit,
    page_head,
    page_room,
    piece,
    posts_tail,
    unknown_before,
)
from .wire import EventType

SHARED_PAGES = 4
"""First pages (``before`` not given) kept per version, one per ``limit``: what every client
loads first is encoded once per change and shared, as the whole snapshot is."""


@dataclass(frozen=True, slots=True)
class Visible:
    """Replaced, never changed: a copy of the projection's dict (``copy``) stays as it was
    while the projection goes on (a checkpoint is encoded from one in a worker thread)."""

    post: Mapping[str, Any]
    pinned: bool = False


class Projection:
    def __init__(self) -> None:
        self._visible: dict[str, Visible] = {}
        self._encoded: tuple[int, Posts] | None = None
        """The last ``encoded`` answer and the ``max_bytes`` it was for; None after a change."""
        self._pages: dict[tuple[int, int], Posts] = {}
        """First pages of this version, by (limit, max_bytes); emptied by every change."""

    def __contains__(self, post_id: object) -> bool:
        return post_id in self._visible

    def __len__(self) -> int:
        return len(self._visible)

    def get(self, post_id: str) -> Visible | None:
        return self._visible.get(post_id)

    def clear(self) -> None:
        self._visible.clear()
        self._encoded = None
        self._pages.clear()

    def apply(self, type: EventType, post_id: str, record: Mapping[str, Any]) -> None:
        """The effect of one post event; ``ValueError`` for a type that is not a post event."""
        old = self._visible.get(post_id)
        self._encoded = None
        if self._pages:
            self._pages.clear()
        if type is EventType.POST_CREATED:
            self._visible.pop(post_id, None)
            self._visible[post_id] = Visible(record, old.pinned if old else False)
        elif type is EventType.POST_UPDATED:
            if old:
                self._visible[post_id] = Visible(record, old.pinned)
        elif type is EventType.POST_DELETED:
            self._visible.pop(post_id, None)
        elif type is EventType.POST_PINNED or type is EventType.POST_UNPINNED:
            if old:
                self._visible[post_id] = Visible(old.post, type is EventType.POST_PINNED)
        else:
            raise ValueError(f"{type!r} is not a post event")

    def copy(self) -> dict[str, Visible]:
        """The visible posts by id, oldest first, as they are now: one dict copied, however
        many posts (no object per post, which would also wake the garbage collector)."""
        return self._visible.copy()

    def newest_first(self) -> Iterator[tuple[str, Visible]]:
        return reversed(self._visible.items())

    def encoded(self, max_bytes: int) -> Posts:
        """The snapshot's posts and key events as JSON members (``snapshot.posts_tail``), within a
        snapshot of ``max_bytes``: the newest pinned posts, then the newest others, each up to
        the first that does not fit (so the work is bounded by ``max_bytes`` too). The same
        object until the projection changes."""
        if self._encoded is not None and self._encoded[0] == max_bytes:
            return self._encoded[1]
        pinned, budget = fit(self._pieces(pinned=True), budget_for(max_bytes))
        others, _ = fit(self._pieces(pinned=False), budget)
        chosen = {item.post_id: item for item in (*pinned, *others)}
        ordered = [chosen[post_id] for post_id, _ in self.newest_first() if post_id in chosen]
        posts = posts_tail(ordered, len(self._visible))
        self._encoded = (max_bytes, posts)
        return posts

    def _pieces(self, *, pinned: bool) -> Iterator[Piece]:
        for post_id, visible in self.newest_first():
            if visible.pinned is pinned:
                yield piece(post_id, {**visible.post, "pinned": pinned})

    def page(self, page: Page, max_bytes: int) -> Posts:
        """``page.limit`` posts, newest first, older than post ``page.before`` (or the newest),
        within ``max_bytes``, each with its ``pinned``; ``"page":{…,"next":ID}`` names the
        ``before`` of the next page (null: none older). Only the posts asked for are encoded,
        and a first page is shared until the next change. ``InputError`` at ``before`` for a
        post not visible."""
        key = (page.limit, max_bytes)
        if page.before is None and key in self._pages:
            return self._pages[key]
        items = self.newest_first()
        if page.before is not None:
            if page.before not in self._visible:
                raise unknown_before(page.before)
            for post_id, _ in items:
                if post_id == page.before:
                    break
        taken = list(islice(items, page.limit))
        candidates = (piece(post_id, {**v.post, "pinned": v.pinned}) for post_id, v in taken)
        room = budget_for(max_bytes) - page_room(page, (post_id for post_id, _ in taken))
        chosen, _ = fit(candidates, room)
        more = len(chosen) < len(taken) or next(items, None) is not None
        # One post that fits in no page is skipped (named as next), not asked for again.
        last = chosen[-1].post_id if chosen else (taken[0][0] if taken else None)
        head = page_head(page, last if more else None)
        posts = posts_tail(chosen, len(self._visible), prefix=head)
        if page.before is None:
            if len(self._pages) >= SHARED_PAGES:
                self._pages.pop(next(iter(self._pages)))
            self._pages[key] = posts
        return posts
