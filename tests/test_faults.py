"""Faults on demand (issue #7 §1): the spec parser, each stage driven through a hub subscriber
with a recording connection, then every fault seen by a real client against a real server."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest

from simulator import wire
from simulator.faults import ITEMS, FaultSpec, FaultSpecError, parse
from simulator.hub import Framing, Hub, Subscriber
from simulator.script import EventType
from simulator.web.faults import Faulted, garbled
from simulator.wire import Event

# The spec ------------------------------------------------------------------------------------


def test_parse_every_item() -> None:
    spec = parse(
        "disconnect_after:5, reset_after:9,drop:0.01,delay:1s,jitter:200ms,stall_after:3,"
        "stall:2s,duplicate:1,reorder:.5,garble:0,no_resume,seed:7"
    )
    assert spec == FaultSpec(
        disconnect_after=5,
        reset_after=9,
        drop=0.01,
        delay=1.0,
        jitter=0.2,
        stall_after=3,
        stall=2.0,
        duplicate=1.0,
        reorder=0.5,
        garble=0.0,
        no_resume=True,
        seed=7,
    )
    assert str(spec) == (
        "disconnect_after:5,reset_after:9,drop:0.01,delay:1s,jitter:200ms,stall_after:3,"
        "stall:2s,duplicate:1,reorder:0.5,garble:0,no_resume,seed:7"
    )
    assert parse(str(spec)) == spec
    assert set(ITEMS) == {name for name, _ in spec.items()}


def test_empty_spec_is_no_faults_and_seed_alone_is_not_active() -> None:
    assert parse("") == parse("  ") == FaultSpec()
    assert not FaultSpec().active
    assert not parse("seed:3").active
    assert not parse("drop:0,delay:0s,no_resume:false").active
    assert parse("disconnect_after:0").active
    assert parse("no_resume").active


def test_connection_overrides_its_stream_item_by_item() -> None:
    stream = parse("duplicate:0.5,seed:1,stall_after:3,stall:2s")
    assert parse("duplicate:0,delay:1s", stream) == FaultSpec(
        duplicate=0.0, seed=1, stall_after=3, stall=2.0, delay=1.0
    )
    assert parse("stall:5s", stream).stall_after == 3
    assert parse("no_resume:false", parse("no_resume")).no_resume is False


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("drop:2", "'drop:2'"),
        ("drop:-0.1", "'drop:-0.1'"),
        ("drop:nan", "'drop:nan'"),
        ("drop:inf", "'drop:inf'"),
        ("drop:1e308", "'drop:1e308'"),
        ("drop:1_0", "'drop:1_0'"),
        ("drop", "'drop'"),
        ("drop:", "'drop:'"),
        ("disconnect_after:-1", "'disconnect_after:-1'"),
        ("disconnect_after:1.5", "'disconnect_after:1.5'"),
        ("disconnect_after:1000000001", "'disconnect_after:1000000001'"),
        ("disconnect_after:" + "9" * 900, "'disconnect_after:999"),
        ("disconnect_after:²", "'disconnect_after:²'"),
        ("seed:18446744073709551616", "'seed:18446744073709551616'"),
        ("delay:2h", "'delay:2h'"),
        ("delay:-1s", "'delay:-1s'"),
        ("jitter:1e308", "'jitter:1e308'"),
        ("stall:forever", "'stall:forever'"),
        ("no_resume:maybe", "'no_resume:maybe'"),
        ("explode:1", "unknown fault 'explode'"),
        ("drop:0.1,drop:0.2", "drop is given twice"),
        ("drop:0.1,,delay:1s", "empty item"),
        ("drop:0.1,", "empty item"),
        ("stall_after:3", "stall_after:3: needs stall"),
    ],
)
def test_bad_items_are_named(text: str, names: str) -> None:
    with pytest.raises(FaultSpecError) as caught:
        parse(text)
    message = str(caught.value)
    assert names in message
    assert len(message) < 200


def test_huge_specs_get_one_short_error() -> None:
    for text in ("x" * 10_000, ",".join(["drop:0.1"] * 1000)):
        with pytest.raises(FaultSpecError, match=r"^too long \(\d+ characters; at most 1000\)$"):
            parse(text)
    with pytest.raises(FaultSpecError, match="expected a string"):
        parse(7)


# The stages, through a hub subscriber ------------------------------------------------------


def event(serial: int) -> Event:
    return wire.encode(serial, f"inc-{serial}", EventType.POST_CREATED, {"id": f"p{serial}"})


class Line:
    """A connection that records what the chain writes (frames as ids) and how it ended."""

    def __init__(self) -> None:
        self.paused = False
        self.writes: list[list[str]] = []
        self.closed: str | None = None
        self.aborted = False
        self.hushed: list[bool] = []
        self.framing: Framing = self.frame
        self.transport: Any = FakeTransport()

    def frame(self, events: Sequence[Event]) -> bytes:
        return b"|".join(
            e.id.encode() if e.serial >= 0 else b"<" + e.type.encode() + b">" for e in events
        )

    def write(self, data: bytes) -> None:
        self.writes.append(data.decode().split("|"))

    def close(self, reason: str) -> None:
        self.closed = reason

    def abort(self) -> None:
        self.aborted = True

    def hush(self, quiet: bool) -> None:
        self.hushed.append(quiet)

    @property
    def seen(self) -> list[str]:
        return [i for write in self.writes for i in write]


class FakeTransport:
    def __init__(self) -> None:
        self.options: list[tuple[int, int, bytes]] = []

    def get_extra_info(self, name: str) -> Any:
        return self if name == "socket" else None

    def setsockopt(self, level: int, option: int, value: bytes) -> None:
        self.options.append((level, option, value))


def faulted(text: str, backlog: Sequence[Event] = ()) -> tuple[Hub, Line, Faulted, Counter[str]]:
    hub = Hub()
    subscriber = Subscriber("sse", 100, backlog)
    hub.add(subscriber)
    line = Line()
    counts: Counter[str] = Counter()
    sink = Faulted(line, parse(text), counts, limit=100, overflow=lambda: None)
    subscriber.attach(sink)
    assert not subscriber.direct  # never written through: every batch goes through the chain
    return hub, line, sink, counts


def ids(*serials: int) -> list[str]:
    return [f"inc-{n}" for n in serials]


async def test_disconnect_after_closes_after_exactly_n_events_across_batches() -> None:
    hub, line, _, counts = faulted("disconnect_after:5", [event(1), event(2)])
    hub.publish([event(3)])
    hub.publish([event(4), event(5), event(6)])
    hub.publish([event(7)])
    assert line.seen == ids(1, 2, 3, 4, 5)
    assert line.closed == "fault: disconnect_after"
    assert not line.aborted
    assert counts == {"disconnect_after": 1}


async def test_reset_after_sets_linger_zero_and_aborts() -> None:
    hub, line, _, counts = faulted("reset_after:2")
    hub.publish([event(1), event(2), event(3)])
    assert line.seen == ids(1, 2)
    assert line.aborted and line.closed is None
    assert line.transport.options[0][2] == b"\x01\x00\x00\x00\x00\x00\x00\x00"
    assert counts == {"reset_after": 1}


async def test_zero_counts_end_the_connection_before_any_event() -> None:
    _, line, _, _ = faulted("disconnect_after:0", [event(1)])
    assert line.writes == [] and line.closed == "fault: disconnect_after"


async def test_duplicate_one_doubles_every_event_but_not_markers() -> None:
    hub, line, _, counts = faulted("duplicate:1", [event(1)])
    hub.publish([event(2), wire.resumed("inc-1"), event(3)])
    assert line.seen == [*ids(1, 1, 2, 2), "<resumed>", *ids(3, 3)]
    assert counts == {"duplicate": 3}


async def test_reorder_swaps_an_event_with_the_next_even_in_a_later_batch() -> None:
    hub, line, _, counts = faulted("reorder:1")
    hub.publish([event(1)])
    assert line.seen == []  # waiting for its successor
    hub.publish([event(2), event(3), event(4)])
    assert line.seen == ids(2, 1, 4, 3)
    assert counts == {"reorder": 2}


async def test_garble_writes_a_frame_that_is_not_json_before_the_event() -> None:
    hub, line, _, counts = faulted("garble:1")
    hub.publish([event(1)])
    assert line.seen == ["<garble>", "inc-1"]
    bad = garbled(event(1))
    assert bad.id == "" and bad.sse.startswith(b"data: {") and b"\nid:" not in bad.sse
    with pytest.raises(ValueError):
        wire.parse_client_message(bad.json)
    multibyte = wire.encode(1, "i-1", EventType.POST_CREATED, {"t": "ü€😀" * 3})
    garbled(multibyte).json.decode()  # still UTF-8: a valid WebSocket text frame
    assert counts == {"garble": 1}


async def test_drop_resets_before_a_struck_event() -> None:
    hub, line, _, counts = faulted("drop:1")
    hub.publish([event(1)])
    assert line.seen == [] and line.aborted
    assert counts == {"drop": 1}


async def test_same_seed_same_choices_other_seed_other_choices() -> None:
    def duplicated(text: str) -> list[str]:
        hub, line, _, _ = faulted(text)
        for n in range(1, 60):
            hub.publish([event(n)])
        return [i for i, count in Counter(line.seen).items() if count == 2]

    first = duplicated("duplicate:0.5,seed:42")
    assert 10 < len(first) < 50
    assert duplicated("duplicate:0.5,seed:42,garble:0.5") == first  # each stage its own rng
    assert duplicated("duplicate:0.5,seed:43") != first


async def test_delay_and_jitter_keep_order() -> None:
    hub, line, _, counts = faulted("delay:10ms,jitter:30ms,seed:1")
    for n in range(1, 21):
        hub.publish([event(n)])
    assert line.seen == []
    async with asyncio.timeout(5):
        while len(line.seen) < 20:
            await asyncio.sleep(0.01)
    assert line.seen == ids(*range(1, 21))
    assert counts == {"delay": 20, "jitter": 20}


async def test_stall_holds_everything_after_n_then_goes_on_and_hushes_keepalives() -> None:
    hub, line, _, counts = faulted("stall_after:2,stall:50ms")
    hub.publish([event(1), event(2), event(3)])
    hub.publish([event(4)])
    assert line.seen == ids(1, 2)
    assert line.hushed == [True]
    async with asyncio.timeout(5):
        while len(line.seen) < 4:
            await asyncio.sleep(0.01)
    assert line.seen == ids(1, 2, 3, 4)
    assert line.hushed == [True, False]
    hub.publish([event(5)])  # once per connection
    assert line.seen[-1] == "inc-5"
    assert counts == {"stall": 1}


async def test_stop_cancels_timers_and_unhushes() -> None:
    hub, line, sink, _ = faulted("stall_after:0,stall:1h,delay:1h")
    hub.publish([event(1)])
    sink.stop()
    assert line.hushed == [True, False]
    hub.publish([event(2)])
    assert line.seen == []


async def test_held_events_are_bounded_like_a_queue() -> None:
    line = Line()
    overflows: list[bool] = []
    sink = Faulted(
        line, parse("delay:1h"), Counter(), limit=3, overflow=lambda: overflows.append(True)
    )
    sink.framing([event(1), event(2), event(3)])
    assert overflows == []
    sink.framing([event(4)])
    assert overflows == [True]
    sink.stop()


def test_seeded_generators_are_reproducible_across_processes() -> None:
    """String seeds go through SHA-512, not ``hash()``: stable whatever PYTHONHASHSEED is."""
    assert random.Random("42:duplicate").random() == pytest.approx(0.77873, abs=1e-5)
