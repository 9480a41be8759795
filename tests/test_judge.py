"""clients/judge.py: the sequence judge on sequences we construct, the histogram, due times."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from clients.judge import Counts, Histogram, Sequence, parse_due, split_id

INC = b"abc"


def ids(*serials: int, incarnation: bytes = INC) -> list[bytes]:
    return [incarnation + b"-%d" % s for s in serials]


def judge(serials: list[int], start: bytes | None = b"abc-0", target: int | None = None) -> Counts:
    sequence = Sequence(start)
    for event_id in ids(*serials):
        sequence.event(event_id)
    return sequence.finish((INC, target) if target is not None else None)


# The judge, on sequences we construct ---------------------------------------------------------


def test_in_order_sequence_is_clean() -> None:
    counts = judge([1, 2, 3, 4, 5], target=5)
    assert counts.as_dict() | {"bytes": 0} == Counts(expected=5, received=5).as_dict()


def test_duplicates_missing_and_out_of_order_are_counted_exactly() -> None:
    # 3 twice (duplicate), 5 skipped then late (out of order), 7 never (missing), 9 twice late
    counts = judge([1, 2, 3, 3, 4, 6, 5, 8, 9, 10, 9], target=10)
    assert (counts.duplicate, counts.out_of_order, counts.missing) == (2, 1, 1)
    assert counts.expected == 10 and counts.received == 11


def test_the_tail_short_of_the_target_is_missing() -> None:
    counts = judge([1, 2, 3], target=7)
    assert counts.missing == 4 and counts.expected == 7


def test_a_swap_is_one_out_of_order_and_nothing_missing() -> None:
    counts = judge([1, 3, 2, 4], target=4)
    assert (counts.out_of_order, counts.missing, counts.duplicate) == (1, 0, 0)


def test_resuming_from_the_cursor_must_continue_at_the_next_serial() -> None:
    sequence = Sequence(b"abc-10")
    assert sequence.cursor == "abc-10"
    for event_id in ids(11, 12):
        sequence.event(event_id)
    assert sequence.cursor == "abc-12"
    for event_id in ids(12, 14):  # a reconnect that repeats 12 and loses 13
        sequence.event(event_id)
    counts = sequence.finish()
    assert (counts.duplicate, counts.missing, counts.expected) == (1, 1, 4)


def test_a_logged_reset_is_in_the_sequence_and_starts_a_new_stretch() -> None:
    sequence = Sequence(b"abc-0")
    for event_id in ids(1, 2):
        sequence.event(event_id)
    sequence.event(b"abc-4", reset_reason=b"loop")  # 3 lost before the loop's reset
    sequence.event(b"abc-5")
    counts = sequence.finish((INC, 5))
    assert (counts.missing, counts.resets, counts.expected) == (1, 1, 5)


def test_a_connection_reset_restarts_at_its_own_id() -> None:
    # shared stream, cursor too old: reset "resume" carries the latest id, live follows
    sequence = Sequence(b"abc-3")
    sequence.event(b"abc-90", reset_reason=b"resume")
    sequence.event(b"abc-91")
    counts = sequence.finish((INC, 91))
    assert (counts.missing, counts.duplicate, counts.expected) == (0, 0, 1)
    # private replay: a reconnect gets a new replay, its reset at ...-0, then 1, 2, ...
    sequence = Sequence(b"")
    for event_id in ids(1, 2, 3):
        sequence.event(event_id)
    sequence.event(b"new-0", reset_reason=b"private")
    for event_id in ids(1, 2, 2, incarnation=b"new"):
        sequence.event(event_id)
    counts = sequence.finish()
    assert (counts.missing, counts.duplicate, counts.foreign, counts.expected) == (0, 1, 0, 5)


def test_after_a_reset_to_the_origin_the_current_epoch_may_start_with_its_own_reset() -> None:
    """A private replay that looped before its connection was served sends a reset to its
    origin and then its current epoch, from that epoch's logged reset (``Stream._from_first``):
    the epochs before it were never this client's. Any other first event must be serial 1."""
    sequence = Sequence(b"")
    sequence.event(b"new-0", reset_reason=b"private")
    sequence.event(b"new-48", reset_reason=b"loop")
    sequence.event(b"new-49")
    counts = sequence.finish()
    assert (counts.missing, counts.duplicate, counts.connection_resets) == (0, 0, 1)
    sequence = Sequence(b"")
    sequence.event(b"new-0", reset_reason=b"private")
    sequence.event(b"new-48")
    assert sequence.finish().missing == 47


def test_any_other_reset_reason_is_a_connection_reset() -> None:
    sequence = Sequence(b"abc-3")
    sequence.event(b"abc-50", reset_reason=b"no_resume")  # the fault: cursor ignored
    sequence.event(b"abc-51")
    counts = sequence.finish((INC, 51))
    assert (counts.missing, counts.duplicate, counts.connection_resets) == (0, 0, 1)


def test_a_private_replay_must_start_at_serial_one() -> None:
    sequence = Sequence(b"")
    for event_id in ids(3, 4, incarnation=b"xyz"):
        sequence.event(event_id)
    assert sequence.finish().missing == 2


def test_another_incarnation_without_a_reset_is_foreign() -> None:
    sequence = Sequence(b"abc-1")
    sequence.event(b"abc-2")
    sequence.event(b"zzz-40")
    sequence.event(b"zzz-41")
    counts = sequence.finish()
    assert counts.foreign == 1 and counts.missing == 0


def test_a_huge_jump_is_counted_without_remembering_every_serial() -> None:
    sequence = Sequence(b"abc-0")
    sequence.event(b"abc-999999999999")
    assert len(sequence.gaps) == 0
    assert sequence.finish().missing == 999999999998


@pytest.mark.parametrize(
    "text", [b"", b"abc", b"-5", b"abc-", b"abc-x1", b"abc-" + b"9" * 19, b"abc-1.5", b"abc--1"]
)
def test_ids_livesim_never_issues_are_malformed(text: bytes) -> None:
    assert split_id(text) is None or split_id(text) == (b"abc-", 1)
    sequence = Sequence(b"abc-0")
    sequence.event(text)
    counts = sequence.finish()
    assert counts.received + counts.malformed == 1


def test_histogram_percentiles_and_exact_merge() -> None:
    one, two, both = Histogram(), Histogram(), Histogram()
    for i in range(100):
        (one if i % 2 else two).add(i / 1000)
        both.add(i / 1000)
    one.merge(two)
    assert one.buckets == both.buckets and one.count == 100
    assert (one.percentile(50), one.percentile(99), one.percentile(100)) == (49.0, 98.0, 99.0)
    assert Histogram().percentile(50) is None
    assert Histogram.from_dict(json.loads(json.dumps(one.as_dict()))).buckets == one.buckets


def test_parse_due() -> None:
    assert parse_due(b"1970-01-01T00:01:02.500Z") == 62.5
    moment = datetime(2026, 11, 25, 9, 46, 10, 232000, tzinfo=UTC).timestamp()
    assert parse_due(b"2026-11-25T09:46:10.232Z") == pytest.approx(moment)
    assert parse_due(b"2026-11-25T09:46:10Z") == pytest.approx(moment - 0.232)  # slow path
    for bad in (b"", b"garbage", b"2026-13-25T09:46:10.232Z", b"2026-11-25T09:46:1x.232Z"):
        assert parse_due(bad) is None
