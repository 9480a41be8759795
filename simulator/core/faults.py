"""Fault specs: what a connection is to suffer on purpose, as a client-testing tool.

A spec is comma-separated ``name:value`` items (``disconnect_after:5,jitter:200ms,seed:7``),
given per connection (the ``faults`` query parameter) or per stream (its ``faults`` setting).
Every field is ``None`` until an item sets it, so a connection's spec can override a stream's
item by item (``FaultSpec.merged``).

The stages that carry a spec out live here too, pure: like toxiproxy's toxics, each fault is one
small class with its own parameters and its own seeded ``random.Random``, chained per connection
inside its ``Delivery`` (``core/delivery.py``). Time comes in as ``now`` (``send``, ``advance``)
and goes out as a deadline (``deadline``); nothing here owns a timer. A stage sees events, never
bytes, so one chain serves SSE and WebSocket alike. A new fault is one ``ITEMS`` entry and one
``Stage`` subclass in ``STAGES``.

The order is fixed: delay/jitter, bandwidth and stall (when), then reorder, duplicate, garble
(what is written: a duplicate or a garbled frame goes out right beside its event), then drop,
disconnect_after, reset_after (whether the connection survives the write), and slow_close last
(when the end those decide is carried out: the other stages end the connection through it).
A marker that is not a stream event (``resumed``, serial < 0) is never struck and never counted.
"""

from __future__ import annotations

import contextlib
import random
import re
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from decimal import Decimal
from typing import ClassVar, Literal, Protocol

from .model import shown
from .timeline import parse_duration
from .wire import Event

MAX_SPEC = 1000
"""The longest spec accepted, in characters (every item at once fits in a quarter of it)."""
MAX_COUNT = 10**9
MAX_FAULT_DURATION = 3600.0
"""Delays and stalls are bounded by an hour: longer would only hold a connection's events."""
MIN_FAULT_DURATION = 0.001
"""A duration other than 0 is at least a millisecond: a timer cannot be finer, and a smaller value
would be written back (``str(spec)``) in a form no spec accepts."""

Kind = Literal["count", "probability", "duration", "flag", "seed", "rate"]
ITEMS: dict[str, Kind] = {
    "disconnect_after": "count",
    "reset_after": "count",
    "drop": "probability",
    "delay": "duration",
    "jitter": "duration",
    "stall_after": "count",
    "stall": "duration",
    "duplicate": "probability",
    "reorder": "probability",
    "garble": "probability",
    "bandwidth": "rate",
    "slow_close": "duration",
    "no_resume": "flag",
    "seed": "seed",
}
"""Every item, in the order a spec is written back (``str(spec)``)."""

_DECIMAL = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)\Z")
_DURATION = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)\Z|(?:\d+(?:\.\d+)?(?:ms|s|m|h))+\Z")
"""A duration as a spec writes it: unsigned decimals with units (``250ms``, ``1m30s``) or plain
seconds; no sign, no exponent, no ``inf``."""
MAX_DURATION_TEXT = 40
MAX_KBPS = 1_000_000.0
"""``bandwidth`` in KB/s (1 KB = 1000 bytes, toxiproxy's), from 0.001 to a gigabyte a second."""
MIN_KBPS = 0.001
_FLAGS = {"true": True, "1": True, "false": False, "0": False}


class FaultSpecError(ValueError):
    """A spec that cannot be used; the text names the item at fault, not the place (the caller
    prefixes ``query.faults``, ``body.faults`` or the config key)."""


@dataclass(frozen=True, slots=True)
class FaultSpec:
    disconnect_after: int | None = None
    reset_after: int | None = None
    drop: float | None = None
    delay: float | None = None
    jitter: float | None = None
    stall_after: int | None = None
    stall: float | None = None
    duplicate: float | None = None
    reorder: float | None = None
    garble: float | None = None
    bandwidth: float | None = None
    slow_close: float | None = None
    no_resume: bool | None = None
    seed: int | None = None

    def merged(self, override: FaultSpec) -> FaultSpec:
        """This spec with every item ``override`` sets replaced (a connection over its stream)."""
        given = {f.name: getattr(override, f.name) for f in fields(override)}
        return replace(self, **{k: v for k, v in given.items() if v is not None})

    @property
    def active(self) -> bool:
        """Something would happen: a connection whose spec is not active stays plain."""
        return bool(self.no_resume) or any(stage.wanted(self) for stage in STAGES)

    def items(self) -> list[tuple[str, int | float | bool | None]]:
        return [(name, getattr(self, name)) for name in ITEMS]

    def __str__(self) -> str:
        out = []
        for name, value in self.items():
            if value is None:
                continue
            kind = ITEMS[name]
            if kind == "flag":
                out.append(name if value else f"{name}:false")
            elif kind == "duration":
                out.append(f"{name}:{_seconds(float(value))}")
            elif kind in ("probability", "rate"):
                out.append(f"{name}:{_decimal(float(value))}")
            else:
                out.append(f"{name}:{value}")
        return ",".join(out)


def parse(text: object, base: FaultSpec | None = None) -> FaultSpec:
    """The spec ``text`` describes, over ``base`` if given; ``FaultSpecError`` naming the item.

    Whitespace around items is ignored and an empty text is no faults; an item given twice,
    an unknown name, a missing or out-of-range value are errors.
    """
    if not isinstance(text, str):
        raise FaultSpecError(f"expected a string of name:value items, got {shown(text, 40)}")
    if len(text) > MAX_SPEC:
        raise FaultSpecError(f"too long ({len(text)} characters; at most {MAX_SPEC})")
    given: dict[str, int | float | bool] = {}
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            if text.strip():
                raise FaultSpecError("empty item (two commas in a row, or one at an end)")
            continue
        name, colon, value = (part.strip() for part in item.partition(":"))
        kind = ITEMS.get(name)
        if kind is None:
            raise FaultSpecError(
                f"{shown(item, 40)}: unknown fault {shown(name, 40)} (known: {', '.join(ITEMS)})"
            )
        if name in given:
            raise FaultSpecError(f"{shown(item, 40)}: {name} is given twice")
        if kind != "flag" and not colon:
            raise FaultSpecError(f"{shown(item, 40)}: expected {name}:{_HINT[kind]}")
        given[name] = _value(name, kind, value if colon else None, item)
    spec = (base or FaultSpec()).merged(FaultSpec(**given))  # type: ignore[arg-type]
    if spec.stall_after is not None and spec.stall is None:
        raise FaultSpecError(f"stall_after:{spec.stall_after}: needs stall:D (how long)")
    return spec


_HINT: dict[Kind, str] = {
    "count": "N (a whole number)",
    "probability": "P (from 0 to 1)",
    "duration": "D (like 500ms, 2s, 1m)",
    "flag": "true|false",
    "seed": "N (a whole number)",
    "rate": "KBps (kilobytes a second, like 16 or 0.5)",
}


def _value(name: str, kind: Kind, value: str | None, item: str) -> int | float | bool:
    at = f"{shown(item, 40)}: "
    if kind == "flag":
        if value is None:
            return True
        if value.lower() not in _FLAGS:
            raise FaultSpecError(f"{at}expected {name} or {name}:true|false")
        return _FLAGS[value.lower()]
    assert value is not None
    if kind in ("count", "seed"):
        if not (value.isascii() and value.isdigit()) or len(value) > 10 or int(value) > MAX_COUNT:
            raise FaultSpecError(f"{at}expected a whole number from 0 to {MAX_COUNT}")
        return int(value)
    if kind == "rate":
        if not _DECIMAL.match(value) or len(value) > 20 or not MIN_KBPS <= float(value) <= MAX_KBPS:
            raise FaultSpecError(
                f"{at}expected kilobytes a second from {MIN_KBPS:g} to {MAX_KBPS:.0f} (like 16)"
            )
        return float(value)
    if kind == "probability":
        if not _DECIMAL.match(value) or len(value) > 20 or not 0 <= float(value) <= 1:
            raise FaultSpecError(f"{at}expected a probability from 0 to 1 (like 0.1)")
        return float(value)
    seconds = -1.0
    if len(value) <= MAX_DURATION_TEXT and _DURATION.match(value.lower()):
        with contextlib.suppress(ValueError):  # past a century
            seconds = parse_duration(value)
    if not (seconds == 0 or MIN_FAULT_DURATION <= seconds <= MAX_FAULT_DURATION):
        raise FaultSpecError(f"{at}expected 0 or a duration from 1ms to 1h (like 200ms, 2s, 1m)")
    return seconds


def _decimal(value: float) -> str:
    """A probability or rate as a spec writes it, read back to exactly ``value``: nodes sharing a
    stream pass its faults on as this text, and the state file keeps them so. Never an exponent,
    which no spec accepts (``1e-05``)."""
    short = f"{value:g}"
    if "e" not in short and float(short) == value:
        return short
    return format(Decimal(repr(value)), "f")


def _seconds(value: float) -> str:
    """The duration as a spec writes it, read back to exactly ``value`` (a stream's ``faults``
    setting is kept as this text and parsed again for each connection)."""
    short = f"{value * 1000:g}ms" if 0 < value < 1 else f"{value:g}s"
    return short if parse_duration(short) == value else f"{value!r}s"


# Stages ----------------------------------------------------------------------------------------

GARBLE = "garble"


def is_event(event: Event) -> bool:
    return event.serial >= 0


class Link(Protocol):
    def send(self, events: list[Event], now: float) -> None: ...


class Outlet(Link, Protocol):
    """The chain's last link, in the delivery: gathers what gets through, and is told how the
    connection is to end. After an end, it takes nothing more."""

    @property
    def counts(self) -> Counter[str]:
        """Faults injected, by kind."""

    def end(self, kind: str, *, reset: bool) -> None:
        """End the connection because of fault ``kind``: politely, or with an RST."""

    def overflow(self) -> None:
        """A stage holds more than the connection's bound: drop it as a slow consumer."""


@dataclass(slots=True)
class Context:
    """What a stage is built with besides the spec."""

    outlet: Outlet
    limit: int
    now: float
    rng: Callable[[str], random.Random]


class Stage:
    """One fault: takes a batch at ``now``, passes on what it lets through (maybe later, maybe
    changed). ``wanted`` says whether a spec asks for it."""

    kind: ClassVar[str] = ""

    def __init__(self, spec: FaultSpec, context: Context) -> None:
        self.outlet = context.outlet
        self.next: Link = context.outlet

    @classmethod
    def wanted(cls, spec: FaultSpec) -> bool:
        return bool(getattr(spec, cls.kind))

    def start(self) -> None:
        """The chain is built: act on what is due before any event."""

    def send(self, events: list[Event], now: float) -> None:
        self.next.send(events, now)

    def deadline(self) -> float | None:
        """When this stage next has something to do without being sent anything."""
        return None

    def advance(self, now: float) -> None:
        """Do what is due by ``now``."""

    def release(self) -> list[Event]:
        """Give up what this stage holds, in order: its chain is being replaced (the faults
        were changed at runtime) and the new chain takes these events."""
        return []

    @property
    def quiet(self) -> bool:
        """The connection must be silent: keepalives too (``stall``)."""
        return False


class Chance(Stage):
    """A stage that strikes each event with probability ``p`` (its toxicity)."""

    def __init__(self, spec: FaultSpec, context: Context) -> None:
        super().__init__(spec, context)
        self.p = float(getattr(spec, self.kind) or 0.0)
        self.rng = context.rng(self.kind)

    def strikes(self) -> bool:
        return self.rng.random() < self.p


class Held(Stage):
    """A stage that holds events until deadlines, in order, and drops the connection as slow
    when it holds more than ``limit`` of them."""

    def __init__(self, spec: FaultSpec, context: Context) -> None:
        super().__init__(spec, context)
        self.limit = context.limit
        self.queue: deque[tuple[float, list[Event]]] = deque()
        self.held = 0

    def hold(self, deadline: float, events: list[Event]) -> None:
        if self.queue and deadline < self.queue[-1][0]:
            deadline = self.queue[-1][0]  # order kept: never before what is already waiting
        self.queue.append((deadline, events))
        self.held += len(events)
        if self.held > self.limit:
            self.outlet.overflow()

    def deadline(self) -> float | None:
        return self.queue[0][0] if self.queue else None

    def release(self) -> list[Event]:
        out = [event for _, events in self.queue for event in events]
        self.queue.clear()
        self.held = 0
        return out

    def advance(self, now: float) -> None:
        out: list[Event] = []
        while self.queue and self.queue[0][0] <= now:
            out += self.queue.popleft()[1]
        self.held -= len(out)
        if out:
            self.next.send(out, now)


class Latency(Held):
    """Hold every event back ``delay`` plus a random 0..``jitter``, order kept."""

    kind = "delay"

    def __init__(self, spec: FaultSpec, context: Context) -> None:
        super().__init__(spec, context)
        self.delay = spec.delay or 0.0
        self.jitter = spec.jitter or 0.0
        self.rng = context.rng("jitter")

    @classmethod
    def wanted(cls, spec: FaultSpec) -> bool:
        return bool(spec.delay or spec.jitter)

    def send(self, events: list[Event], now: float) -> None:
        counts = self.outlet.counts
        for event in events:
            if not is_event(event):
                self.hold(now, [event])
                continue
            wait = self.delay
            counts["delay"] += self.delay > 0
            if self.jitter:
                wait += self.rng.uniform(0, self.jitter)
                counts["jitter"] += 1
            self.hold(now + wait, [event])


class Stall(Held):
    """After ``stall_after`` events, send nothing at all for ``stall`` (keepalives neither),
    then go on with what arrived meanwhile. Once per connection."""

    kind = "stall"

    def __init__(self, spec: FaultSpec, context: Context) -> None:
        super().__init__(spec, context)
        self.count = spec.stall_after or 0
        self.duration = spec.stall or 0.0
        self.seen = 0
        self.until: float | None = None
        self.over = False
        """The stall has ended (it happens once)."""
        if self.count == 0:
            self._begin(context.now)

    @property
    def quiet(self) -> bool:
        return self.until is not None and not self.over

    def _begin(self, now: float) -> None:
        self.until = now + self.duration
        self.outlet.counts[self.kind] += 1

    def hold(self, deadline: float, events: list[Event]) -> None:
        self.queue.append((deadline, events))
        self.held += len(events)
        if self.held > self.limit:
            self.outlet.overflow()

    def deadline(self) -> float | None:
        return self.until if self.until is not None and not self.over else None

    def advance(self, now: float) -> None:
        if self.until is None or self.over or now < self.until:
            return
        self.over = True
        out = [event for _, events in self.queue for event in events]
        self.queue.clear()
        self.held = 0
        if out:
            self.next.send(out, now)

    def send(self, events: list[Event], now: float) -> None:
        if self.until is not None:
            if self.over:
                self.next.send(events, now)
            else:
                self.hold(self.until, events)
            return
        for index, event in enumerate(events):
            self.seen += is_event(event)
            if self.seen == self.count:
                self.next.send(events[: index + 1], now)
                self._begin(now)
                if events[index + 1 :]:
                    self.hold(self.until or now, events[index + 1 :])
                return
        self.next.send(events, now)


class Bandwidth(Held):
    """Let at most ``bandwidth`` KB a second through: each event is released when the bytes
    before it and its own would have crossed a link of that rate (its SSE frame's size; a
    WebSocket frame is within a few bytes of it). Order kept; time only from ``now``."""

    kind = "bandwidth"

    def __init__(self, spec: FaultSpec, context: Context) -> None:
        super().__init__(spec, context)
        self.rate = (spec.bandwidth or MIN_KBPS) * 1000.0
        self.free = context.now
        """When the link has carried everything released so far."""

    def send(self, events: list[Event], now: float) -> None:
        for event in events:
            if not is_event(event):
                self.hold(max(now, self.free), [event])
                continue
            start = max(now, self.free)
            self.free = start + len(event.sse) / self.rate
            self.outlet.counts[self.kind] += self.free > now
            self.hold(self.free, [event])


class Reorder(Chance):
    """Swap a struck event with the one after it: the struck one waits for its successor."""

    kind = "reorder"

    def __init__(self, spec: FaultSpec, context: Context) -> None:
        super().__init__(spec, context)
        self.held: Event | None = None

    def release(self) -> list[Event]:
        held, self.held = self.held, None
        return [held] if held is not None else []

    def send(self, events: list[Event], now: float) -> None:
        out: list[Event] = []
        for event in events:
            if not is_event(event):
                if self.held is not None:  # a resume starts over: no swap across it
                    out.append(self.held)
                    self.held = None
                out.append(event)
            elif self.held is not None:
                out += [event, self.held]
                self.held = None
                self.outlet.counts[self.kind] += 1
            elif self.strikes():
                self.held = event
            else:
                out.append(event)
        if out:
            self.next.send(out, now)


class Duplicate(Chance):
    """Write a struck event twice, same id."""

    kind = "duplicate"

    def send(self, events: list[Event], now: float) -> None:
        out: list[Event] = []
        for event in events:
            out.append(event)
            if is_event(event) and self.strikes():
                out.append(event)
                self.outlet.counts[self.kind] += 1
        self.next.send(out, now)


class Garble(Chance):
    """Write a malformed frame before a struck event: its JSON cut in half, without an id (SSE:
    a ``data:`` line that is not JSON; WebSocket: a text frame that is not JSON)."""

    kind = GARBLE

    def send(self, events: list[Event], now: float) -> None:
        out: list[Event] = []
        for event in events:
            if is_event(event) and self.strikes():
                out.append(garbled(event))
                self.outlet.counts[self.kind] += 1
            out.append(event)
        self.next.send(out, now)


def garbled(event: Event) -> Event:
    """Not JSON (a proper prefix of a JSON object never is), cut on a character boundary so the
    WebSocket text frame is still valid UTF-8."""
    text = event.json.decode()
    cut = text[: max(1, len(text) // 2)].encode()
    return Event(-2, "", GARBLE, cut, b"data: %b\n\n" % cut)


class Drop(Chance):
    """Before a struck event, cut the connection (RST)."""

    kind = "drop"

    def send(self, events: list[Event], now: float) -> None:
        for index, event in enumerate(events):
            if is_event(event) and self.strikes():
                self.next.send(events[:index], now)
                self.outlet.end(self.kind, reset=True)
                return
        self.next.send(events, now)


class Cut(Stage):
    """After the ``count``-th event written, end the connection. Counted per connection: a
    reconnect starts afresh."""

    reset = False

    def __init__(self, spec: FaultSpec, context: Context) -> None:
        super().__init__(spec, context)
        self.count: int = getattr(spec, self.kind)
        self.seen = 0

    def start(self) -> None:
        if self.count == 0:
            self.cut()

    @classmethod
    def wanted(cls, spec: FaultSpec) -> bool:
        return getattr(spec, cls.kind) is not None

    def send(self, events: list[Event], now: float) -> None:
        if self.seen >= self.count:
            return
        for index, event in enumerate(events):
            self.seen += is_event(event)
            if self.seen >= self.count:
                self.next.send(events[: index + 1], now)
                self.cut()
                return
        self.next.send(events, now)

    def cut(self) -> None:
        self.outlet.end(self.kind, reset=self.reset)


class DisconnectAfter(Cut):
    """``disconnect_after``: close politely (SSE: the response ends; WebSocket: code 4000)."""

    kind = "disconnect_after"


class ResetAfter(Cut):
    """``reset_after``: cut the TCP connection with an RST."""

    kind = "reset_after"
    reset = True


class SlowClose(Stage):
    """Hold a fault's end (``disconnect_after``, ``reset_after``, ``drop``) back ``slow_close``:
    what was written before it is sent, then nothing, then the close (or the RST). The chain's
    last stage, and the outlet the others end through."""

    kind = "slow_close"

    def __init__(self, spec: FaultSpec, context: Context) -> None:
        super().__init__(spec, context)
        self.duration = spec.slow_close or 0.0
        self.now = context.now
        self.ending: tuple[float, str, bool] | None = None

    @property
    def counts(self) -> Counter[str]:
        return self.outlet.counts

    def send(self, events: list[Event], now: float) -> None:
        self.now = now
        if self.ending is None:
            self.next.send(events, now)

    def end(self, kind: str, *, reset: bool) -> None:
        if self.ending is None:
            self.ending = (self.now + self.duration, kind, reset)
            self.outlet.counts[self.kind] += 1

    def overflow(self) -> None:
        self.outlet.overflow()

    def deadline(self) -> float | None:
        return self.ending[0] if self.ending is not None else None

    def advance(self, now: float) -> None:
        self.now = now
        if self.ending is not None and now >= self.ending[0]:
            self.outlet.end(self.ending[1], reset=self.ending[2])


STAGES: tuple[type[Stage], ...] = (
    Latency,
    Bandwidth,
    Stall,
    Reorder,
    Duplicate,
    Garble,
    Drop,
    DisconnectAfter,
    ResetAfter,
    SlowClose,
)
"""Every stage, head of the chain first."""


def seeded(seed: int | None) -> Callable[[str], random.Random]:
    """One generator per stage: the same seed gives each stage the same choices, whatever
    other stages are in the chain."""
    if seed is None:
        return lambda kind: random.Random()
    return lambda kind: random.Random(f"{seed}:{kind}")


def build(spec: FaultSpec, context: Context) -> list[Stage]:
    """The stages ``spec`` asks for, head first, each linked to the next and the last to the
    outlet. Empty when the spec needs none (only ``no_resume``, or only zeros): the connection
    stays plain and keeps write-through."""
    closer = SlowClose(spec, context) if SlowClose.wanted(spec) else None
    if closer is not None:
        context = replace(context, outlet=closer)
    stages = [cls(spec, context) for cls in STAGES if cls is not SlowClose and cls.wanted(spec)]
    if closer is not None:
        stages.append(closer)
    for stage, after in zip(stages, stages[1:], strict=False):
        stage.next = after
    return stages
