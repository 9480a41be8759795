"""A connection's delivery, pure: events offered at a fake ``now``, bytes taken, deadlines read.

Timing is asserted exactly here because the clock is ours: no event loop, no sleep, no network.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

import pytest

from simulator.core import wire
from simulator.core.delivery import SLOW, Delivery, Why, fault, going_away
from simulator.core.faults import STAGES, garbled, parse
from simulator.core.wire import Event, EventType


def event(serial: int) -> Event:
    return wire.encode(serial, f"inc-{serial}", EventType.POST_CREATED, {"id": f"p{serial}"})


def frame(events: Sequence[Event]) -> bytes:
    return b"|".join(
        e.id.encode() if e.serial >= 0 else b"<" + e.type.encode() + b">" for e in events
    )


def made(
    text: str, backlog: Sequence[Event] = (), *, limit: int = 100, now: float = 0.0
) -> tuple[Delivery, Counter[str]]:
    delivery = Delivery(limit, backlog)
    delivery.framing = frame
    counts: Counter[str] = Counter()
    delivery.fault(parse(text), counts, now)
    return delivery, counts


def taken(delivery: Delivery) -> list[str]:
    data = delivery.data_to_send()
    return data.decode().split("|") if data else []


def ids(*serials: int) -> list[str]:
    return [f"inc-{n}" for n in serials]


# Without faults ------------------------------------------------------------------------------


def test_a_spec_that_needs_no_stage_leaves_the_delivery_plain() -> None:
    for text in ("", "no_resume", "drop:0,delay:0,garble:0"):
        delivery, _ = made(text)
        assert delivery.plain and delivery.next_deadline() is None


def test_plain_queue_is_bounded_but_the_backlog_is_not_counted() -> None:
    delivery, _ = made("", [event(1), event(2), event(3)], limit=2)
    assert delivery.offer([event(4)], 0.0) and delivery.offer([event(5)], 0.0)
    assert delivery.backlog == 2
    assert not delivery.offer([event(6)], 0.0)
    assert delivery.closing is SLOW and delivery.closing.code == 1013
    assert delivery.data_to_send() == b""  # a slow consumer's queue is let go


def test_one_batch_larger_than_the_bound_is_taken() -> None:
    delivery, _ = made("", limit=2)
    assert delivery.offer([event(n) for n in range(1, 10)], 0.0)
    assert taken(delivery) == ids(*range(1, 10))


def test_close_from_outside_drops_what_is_pending_and_takes_nothing_more() -> None:
    delivery, _ = made("delay:1s", [event(1)])
    delivery.close(going_away("server shutting down"))
    assert delivery.closing is not None and delivery.closing.why is Why.GOING_AWAY
    assert not delivery.offer([event(2)], 0.0)
    assert delivery.next_deadline() is None and taken(delivery) == []


# Timing, on the fake clock -------------------------------------------------------------------


def test_delay_200ms_makes_an_event_due_exactly_200ms_later() -> None:
    delivery, counts = made("delay:200ms", now=10.0)
    delivery.offer([event(1)], 10.0)
    assert taken(delivery) == [] and delivery.next_deadline() == pytest.approx(10.2, abs=1e-12)
    delivery.advance(10.199)
    assert taken(delivery) == []
    delivery.advance(10.2)
    assert taken(delivery) == ids(1)
    assert delivery.next_deadline() is None and counts == {"delay": 1}


def test_stall_after_3_sends_nothing_for_exactly_2s_then_resumes() -> None:
    delivery, counts = made("stall_after:3,stall:2s")
    delivery.offer([event(1), event(2), event(3), event(4)], 5.0)
    assert taken(delivery) == ids(1, 2, 3)
    assert delivery.quiet  # keepalives too
    delivery.offer([event(5)], 6.0)
    delivery.offer([event(6)], 6.999)
    assert delivery.next_deadline() == 7.0
    delivery.advance(6.9999)
    assert taken(delivery) == [] and delivery.quiet
    delivery.advance(7.0)
    assert taken(delivery) == ids(4, 5, 6) and not delivery.quiet
    delivery.offer([event(7)], 7.0)  # once per connection
    assert taken(delivery) == ids(7)
    assert counts == {"stall": 1} and delivery.next_deadline() is None


def test_stall_after_0_is_silent_from_the_start() -> None:
    delivery, _ = made("stall_after:0,stall:1s", [event(1)], now=3.0)
    assert taken(delivery) == [] and delivery.quiet and delivery.next_deadline() == 4.0
    delivery.advance(4.0)
    assert taken(delivery) == ids(1)


def test_delay_and_jitter_keep_order_and_release_at_their_deadlines() -> None:
    delivery, counts = made("delay:10ms,jitter:30ms,seed:1")
    for n in range(1, 21):
        delivery.offer([event(n)], n / 1000)
    deadline = delivery.next_deadline()
    assert deadline is not None and 0.011 <= deadline <= 0.041
    seen: list[str] = []
    while (deadline := delivery.next_deadline()) is not None:
        delivery.advance(deadline)
        seen += taken(delivery)
    assert seen == ids(*range(1, 21))
    assert counts == {"delay": 20, "jitter": 20}


def test_a_duplicate_and_a_garbled_frame_go_out_beside_their_delayed_event() -> None:
    delivery, _ = made("delay:5ms,duplicate:1,garble:1")
    delivery.offer([event(1), event(2)], 0.0)
    delivery.advance(0.005)
    assert taken(delivery) == ["<garble>", "inc-1"] * 2 + ["<garble>", "inc-2"] * 2


def test_held_events_are_bounded_like_a_queue() -> None:
    delivery, _ = made("delay:1h", limit=3)
    assert delivery.offer([event(1), event(2), event(3)], 0.0)
    assert not delivery.offer([event(4)], 0.0)
    assert delivery.closing is SLOW and delivery.next_deadline() is None


# What is written, and whether the connection survives it --------------------------------------


def test_disconnect_after_ends_after_exactly_n_events_across_batches() -> None:
    delivery, counts = made("disconnect_after:5", [event(1), event(2)])
    assert delivery.offer([event(3)], 0.0)
    assert not delivery.offer([event(4), event(5), event(6)], 0.0)
    assert not delivery.offer([event(7)], 0.0)
    assert taken(delivery) == ids(1, 2, 3, 4, 5)  # what came before the end is still sent
    assert delivery.closing == fault("disconnect_after")
    assert (delivery.closing.code, delivery.closing.reason) == (4000, "fault: disconnect_after")
    assert counts == {"disconnect_after": 1}


def test_reset_after_ends_with_a_reset() -> None:
    delivery, counts = made("reset_after:2")
    delivery.offer([event(1), event(2), event(3)], 0.0)
    assert taken(delivery) == ids(1, 2)
    assert delivery.closing is not None and delivery.closing.reset
    assert counts == {"reset_after": 1}


def test_zero_counts_end_the_connection_before_any_event() -> None:
    delivery, _ = made("disconnect_after:0", [event(1)])
    assert taken(delivery) == [] and delivery.closing == fault("disconnect_after")


def test_duplicate_one_doubles_every_event_but_not_markers() -> None:
    delivery, counts = made("duplicate:1", [event(1)])
    delivery.offer([event(2), wire.resumed("inc-1"), event(3)], 0.0)
    assert taken(delivery) == [*ids(1, 1, 2, 2), "<resumed>", *ids(3, 3)]
    assert counts == {"duplicate": 3}


def test_reorder_swaps_an_event_with_the_next_even_in_a_later_batch() -> None:
    delivery, counts = made("reorder:1")
    delivery.offer([event(1)], 0.0)
    assert taken(delivery) == []  # waiting for its successor
    delivery.offer([event(2), event(3), event(4)], 0.0)
    assert taken(delivery) == ids(2, 1, 4, 3)
    assert counts == {"reorder": 2}


def test_garble_writes_a_frame_that_is_not_json_before_the_event() -> None:
    delivery, counts = made("garble:1")
    delivery.offer([event(1)], 0.0)
    assert taken(delivery) == ["<garble>", "inc-1"]
    bad = garbled(event(1))
    assert bad.id == "" and bad.sse.startswith(b"data: {") and b"\nid:" not in bad.sse
    with pytest.raises(ValueError):
        wire.parse_client_message(bad.json)
    multibyte = wire.encode(1, "i-1", EventType.POST_CREATED, {"t": "ü€😀" * 3})
    garbled(multibyte).json.decode()  # still UTF-8: a valid WebSocket text frame
    assert counts == {"garble": 1}


def test_drop_resets_before_a_struck_event() -> None:
    delivery, counts = made("drop:1")
    delivery.offer([event(1)], 0.0)
    assert taken(delivery) == []
    assert delivery.closing == fault("drop", reset=True)
    assert counts == {"drop": 1}


def test_resume_goes_through_the_stages_and_is_not_counted_against_the_bound() -> None:
    delivery, _ = made("duplicate:1", limit=2)
    delivery.replace([wire.resumed("inc-0"), event(1), event(2)], 0.0)
    assert delivery.backlog == 0
    assert taken(delivery) == ["<resumed>", *ids(1, 1, 2, 2)]


def test_same_seed_same_choices_other_seed_other_choices() -> None:
    def duplicated(text: str) -> list[str]:
        delivery, _ = made(text)
        seen: list[str] = []
        for n in range(1, 60):
            delivery.offer([event(n)], 0.0)
            seen += taken(delivery)
        return [i for i, count in Counter(seen).items() if count == 2]

    first = duplicated("duplicate:0.5,seed:42")
    assert 10 < len(first) < 50
    assert duplicated("duplicate:0.5,seed:42,garble:0.5") == first  # each stage its own rng
    assert duplicated("duplicate:0.5,seed:43") != first


def test_seeded_generators_are_reproducible_across_processes() -> None:
    """String seeds go through SHA-512, not ``hash()``: stable whatever PYTHONHASHSEED is."""
    assert random.Random("42:duplicate").random() == pytest.approx(0.77873, abs=1e-5)


def test_every_stage_is_wanted_by_some_item() -> None:
    every = parse(
        "disconnect_after:5,reset_after:9,drop:0.5,delay:1s,jitter:1s,stall_after:1,stall:1s,"
        "duplicate:0.5,reorder:0.5,garble:0.5,bandwidth:1,slow_close:1s"
    )
    assert all(stage.wanted(every) for stage in STAGES)
