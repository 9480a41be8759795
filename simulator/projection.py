"""What a reader of the blog sees now: the visible posts in creation order, their pins and the
key events among them. The snapshot is this projection; every post event changes it in one way.

A post's place is its creation: an edit or a pin does not move it. An update, pin or unpin of a post
that is not visible changes nothing (a scripted edit of a post a scenario already deleted).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .script import EventType


@dataclass(slots=True)
class Visible:
    post: Mapping[str, Any]
    pinned: bool = False


class Projection:
    def __init__(self) -> None:
        self._visible: dict[str, Visible] = {}

    def __contains__(self, post_id: object) -> bool:
        return post_id in self._visible

    def __len__(self) -> int:
        return len(self._visible)

    def get(self, post_id: str) -> Visible | None:
        return self._visible.get(post_id)

    def clear(self) -> None:
        self._visible.clear()

    def apply(self, type: EventType, post_id: str, record: Mapping[str, Any]) -> None:
        """The effect of one post event; ``ValueError`` for a type that is not a post event."""
        old = self._visible.get(post_id)
        if type is EventType.POST_CREATED:
            self._visible.pop(post_id, None)
            self._visible[post_id] = Visible(record, old.pinned if old else False)
        elif type is EventType.POST_UPDATED:
            if old:
                old.post = record
        elif type is EventType.POST_DELETED:
            self._visible.pop(post_id, None)
        elif type is EventType.POST_PINNED or type is EventType.POST_UNPINNED:
            if old:
                old.pinned = type is EventType.POST_PINNED
        else:
            raise ValueError(f"{type!r} is not a post event")

    def newest_first(self) -> Iterator[tuple[str, Visible]]:
        return reversed(self._visible.items())

    def posts(self) -> list[dict[str, Any]]:
        """The snapshot's posts: newest first, each with ``pinned``."""
        return [{**v.post, "pinned": v.pinned} for _, v in self.newest_first()]

    def key_events(self) -> list[str]:
        """Ids of the visible posts flagged ``key_event``, newest first."""
        return [pid for pid, v in self.newest_first() if v.post.get("key_event") is True]
