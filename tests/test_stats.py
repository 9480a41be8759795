"""``core/stats.py``: the figures ``livesim inspect`` prints, on feeds whose answers are known."""

from __future__ import annotations

from dataclasses import replace

import pytest
from core_helpers import make_feed

from simulator.core.model import Feed, TimeSource
from simulator.core.stats import duration, render, summarize


def test_summary_of_a_known_feed() -> None:
    feed = make_feed([0, 60, 180, 600, 3600])  # gaps 60, 120, 420, 3000 s over one hour
    summary = summarize(feed)
    assert summary["feed"] == "feed" and summary["title"] == "Synthetic feed"
    assert summary["posts"] == 5
    assert summary["first"] == "2014-06-12T08:00:00Z"
    assert summary["last"] == "2014-06-12T09:00:00Z"
    assert summary["span_seconds"] == 3600.0
    assert summary["times"] == {"explicit": 5, "interpolated": 0, "extrapolated": 0}
    assert summary["gap_seconds"] == {"median": 120.0, "p90": 3000.0, "max": 3000.0}
    assert summary["posts_per_hour"] == 5.0


def test_quantiles_are_gaps_that_occurred() -> None:
    gaps = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    offsets = [float(sum(gaps[:i])) for i in range(len(gaps) + 1)]
    summary = summarize(make_feed(offsets))
    assert summary["gap_seconds"] == {"median": 5.0, "p90": 9.0, "max": 10.0}


def test_how_times_were_known_is_counted_by_source() -> None:
    feed = make_feed([0, 10, 20])
    posts = (
        feed.posts[0],
        replace(feed.posts[1], time_source=TimeSource.INTERPOLATED),
        replace(feed.posts[2], time_source=TimeSource.EXTRAPOLATED),
    )
    times = summarize(feed.with_posts(posts))["times"]
    assert times == {"explicit": 1, "interpolated": 1, "extrapolated": 1}


@pytest.mark.parametrize("offsets", [[], [0.0], [5.0, 5.0]])
def test_feeds_without_a_span_have_no_rate(offsets: list[float]) -> None:
    summary = summarize(make_feed(offsets))
    assert summary["posts_per_hour"] is None
    assert summary["span_seconds"] == 0.0
    if not offsets:
        assert summary["first"] is None and summary["last"] is None
        assert summary["gap_seconds"] == {"median": None, "p90": None, "max": None}


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0, "0s"), (59.4, "59s"), (59.6, "1m00s"), (61, "1m01s"), (3725, "1h02m05s")],
)
def test_duration(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text


def test_render_lays_the_summary_out_line_by_line() -> None:
    text = render(summarize(make_feed([0, 60, 180, 600, 3600])))
    assert text.splitlines() == [
        "feed      feed  (Synthetic feed)",
        "posts     5",
        "span      2014-06-12T08:00:00Z .. 2014-06-12T09:00:00Z  (1h00m00s)",
        "times     5 explicit, 0 interpolated, 0 extrapolated",
        "gaps      median 2m00s, p90 50m00s, max 50m00s",
        "rate      5.0 posts/hour",
    ]


def test_an_empty_feed_renders() -> None:
    lines = render(summarize(Feed("e", "Empty", ()))).splitlines()
    assert lines[1] == "posts     0" and lines[2] == "span      None .. None  (0s)"
