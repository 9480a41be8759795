"""The hub's two delivery paths (write-through, queued under flow control), its bound, and the
figures it keeps for metrics, driven with a recording sink."""

from __future__ import annotations

from collections.abc import Sequence

from simulator.core import wire
from simulator.core.wire import Event, EventType
from simulator.web.hub import SLOW, Close, Framing, Hub, Subscriber


def event(serial: int) -> Event:
    return wire.encode(serial, f"inc-{serial}", EventType.POST_CREATED, {"id": f"inc-{serial}"})


def ids(events: Sequence[Event]) -> bytes:
    return b"|".join(e.id.encode() for e in events) + b";"


class RecordingSink:
    """Frames a batch as its ids; remembers every write and how it was closed."""

    def __init__(self) -> None:
        self.paused = False
        self.writes: list[bytes] = []
        self.closed: Close | None = None
        self.aborted = False
        self.framed = 0
        self.framing: Framing = self.frame

    def frame(self, events: Sequence[Event]) -> bytes:
        self.framed += 1
        return ids(events)

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self, close: Close) -> None:
        self.closed = close

    def abort(self) -> None:
        self.aborted = True

    def arm(self, deadline: float | None) -> None:
        raise AssertionError("a subscriber without faults has no deadline")


def joined(sink: RecordingSink) -> list[str]:
    return [i for w in sink.writes for i in w.decode().rstrip(";").replace(";", "|").split("|")]


async def test_idle_subscriber_is_written_through_and_backlog_goes_first() -> None:
    hub = Hub()
    subscriber = Subscriber("ws", 8, [event(1), event(2)])
    hub.add(subscriber)
    hub.publish([event(3)])  # not attached yet: queued behind the backlog
    sink = RecordingSink()
    subscriber.attach(sink)
    assert sink.writes == [b"inc-1|inc-2|inc-3;"]  # the backlog and what came since: one write
    assert subscriber.direct
    hub.publish([event(4), event(5)])
    assert sink.writes[-1] == b"inc-4|inc-5;"  # a batch is one write
    assert not subscriber.pending


async def test_paused_subscriber_queues_and_flushes_in_order_on_resume() -> None:
    hub = Hub()
    subscriber = Subscriber("sse", 8)
    hub.add(subscriber)
    sink = RecordingSink()
    subscriber.attach(sink)
    sink.paused = True
    subscriber.pause()
    hub.publish([event(1)])
    hub.publish([event(2)])
    assert sink.writes == []
    assert [e.serial for e in subscriber.pending] == [1, 2]
    sink.paused = False
    subscriber.flush()  # what resume_writing does
    hub.publish([event(3)])
    assert joined(sink) == ["inc-1", "inc-2", "inc-3"]
    assert subscriber.direct


async def test_framing_is_built_once_per_publish_for_all_subscribers() -> None:
    hub = Hub()
    sink = RecordingSink()
    framing = sink.framing
    sinks = []
    for transport in ("sse", "ws", "ws"):
        subscriber = Subscriber(transport, 8)
        hub.add(subscriber)
        one = RecordingSink()
        one.framing = framing  # framed alike: one function
        subscriber.attach(one)
        sinks.append(one)
    hub.publish([event(1)])
    assert sink.framed == 1
    assert all(s.writes == [b"inc-1;"] for s in sinks)


async def test_deliveries_and_counts_per_transport() -> None:
    hub = Hub()
    for transport in ("sse", "ws", "ws"):
        subscriber = Subscriber(transport, 8)
        hub.add(subscriber)
        subscriber.attach(RecordingSink())
    hub.publish([event(1), event(2)])
    hub.publish([event(3)])
    assert hub.subscriber_counts() == {"sse": 1, "ws": 2}
    assert hub.deliveries == {"sse": 3, "ws": 6}


async def test_subscriber_past_its_bound_is_dropped_closed_and_counted() -> None:
    hub = Hub()
    slow, fast = Subscriber("ws", 2), Subscriber("ws", 2)
    slow_sink, fast_sink = RecordingSink(), RecordingSink()
    for subscriber, sink in ((slow, slow_sink), (fast, fast_sink)):
        hub.add(subscriber)
        subscriber.attach(sink)
    slow_sink.paused = True
    slow.pause()
    for serial in range(1, 5):
        hub.publish([event(serial)])
    assert slow.dropped == SLOW
    assert slow_sink.closed == SLOW
    assert hub.dropped_slow == 1
    assert hub.subscriber_counts() == {"sse": 0, "ws": 1}
    assert joined(fast_sink) == ["inc-1", "inc-2", "inc-3", "inc-4"]
    # 4 to the fast one, 2 queued for the slow one before the third publish dropped it.
    assert hub.deliveries["ws"] == 4 + 2


async def test_resume_on_an_open_connection_replaces_the_queue() -> None:
    hub = Hub()
    subscriber = Subscriber("ws", 8)
    hub.add(subscriber)
    sink = RecordingSink()
    subscriber.attach(sink)
    sink.paused = True
    subscriber.pause()
    hub.publish([event(5)])
    sink.paused = False
    subscriber.replace([wire.resumed("inc-1"), event(2), event(3)])
    assert sink.writes == [b"|inc-2|inc-3;"]  # the marker has no id; event 5 was superseded
    assert subscriber.direct
