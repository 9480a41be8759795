"""``core/live.py``: a replay's live posts, their ids, their bounds, and the state file's copy."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from simulator.core import live
from simulator.core.archive import post_record
from simulator.core.live import LiveBudget, LivePosts, TooManyPosts, export_live, restore_live
from simulator.core.model import Post, TimeSource


def record(post_id: str, body: str = "text") -> dict[str, Any]:
    moment = datetime(2014, 6, 24, 18, 0, tzinfo=UTC)
    return post_record(
        Post(id=post_id, body=body, published_at=moment, time_source=TimeSource.EXPLICIT)
    )


def test_new_ids_skip_the_archive_and_are_never_reused() -> None:
    posts = LivePosts(reserved=frozenset({"live-2"}))
    first, second = posts.new_id(), posts.new_id()
    assert (first, second) == ("live-1", "live-3")
    assert posts.last_id == "live-3"
    posts.put(first, record(first))
    posts.remove(first)
    assert posts.new_id() == "live-4"


def test_bytes_are_counted_through_puts_edits_and_removals() -> None:
    budget = LiveBudget(10_000, "server.max_private_live_bytes")
    posts = LivePosts()
    posts.share(budget)
    posts.put("live-1", record("live-1"))
    held = budget.used
    assert held > 0
    posts.put("live-1", record("live-1", "longer text"))
    assert budget.used == held + len("longer text") - len("text")
    posts.edited("p-1", record("p-1"))
    posts.forget_edit("p-1")
    assert budget.used == held + len("longer text") - len("text")
    posts.remove("live-1")
    assert budget.used == 0 and len(posts) == 0


def test_a_shared_budget_refuses_what_would_pass_it_and_close_gives_back() -> None:
    budget = LiveBudget(600, "server.max_private_live_bytes")
    first, second = LivePosts(), LivePosts()
    first.share(budget)
    second.share(budget)
    first.put("live-1", record("live-1", "x" * 300))
    with pytest.raises(TooManyPosts) as refused:
        second.check_room({"body": "y" * 400}, new=True)
    assert refused.value.where == "server.max_private_live_bytes"
    first.close()
    assert budget.used == 0
    second.check_room({"body": "y" * 400}, new=True)


def test_the_number_of_live_posts_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "MAX_LIVE_POSTS", 2)
    posts = LivePosts()
    for number in (1, 2):
        posts.check_room({"body": "x"}, new=True)
        posts.put(f"live-{number}", record(f"live-{number}"))
    with pytest.raises(TooManyPosts) as refused:
        posts.check_room({"body": "x"}, new=True)
    assert refused.value.where == "$"
    posts.check_room({"body": "an edit is no new post"}, new=False)


def test_the_state_files_copy_restores_posts_pins_and_the_id_counter() -> None:
    posts = LivePosts()
    for _ in range(3):
        post_id = posts.new_id()
        posts.put(post_id, record(post_id))
    posts.pin("live-2", True)
    posts.remove("live-3")
    saved = export_live(posts)
    again = LivePosts()
    restore_live(again, saved, "live[0]")
    assert [(pid, p.record, p.pinned) for pid, p in again] == [
        (pid, p.record, p.pinned) for pid, p in posts
    ]
    assert again.new_id() == "live-4"  # live-3 was given once: never again


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ([], "live[0]"),
        ({"next": -1}, "live[0].next"),
        ({"posts": [{"post": {"id": "p-1", "body": "x"}}]}, "live[0].posts[0].post.published_at"),
        ({"posts": [{"post": record("live-1"), "pinned": "yes"}]}, "live[0].posts[0].pinned"),
    ],
)
def test_a_bad_saved_copy_is_refused_naming_the_place(value: Any, where: str) -> None:
    with pytest.raises(ValueError) as refused:
        restore_live(LivePosts(), value, "live[0]")
    assert str(refused.value).startswith(f"{where}: "), refused.value


def test_a_saved_post_may_not_take_an_archive_id() -> None:
    saved = {"posts": [{"post": record("p-1")}]}
    with pytest.raises(ValueError, match=r"live\[0\]\.posts\[0\]\.post\.id: 'p-1' is a post"):
        restore_live(LivePosts(reserved=frozenset({"p-1"})), saved, "live[0]")
