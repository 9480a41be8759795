"""Timing inference: give every post a time when the archive states only some of them.

Posts with a stated time are anchors. Between two anchors the others are spaced evenly by their
position; before the first and after the last they follow the observed cadence (the anchors' time
span over their post span). Whole seconds, integer arithmetic: the same input always gives the same
times, and no time ever runs backwards.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from .model import Feed, Post, TimeSource

DEFAULT_CADENCE = timedelta(minutes=5)
"""Spacing used when fewer than two anchors say what the cadence is."""

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def infer(feed: Feed, day: date | None = None, zone: tzinfo = UTC) -> Feed:
    """The feed in chronological order with every ``published_at`` and ``time_source`` set."""
    posts = list(feed.posts)
    place(posts, day, zone)
    return feed.with_posts(posts)


def place(posts: list[Post], day: date | None = None, zone: tzinfo = UTC) -> None:
    """``infer`` on a list, in place: each post replaced is freed at once (an archive's worth of
    posts is the largest thing an import holds)."""
    if not posts:
        return
    if _runs_backwards(posts):
        posts.reverse()
    anchors = _monotonic_anchors(posts)
    if not anchors:
        start = datetime.combine(day, time(), zone).astimezone(UTC) if day else EPOCH
        anchors = [(0, start)]
        posts[0] = replace(posts[0], published_at=start, time_source=TimeSource.EXTRAPOLATED)
    cadence = _cadence(anchors)
    for i, post in enumerate(posts):
        posts[i] = _time_post(i, post, anchors, cadence)
    posts.sort(key=lambda p: p.timed)


def _runs_backwards(posts: list[Post]) -> bool:
    """Newest-first documents: most consecutive stated times decrease."""
    stamps = [p.published_at for p in posts if p.published_at is not None]
    down = sum(1 for a, b in zip(stamps, stamps[1:], strict=False) if b < a)
    up = sum(1 for a, b in zip(stamps, stamps[1:], strict=False) if b > a)
    return down > up


def _monotonic_anchors(posts: list[Post]) -> list[tuple[int, datetime]]:
    """Stated times usable as anchors: those that do not run backwards from the previous one."""
    anchors: list[tuple[int, datetime]] = []
    for i, post in enumerate(posts):
        stamp = post.published_at
        if stamp is not None and (not anchors or stamp >= anchors[-1][1]):
            anchors.append((i, stamp))
    return anchors


def _cadence(anchors: list[tuple[int, datetime]]) -> int:
    if len(anchors) < 2:
        return int(DEFAULT_CADENCE.total_seconds())
    (i0, t0), (i1, t1) = anchors[0], anchors[-1]
    return int((t1 - t0).total_seconds()) // (i1 - i0)


def _time_post(i: int, post: Post, anchors: list[tuple[int, datetime]], cadence: int) -> Post:
    if post.published_at is not None:
        return post if post.time_source else replace(post, time_source=TimeSource.EXPLICIT)
    first_i, first_t = anchors[0]
    last_i, last_t = anchors[-1]
    if i < first_i:
        stamp, source = (
            first_t - timedelta(seconds=cadence * (first_i - i)),
            TimeSource.EXTRAPOLATED,
        )
    elif i > last_i:
        stamp, source = last_t + timedelta(seconds=cadence * (i - last_i)), TimeSource.EXTRAPOLATED
    else:
        (ia, ta), (ib, tb) = _bracket(i, anchors)
        span = int((tb - ta).total_seconds())
        stamp, source = (
            ta + timedelta(seconds=span * (i - ia) // (ib - ia)),
            TimeSource.INTERPOLATED,
        )
    return replace(post, published_at=stamp, time_source=source)


def _bracket(
    i: int, anchors: list[tuple[int, datetime]]
) -> tuple[tuple[int, datetime], tuple[int, datetime]]:
    """The anchors either side of post ``i`` (binary search: archives have many anchors)."""
    right = bisect_right(anchors, i, key=lambda anchor: anchor[0])
    return anchors[right - 1], anchors[right]
