"""What one connection is owed, without I/O: events in, bytes out, a deadline, an end.

A ``Delivery`` is one subscriber's side of a stream, in the manner of a sans-I/O protocol
(websockets' ``Protocol``, aioquic's ``now`` in / ``get_timer`` out). The stream ``offer``s it
events; the connection takes ``data_to_send`` when its socket can take bytes, arms one timer at
``next_deadline`` and calls ``advance`` when it fires, and ends itself when ``closing`` says so.
It holds

- the events not yet taken (bounded: past ``limit`` live events it closes as a slow consumer;
  a backlog to catch up on does not count against it);
- the fault stages a connection's spec asks for (``core/faults.py``), which see time only as the
  ``now`` they are given;
- the framing (SSE or WebSocket bytes, set by the connection).

A connection without faults never comes here for a live event while it keeps up: the hub writes
the bytes it framed once for everyone straight to the socket (``web/hub.py``).
"""

from __future__ import annotations

import enum
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from .faults import Context, FaultSpec, Stage, build, seeded
from .wire import Event

Rng = Callable[[str], random.Random]
Framing = Callable[[Sequence[Event]], bytes]
"""Events → the bytes one write puts on a connection (a batch coalesced into one write)."""


class Why(enum.Enum):
    """Why a connection is ended by the server."""

    SLOW = "slow"
    """It fell too far behind: it should reconnect with its last event id."""
    FAULT = "fault"
    """A fault it asked for (``disconnect_after``, ``reset_after``, ``drop``)."""
    GOING_AWAY = "going_away"
    """The stream or the server is going (deleted, failed, shutting down)."""


@dataclass(frozen=True, slots=True)
class Close:
    """How a connection ends: a WebSocket close code and reason (SSE: the response just ends),
    or, with ``reset``, a TCP reset and nothing else."""

    why: Why
    code: int
    reason: str
    reset: bool = False


SLOW_REASON = "slow consumer: fell too far behind; reconnect with your last event id"
SLOW = Close(Why.SLOW, 1013, SLOW_REASON)
"""A slow consumer's end; WebSocket 1013 (try again later): reconnect and resume."""
FAULT_CLOSE = 4000
"""WebSocket close code of a connection a fault closed (private use range, RFC 6455 §7.4.2)."""
GOING_AWAY = 1001


def going_away(reason: str) -> Close:
    return Close(Why.GOING_AWAY, GOING_AWAY, reason)


def fault(kind: str, *, reset: bool = False) -> Close:
    return Close(Why.FAULT, FAULT_CLOSE, f"fault: {kind}", reset)


def _unframed(events: Sequence[Event]) -> bytes:
    """The framing until the connection sets its own."""
    raise RuntimeError("a delivery's framing is set when its connection attaches")


_UNCOUNTED: Counter[str] = Counter()
"""A plain delivery's counts: shared, since only fault stages count (into their own)."""


class Delivery:
    """One connection's pending events, fault stages and framing; see the module docstring.

    Slotted, and a plain one holds nothing of its own but its list: there is one per subscriber.
    """

    __slots__ = ("catch_up", "closing", "counts", "framing", "head", "limit", "pending", "stages")

    def __init__(self, limit: int, backlog: Iterable[Event] = ()) -> None:
        self.limit = limit
        self.pending: list[Event] = list(backlog)
        """Events ready to be framed (a list: it is empty nearly always, and an empty list costs
        a tenth of an empty deque, per subscriber)."""
        self.catch_up = len(self.pending)
        """How many of ``pending`` are a backlog, not counted against ``limit``."""
        self.framing: Framing = _unframed
        self.closing: Close | None = None
        """Set once: how the connection is to end. What is pending then is still to be sent
        (the faults let it through before the end), unless ``close`` was called."""
        self.stages: Sequence[Stage] = ()
        self.head: Stage | None = None
        """Where offered events enter: the first stage, or None without faults."""
        self.counts = _UNCOUNTED

    # Configuration

    def fault(
        self, spec: FaultSpec, counts: Counter[str], now: float, rng: Rng | None = None
    ) -> None:
        """Put the stages ``spec`` asks for between ``offer`` and ``pending``; what is pending
        (the backlog) goes through them first. Faults injected are counted in ``counts``."""
        outlet = _Outlet(self)
        self.counts = counts
        context = Context(outlet, self.limit, now, rng or seeded(spec.seed))
        stages = build(spec, context)
        if not stages:
            return
        self.stages = stages
        self.head = stages[0]
        for stage in stages:
            stage.start()
        backlog, self.pending = self.pending, []
        self._enter(backlog, now)
        self.catch_up = len(self.pending)

    def refault(
        self, spec: FaultSpec, counts: Counter[str], now: float, rng: Rng | None = None
    ) -> None:
        """Replace the stages with those ``spec`` asks for (the stream's faults changed at
        runtime). What the old stages held goes through the new ones, oldest first (the later
        a stage, the older what it holds); what was already pending stays ready."""
        if self.closing is not None:
            return
        held = [event for stage in reversed(self.stages) for event in stage.release()]
        self.stages = ()
        self.head = None
        ready, catch_up = self.pending, self.catch_up
        self.pending = []
        self.fault(spec, counts, now, rng)
        self.pending = ready + self.pending
        self._enter(held, now)
        self.catch_up = min(catch_up, len(ready))

    @property
    def plain(self) -> bool:
        """No stage: the hub may write its shared bytes straight through."""
        return self.head is None

    @property
    def quiet(self) -> bool:
        """Keepalives must be suspended too (a stall is total silence)."""
        return any(stage.quiet for stage in self.stages)

    @property
    def backlog(self) -> int:
        """Live events waiting: how far behind the connection is."""
        return len(self.pending) - self.catch_up

    # Events in

    def offer(self, events: list[Event], now: float) -> bool:
        """Take live events; False once the connection is closing (maybe because of these).

        Past the bound means ``limit`` live events were already waiting: judged before this
        batch, so one batch larger than the bound (speed max emits up to 64 at once) does not
        drop a subscriber that has taken everything so far.
        """
        pending = self.pending
        if self.closing is None and len(pending) - self.catch_up < self.limit:
            if self.head is None:
                pending += events
                return True
            self._enter(events, now)
            return self.closing is None
        if self.closing is None:
            self.close(SLOW)
        return False

    def replace(self, backlog: Iterable[Event], now: float) -> None:
        """Start over from a new position (a client's resume on an open connection)."""
        if self.closing is not None:
            return
        self.pending = []
        self._enter(list(backlog), now)
        self.catch_up = len(self.pending)

    def _enter(self, events: list[Event], now: float) -> None:
        """One event at a time through the stages, so that nothing after the connection's end
        is counted as injected."""
        head = self.head
        if head is None:
            self.pending.extend(events)
            return
        for event in events:
            if self.closing is not None:
                break
            head.send([event], now)

    # Time

    def next_deadline(self) -> float | None:
        """When ``advance`` has something to do; None: nothing until the next offer."""
        if self.closing is not None:
            return None
        deadlines = [d for d in (stage.deadline() for stage in self.stages) if d is not None]
        return min(deadlines, default=None)

    def advance(self, now: float) -> None:
        """Release what the stages hold until ``now``, head first, so what one releases can be
        held by the next."""
        for stage in self.stages:
            if self.closing is not None:
                return
            stage.advance(now)

    # Bytes out, and the end

    def data_to_send(self) -> bytes:
        """Everything pending, framed for one write (b"" if nothing)."""
        if not self.pending:
            return b""
        batch, self.pending = self.pending, []
        self.catch_up = 0
        return self.framing(batch)

    def close(self, close: Close) -> None:
        """End from outside (slow, shutdown): nothing pending is sent any more."""
        if self.closing is None:
            self.closing = close
        self.pending = []
        self.catch_up = 0
        self.stages = ()


class _Outlet:
    """The stages' last link: what gets through is pending; a stage's end is the delivery's."""

    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery

    @property
    def counts(self) -> Counter[str]:
        return self.delivery.counts

    def send(self, events: list[Event], now: float) -> None:
        if self.delivery.closing is None and events:
            self.delivery.pending += events

    def end(self, kind: str, *, reset: bool) -> None:
        delivery = self.delivery
        if delivery.closing is None:
            delivery.counts[kind] += 1
            delivery.closing = fault(kind, reset=reset)
            delivery.stages = ()

    def overflow(self) -> None:
        self.delivery.close(SLOW)
