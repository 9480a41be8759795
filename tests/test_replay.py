"""The replay state machine, driven by a fake clock: timing, commands, loop, snapshot, resume."""

from __future__ import annotations

import math
from dataclasses import dataclass
from dataclasses import replace as dataclass_replace
from typing import Any

import pytest
from core_helpers import (
    INCARNATION,
    START,
    WALL_OFFSET,
    drive,
    envelope,
    flatten,
    initial_events,
    make_replay,
    post_ids,
    reasons,
    types,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.core import live
from simulator.core.archive import post_record
from simulator.core.commands import MAX_STEP
from simulator.core.commands import Step as StepCommand
from simulator.core.errors import InputError
from simulator.core.live import TooManyPosts, UnknownPost
from simulator.core.replay import (
    MAX_BATCH,
    CreatePost,
    DeletePost,
    Options,
    Pause,
    PinPost,
    Replay,
    Restart,
    Resume,
    Seek,
    SetSpeed,
    UpdatePost,
)
from simulator.core.script import Script, Step
from simulator.core.timeline import MAX_SPEED
from simulator.core.wire import Event, EventType, wall_time

P5 = [0, 60, 120, 180, 240]
"""Five posts a minute apart."""


def due_at(event: Event) -> str:
    value: str = envelope(event)["due_at"]
    return value


def wall(now: float) -> str:
    """The ``due_at`` text for fake-clock time ``now`` (wall time = archive time at speed 1)."""
    return wall_time(now + WALL_OFFSET)


def serials(events: list[Event]) -> list[int]:
    return [e.serial for e in events]


def visible(replay: Replay, now: float) -> list[tuple[str, bool]]:
    return [(p["id"], p["pinned"]) for p in replay.snapshot(now)["posts"]]


# Start ------------------------------------------------------------------------------------


def test_construction_emits_a_start_state() -> None:
    replay = make_replay(P5)
    [start] = initial_events(replay)
    body = envelope(start)
    assert body["id"] == "inc-1" == replay.cursor
    assert body["type"] == "stream.state"
    assert body["data"] == {
        "reason": "start",
        "state": "playing",
        "timestamps": "archive",
        "speed": 1,
        "loop": False,
        "max_gap": None,
        "position": {"archive_time": "2014-06-12T08:00:00Z", "index": 0, "total": 5, "lap": 0},
        "cursor": "inc-1",
    }
    assert replay.next_deadline() == START
    assert replay.snapshot(START)["posts"] == []


def test_start_at_a_post_applies_earlier_cues_silently() -> None:
    replay = make_replay(P5, options=Options(start="p2"))
    assert visible(replay, START) == [("p1", False), ("p0", False)]
    assert replay.next_deadline() == START
    calls = drive(replay)
    assert [post_ids(events) for _, events in calls] == [["p2"], ["p3"], ["p4"]]
    assert [now for now, _ in calls] == [START, START + 60, START + 120]


def test_start_paused() -> None:
    replay = make_replay(P5, options=Options(paused=True))
    assert replay.state == "paused"
    assert replay.next_deadline() is None
    assert replay.advance(START + 1e6) == []
    events = replay.apply(Resume(), START + 500)
    assert reasons(events) == ["resume"]
    assert replay.next_deadline() == START + 500


def test_invalid_start_raises() -> None:
    with pytest.raises(ValueError, match=r"^start: 'nope' is not a post id"):
        make_replay(P5, options=Options(start="nope"))


# Timing -----------------------------------------------------------------------------------


def test_speed_1_events_at_exact_deadlines() -> None:
    replay = make_replay([0, 10, 70, 3600, 3600.5])
    calls = drive(replay)
    assert [now for now, _ in calls] == [
        START,
        START + 10,
        START + 70,
        START + 3600,
        START + 3600.5,
    ]
    assert [types(events) for _, events in calls] == [
        ["post.created"],
        ["post.created"],
        ["post.created"],
        ["post.created"],
        ["post.created", "stream.state"],
    ]
    assert post_ids(flatten(calls)) == ["p0", "p1", "p2", "p3", "p4"]


def test_speed_60_events_at_exact_deadlines() -> None:
    replay = make_replay([0, 60, 90, 3600], options=Options(speed=60))
    calls = drive(replay)
    assert [now for now, _ in calls] == [START, START + 1, START + 1.5, START + 60]
    assert post_ids(flatten(calls)) == ["p0", "p1", "p2", "p3"]


@pytest.mark.parametrize("speed", [0.3, 1.0, 3.0, 7.0, 60.0, 1000.0])
@pytest.mark.parametrize("start", [START, 12_345.678, 987_654.321])
def test_every_deadline_makes_progress(speed: float, start: float) -> None:
    """``advance(next_deadline())`` emits the next event even where rounding would fight it."""
    offsets = [0, 7, 13, 101, 999, 1000.1, 3333.3]
    replay = make_replay(offsets, now=start, options=Options(speed=speed))
    calls = drive(replay)
    assert post_ids(flatten(calls)) == [f"p{i}" for i in range(len(offsets))]
    for (now, _), offset in zip(calls, offsets, strict=True):
        assert now == pytest.approx(start + offset / speed, abs=1e-6)


def test_nothing_before_the_deadline() -> None:
    replay = make_replay(P5)
    replay.advance(START)
    assert replay.advance(START + 59.999) == []
    assert post_ids(replay.advance(START + 60)) == ["p1"]


def test_late_advance_emits_everything_due_with_scheduled_due_at() -> None:
    replay = make_replay(P5)
    events = replay.advance(START + 150)
    assert post_ids(events) == ["p0", "p1", "p2"]
    assert [due_at(e) for e in events] == [wall(START), wall(START + 60), wall(START + 120)]
    assert replay.next_deadline() == START + 180


def test_due_at_and_archive_time() -> None:
    replay = make_replay([0, 10.25, 7200], options=Options(speed=60))
    events = flatten(drive(replay))
    posts = [envelope(e) for e in events if e.type == "post.created"]
    assert [p["due_at"] for p in posts] == [
        "2014-06-12T08:00:00.000Z",
        wall(START + 10.25 / 60),
        "2014-06-12T08:02:00.000Z",
    ]
    assert [p["archive_time"] for p in posts] == [
        "2014-06-12T08:00:00Z",
        "2014-06-12T08:00:10.250000Z",
        "2014-06-12T10:00:00Z",
    ]


def test_ids_are_consecutive_serials() -> None:
    replay = make_replay(P5)
    events = initial_events(replay) + flatten(drive(replay))
    assert [e.id for e in events] == [f"inc-{n}" for n in range(1, len(events) + 1)]
    assert serials(events) == list(range(1, len(events) + 1))


def test_ten_hours_at_speed_1_without_drift() -> None:
    """36 001 posts a second apart: each one due exactly at start + k."""
    start = 12_345.678
    replay = make_replay(range(36_001), now=start)
    k = 0
    while (deadline := replay.next_deadline()) is not None:
        assert abs(deadline - (start + k)) < 1e-6, k
        events = replay.advance(deadline)
        assert events[0].type == "post.created"
        k += 1
    assert k == 36_001
    assert replay.state == "ended"


# Pause, resume, speed ---------------------------------------------------------------------


def test_pause_stops_and_resume_continues_without_skipping_or_repeating() -> None:
    replay = make_replay([0, 60, 120])
    assert post_ids(replay.advance(START)) == ["p0"]
    events = replay.apply(Pause(), START + 20)
    assert types(events) == ["stream.state"]
    assert envelope(events[0])["data"]["state"] == "paused"
    assert replay.state == "paused"
    assert replay.next_deadline() is None
    assert replay.advance(START + 100) == []
    assert replay.advance(START + 10_000) == []
    events = replay.apply(Resume(), START + 500)
    assert reasons(events) == ["resume"]
    assert replay.state == "playing"
    assert replay.next_deadline() == START + 540
    calls = drive(replay)
    assert [now for now, _ in calls] == [START + 540, START + 600]
    assert post_ids(flatten(calls)) == ["p1", "p2"]


def test_pause_emits_what_was_already_due_first() -> None:
    replay = make_replay([0, 60, 120])
    events = replay.apply(Pause(), START + 65)
    assert types(events) == ["post.created", "post.created", "stream.state"]
    assert post_ids(events) == ["p0", "p1"]
    assert due_at(events[1]) == wall(START + 60)
    replay.apply(Resume(), START + 100)
    assert replay.next_deadline() == START + 155


def test_pause_twice_and_resume_twice_are_harmless() -> None:
    replay = make_replay([0, 60])
    replay.advance(START)
    replay.apply(Pause(), START + 10)
    replay.apply(Pause(), START + 20)
    replay.apply(Resume(), START + 30)
    replay.apply(Resume(), START + 40)
    assert replay.next_deadline() == START + 80


@pytest.mark.parametrize(("speed", "after"), [(2.0, 15.0), (0.5, 60.0), (30.0, 1.0), (1.0, 30.0)])
def test_speed_change_mid_gap(speed: float, after: float) -> None:
    """A 60 s gap at speed 1, speed changed after 30 s: the rest takes 30 / speed."""
    replay = make_replay([0, 60])
    replay.advance(START)
    events = replay.apply(SetSpeed(speed), START + 30)
    assert reasons(events) == ["speed"]
    assert envelope(events[0])["data"]["speed"] == speed
    assert replay.next_deadline() == START + 30 + after
    [(now, created)] = drive(replay)[:1]
    assert now == START + 30 + after
    assert post_ids(created) == ["p1"]
    assert due_at(created[0]) == wall(START + 30 + after)


def test_speed_change_while_paused() -> None:
    replay = make_replay([0, 60])
    replay.advance(START)
    replay.apply(Pause(), START + 30)
    replay.apply(SetSpeed(3.0), START + 100)
    assert replay.next_deadline() is None
    replay.apply(Resume(), START + 200)
    assert replay.next_deadline() == START + 210


# Seek -------------------------------------------------------------------------------------


def test_seek_forward_emits_skipped_posts_at_once_then_continues() -> None:
    replay = make_replay(P5)
    replay.advance(START)
    events = replay.apply(Seek.parse("p3"), START + 10)
    assert types(events) == ["post.created", "post.created", "stream.state"]
    assert post_ids(events) == ["p1", "p2"]
    assert [due_at(e) for e in events] == [wall(START + 10)] * 3
    assert reasons(events) == ["seek"]
    assert envelope(events[-1])["data"]["position"]["index"] == 3
    # The target post itself is due right away, then the original spacing resumes.
    calls = drive(replay)
    assert [now for now, _ in calls] == [START + 10, START + 70]
    assert post_ids(flatten(calls)) == ["p3", "p4"]


def test_seek_backward_resets_then_continues_from_the_earlier_post() -> None:
    replay = make_replay(P5)
    before = flatten(drive(replay, until=START + 120))
    assert post_ids(before) == ["p0", "p1", "p2"]
    events = replay.apply(Seek.parse("p1"), START + 130)
    assert types(events) == ["stream.reset", "stream.state"]
    assert envelope(events[0])["data"] == {"reason": "seek"}
    assert envelope(events[0])["archive_time"] is None
    assert reasons(events) == ["seek", "seek"]
    assert visible(replay, START + 130) == [("p0", False)]
    calls = drive(replay)
    assert [now for now, _ in calls] == [START + 130, START + 190, START + 250, START + 310]
    assert post_ids(flatten(calls)) == ["p1", "p2", "p3", "p4"]
    assert visible(replay, START + 400) == [(f"p{i}", False) for i in (4, 3, 2, 1, 0)]


def test_seek_backward_within_a_gap_without_crossing_a_post_is_no_reset() -> None:
    replay = make_replay(P5)
    replay.advance(START + 10)
    events = replay.apply(Seek.parse("-5s"), START + 40)
    assert types(events) == ["stream.state"]
    assert replay.next_deadline() == START + 65


@pytest.mark.parametrize(
    "to",
    [
        "2014-06-12T08:01:30Z",
        "2014-06-12T08:01:30+00:00",
        "2014-06-12T10:01:30+02:00",
        "2014-06-12T08:01:30",
        " 2014-06-12T08:01:30.000Z ",
    ],
)
def test_seek_to_an_iso_time(to: str) -> None:
    replay = make_replay(P5)
    replay.advance(START)
    events = replay.apply(Seek.parse(to), START + 10)
    assert post_ids(events) == ["p1"]
    assert envelope(events[-1])["data"]["position"]["archive_time"] == "2014-06-12T08:01:30Z"
    assert replay.next_deadline() == START + 40


def test_seek_to_a_time_before_the_first_post() -> None:
    replay = make_replay(P5)
    replay.advance(START + 60)
    events = replay.apply(Seek.parse("2014-06-12T07:59:00Z"), START + 100)
    assert types(events) == ["stream.reset", "stream.state"]
    # Clamped to the first post, which is then due at once rather than a minute later.
    assert replay.next_deadline() == START + 100


def test_seek_to_a_time_after_the_last_post_ends_the_replay() -> None:
    replay = make_replay(P5)
    replay.advance(START + 60)
    events = replay.apply(Seek.parse("2014-06-13T00:00:00Z"), START + 100)
    assert [e for e in types(events) if e == "post.created"] == ["post.created"] * 3
    assert types(replay.advance(START + 100)) == ["stream.state"]
    assert replay.state == "ended"


def test_seek_relative_offsets() -> None:
    replay = make_replay([0, 300, 600, 900, 1200])
    replay.advance(START)
    events = replay.apply(Seek.parse("+10m"), START)
    assert post_ids(events) == ["p1"]
    assert post_ids(replay.advance(START)) == ["p2"]  # exactly at the target
    assert replay.next_deadline() == START + 300
    events = replay.apply(Seek.parse("-5m"), START + 60)  # position 660 → 360
    assert types(events) == ["stream.reset", "stream.state"]
    assert visible(replay, START + 60) == [("p1", False), ("p0", False)]
    assert replay.next_deadline() == START + 60 + 240


def test_seek_relative_before_the_start_clamps_to_the_start() -> None:
    replay = make_replay(P5)
    replay.advance(START + 70)
    events = replay.apply(Seek.parse("-1h"), START + 80)
    assert types(events) == ["stream.reset", "stream.state"]
    assert replay.next_deadline() == START + 80
    assert post_ids(replay.advance(START + 80)) == ["p0"]


def test_relative_seek_counts_archive_time_under_max_gap() -> None:
    replay = make_replay([0, 3600], options=Options(max_gap=60.0))
    replay.advance(START)
    replay.apply(Seek.parse("+30m"), START)  # archive 1800 s is play 30 s of the clamped hour
    assert replay.next_deadline() == START + 30


def test_seek_start_and_end() -> None:
    replay = make_replay(P5)
    replay.advance(START + 60)
    events = replay.apply(Seek.parse("start"), START + 70)
    assert types(events) == ["stream.reset", "stream.state"]
    assert post_ids(replay.advance(START + 70)) == ["p0"]
    events = replay.apply(Seek.parse("end"), START + 75)
    assert post_ids(events) == ["p1", "p2", "p3", "p4"]
    assert types(events)[-1] == "stream.state"
    # The end is reached: the next advance, due at once, ends the replay.
    deadline = replay.next_deadline()
    assert deadline is not None and deadline <= START + 75
    assert reasons(replay.advance(deadline)) == ["ended"]
    assert replay.state == "ended"
    assert replay.next_deadline() is None


def test_start_at_the_end_ends_at_once() -> None:
    replay = make_replay(P5, options=Options(start="end"))
    assert len(replay.snapshot(START)["posts"]) == 5
    calls = drive(replay)
    assert [types(events) for _, events in calls] == [["stream.state"]]
    assert replay.state == "ended"


def test_seek_after_the_end_plays_again() -> None:
    replay = make_replay([0, 60])
    drive(replay)
    assert replay.state == "ended"
    events = replay.apply(Seek.parse("p0"), START + 100)
    assert types(events) == ["stream.reset", "stream.state"]
    assert replay.state == "playing"
    assert post_ids(flatten(drive(replay))) == ["p0", "p1"]


def test_seek_while_paused_stays_paused() -> None:
    replay = make_replay(P5)
    replay.advance(START)
    replay.apply(Pause(), START + 5)
    events = replay.apply(Seek.parse("p2"), START + 10)
    assert post_ids(events) == ["p1"]
    assert envelope(events[-1])["data"]["state"] == "paused"
    assert replay.next_deadline() is None
    replay.apply(Resume(), START + 20)
    assert replay.next_deadline() == START + 20


@pytest.mark.parametrize("to", ["yesterday", "p99", "", "+abc", "-", "2014-13-45T00:00:00Z"])
def test_invalid_seek_target_raises_and_changes_nothing(to: str) -> None:
    replay = make_replay(P5)
    replay.advance(START)
    cursor = replay.cursor
    with pytest.raises(ValueError) as info:
        replay.apply(Seek.parse(to), START + 100)  # p1 is due, but nothing happens
    assert str(info.value).startswith("to: ")
    assert replay.cursor == cursor
    assert post_ids(replay.advance(START + 100)) == ["p1"]


# max_gap ----------------------------------------------------------------------------------


def test_max_gap_clamps_long_gaps() -> None:
    replay = make_replay([0, 10, 3600, 3630], options=Options(max_gap=60.0))
    calls = drive(replay)
    assert [now for now, _ in calls] == [START, START + 10, START + 70, START + 100]
    archive_times = [envelope(e)["archive_time"] for e in flatten(calls)][:4]
    assert archive_times == [
        "2014-06-12T08:00:00Z",
        "2014-06-12T08:00:10Z",
        "2014-06-12T09:00:00Z",
        "2014-06-12T09:00:30Z",
    ]


def test_archive_position_within_a_clamped_gap() -> None:
    replay = make_replay([0, 3600], options=Options(max_gap=60.0))
    replay.advance(START + 30)
    position = replay.describe(START + 30)["position"]["archive_time"]
    assert position == "2014-06-12T08:30:00Z"


# Loop and end -----------------------------------------------------------------------------


def test_loop_resets_and_plays_again() -> None:
    replay = make_replay([0, 60], options=Options(loop=True, loop_pause=30))
    calls = drive(replay, until=START + 240)
    assert [(now, types(events)) for now, events in calls] == [
        (START, ["post.created"]),
        (START + 60, ["post.created"]),
        (START + 90, ["stream.reset", "post.created"]),
        (START + 150, ["post.created"]),
        (START + 180, ["stream.reset", "post.created"]),
        (START + 240, ["post.created"]),
    ]
    reset = envelope(calls[2][1][0])
    assert reset["data"] == {"reason": "loop"}
    assert reset["due_at"] == wall(START + 90)
    assert due_at(calls[2][1][1]) == wall(START + 90)
    assert post_ids(flatten(calls)) == ["p0", "p1"] * 3
    assert replay.lap == 2
    assert replay.describe(START + 240)["position"]["lap"] == 2


def test_lap_increments_and_snapshot_restarts_each_lap() -> None:
    replay = make_replay([0, 60], options=Options(loop=True, loop_pause=30))
    drive(replay, until=START + 60)
    assert replay.lap == 0
    assert visible(replay, START + 60) == [("p1", False), ("p0", False)]
    assert replay.next_deadline() == START + 90
    drive(replay, until=START + 90)
    assert replay.lap == 1
    assert visible(replay, START + 90) == [("p0", False)]


def test_loop_pause_is_clamped_by_max_gap() -> None:
    replay = make_replay([0, 60], options=Options(loop=True, loop_pause=600, max_gap=45))
    drive(replay, until=START + 45)
    assert replay.next_deadline() == START + 90


def test_loop_at_speed_60() -> None:
    replay = make_replay([0, 600, 1200], options=Options(loop=True, loop_pause=60, speed=60))
    calls = drive(replay, until=START + 63)
    assert [now for now, _ in calls] == [START + n for n in (0, 10, 20, 21, 31, 41, 42, 52, 62, 63)]
    assert replay.lap == 3


def test_late_advance_over_a_lap_boundary() -> None:
    replay = make_replay([0, 60], options=Options(loop=True, loop_pause=30))
    events = replay.advance(START + 100)
    assert types(events) == ["post.created", "post.created", "stream.reset", "post.created"]
    assert [due_at(e) for e in events] == [wall(START + t) for t in (0, 60, 90, 90)]
    assert replay.next_deadline() == START + 150


def test_without_loop_the_replay_ends() -> None:
    replay = make_replay([0, 60])
    calls = drive(replay)
    last = calls[-1][1]
    assert types(last) == ["post.created", "stream.state"]
    ended = envelope(last[-1])
    assert ended["data"]["reason"] == "ended"
    assert ended["data"]["state"] == "ended"
    assert ended["due_at"] == wall(START + 60)
    assert replay.state == "ended"
    assert replay.next_deadline() is None
    assert replay.advance(START + 1e6) == []
    assert replay.describe(START + 1e6)["state"] == "ended"


def test_restart() -> None:
    replay = make_replay(P5)
    drive(replay, until=START + 120)
    replay.apply(Pause(), START + 130)
    events = replay.apply(Restart(), START + 500)
    assert types(events) == ["stream.reset", "stream.state"]
    assert reasons(events) == ["restart", "restart"]
    assert replay.state == "playing"
    assert replay.snapshot(START + 500)["posts"] == []
    calls = drive(replay)
    assert post_ids(flatten(calls)) == ["p0", "p1", "p2", "p3", "p4"]
    assert calls[0][0] == START + 500


def test_restart_resets_the_lap() -> None:
    replay = make_replay([0, 60], options=Options(loop=True, loop_pause=30))
    drive(replay, until=START + 200)
    assert replay.lap == 2
    replay.apply(Restart(), START + 201)
    assert replay.lap == 0


def test_restart_goes_back_to_a_relative_start() -> None:
    replay = make_replay([0, 600, 1200, 7200], options=Options(start="+10m"))
    assert replay.index == 1
    replay.advance(START + 5000)
    replay.apply(Restart(), START + 5000)
    assert visible(replay, START + 5000) == [("p0", False)]
    assert replay.next_deadline() == START + 5000
    assert post_ids(replay.advance(START + 5000)) == ["p1"]


def test_relative_seek_after_a_loop_wrap_counts_from_the_new_lap() -> None:
    """The command comes after the lap's end but before the driver advanced over it."""
    replay = make_replay([0, 60], options=Options(loop=True, loop_pause=60))
    drive(replay, until=START + 60)
    events = replay.apply(Seek.parse("+10s"), START + 130)  # lap 1 began at 120: position 10 → 20
    assert types(events) == ["stream.reset", "post.created", "stream.state"]
    assert replay.lap == 1
    assert replay.next_deadline() == START + 170


# Speed max --------------------------------------------------------------------------------


def test_speed_max_emits_in_batches() -> None:
    replay = make_replay(range(200), options=Options(speed=MAX_SPEED))
    assert replay.next_deadline() == -math.inf
    batches = []
    while replay.next_deadline() == -math.inf:
        batches.append(replay.advance(START))
    assert [len(b) for b in batches] == [MAX_BATCH, MAX_BATCH, MAX_BATCH, 201 - 3 * MAX_BATCH]
    events = flatten((0.0, b) for b in batches)
    assert post_ids(events) == [f"p{i}" for i in range(200)]
    assert reasons(events) == ["ended"]
    assert {due_at(e) for e in events} == {wall(START)}
    assert replay.next_deadline() is None
    assert replay.advance(START) == []


def test_speed_max_with_loop_never_ends() -> None:
    replay = make_replay(range(10), options=Options(speed=MAX_SPEED, loop=True))
    batches = [replay.advance(START) for _ in range(5)]
    assert [len(b) for b in batches] == [MAX_BATCH] * 5
    events = flatten((0.0, b) for b in batches)
    assert types(events).count("stream.reset") == replay.lap == 29  # 10 posts, then 11 a lap
    assert reasons(events) == ["loop"] * 29
    epochs = " ".join(types(events)).split("stream.reset")
    assert all(e.split() == ["post.created"] * 10 for e in epochs[1:-1])
    assert replay.next_deadline() == -math.inf


def test_from_max_back_to_a_finite_speed() -> None:
    replay = make_replay(range(200), options=Options(speed=MAX_SPEED))
    assert post_ids(replay.advance(START))[-1] == "p63"
    # At max the caller paces: a command emits no extra batch, and speed 1 goes on from p64.
    events = replay.apply(SetSpeed(1.0), START + 5)
    assert post_ids(events) == []
    assert reasons(events) == ["speed"]
    assert replay.next_deadline() == START + 6
    assert post_ids(replay.advance(START + 6)) == ["p64"]
    replay.apply(SetSpeed(MAX_SPEED), START + 6.5)
    assert replay.next_deadline() == -math.inf
    assert post_ids(replay.advance(START + 7))[0] == "p65"


def test_pause_at_speed_max() -> None:
    replay = make_replay(range(100), options=Options(speed=MAX_SPEED))
    replay.apply(Pause(), START)
    assert replay.next_deadline() is None
    assert replay.advance(START) == []


# Snapshot ---------------------------------------------------------------------------------


def _scenario_replay() -> Replay:
    scenario = [
        Step("pin", "p0", after=10),
        Step("delete", "p2", after=30),
        Step("pin", "p1", after=10),
        Step("pin", "p3", after=0),
        Step("unpin", "p3", after=5),
    ]
    # p1 is edited 30 s after its creation (at 90); it keeps its place and its pin.
    return make_replay([0, 60, 120, 180], edited={1}, scenario=scenario, edit_delay=30)


def test_snapshot_newest_first_with_edits_deletions_and_pins() -> None:
    replay = _scenario_replay()
    drive(replay)
    snapshot = replay.snapshot(START + 300)
    assert [(p["id"], p["pinned"]) for p in snapshot["posts"]] == [
        ("p3", False),
        ("p1", True),
        ("p0", True),
    ]
    feed = replay.script.feed
    assert snapshot["posts"][1] == {**post_record(feed.post("p1")), "pinned": True}
    assert snapshot["posts"][1]["editor"] == "Editor"
    assert snapshot["posts"][0] == {**post_record(feed.post("p3")), "pinned": False}
    assert snapshot["stream"] == "s1"
    assert snapshot["cursor"] == replay.cursor
    assert snapshot["state"] == "ended"


def test_snapshot_as_it_goes() -> None:
    replay = _scenario_replay()
    seen = []
    while (now := replay.next_deadline()) is not None:
        assert replay.advance(now)
        seen.append((now - START, visible(replay, now)))
    assert seen == [
        (0, [("p0", False)]),
        (10, [("p0", True)]),
        (60, [("p1", False), ("p0", True)]),
        (70, [("p1", True), ("p0", True)]),
        (90, [("p1", True), ("p0", True)]),
        (120, [("p2", False), ("p1", True), ("p0", True)]),
        (150, [("p1", True), ("p0", True)]),
        (180, [("p3", True), ("p1", True), ("p0", True)]),
        (185, [("p3", False), ("p1", True), ("p0", True)]),
    ]


def test_an_edit_does_not_move_a_post() -> None:
    replay = make_replay([0, 60, 120], edited={0}, edit_delay=200)
    drive(replay)
    posts = replay.snapshot(START + 300)["posts"]
    assert [p["id"] for p in posts] == ["p2", "p1", "p0"]
    assert posts[2]["editor"] == "Editor"


@pytest.mark.parametrize("target", ["p0", "p1", "p2", "p3", "2014-06-12T08:02:45Z", "start"])
def test_snapshot_after_seeking_back_matches_playing_forward(target: str) -> None:
    played = _scenario_replay()
    drive(played)
    played.apply(Seek.parse(target), START + 1000)
    fresh = _scenario_replay()
    fresh.apply(Seek.parse(target), START)
    assert played.snapshot(START + 1000)["posts"] == fresh.snapshot(START)["posts"]
    assert played.index == fresh.index
    assert post_ids(flatten(drive(played))) == post_ids(flatten(drive(fresh)))


def test_describe() -> None:
    replay = make_replay(P5, options=Options(speed=60, max_gap=120.0, loop=True))
    replay.advance(START + 1)
    assert replay.describe(START + 1.5) == {
        "state": "playing",
        "timestamps": "archive",
        "speed": 60,
        "loop": True,
        "max_gap": 120.0,
        "position": {"archive_time": "2014-06-12T08:01:30Z", "index": 2, "total": 5, "lap": 0},
        "cursor": "inc-3",
    }
    replay.apply(SetSpeed(MAX_SPEED), START + 2)
    assert replay.describe(START + 2)["speed"] == "max"


# Resume from a cursor ---------------------------------------------------------------------


def _run(replay: Replay) -> list[Event]:
    return initial_events(replay) + flatten(drive(replay))


def test_since_every_cursor_gives_exactly_the_later_events() -> None:
    replay = _scenario_replay()
    events = _run(replay)
    assert replay.since(f"{INCARNATION}-0") == events
    for k, event in enumerate(events):
        assert replay.since(event.id) == events[k + 1 :]
    assert replay.since(replay.cursor) == []


def test_since_same_events_whichever_cursor() -> None:
    replay = make_replay(P5)
    events = _run(replay)
    whole = replay.since(events[0].id)
    assert whole is not None
    for event in events:
        later = replay.since(event.id)
        assert later is not None
        assert [(e.id, e.json, e.sse) for e in later] == [
            (e.id, e.json, e.sse) for e in whole[len(whole) - len(later) :]
        ]


@pytest.mark.parametrize(
    "cursor",
    [
        "other-3",  # another incarnation
        "inc2-3",
        "3",
        "",
        "inc",
        "inc-",
        "inc-abc",
        "inc--1",
        "inc-1.0",
        "inc- 1",
        "inc-²",  # a Unicode digit, not an ASCII one
        "inc-99",  # a serial not issued yet
        "inc-8",
    ],
)
def test_since_none_for_cursors_it_cannot_serve(cursor: str) -> None:
    replay = make_replay([0, 60])
    _run(replay)
    assert replay.cursor == "inc-4"
    assert replay.since(cursor) is None


def test_since_none_for_future_serial() -> None:
    replay = make_replay([0, 60])
    _run(replay)
    assert replay.since("inc-4") == []
    assert replay.since("inc-5") is None


def test_incarnation_with_dashes() -> None:
    replay = make_replay([0], incarnation="a-b-c")
    [start] = initial_events(replay)
    assert start.id == "a-b-c-1"
    assert replay.since("a-b-c-1") == []
    assert replay.since("b-c-1") is None


def test_since_across_a_reset() -> None:
    replay = make_replay(P5)
    before = _run(replay)
    events = replay.apply(Seek.parse("p2"), START + 1000)
    reset = events[0]
    assert reset.type == "stream.reset"
    after = events + flatten(drive(replay))
    # Cursors from before the reset cannot be served …
    for event in before[:-1]:
        assert replay.since(event.id) is None
    assert replay.since(f"{INCARNATION}-0") is None
    # … except the very last one: what follows it is exactly the reset and the new epoch.
    assert replay.since(before[-1].id) == after
    for k, event in enumerate(after):
        assert replay.since(event.id) == after[k + 1 :]


def test_since_across_a_loop() -> None:
    replay = make_replay([0, 60], options=Options(loop=True, loop_pause=30))
    events = initial_events(replay) + flatten(drive(replay, until=START + 150))
    [reset_at] = [i for i, e in enumerate(events) if e.type == "stream.reset"]
    for k, event in enumerate(events):
        found = replay.since(event.id)
        if k < reset_at - 1:
            assert found is None
        else:
            assert found == events[k + 1 :]


def test_small_log_limit_forgets_old_cursors() -> None:
    replay = make_replay(range(20), options=Options(log_limit=5))
    events = _run(replay)
    assert len(events) == 22
    assert replay.since(events[-6].id) == events[-5:]
    for event in events[:-6]:
        assert replay.since(event.id) is None
    assert replay.since(f"{INCARNATION}-0") is None
    for k in range(len(events) - 6, len(events)):
        assert replay.since(events[k].id) == events[k + 1 :]


def test_reset_event_for_a_lost_subscriber() -> None:
    replay = make_replay(P5)
    _run(replay)
    event = replay.reset_for("resume", START + 1000)
    assert event.id == replay.cursor + ".reset"  # an id of its own, never a real event's
    assert event.serial == replay.serial
    assert replay.since(event.id) == replay.since(replay.cursor) == []  # and a cursor
    body = envelope(event)
    assert body["type"] == "stream.reset"
    assert body["data"] == {"reason": "resume"}
    assert body["due_at"] == wall(START + 1000)
    assert replay.since(replay.cursor) == []  # not logged


# Properties -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Op:
    kind: str
    dt: float
    value: float = 0.0


_ops = st.lists(
    st.one_of(
        st.builds(_Op, st.just("advance"), st.floats(0, 400)),
        st.builds(_Op, st.just("deadline"), st.just(0.0)),
        st.builds(_Op, st.just("pause"), st.floats(0, 400)),
        st.builds(_Op, st.just("resume"), st.floats(0, 400)),
        st.builds(
            _Op, st.just("speed"), st.floats(0, 400), st.sampled_from([0.5, 1, 2, 3, 60, math.inf])
        ),
        st.builds(_Op, st.just("seek"), st.floats(0, 400), st.integers(1, 1800).map(float)),
        st.builds(_Op, st.just("since"), st.just(0.0), st.floats(0, 1)),
    ),
    max_size=40,
)

_FEED = [0, 30, 30, 95, 300, 301, 1200, 1260, 4000]
_IDS = [f"p{i}" for i in range(len(_FEED))]


def _run_ops(replay: Replay, ops: list[_Op]) -> tuple[list[Event], float]:
    events = list(initial_events(replay))
    now = START
    for op in ops:
        now += op.dt
        if op.kind == "advance":
            events += replay.advance(now)
        elif op.kind == "deadline":
            deadline = replay.next_deadline()
            if deadline is not None:
                now = max(now, deadline)
                events += replay.advance(now)
        elif op.kind == "pause":
            events += replay.apply(Pause(), now)
        elif op.kind == "resume":
            events += replay.apply(Resume(), now)
        elif op.kind == "speed":
            events += replay.apply(SetSpeed(op.value), now)
        elif op.kind == "seek":
            events += replay.apply(Seek.parse(f"+{op.value:g}s"), now)
        elif op.kind == "since" and events:
            # A subscriber reconnecting with a cursor from this run must get exactly the rest.
            k = min(int(op.value * len(events)), len(events) - 1)
            resets = [i for i, e in enumerate(events) if e.type == "stream.reset"]
            found = replay.since(events[k].id)
            if resets and k < resets[-1] - 1:
                assert found is None
            else:
                assert found == events[k + 1 :]
    return events, now


def _check_epochs(events: list[Event]) -> None:
    assert serials(events) == list(range(1, len(events) + 1))
    assert [e.id for e in events] == [f"{INCARNATION}-{e.serial}" for e in events]
    epochs: list[list[str]] = [[]]
    for event in events:
        if event.type == "stream.reset":
            epochs.append([])
        elif event.type == "post.created":
            epochs[-1].append(envelope(event)["post"]["id"])
    for number, created in enumerate(epochs):
        # Each epoch plays the posts once each, in order, with none missing or repeated.
        assert created == _IDS[: len(created)], number
        if number < len(epochs) - 1:
            assert created == _IDS, number


@settings(max_examples=150, deadline=None)
@given(ops=_ops, loop=st.booleans())
def test_interleaved_commands_never_lose_or_repeat_a_post(ops: list[_Op], loop: bool) -> None:
    replay = make_replay(_FEED, options=Options(loop=loop, loop_pause=45))
    events, now = _run_ops(replay, ops)
    _check_epochs(events)
    if not loop:
        # Play out the rest: every post exactly once overall, then the end.
        events += replay.apply(Resume(), now)
        events += replay.apply(SetSpeed(60), now)
        events += flatten(drive(replay))
        _check_epochs(events)
        assert post_ids(events) == _IDS
        assert "ended" in reasons(events)
        assert replay.state == "ended"


@settings(max_examples=150, deadline=None)
@given(ops=_ops, cut=st.floats(0, 1))
def test_union_of_prefix_and_since_is_the_whole_run(ops: list[_Op], cut: float) -> None:
    replay = make_replay(_FEED)
    events, _ = _run_ops(replay, ops)
    k = max(1, min(len(events), round(cut * len(events))))
    found = replay.since(events[k - 1].id)
    assert found is not None  # no loop and only forward seeks: a single epoch
    assert events[:k] + found == events


# Hostile speeds, cursors and logs (issue #6 A1, A4, C) ----------------------------------------


@pytest.mark.parametrize("speed", [1e4, 1e6])
def test_huge_speed_is_bounded_like_max(speed: float) -> None:
    """Far more due than a batch: one batch per call, then paced like max, nothing skipped."""
    replay = make_replay(range(0, 2000, 10), options=Options(speed=speed, loop=True))
    first = replay.advance(START + 3600)  # an hour at 1e6: thousands of laps due
    assert len(first) == MAX_BATCH
    assert replay.behind and replay.next_deadline() == -math.inf
    events = first + [e for _ in range(20) for e in replay.advance(START + 3600 + 0.001)]
    assert all(len(replay.advance(START + 3600 + 0.002)) <= MAX_BATCH for _ in range(5))
    created = post_ids(events[: 200 - 1])
    assert created == [f"p{i}" for i in range(len(created))]  # in order, none skipped


def test_behind_replay_slips_then_runs_on_the_clock_again() -> None:
    replay = make_replay(range(0, 1000, 1), options=Options(speed=100.0))
    events = replay.advance(START + 5)  # 500 due: a batch, and the clock slips back to it
    assert len(events) == MAX_BATCH and replay.behind
    events += replay.advance(START + 5)  # only what is due at the slipped position
    assert len(events) == MAX_BATCH + 1 and not replay.behind
    deadline = replay.next_deadline()
    assert deadline is not None and START + 5 < deadline <= START + 5.01  # 1 s of play at 100
    now = START + 5
    while not replay.ended:
        now += 0.05
        events += replay.advance(now)
    assert post_ids(events) == [f"p{i}" for i in range(1000)]


@pytest.mark.parametrize(
    "cursor", [f"{INCARNATION}-" + "9" * 5000, f"{INCARNATION}-" + "1" * 19, "x" * 10_000, ""]
)
def test_absurd_cursors_cannot_be_served(cursor: str) -> None:
    replay = make_replay(P5)
    replay.advance(START + 10_000)
    assert replay.since(cursor) is None


def test_event_log_is_bounded_in_bytes() -> None:
    replay = make_replay(range(2000), options=Options(log_bytes=20_000))
    events = _run(replay)
    kept = [e for e in events if replay.since(e.id) is not None]
    size = sum(len(e.json) + len(e.sse) + len(e.ws_frame) for e in kept[1:])  # every encoding
    assert 0 < size <= 20_000
    assert replay.since(events[-2].id) == events[-1:]
    assert replay.since(events[0].id) is None


# Live posts (issue #8 §2) ----------------------------------------------------------------------


def test_live_post_is_a_logged_event_in_the_snapshot() -> None:
    replay = make_replay(P5)
    replay.advance(START + 60)
    before = replay.cursor
    events = replay.apply(CreatePost({"body": "Live.", "key_event": True}), START + 90)
    assert types(events) == ["post.created"]
    body = envelope(events[0])
    assert body["post"]["id"] == "live-1" and body["post"]["key_event"] is True
    assert body["archive_time"] == body["post"]["published_at"] == "2014-06-12T08:01:30Z"
    assert body["due_at"] == wall(START + 90)
    assert replay.since(before) == events
    assert visible(replay, START + 90) == [("live-1", False), ("p1", False), ("p0", False)]
    assert replay.snapshot(START + 90)["key_events"] == ["live-1"]


def test_live_post_commands_emit_what_is_due_first() -> None:
    replay = make_replay(P5)
    events = replay.apply(CreatePost({"body": "x"}), START + 61)
    assert types(events) == ["post.created"] * 3
    assert post_ids(events) == ["p0", "p1", "live-1"]


def test_update_pin_delete_live_and_archive_posts() -> None:
    replay = make_replay(P5)
    replay.advance(START)
    replay.apply(CreatePost({"body": "x", "pinned": True}), START + 1)
    events = replay.apply(UpdatePost("live-1", {"headline": "H", "key_event": True}), START + 2)
    assert envelope(events[0])["post"]["headline"] == "H"
    events = replay.apply(UpdatePost("p0", {"key_event": False, "pinned": True}), START + 3)
    assert types(events) == ["post.updated", "post.pinned"]
    assert "key_event" not in envelope(events[0])["post"]
    assert visible(replay, START + 3) == [("live-1", True), ("p0", True)]
    events = replay.apply(UpdatePost("live-1", {"pinned": False}), START + 4)
    assert types(events) == ["post.unpinned"]  # only ``pinned``: no edit
    replay.apply(DeletePost("p0"), START + 5)
    assert visible(replay, START + 5) == [("live-1", False)]
    for command in (UpdatePost("p0", {"body": "y"}), DeletePost("p3"), PinPost("nope")):
        with pytest.raises(UnknownPost):
            replay.apply(command, START + 6)


def test_live_posts_survive_loops_and_seeks_but_archive_changes_do_not() -> None:
    replay = make_replay([0, 60], options=Options(loop=True, loop_pause=30))
    replay.advance(START + 60)
    replay.apply(CreatePost({"body": "a"}), START + 61)
    replay.apply(CreatePost({"body": "b", "pinned": True}), START + 62)
    replay.apply(CreatePost({"body": "c"}), START + 63)
    replay.apply(DeletePost("live-2"), START + 64)  # gone for good
    replay.apply(PinPost("live-3"), START + 64)
    replay.apply(DeletePost("p0"), START + 65)  # for this epoch only
    events = replay.advance(START + 90)  # the loop's wrap, and the new lap's first post
    assert types(events) == ["stream.reset", "post.created"]
    assert visible(replay, START + 90) == [("p0", False), ("live-3", True), ("live-1", False)]
    replay.apply(Seek.parse("start"), START + 100)
    assert visible(replay, START + 100) == [("live-3", True), ("live-1", False)]
    replay.apply(Restart(), START + 101)
    replay.apply(Seek.parse("end"), START + 102)
    assert visible(replay, START + 102) == [
        ("p1", False),
        ("p0", False),
        ("live-3", True),
        ("live-1", False),
    ]


def test_live_ids_skip_archive_ids_and_are_never_reused() -> None:
    replay = make_replay([0])
    replay = Replay(
        replace_ids(replay.script, {"p0": "live-1"}), stream="s", incarnation="i", now=START
    )
    replay.advance(START)
    for _ in range(2):
        replay.apply(CreatePost({"body": "x"}), START)
    replay.apply(DeletePost("live-3"), START)
    replay.apply(CreatePost({"body": "x"}), START)
    assert [p for p, _ in visible(replay, START)] == ["live-4", "live-2", "live-1"]


def replace_ids(script: Script, ids: dict[str, str]) -> Script:
    cues = tuple(
        dataclass_replace(c, post=dataclass_replace(c.post, id=ids.get(c.post.id, c.post.id)))
        for c in script.cues
    )
    return dataclass_replace(script, cues=cues)


def test_live_posts_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "MAX_LIVE_POSTS", 3)
    replay = make_replay([0])
    for _ in range(3):
        replay.apply(CreatePost({"body": "x"}), START)
    serial = replay.serial
    with pytest.raises(TooManyPosts):
        replay.apply(CreatePost({"body": "x"}), START)
    assert replay.serial == serial  # refused before anything was emitted
    replay.apply(DeletePost("live-1"), START)
    replay.apply(CreatePost({"body": "x"}), START)
    monkeypatch.setattr(live, "MAX_LIVE_BYTES", 1500)
    replay.apply(DeletePost("live-2"), START)
    with pytest.raises(TooManyPosts):
        replay.apply(CreatePost({"body": "x" * 2000}), START)
    serial = replay.serial
    with pytest.raises(TooManyPosts):
        replay.apply(UpdatePost("live-3", {"body": "x" * 1500}), START)
    assert replay.serial == serial


def test_a_refused_post_command_loses_no_due_event(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refusals come before ``advance``: the events due at that moment are not emitted and
    dropped, they go out with the next call."""
    monkeypatch.setattr(live, "MAX_LIVE_BYTES", 100)
    replay = make_replay(P5)
    with pytest.raises(TooManyPosts):
        replay.apply(CreatePost({"body": "x" * 200}), START + 61)
    with pytest.raises(UnknownPost):
        replay.apply(DeletePost("p1"), START + 61)  # due, but not visible yet
    assert post_ids(replay.advance(START + 61)) == ["p0", "p1"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "body.body: required"),
        ({"body": " "}, "body.body: empty"),
        ({"body": "x" * 65_537}, "body.body: 65537 bytes, at most 65536"),
        ({"body": "x", "headline": "h" * 10_240}, "body.headline: 10240 bytes, at most 1024"),
        ({"body": "x", "key_event": "true"}, "body.key_event: expected true or false"),
        ({"body": "x", "media": [{"kind": "image", "count": 1e308}]}, "body.media[0].count"),
        ({"body": "x", "y" * 10_000: 1}, "body.yyyyyyy"),
    ],
)
def test_live_fields_are_checked(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as info:
        live.parse_fields(fields, "body", create=True)
    assert str(info.value).startswith(message) and len(str(info.value)) < 300


def test_an_unknown_cue_type_is_an_error_not_an_unpin() -> None:
    replay = make_replay(P5)
    with pytest.raises(ValueError, match="not a post event"):
        replay.view.apply(EventType.STREAM_RESET, "p0", {})


# Step ---------------------------------------------------------------------------------------


def test_step_emits_the_next_events_now_and_stays_paused() -> None:
    replay = make_replay(P5, options=Options(paused=True))
    out = replay.apply(StepCommand(events=2), START + 500)
    assert types(out) == ["post.created", "post.created", "stream.state"]
    assert post_ids(out) == ["p0", "p1"]
    assert {due_at(e) for e in out} == {wall(START + 500)}
    assert reasons(out) == ["step"]
    assert replay.state == "paused" and replay.next_deadline() is None
    assert replay.describe(START + 900)["position"]["archive_time"] == "2014-06-12T08:01:00Z"
    out = replay.apply(StepCommand(events=1), START + 901)
    assert post_ids(out) == ["p2"]
    assert [p["id"] for p in replay.snapshot(START + 901)["posts"]] == ["p2", "p1", "p0"]
    # Resuming plays on from where the steps left it, nothing twice.
    replay.apply(Resume(), START + 1000)
    assert post_ids(flatten(drive(replay))) == ["p3", "p4"]


def test_step_refused_while_playing() -> None:
    replay = make_replay(P5)
    with pytest.raises(InputError) as caught:
        replay.apply(StepCommand(events=1), START)
    assert caught.value.status == 409


def test_step_past_the_end_without_loop_stops_short() -> None:
    replay = make_replay(P5, options=Options(paused=True))
    out = replay.apply(StepCommand(events=MAX_STEP), START)
    assert post_ids(out) == ["p0", "p1", "p2", "p3", "p4"]
    assert replay.apply(StepCommand(events=3), START) and replay.index == 5


def test_step_across_a_loop_counts_its_reset() -> None:
    replay = make_replay(P5, options=Options(paused=True, loop=True))
    out = replay.apply(StepCommand(events=7), START)
    assert types(out)[5] == "stream.reset" and post_ids(out) == ["p0", "p1", "p2", "p3", "p4", "p0"]
    assert replay.lap == 1 and replay.state == "paused"


def test_step_until_advances_the_clock() -> None:
    replay = make_replay(P5, options=Options(paused=True))
    out = replay.apply(StepCommand(until=120.0), START)
    assert post_ids(out) == ["p0", "p1", "p2"]  # p2 at +2m exactly: included
    assert replay.describe(START)["position"]["archive_time"] == "2014-06-12T08:02:00Z"
    out = replay.apply(StepCommand(until=30.0), START)
    assert post_ids(out) == [] and reasons(out) == ["step"]
    assert replay.describe(START)["position"]["archive_time"] == "2014-06-12T08:02:30Z"
    out = replay.apply(StepCommand(until=1e9), START)  # clamped at the end: no wrap
    assert post_ids(out) == ["p3", "p4"] and replay.state == "paused"


# Timestamps "now" ---------------------------------------------------------------------------

NOW = Options(timestamps="now")
LATER = 10_000_000.0
"""A fake-clock offset far from the archive: wall time = archive time + LATER at speed 1."""


def published(replay: Replay, now: float) -> dict[str, str]:
    return {p["id"]: p["published_at"] for p in replay.snapshot(now)["posts"]}


def test_now_times_are_the_instants_events_were_due() -> None:
    replay = make_replay(
        P5, options=dataclass_replace(NOW, speed=10), wall_offset=WALL_OFFSET + LATER
    )
    events = flatten(drive(replay, until=START + 12.5))
    posts = [envelope(e)["post"] for e in events if e.type == "post.created"]
    assert [p["published_at"] for p in posts] == [
        due_at(e) for e in events if e.type == "post.created"
    ]
    assert [p["published_at"] for p in posts] == [wall(START + LATER + s) for s in (0, 6, 12)]
    assert published(replay, START + 12.5) == {p["id"]: p["published_at"] for p in posts}
    assert replay.describe(START)["timestamps"] == "now"


def test_now_times_never_run_ahead_of_the_clock() -> None:
    """Pauses, seeks, speed changes, loop laps: every time shown is at most the clock's."""
    replay = make_replay(
        P5, edited=[1], options=dataclass_replace(NOW, loop=True, loop_pause=30.0), wall_offset=0.0
    )
    now = START
    steps: list[Any] = [Pause(), Resume(), SetSpeed(7), Seek.parse("p3"), Seek.parse("start")]
    for index in range(60):
        now += 17.0
        replay.advance(now)
        if index % 6 == 0:
            replay.apply(steps[index // 6 % len(steps)], now)
        shown = replay.snapshot(now)["posts"]
        for post in shown:
            for key in ("published_at", "updated_at"):
                if key in post:
                    assert post[key] <= wall_time(now), (index, post)
    assert replay.lap >= 1


def test_now_times_of_posts_already_there_are_as_long_ago_as_in_the_archive() -> None:
    replay = make_replay(P5, options=dataclass_replace(NOW, start="+3m"), wall_offset=0.0)
    times = published(replay, START)
    assert times == {
        "p2": wall_time(START - 60),
        "p1": wall_time(START - 120),
        "p0": wall_time(START - 180),
    }


def test_now_times_of_an_edit_keep_the_post_time_and_add_updated_at() -> None:
    replay = make_replay(P5, edited=[0], options=NOW, wall_offset=0.0)
    events = flatten(drive(replay))
    updates = [envelope(e)["post"] for e in events if e.type == "post.updated"]
    first = next(envelope(e) for e in events if e.type == "post.created")
    assert updates and updates[0]["published_at"] == first["post"]["published_at"]
    assert updates[0]["updated_at"] > updates[0]["published_at"]


def test_live_posts_get_the_time_they_were_posted() -> None:
    archive = make_replay(P5, options=Options(paused=True), wall_offset=0.0)
    [created] = archive.apply(CreatePost({"body": "live"}), START + 42)
    assert envelope(created)["post"]["published_at"] == "2014-06-12T08:00:00Z"  # the position
    now = make_replay(P5, options=dataclass_replace(NOW, paused=True), wall_offset=0.0)
    [created] = now.apply(CreatePost({"body": "live"}), START + 42)
    post = envelope(created)["post"]
    assert post["published_at"] == wall_time(START + 42)
    [updated] = now.apply(UpdatePost(post["id"], {"body": "edited"}), START + 50)
    assert envelope(updated)["post"]["updated_at"] == wall_time(START + 50)
    assert envelope(updated)["post"]["published_at"] == wall_time(START + 42)


def test_archive_times_are_unchanged_by_default() -> None:
    replay = make_replay(P5, wall_offset=WALL_OFFSET + LATER)
    events = flatten(drive(replay))
    times = [envelope(e)["post"]["published_at"] for e in events if e.type == "post.created"]
    assert times[0] == "2014-06-12T08:00:00Z"


now_commands = st.one_of(
    st.just(Pause()),
    st.just(Resume()),
    st.just(Restart()),
    st.floats(0.5, 1000).map(SetSpeed),
    st.just(SetSpeed(MAX_SPEED)),
    st.sampled_from(["start", "end", "+2m", "-3m", "p2"]).map(Seek.parse),
    st.integers(1, 7).map(lambda n: StepCommand(events=n)),
    st.just(StepCommand(until=90.0)),
    st.just(CreatePost({"body": "live"})),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 400), now_commands), max_size=25),
    st.booleans(),
)
def test_now_times_are_never_later_than_the_clock(
    script: list[tuple[float, Any]], loop: bool
) -> None:
    replay = make_replay(
        P5,
        edited=[1, 3],
        options=Options(timestamps="now", loop=loop, loop_pause=20.0),
        wall_offset=0.0,
    )
    now = START
    events: list[Event] = []
    for gap, command in script:
        now += gap
        events += replay.advance(now)
        try:
            events += replay.apply(command, now)
        except InputError:  # a step while playing: refused, nothing happens
            assert isinstance(command, StepCommand)
        clock = wall_time(now)
        for post in replay.snapshot(now)["posts"]:
            assert post["published_at"] <= clock and post.get("updated_at", "") <= clock, post
    for event in events:
        body = envelope(event)
        if "post" in body:
            assert body["post"]["published_at"] <= body["due_at"], body
            assert body["post"].get("updated_at", body["due_at"]) == body["due_at"] or (
                body["type"] != "post.updated"
            ), body
