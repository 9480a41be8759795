"""``GET /metrics``: Prometheus text from a registry the app owns.

The hot paths keep plain integer counters (a stream's events by type, a hub's deliveries per
transport); this collector reads them at scrape time, so publishing pays nothing for metrics.
Labels come from small sets only: stream ids (bounded by ``server.max_streams``, plus the last
``RETIRED_STREAMS`` deleted ones; every private replay is counted under ``stream="private"``),
transports, event types, fixed reasons.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from ..core.wire import Event

if TYPE_CHECKING:
    from .stream import Stream

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
"""What ``generate_latest`` writes: the classic text format every Prometheus reads."""
PRIVATE = "private"
DELETED = "deleted"
RETIRED_STREAMS = 100
"""Deleted streams whose events keep their own ``stream`` label; an older one's are summed under
``stream="deleted"``, so creating and deleting streams cannot grow the label set for ever."""
LATENESS_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class StreamCounts:
    """What one stream counts as it runs, read by /metrics at scrape time (and folded into
    ``Totals`` when the stream stops)."""

    events: Counter[str] = field(default_factory=Counter)
    """Events published, by type."""
    resumes: Counter[str] = field(default_factory=Counter)
    """Cursors served: ``exact`` or ``reset``."""
    faults: Counter[str] = field(default_factory=Counter)
    """Faults injected on its connections, by kind."""
    reconnects_without_cursor: int = 0
    """Subscriptions without a cursor from an address a fault had just disconnected."""

    def published(self, events: Iterable[Event]) -> None:
        events_by_type = self.events
        for event in events:
            events_by_type[event.type] += 1


@dataclass
class Totals:
    """Counts that outlive the streams they came from, and refusals made before any stream."""

    deliveries: Counter[str] = field(default_factory=Counter)
    slow_drops: int = 0
    resumes: Counter[str] = field(default_factory=Counter)
    events: Counter[tuple[str, str]] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    reconnects_without_cursor: Counter[str] = field(default_factory=Counter)
    retired: dict[str, None] = field(default_factory=dict)
    """Ids of the deleted streams whose events are kept under their own label, oldest first."""

    def retire(self, stream: Stream) -> None:
        """Fold a stopped stream's counters in, so totals never go backwards."""
        self.deliveries.update(stream.hub.deliveries)
        self.slow_drops += stream.hub.dropped_slow
        self.resumes.update(stream.counts.resumes)
        self.faults.update(stream.counts.faults)
        name = PRIVATE if stream.private else stream.id
        if stream.counts.reconnects_without_cursor:
            self.reconnects_without_cursor[name] += stream.counts.reconnects_without_cursor
        for kind, count in stream.counts.events.items():
            self.events[name, kind] += count
        if not stream.private:
            self.retired.pop(name, None)
            self.retired[name] = None
            if len(self.retired) > RETIRED_STREAMS:
                self._fold(next(iter(self.retired)))

    def _fold(self, name: str) -> None:
        del self.retired[name]
        for stream, kind in [key for key in self.events if key[0] == name]:
            self.events[DELETED, kind] += self.events.pop((stream, kind))
        if name in self.reconnects_without_cursor:
            count = self.reconnects_without_cursor.pop(name)
            self.reconnects_without_cursor[DELETED] += count


class Metrics:
    def __init__(
        self, live: Callable[[], Iterable[Stream]], slots: Callable[[], int] = lambda: 0
    ) -> None:
        """``live``: the running streams; ``slots``: the connection slots held now."""
        self.registry = CollectorRegistry(auto_describe=True)
        self.totals = Totals()
        self.lateness = Histogram(
            "livesim_emit_lateness_seconds",
            "When a timed event was published minus its deadline.",
            buckets=LATENESS_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_Collector(live, self.totals, slots))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Collector(Collector):
    def __init__(
        self, live: Callable[[], Iterable[Stream]], totals: Totals, slots: Callable[[], int]
    ) -> None:
        self.live = live
        self.totals = totals
        self.slots = slots

    def collect(self) -> Iterator[Metric]:
        totals = self.totals
        subscribers: Counter[tuple[str, str]] = Counter()
        events = Counter(totals.events)
        deliveries = Counter(totals.deliveries)
        resumes = Counter(totals.resumes)
        faults = Counter(totals.faults)
        uncursored = Counter(totals.reconnects_without_cursor)
        slow = totals.slow_drops
        for stream in list(self.live()):
            name = PRIVATE if stream.private else stream.id
            for transport, count in stream.hub.subscriber_counts().items():
                subscribers[name, transport] += count
            for kind, count in stream.counts.events.items():
                events[name, kind] += count
            deliveries.update(stream.hub.deliveries)
            resumes.update(stream.counts.resumes)
            faults.update(stream.counts.faults)
            if stream.counts.reconnects_without_cursor:
                uncursored[name] += stream.counts.reconnects_without_cursor
            slow += stream.hub.dropped_slow

        gauge = GaugeMetricFamily(
            "livesim_subscribers",
            "Open SSE and WebSocket subscribers.",
            labels=["stream", "transport"],
        )
        for (name, transport), count in sorted(subscribers.items()):
            gauge.add_metric([name, transport], count)
        yield gauge
        yield GaugeMetricFamily(
            "livesim_connection_slots",
            "Requests in flight, SSE and WebSocket included: what server.max_connections bounds.",
            value=self.slots(),
        )
        yield _counter("livesim_events", "Events published.", ["stream", "type"], events)
        yield _counter(
            "livesim_deliveries", "Events handed to subscribers.", ["transport"], deliveries
        )
        yield CounterMetricFamily(
            "livesim_slow_drops", "Subscribers dropped for falling too far behind.", value=slow
        )
        yield _counter(
            "livesim_resumes", "Cursors served: exact, or with stream.reset.", ["result"], resumes
        )
        yield _counter(
            "livesim_faults_injected",
            "Faults injected on purpose (the faults parameter or setting), by kind.",
            ["kind"],
            faults,
        )
        yield _counter(
            "livesim_reconnects_without_cursor",
            "Subscriptions without a cursor from an address a fault had just disconnected "
            "from the same stream: clients that do not resume.",
            ["stream"],
            uncursored,
        )
        yield _counter(
            "livesim_connections_refused",
            "Requests refused by a limit or an access rule.",
            ["reason"],
            totals.refused,
        )


def _counter(
    name: str,
    documentation: str,
    labels: list[str],
    values: Counter[str] | Counter[tuple[str, str]],
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=labels)
    for key, count in sorted(values.items()):
        family.add_metric([key] if isinstance(key, str) else list(key), count)
    return family
