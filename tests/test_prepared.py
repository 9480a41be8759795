"""``core/prepared.py``: what a script's replays share, computed once; play times kept per
``max_gap`` up to a bound."""

from __future__ import annotations

from core_helpers import make_script

from simulator.core.archive import post_record
from simulator.core.prepared import MAX_TIMINGS, PreparedScript, Timing
from simulator.core.timeline import GapClamp


def test_records_ids_and_times_follow_the_cues() -> None:
    script = make_script([0, 30, 90], edited=[1])
    prepared = PreparedScript(script)
    assert prepared.script is script
    assert prepared.records == tuple(post_record(cue.post) for cue in script.cues)
    assert prepared.times == tuple(cue.at for cue in script.cues)
    assert prepared.post_ids == {"p0", "p1", "p2"}
    assert len(prepared.records) == len(script.cues) > 3  # p1's edit is a cue of its own


def test_a_timing_is_the_clamp_applied_to_every_cue() -> None:
    times = [0.0, 10.0, 1000.0]
    timing = Timing.of(times, 60.0)
    assert timing.plays == (0.0, 10.0, 70.0)
    assert timing.clamp.to_archive(70.0) == 1000.0
    assert Timing.of(times, None).plays == tuple(times)
    assert isinstance(timing.clamp, GapClamp)


def test_a_timing_is_computed_once_per_max_gap() -> None:
    prepared = PreparedScript(make_script([0, 10, 1000]))
    assert not prepared.has_timing(60.0)
    first = prepared.timing(60.0)
    assert prepared.has_timing(60.0)
    assert prepared.timing(60.0) is first
    assert prepared.timing(None) is not first
    assert prepared.timing(None).plays[-1] > first.plays[-1]


def test_a_timing_made_elsewhere_is_kept() -> None:
    prepared = PreparedScript(make_script([0, 10]))
    made = Timing.of(prepared.times, 5.0)
    prepared.remember(5.0, made)
    assert prepared.timing(5.0) is made


def test_only_the_newest_timings_are_kept() -> None:
    prepared = PreparedScript(make_script([0, 10, 1000]))
    gaps = [float(n) for n in range(1, MAX_TIMINGS + 2)]
    for gap in gaps:
        prepared.timing(gap)
    assert not prepared.has_timing(gaps[0])
    assert all(prepared.has_timing(gap) for gap in gaps[1:])
    prepared.remember(gaps[1], Timing.of(prepared.times, gaps[1]))  # asked again: newest now
    prepared.timing(100.0)
    assert prepared.has_timing(gaps[1]) and not prepared.has_timing(gaps[2])


def test_remember_never_changes_a_published_dict() -> None:
    """Copy on write: a reader holding the old dict (another thread) never sees it change."""
    prepared = PreparedScript(make_script([0, 10]))
    prepared.timing(1.0)
    published = prepared._timings
    before = dict(published)
    prepared.timing(2.0)
    assert published == before and prepared._timings is not published
