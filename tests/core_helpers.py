"""Synthetic feeds and a fake clock for the pure core (timeline, script, replay, wire).

No I/O and no ``simulator.core.importers``/``simulator.sources``: feeds are built from the model
directly, and "now" is just a float the test passes in.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from simulator.core.model import Feed, Post, TimeSource
from simulator.core.replay import Options, Replay
from simulator.core.script import DEFAULT_EDIT_DELAY, Script, Step, build
from simulator.core.wire import Event

T0 = datetime(2014, 6, 12, 8, 0, tzinfo=UTC)
"""The archive time of the first post (offset 0)."""

START = 1000.0
"""The fake monotonic clock's reading when a test replay is created."""

WALL_OFFSET = T0.timestamp() - START
"""A ``wall_offset`` that makes wall time equal archive time at speed 1 from ``START``."""

INCARNATION = "inc"


def make_post(index: int, offset: float, *, editor: str | None = None) -> Post:
    """Post ``p{index}`` published ``offset`` seconds after ``T0``."""
    return Post(
        id=f"p{index}",
        body=f"Body of post {index}.",
        published_at=T0 + timedelta(seconds=offset),
        time_source=TimeSource.EXPLICIT,
        headline=f"Headline {index}",
        author="Reporter",
        editor=editor,
    )


def make_feed(offsets: Sequence[float], *, edited: Collection[int] = ()) -> Feed:
    """A feed of ``len(offsets)`` posts ``p0``, ``p1`` … at those archive offsets (seconds).

    Posts whose index is in ``edited`` name an editor, so the script creates and later updates them.
    """
    posts = tuple(
        make_post(i, offset, editor="Editor" if i in edited else None)
        for i, offset in enumerate(offsets)
    )
    return Feed(id="feed", title="Synthetic feed", posts=posts)


NEWSROOM_POSTS = [
    ("Dam breached", "Water reached 1,200 homes.\n\nRescuers are on their way.\n\nMore soon."),
    (None, "Officials in Mosul said 35 people were missing."),
    ("Minister resigns", "The minister, Ahmed Karimi, resigned.\n\nHe gave no reason."),
    (None, "quiet on the streets tonight."),
    (None, "Reuters reports 12 trucks crossed the border.\n\nThe convoy carried food."),
    ("Ceasefire agreed", "Both sides agreed a ceasefire at noon."),
    (None, "photos from the city."),
    (None, "end of our coverage for today."),
]
"""(headline, body) of the scenario fixture: paragraphs, figures, names, headlines, and posts with
none of them (lower-case first words: no name to misspell)."""


def make_newsroom_feed() -> Feed:
    """Eight posts ten minutes apart, ``n0`` … ``n7``, for the scenario rules' golden scripts."""
    posts = tuple(
        Post(
            id=f"n{i}",
            body=body,
            published_at=T0 + timedelta(minutes=10 * i),
            time_source=TimeSource.EXPLICIT,
            headline=headline,
            editor="Editor" if i == 4 else None,
        )
        for i, (headline, body) in enumerate(NEWSROOM_POSTS)
    )
    return Feed(id="newsroom", title="Newsroom fixture", posts=posts)


def make_script(
    offsets: Sequence[float],
    *,
    edited: Collection[int] = (),
    scenario: Sequence[Step] = (),
    edit_delay: float = DEFAULT_EDIT_DELAY,
) -> Script:
    return build(make_feed(offsets, edited=edited), scenario, edit_delay)


def make_replay(
    offsets: Sequence[float],
    *,
    now: float = START,
    options: Options | None = None,
    edited: Collection[int] = (),
    scenario: Sequence[Step] = (),
    edit_delay: float = DEFAULT_EDIT_DELAY,
    wall_offset: float = WALL_OFFSET,
    incarnation: str = INCARNATION,
) -> Replay:
    script = make_script(offsets, edited=edited, scenario=scenario, edit_delay=edit_delay)
    return Replay(
        script,
        stream="s1",
        incarnation=incarnation,
        now=now,
        options=options or Options(),
        wall_offset=wall_offset,
    )


def envelope(event: Event) -> dict[str, Any]:
    value: dict[str, Any] = orjson.loads(event.json)
    return value


def types(events: Iterable[Event]) -> list[str]:
    return [str(e.type) for e in events]


def post_ids(events: Iterable[Event], type: str = "post.created") -> list[str]:
    """The post ids of the events of ``type``, in order."""
    return [envelope(e)["post"]["id"] for e in events if e.type == type]


def reasons(events: Iterable[Event]) -> list[str]:
    """``reason`` of every stream.state / stream.reset event, in order."""
    return [envelope(e)["data"]["reason"] for e in events if str(e.type).startswith("stream.")]


def initial_events(replay: Replay) -> list[Event]:
    """What the replay emitted while being constructed (its ``start`` state event)."""
    found = replay.since(f"{replay.incarnation}-0")
    assert found is not None
    return found


def drive(
    replay: Replay, *, until: float = float("inf"), limit: int = 100_000
) -> list[tuple[float, list[Event]]]:
    """Call ``advance(next_deadline())`` until nothing is scheduled or it is later than ``until``.

    Every call must emit something: a deadline at which nothing is due would spin a real driver.
    """
    calls: list[tuple[float, list[Event]]] = []
    for _ in range(limit):
        deadline = replay.next_deadline()
        if deadline is None or deadline > until:
            return calls
        events = replay.advance(deadline)
        assert events, f"advance({deadline!r}) at next_deadline() emitted nothing"
        calls.append((deadline, events))
    raise AssertionError(f"still scheduling after {limit} calls")


def flatten(calls: Iterable[tuple[float, list[Event]]]) -> list[Event]:
    return [event for _, events in calls for event in events]
