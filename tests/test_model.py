"""``core/model.py``: archive errors that name their place, times in UTC, slugs and stable ids,
and the size bounds every importer checks a post against."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from core_helpers import make_feed, make_post

from simulator.core.model import (
    MAX_BODY_BYTES,
    MAX_MEDIA,
    MAX_MEDIA_COUNT,
    MAX_TEXT_BYTES,
    MAX_URL_BYTES,
    SLUG_LENGTH,
    ArchiveError,
    Media,
    Post,
    assign_ids,
    check_post_size,
    depth,
    format_time,
    oversize,
    post_oversize,
    slug,
    utc,
)


def test_archive_error_names_file_and_line_when_known() -> None:
    assert str(ArchiveError("bad", source="a.jsonl", line=3)) == "a.jsonl:3: bad"
    assert str(ArchiveError("bad", line=3)) == "3: bad"
    assert str(ArchiveError("bad")) == "bad"
    moved = ArchiveError("bad", line=3).at("b.jsonl")
    assert (str(moved), moved.line, moved.message) == ("b.jsonl:3: bad", 3, "bad")


def test_times_are_utc_with_a_z() -> None:
    naive = datetime(2014, 6, 12, 8, 0)
    assert utc(naive) == datetime(2014, 6, 12, 8, 0, tzinfo=UTC)
    baghdad = datetime(2014, 6, 12, 11, 0, tzinfo=timezone(timedelta(hours=3)))
    assert utc(baghdad) == datetime(2014, 6, 12, 8, 0, tzinfo=UTC)
    assert format_time(baghdad) == "2014-06-12T08:00:00Z"
    assert format_time(naive.replace(microsecond=5)) == "2014-06-12T08:00:00.000005Z"


def test_a_post_without_a_time_says_so() -> None:
    with pytest.raises(ValueError, match="post x has no time"):
        _ = Post(id="x", body="b").timed


def test_feed_lookup_and_replacement() -> None:
    feed = make_feed([0, 10])
    assert feed.post("p1") is feed.posts[1]
    with pytest.raises(KeyError):
        feed.post("nope")
    assert feed.with_posts(reversed(feed.posts)).posts == feed.posts[::-1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Iraq crisis: live updates", "iraq-crisis-live-updates"),
        ("  ¡Ünïcode!  ", "n-code"),
        ("", "feed"),
        ("!!!", "feed"),
    ],
)
def test_slug(text: str, expected: str) -> None:
    assert slug(text) == expected


def test_a_slug_is_bounded_and_never_ends_in_a_dash() -> None:
    long = slug("word " * 100_000)
    assert len(long) <= SLUG_LENGTH and not long.endswith("-")
    assert slug("", default="untitled") == "untitled"


def test_assigned_ids_are_stable_and_tell_twins_apart() -> None:
    posts = [Post(id="", body="same"), Post(id="", body="same"), Post(id="kept", body="x")]
    again = list(posts)
    assign_ids(posts)
    assign_ids(again)
    assert posts == again
    assert posts[0].id.startswith("p-") and len(posts[0].id) == 12
    assert posts[1].id == posts[0].id + "-2"
    assert posts[2].id == "kept"


def test_oversize_counts_utf8_bytes() -> None:
    assert oversize("a" * 10, 10) is None
    assert oversize("é" * 6, 10) == "12 bytes, at most 10"
    assert oversize("\ud800" * 4, 10) == "12 bytes, at most 10"  # a lone surrogate still counts


@pytest.mark.parametrize(
    ("value", "expected"), [(1, 0), ("s", 0), ([], 1), ({"a": [1]}, 2), ([[[{}]]], 4)]
)
def test_depth(value: object, expected: int) -> None:
    assert depth(value) == expected


def test_deep_nesting_is_measured_without_recursion() -> None:
    value: object = 0
    for _ in range(100_000):
        value = [value]
    assert depth(value) == 100_000


def test_posts_within_bounds_pass_unchanged() -> None:
    post = make_post(0, 0)
    assert check_post_size(post) is post
    assert list(post_oversize(post)) == []


def test_each_field_over_its_bound_is_named() -> None:
    post = replace(
        make_post(0, 0),
        body="b" * (MAX_BODY_BYTES + 1),
        headline="h" * (MAX_TEXT_BYTES + 1),
        media=(
            Media("image", url="u" * (MAX_URL_BYTES + 1)),
            Media("gallery", count=MAX_MEDIA_COUNT + 1),
        ),
    )
    assert [p.split(":")[0] for p in post_oversize(post)] == [
        "headline",
        "body",
        "media[0].url",
        "media[1].count",
    ]
    with pytest.raises(ArchiveError) as info:
        check_post_size(post, line=7, where="posts[3].")
    assert str(info.value) == f"7: posts[3].headline: {MAX_TEXT_BYTES + 1} bytes, at most 4096"


def test_too_many_media_is_one_problem() -> None:
    post = replace(make_post(0, 0), media=(Media("image"),) * (MAX_MEDIA + 1))
    assert list(post_oversize(post)) == [f"media: {MAX_MEDIA + 1} items, at most {MAX_MEDIA}"]
