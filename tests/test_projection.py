"""``core/projection.py``: what a reader sees now, changed by each post event in one way."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from simulator.core.projection import Projection
from simulator.core.wire import EventType

MAX_BYTES = 1 << 20


def record(post_id: str, body: str = "") -> dict[str, Any]:
    return {"id": post_id, "body": body or post_id}


def shown(view: Projection) -> list[tuple[str, str, bool]]:
    return [(pid, v.post["body"], v.pinned) for pid, v in view.newest_first()]


def test_posts_are_newest_first_and_keep_their_place_when_edited_or_pinned() -> None:
    view = Projection()
    for post_id in ("a", "b", "c"):
        view.apply(EventType.POST_CREATED, post_id, record(post_id))
    view.apply(EventType.POST_UPDATED, "a", record("a", "A2"))
    view.apply(EventType.POST_PINNED, "b", record("b"))
    assert shown(view) == [("c", "c", False), ("b", "b", True), ("a", "A2", False)]
    view.apply(EventType.POST_UNPINNED, "b", record("b"))
    view.apply(EventType.POST_DELETED, "c", record("c"))
    assert shown(view) == [("b", "b", False), ("a", "A2", False)]
    assert "c" not in view and len(view) == 2


def test_changes_to_a_post_that_is_not_visible_change_nothing() -> None:
    view = Projection()
    view.apply(EventType.POST_CREATED, "a", record("a"))
    for kind in (EventType.POST_UPDATED, EventType.POST_PINNED, EventType.POST_DELETED):
        view.apply(kind, "gone", record("gone"))
    assert shown(view) == [("a", "a", False)]


def test_a_post_created_again_keeps_its_pin() -> None:
    view = Projection()
    view.apply(EventType.POST_CREATED, "a", record("a"))
    view.apply(EventType.POST_PINNED, "a", record("a"))
    view.apply(EventType.POST_CREATED, "a", record("a", "again"))
    assert shown(view) == [("a", "again", True)]


def test_an_event_that_is_no_post_event_raises() -> None:
    with pytest.raises(ValueError, match="not a post event"):
        Projection().apply(EventType.STREAM_STATE, "a", record("a"))


def test_the_encoding_is_shared_until_the_next_change() -> None:
    view = Projection()
    view.apply(EventType.POST_CREATED, "a", record("a"))
    first = view.encoded(MAX_BYTES)
    assert view.encoded(MAX_BYTES) is first
    view.apply(EventType.POST_CREATED, "b", record("b"))
    second = view.encoded(MAX_BYTES)
    assert second is not first
    posts = orjson.loads(b"{" + second.body)["posts"]
    assert [p["id"] for p in posts] == ["b", "a"]
    view.clear()
    assert len(view) == 0 and view.encoded(MAX_BYTES) is not second
