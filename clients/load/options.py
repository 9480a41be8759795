"""What a ``livesim load`` run is asked to do."""

from __future__ import annotations

from dataclasses import dataclass

from ..sse import MAX_EVENT_BYTES
from ..verdicts import Threshold

TRANSPORTS = ("sse", "ws", "mix")


@dataclass(frozen=True, slots=True)
class LoadOptions:
    url: str | None
    nodes: tuple[str, ...] = ()
    """More URLs of the same stream, on other nodes: client N opens its first connection to
    URL number N modulo their count (``url`` is number 0)."""
    switch_nodes: bool = False
    """Each new connection of a client (a reconnect, a retry) goes to the next URL."""
    clients: int = 100
    transport: str = "sse"
    ramp: float = 500.0
    """Connections opened per second; 0 opens them all at once."""
    duration: float = 30.0
    warmup: float = 0.0
    """Seconds from the start whose events' lateness is not counted (a ramp's connection storm
    is not the steady state a capacity is); their ids are judged all the same."""
    warm_until: float = 0.0
    """The end of the warm-up, epoch seconds (``run_load`` sets it, one for every process)."""
    churn: float = 0.0
    """Connections dropped (by us) per second, each reconnecting from its last id."""
    faults: str | None = None
    procs: int = 1
    max_p99: float | None = None
    """Seconds; a run whose lateness p99 is above fails."""
    drain: float = 5.0
    max_event_bytes: int = MAX_EVENT_BYTES
    """A frame over this breaks its connection (counted as failed)."""
    thresholds: tuple[Threshold, ...] = ()
    """Besides ``max_p99``; without a ``connect_failures`` one, any connect failure fails."""

    @property
    def urls(self) -> tuple[str | None, ...]:
        return (self.url, *self.nodes)
