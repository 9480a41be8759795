"""The toxics added for #15: ``bandwidth`` and ``slow_close``, on a fake clock (a delivery driven
by ``now``), and a stream's faults changed at runtime (``PATCH``)."""

from __future__ import annotations

import pytest
from test_delivery import event, made, taken

from simulator.core.delivery import Why
from simulator.core.faults import FaultSpecError, parse


def test_the_new_items_parse_and_write_back() -> None:
    spec = parse("bandwidth:16,slow_close:2s")
    assert (spec.bandwidth, spec.slow_close) == (16.0, 2.0)
    assert str(spec) == "bandwidth:16,slow_close:2s"
    assert parse(str(parse("bandwidth:0.5"))).bandwidth == 0.5
    for bad in ("bandwidth:0", "bandwidth:-1", "bandwidth:1e3", "bandwidth", "bandwidth:2000000"):
        with pytest.raises(FaultSpecError, match="bandwidth"):
            parse(bad)
    with pytest.raises(FaultSpecError, match="slow_close"):
        parse("slow_close:-1s")


def test_bandwidth_releases_each_event_when_its_bytes_have_crossed_the_link() -> None:
    size = len(event(1).sse)
    rate = size / 1000  # KB/s: one event a second
    delivery, counts = made(f"bandwidth:{rate:.6f}")
    per_event = size / (round(rate, 6) * 1000)
    delivery.offer([event(1), event(2), event(3)], 0.0)
    assert taken(delivery) == []
    assert delivery.next_deadline() == pytest.approx(per_event)
    delivery.advance(per_event)
    assert taken(delivery) == ["inc-1"]
    delivery.advance(2 * per_event - 1e-9)
    assert taken(delivery) == []
    delivery.advance(3 * per_event)
    assert taken(delivery) == ["inc-2", "inc-3"]
    assert delivery.next_deadline() is None
    # an idle link is free again: an event offered later waits only for its own bytes
    delivery.offer([event(4)], 10.0)
    assert delivery.next_deadline() == pytest.approx(10.0 + per_event)
    assert counts["bandwidth"] == 4


def test_slow_close_holds_a_faults_end_back() -> None:
    delivery, counts = made("disconnect_after:2,slow_close:3s")
    delivery.offer([event(1), event(2), event(3)], 5.0)
    assert taken(delivery) == ["inc-1", "inc-2"]
    assert delivery.closing is None and delivery.next_deadline() == 8.0
    delivery.offer([event(4)], 6.0)  # nothing after the end is written
    delivery.advance(7.999)
    assert taken(delivery) == [] and delivery.closing is None
    delivery.advance(8.0)
    assert delivery.closing is not None and delivery.closing.why is Why.FAULT
    assert delivery.closing.reason == "fault: disconnect_after" and not delivery.closing.reset
    assert counts == {"disconnect_after": 1, "slow_close": 1}


def test_slow_close_keeps_a_reset_a_reset_and_acts_from_the_start() -> None:
    delivery, _ = made("reset_after:0,slow_close:500ms", now=1.0)
    assert delivery.closing is None and delivery.next_deadline() == 1.5
    delivery.advance(1.5)
    assert delivery.closing is not None and delivery.closing.reset
