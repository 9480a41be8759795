"""Timing inference: anchors, interpolation, extrapolation, ordering."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from simulator.core import timing
from simulator.core.model import Feed, Post, TimeSource

T0 = datetime(2014, 6, 25, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
EXP, INT, EXT = TimeSource.EXPLICIT, TimeSource.INTERPOLATED, TimeSource.EXTRAPOLATED
"""How each post's time was known: stated, interpolated, extrapolated."""


def feed_of(*stamps: datetime | None) -> Feed:
    """Posts ``p0``, ``p1`` … in document order; a stamp is a time the archive states."""
    posts = [
        Post(id=f"p{i}", body=f"post {i}", published_at=stamp) for i, stamp in enumerate(stamps)
    ]
    return Feed(id="f", title="F", posts=tuple(posts))


def timed(feed: Feed) -> list[tuple[str, datetime, TimeSource | None]]:
    return [(p.id, p.timed, p.time_source) for p in feed.posts]


def test_interpolates_evenly_between_anchors() -> None:
    result = timing.infer(feed_of(T0, None, None, None, T0 + 240 * MIN))
    assert timed(result) == [
        ("p0", T0, EXP),
        ("p1", T0 + 60 * MIN, INT),
        ("p2", T0 + 120 * MIN, INT),
        ("p3", T0 + 180 * MIN, INT),
        ("p4", T0 + 240 * MIN, EXP),
    ]


def test_interpolation_rounds_down_to_whole_seconds() -> None:
    result = timing.infer(feed_of(T0, None, None, T0 + timedelta(seconds=100)))
    assert [p.timed - T0 for p in result.posts] == [
        timedelta(0),
        timedelta(seconds=33),
        timedelta(seconds=66),
        timedelta(seconds=100),
    ]
    assert all(p.timed.microsecond == 0 for p in result.posts)


def test_interpolates_each_gap_between_its_own_anchors() -> None:
    result = timing.infer(feed_of(T0, None, T0 + 10 * MIN, None, None, None, T0 + 90 * MIN))
    assert [p.timed - T0 for p in result.posts] == [
        0 * MIN,
        5 * MIN,
        10 * MIN,
        30 * MIN,
        50 * MIN,
        70 * MIN,
        90 * MIN,
    ]


def test_extrapolates_before_and_after_with_observed_cadence() -> None:
    # Anchors at posts 2 and 6, 40 minutes apart: cadence 10 minutes a post.
    result = timing.infer(feed_of(None, None, T0, None, None, None, T0 + 40 * MIN, None, None))
    assert timed(result) == [
        ("p0", T0 - 20 * MIN, EXT),
        ("p1", T0 - 10 * MIN, EXT),
        ("p2", T0, EXP),
        ("p3", T0 + 10 * MIN, INT),
        ("p4", T0 + 20 * MIN, INT),
        ("p5", T0 + 30 * MIN, INT),
        ("p6", T0 + 40 * MIN, EXP),
        ("p7", T0 + 50 * MIN, EXT),
        ("p8", T0 + 60 * MIN, EXT),
    ]


def test_cadence_spans_first_to_last_anchor() -> None:
    # Anchors at 0, 1 and 4 over 600 s: cadence 150 s, whatever the spacing in between.
    result = timing.infer(feed_of(T0, T0 + 10 * MIN, None, None, T0 + 10 * MIN, None))
    assert result.posts[-1].timed == T0 + timedelta(seconds=750)
    assert result.posts[-1].time_source is EXT


def test_single_anchor_uses_default_cadence() -> None:
    assert timing.DEFAULT_CADENCE == 5 * MIN
    result = timing.infer(feed_of(None, None, T0, None))
    assert timed(result) == [
        ("p0", T0 - 10 * MIN, EXT),
        ("p1", T0 - 5 * MIN, EXT),
        ("p2", T0, EXP),
        ("p3", T0 + 5 * MIN, EXT),
    ]


def test_no_anchors_and_no_date_start_at_the_epoch() -> None:
    result = timing.infer(feed_of(None, None, None))
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert timed(result) == [
        ("p0", epoch, EXT),
        ("p1", epoch + 5 * MIN, EXT),
        ("p2", epoch + 10 * MIN, EXT),
    ]


def test_no_anchors_with_a_date_start_at_its_midnight() -> None:
    result = timing.infer(feed_of(None, None), date(2014, 6, 25))
    assert timed(result) == [
        ("p0", datetime(2014, 6, 25, tzinfo=UTC), EXT),
        ("p1", datetime(2014, 6, 25, 0, 5, tzinfo=UTC), EXT),
    ]


def test_no_anchors_with_a_date_in_a_zone() -> None:
    result = timing.infer(feed_of(None, None), date(2014, 6, 25), ZoneInfo("Asia/Qatar"))
    assert [p.timed for p in result.posts] == [
        datetime(2014, 6, 24, 21, 0, tzinfo=UTC),
        datetime(2014, 6, 24, 21, 5, tzinfo=UTC),
    ]


def test_single_post_without_time() -> None:
    result = timing.infer(feed_of(None), date(2014, 6, 25))
    assert timed(result) == [("p0", datetime(2014, 6, 25, tzinfo=UTC), EXT)]


def test_newest_first_input_is_reversed() -> None:
    result = timing.infer(feed_of(T0 + 120 * MIN, None, T0 + 60 * MIN, None, T0))
    assert timed(result) == [
        ("p4", T0, EXP),
        ("p3", T0 + 30 * MIN, INT),
        ("p2", T0 + 60 * MIN, EXP),
        ("p1", T0 + 90 * MIN, INT),
        ("p0", T0 + 120 * MIN, EXP),
    ]


def test_newest_first_extrapolates_at_the_right_ends() -> None:
    # Newest first, the document's first post is the latest one.
    result = timing.infer(feed_of(None, T0 + 10 * MIN, T0, None))
    assert timed(result) == [
        ("p3", T0 - 10 * MIN, EXT),
        ("p2", T0, EXP),
        ("p1", T0 + 10 * MIN, EXP),
        ("p0", T0 + 20 * MIN, EXT),
    ]


def test_backwards_explicit_time_is_kept_but_not_an_anchor() -> None:
    # p3 says 12:10, after p2 said 13:00: it keeps its time, but p4 is placed between p2 and p5.
    result = timing.infer(feed_of(T0, None, T0 + 60 * MIN, T0 + 10 * MIN, None, T0 + 120 * MIN))
    assert timed(result) == [
        ("p0", T0, EXP),
        ("p3", T0 + 10 * MIN, EXP),
        ("p1", T0 + 30 * MIN, INT),
        ("p2", T0 + 60 * MIN, EXP),
        ("p4", T0 + 100 * MIN, INT),
        ("p5", T0 + 120 * MIN, EXP),
    ]


def test_stated_time_source_is_kept() -> None:
    posts = (
        Post(id="a", body="a", published_at=T0, time_source=TimeSource.INTERPOLATED),
        Post(id="b", body="b", published_at=T0 + MIN),
    )
    result = timing.infer(Feed(id="f", title="F", posts=posts))
    assert [p.time_source for p in result.posts] == [INT, EXP]


def test_feed_fields_other_than_posts_are_kept() -> None:
    feed = Feed(
        id="f",
        title="F",
        description="d",
        timezone="Asia/Qatar",
        extra={"k": 1},
        posts=feed_of(None, T0).posts,
    )
    result = timing.infer(feed)
    assert (result.id, result.title, result.description, result.timezone, result.extra) == (
        "f",
        "F",
        "d",
        "Asia/Qatar",
        {"k": 1},
    )


def test_deterministic() -> None:
    feed = feed_of(None, T0, None, None, T0 + 7 * MIN, None, T0 + 3 * MIN, None)
    assert timing.infer(feed) == timing.infer(feed)
    assert timing.infer(timing.infer(feed)) == timing.infer(feed)


# Properties over random layouts of anchors


def _layout(offsets: list[int | None]) -> Feed:
    return feed_of(*(None if o is None else T0 + timedelta(seconds=o) for o in offsets))


def _check_invariants(before: Feed, after: Feed) -> None:
    assert len(after.posts) == len(before.posts)
    assert sorted(p.id for p in after.posts) == sorted(p.id for p in before.posts)
    times = [p.timed for p in after.posts]
    assert times == sorted(times)
    stated = {p.id: p.published_at for p in before.posts if p.published_at is not None}
    for post in after.posts:
        assert post.time_source is not None
        assert post.published_at is not None and post.published_at.tzinfo is not None
        if post.id in stated:
            assert post.published_at == stated[post.id]
            assert post.time_source is EXP
        else:
            assert post.time_source in (INT, EXT)


@given(
    st.lists(
        st.one_of(st.none(), st.integers(min_value=0, max_value=10**6)), min_size=1, max_size=40
    )
)
def test_any_layout_is_non_decreasing_with_explicit_times_unchanged(
    offsets: list[int | None],
) -> None:
    feed = _layout(offsets)
    result = timing.infer(feed)
    _check_invariants(feed, result)
    assert timing.infer(feed) == result


@given(
    st.lists(st.integers(min_value=0, max_value=10**5), min_size=1, max_size=12),
    st.lists(st.booleans(), min_size=1, max_size=40),
)
def test_ordered_anchors_keep_document_order(gaps: list[int], mask: list[bool]) -> None:
    """Oldest-first anchors: posts stay in document order and inferred times lie between."""
    stamps = [sum(gaps[: k + 1]) for k in range(len(gaps))]
    offsets: list[int | None] = []
    for stated in mask:
        offsets.append(stamps.pop(0) if stated and stamps else None)
    feed = _layout(offsets)
    result = timing.infer(feed)
    _check_invariants(feed, result)
    assert [p.id for p in result.posts] == [p.id for p in feed.posts]
    anchors = [i for i, o in enumerate(offsets) if o is not None]
    for i, post in enumerate(result.posts):
        if anchors and anchors[0] < i < anchors[-1]:
            assert post.time_source in (EXP, INT)
        elif offsets[i] is None:
            assert post.time_source is EXT
