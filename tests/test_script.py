"""The event script: posts, edits and scenario steps as time-ordered cues."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from core_helpers import T0, make_feed, make_post, make_script

from simulator.core.model import Feed
from simulator.core.script import ACTIONS, DEFAULT_EDIT_DELAY, Script, Step, build
from simulator.core.wire import EventType


def _cues(script: Script) -> list[tuple[float, str, str]]:
    return [(c.at, str(c.type), c.post.id) for c in script.cues]


def test_one_created_cue_per_post_in_time_order() -> None:
    script = make_script([0, 10, 70, 3600])
    assert _cues(script) == [
        (0.0, "post.created", "p0"),
        (10.0, "post.created", "p1"),
        (70.0, "post.created", "p2"),
        (3600.0, "post.created", "p3"),
    ]
    assert script.origin == T0
    assert script.feed.posts[2] is script.cues[2].post


def test_times_are_seconds_from_the_first_post() -> None:
    script = build(make_feed([0, 90]).with_posts([make_post(0, 30), make_post(1, 120.5)]))
    assert script.origin == T0 + timedelta(seconds=30)
    assert [c.at for c in script.cues] == [0.0, 90.5]
    assert script.archive_time(90.5) == T0 + timedelta(seconds=120.5)
    assert script.seconds(T0 + timedelta(seconds=120.5)) == 90.5
    assert script.seconds(script.archive_time(-12.25)) == -12.25


def test_cues_are_sorted_by_time_even_if_the_feed_is_not() -> None:
    feed = make_feed([0, 0]).with_posts([make_post(0, 0), make_post(1, 60), make_post(2, 30)])
    assert _cues(build(feed)) == [
        (0.0, "post.created", "p0"),
        (30.0, "post.created", "p2"),
        (60.0, "post.created", "p1"),
    ]


def test_ties_keep_feed_order_then_scenario_order() -> None:
    scenario = [Step("pin", "p1"), Step("pin", "p0")]
    script = make_script([0, 0, 0], scenario=scenario)
    assert _cues(script) == [
        (0.0, "post.created", "p0"),
        (0.0, "post.created", "p1"),
        (0.0, "post.created", "p2"),
        (0.0, "post.pinned", "p1"),
        (0.0, "post.pinned", "p0"),
    ]


def test_edited_post_is_created_then_updated_after_the_default_delay() -> None:
    script = make_script([0, 60, 400], edited={0})
    assert DEFAULT_EDIT_DELAY == 180.0
    assert _cues(script) == [
        (0.0, "post.created", "p0"),
        (60.0, "post.created", "p1"),
        (180.0, "post.updated", "p0"),
        (400.0, "post.created", "p2"),
    ]
    created, updated = script.cues[0].post, script.cues[2].post
    assert created.editor is None
    assert updated.editor == "Editor"
    assert updated == script.feed.posts[0]
    assert created == replace(updated, editor=None)


def test_edit_delay_is_configurable() -> None:
    script = make_script([0, 60], edited={0, 1}, edit_delay=30.0)
    assert _cues(script) == [
        (0.0, "post.created", "p0"),
        (30.0, "post.updated", "p0"),
        (60.0, "post.created", "p1"),
        (90.0, "post.updated", "p1"),
    ]


def test_zero_edit_delay_still_creates_before_updating() -> None:
    script = make_script([0], edited={0}, edit_delay=0.0)
    assert _cues(script) == [(0.0, "post.created", "p0"), (0.0, "post.updated", "p0")]


def test_empty_editor_is_not_an_edit() -> None:
    feed = make_feed([0]).with_posts([replace(make_post(0, 0), editor="")])
    assert _cues(build(feed)) == [(0.0, "post.created", "p0")]


@pytest.mark.parametrize(
    ("action", "type"),
    [
        ("pin", "post.pinned"),
        ("unpin", "post.unpinned"),
        ("delete", "post.deleted"),
        ("update", "post.updated"),
    ],
)
def test_scenario_step_at_time_after_its_posts_creation(action: str, type: str) -> None:
    script = make_script([0, 100, 200], scenario=[Step(action, "p1", after=50.0)])
    assert _cues(script) == [
        (0.0, "post.created", "p0"),
        (100.0, "post.created", "p1"),
        (150.0, type, "p1"),
        (200.0, "post.created", "p2"),
    ]
    assert script.cues[2].post is script.feed.posts[1]


def test_scenario_steps_combine() -> None:
    scenario = [
        Step("pin", "p0", after=10),
        Step("unpin", "p0", after=250),
        Step("delete", "p1", after=0),
        Step("update", "p2"),
    ]
    script = make_script([0, 60, 120], scenario=scenario)
    assert _cues(script) == [
        (0.0, "post.created", "p0"),
        (10.0, "post.pinned", "p0"),
        (60.0, "post.created", "p1"),
        (60.0, "post.deleted", "p1"),
        (120.0, "post.created", "p2"),
        (120.0, "post.updated", "p2"),
        (250.0, "post.unpinned", "p0"),
    ]
    assert set(ACTIONS) == {"pin", "unpin", "delete", "update"}
    assert ACTIONS["delete"] is EventType.POST_DELETED


def test_unknown_action_names_the_step() -> None:
    """Steps are numbered from 0, like the JSON/TOML path of the scenario list."""
    scenario = [Step("pin", "p0"), Step("star", "p0")]
    with pytest.raises(ValueError) as info:
        make_script([0], scenario=scenario)
    assert str(info.value) == "scenario[1].action: 'star' is not one of pin, unpin, delete, update"


def test_unknown_post_names_the_step() -> None:
    with pytest.raises(ValueError) as info:
        make_script(
            [0, 10], scenario=[Step("pin", "p1"), Step("delete", "p0"), Step("delete", "nope")]
        )
    assert str(info.value) == "scenario[2].post: no post with id 'nope'"


def test_action_is_checked_before_post() -> None:
    with pytest.raises(ValueError, match=r"^scenario\[0\]\.action: "):
        make_script([0], scenario=[Step("star", "nope")])


def test_empty_feed_is_an_error() -> None:
    with pytest.raises(ValueError, match="no posts"):
        build(Feed(id="f", title="F", posts=()))


def test_untimed_post_is_an_error() -> None:
    feed = make_feed([0]).with_posts([replace(make_post(0, 0), published_at=None)])
    with pytest.raises(ValueError, match="post p0 has no time"):
        build(feed)


def test_created_index() -> None:
    script = make_script([0, 60, 120], edited={0}, edit_delay=90)
    # cues: p0 created, p1 created, p0 updated, p2 created
    assert [script.created_index(p) for p in ("p0", "p1", "p2")] == [0, 1, 3]
    with pytest.raises(KeyError):
        script.created_index("p9")


def test_build_does_not_change_the_feed() -> None:
    feed = make_feed([0, 60], edited={1})
    before = feed.posts
    script = build(feed, [Step("pin", "p0")])
    assert feed.posts == before
    assert script.feed is feed
    assert isinstance(script.cues, tuple)


def test_cue_past_year_9999_is_refused() -> None:
    """A far-future archive plus a scenario delay must fail at build, not when replayed."""
    late = datetime(9999, 12, 31, 23, 0, tzinfo=UTC)
    feed = make_feed([0, 60])
    feed = replace(feed, posts=tuple(replace(p, published_at=late) for p in feed.posts))
    with pytest.raises(ValueError, match=r"^scenario\[0\]\.after: lands after the year 9999"):
        build(feed, [Step("pin", "p0", 7200)])
    edited = replace(feed, posts=(replace(feed.posts[0], editor="Ed"),))
    with pytest.raises(ValueError, match=r"^edit_delay: lands after the year 9999"):
        build(edited, edit_delay=7200)
