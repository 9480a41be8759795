"""Judging what one client received, from event ids alone: exact, sans-I/O, mergeable.

Ids are ``{incarnation}-{serial}`` and a replay's serials go up by one per event, across epochs
(docs/protocol.md, "Ids, cursors and resume"). So a client that subscribed after serial ``b``
must see ``b+1, b+2, …`` and every deviation is one of three things, counted exactly:

- **duplicate**: a serial it already received (in this stretch of the sequence);
- **out of order**: a serial below the highest seen that it had *not* received (it was skipped,
  then came late);
- **missing**: a serial skipped and never received by the end of the stretch, or short of the
  target the stream had reached when the run ended.

A client's sequence is judged across its reconnects: it resumes from the highest id it saw, so
the next event must be that serial + 1 whatever connection brings it. A ``stream.reset`` that a
replay logs (reasons ``seek``, ``loop``, ``restart``) is an ordinary event of the sequence:
serials go on across epochs. A reset made for one connection (``resume``: the server
cannot serve the cursor, its id is the replay's latest with ``.reset`` after it; ``private``:
a new private replay, its id ``…-0``; any other reason, such as the ``no_resume`` fault) is
not in the sequence: the stretch ends there and a new one starts at its id. After a reset to
the origin ``…-0`` the replay follows from its first event, or, when its first epoch is no
longer held (it looped before the connection was served), from the current epoch's own logged
reset: that reset then starts the stretch. An event
of another incarnation without a reset before it is counted as **foreign** and starts a stretch.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

LOGGED_RESETS = frozenset({b"seek", b"loop", b"restart"})
"""Reset reasons a replay logs as events of its sequence. Every other reason (``resume``,
``private``, the ``no_resume`` fault, …) is a reset made for one connection, outside it."""

MAX_TRACKED_GAP = 100_000
"""A jump over more serials than this is counted missing at once instead of remembered."""


@dataclass(slots=True)
class Counts:
    """What clients received; sums exactly when merged (processes, connections)."""

    expected: int = 0
    received: int = 0
    missing: int = 0
    duplicate: int = 0
    out_of_order: int = 0
    foreign: int = 0
    resets: int = 0
    connection_resets: int = 0
    """Of ``resets``, those made for one connection (``resume``, ``private``): not counted in
    ``expected``, and each one ends a stretch without judging what it skipped."""
    malformed: int = 0
    bytes: int = 0

    def add(self, other: Counts) -> None:
        for name in _COUNT_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def wrong(self) -> int:
        """Events judged wrong: what makes a run fail."""
        return self.missing + self.duplicate + self.out_of_order + self.foreign

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in _COUNT_FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, int]) -> Counts:
        return cls(**{name: int(data.get(name, 0)) for name in _COUNT_FIELDS})


_COUNT_FIELDS = tuple(f.name for f in fields(Counts))


def split_id(event_id: bytes) -> tuple[bytes, int] | None:
    """``b"mwvx-21"`` → ``(b"mwvx", 21)``, and a per-connection reset's ``b"mwvx-21.reset"``
    too; None when it is not an id livesim issues."""
    dash = event_id.rfind(b"-")
    number = event_id[dash + 1 :].removesuffix(b".reset")
    if dash <= 0 or not number.isdigit() or len(number) > 18:
        return None
    return event_id[:dash], int(number)


class Sequence:
    """One client's events, judged across its reconnects (see the module docstring).

    ``start`` is the cursor the client first subscribes with: ``None`` for "from whatever comes
    first" (a shared stream joined without a cursor), ``b""`` for "from serial 1 of whatever
    incarnation" (a private replay), or an id.
    """

    __slots__ = ("counts", "incarnation", "base", "high", "gaps", "_seen_first", "_at_origin")

    def __init__(self, start: bytes | None = b"") -> None:
        self.counts = Counts()
        self.incarnation: bytes | None = None
        self.base = 0
        self.high = 0
        self.gaps: set[int] = set()
        self._seen_first = start is not None
        self._at_origin = False
        """The last event was a reset to a private replay's origin (``…-0``): the whole replay
        follows, or, if its first epoch is gone (it looped before the connection was served),
        the current epoch from its own logged reset."""
        if start:
            parsed = split_id(start)
            if parsed is not None:
                self.incarnation, self.base = parsed
                self.high = self.base

    @property
    def cursor(self) -> str | None:
        """Where to resume from: the highest id seen (not the last: after a late event the
        last is lower, and resuming from it would bring duplicates)."""
        if self.incarnation is None:
            return None
        return f"{self.incarnation.decode()}-{self.high}"

    def event(self, event_id: bytes, reset_reason: bytes | None = None) -> None:
        """Judge one event; ``reset_reason`` is given for a ``stream.reset``."""
        counts = self.counts
        parsed = split_id(event_id)
        if parsed is None:
            counts.malformed += 1
            return
        counts.received += 1
        incarnation, serial = parsed
        if reset_reason is not None:
            counts.resets += 1
            if reset_reason not in LOGGED_RESETS:
                counts.connection_resets += 1
                self._restart(incarnation, serial)
                self._at_origin = serial == 0
                return
            if self._at_origin and incarnation == self.incarnation:
                self._restart(incarnation, serial - 1)  # the current epoch, its own reset first
        self._at_origin = False
        if not self._seen_first:
            self._seen_first = True
            self._restart(incarnation, serial - 1)
        elif self.incarnation is None:
            self.incarnation = incarnation  # a private replay: from serial 1, any incarnation
        elif incarnation != self.incarnation:
            counts.foreign += 1
            self._restart(incarnation, serial - 1)
        self._judge(serial)

    def _judge(self, serial: int) -> None:
        high = self.high
        if serial == high + 1:
            self.high = serial
        elif serial > high:
            skipped = serial - high - 1
            if skipped > MAX_TRACKED_GAP:
                self.counts.missing += skipped
            else:
                self.gaps.update(range(high + 1, serial))
            self.high = serial
        elif serial in self.gaps:
            self.gaps.discard(serial)
            self.counts.out_of_order += 1
        else:
            self.counts.duplicate += 1

    def _restart(self, incarnation: bytes, base: int) -> None:
        """End the current stretch and start one after ``base``."""
        self._close(None)
        self.incarnation = incarnation
        self.base = self.high = base

    def _close(self, target: tuple[bytes, int] | None) -> None:
        end = self.high
        if target is not None and target[0] == self.incarnation and target[1] > end:
            self.counts.missing += target[1] - end
            end = target[1]
        self.counts.missing += len(self.gaps)
        self.counts.expected += max(0, end - self.base)
        self.gaps.clear()
        self.base = self.high = end

    def reached(self, target: tuple[bytes, int]) -> bool:
        """Whether this client has caught up with ``target`` (or is in another incarnation)."""
        return self.incarnation != target[0] or self.high >= target[1]

    def finish(self, target: tuple[bytes, int] | None = None) -> Counts:
        """End of the run: skipped serials never received are missing, and so is everything up
        to ``target`` (the stream's cursor at the end, when known) not received."""
        self._close(target)
        return self.counts


# Lateness ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Histogram:
    """Lateness in whole milliseconds (floored) → count: merges exactly, percentiles to 1 ms.

    ``due_at`` itself is truncated to the millisecond, so finer buckets would claim precision
    the wire does not have."""

    buckets: dict[int, int] = field(default_factory=dict)
    count: int = 0
    max_ms: float = float("-inf")

    def add(self, seconds: float) -> None:
        ms = seconds * 1000.0
        key = int(ms // 1)
        self.buckets[key] = self.buckets.get(key, 0) + 1
        self.count += 1
        if ms > self.max_ms:
            self.max_ms = ms

    def merge(self, other: Histogram) -> None:
        for key, n in other.buckets.items():
            self.buckets[key] = self.buckets.get(key, 0) + n
        self.count += other.count
        self.max_ms = max(self.max_ms, other.max_ms)

    def percentile(self, p: float) -> float | None:
        """The lateness (ms, bucket floor) that ``p`` percent of the samples do not exceed."""
        if not self.count:
            return None
        rank = max(1, -(-self.count * p // 100))
        seen = 0
        for key in sorted(self.buckets):
            seen += self.buckets[key]
            if seen >= rank:
                return float(key)
        return float(max(self.buckets))

    def summary(self) -> dict[str, float | int | None]:
        return {
            "count": self.count,
            "p50": self.percentile(50),
            "p90": self.percentile(90),
            "p99": self.percentile(99),
            "max": round(self.max_ms, 3) if self.count else None,
        }

    def as_dict(self) -> dict[str, Any]:
        return {"buckets": self.buckets, "count": self.count, "max_ms": self.max_ms}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Histogram:
        buckets = {int(k): int(v) for k, v in data["buckets"].items()}
        return cls(buckets, int(data["count"]), float(data["max_ms"]))


# due_at --------------------------------------------------------------------------------------

DUE_KEY = b'"due_at":"'
DUE_LEN = len(b"2026-11-25T09:46:10.232Z")
_minutes: dict[bytes, float] = {}


def parse_due(text: bytes) -> float | None:
    """``b"2026-11-25T09:46:10.232Z"`` → epoch seconds, the minute's start cached (events of a
    run share a handful of minutes), so most calls are one slice and one ``float``."""
    if len(text) != DUE_LEN or text[-1:] != b"Z" or text[16:17] != b":":
        return _parse_due_slowly(text)
    minute = text[:16]
    start = _minutes.get(minute)
    if start is None:
        try:
            moment = datetime.strptime(minute.decode("ascii"), "%Y-%m-%dT%H:%M")
        except (UnicodeDecodeError, ValueError):
            return None
        if len(_minutes) > 4096:
            _minutes.clear()
        start = _minutes[minute] = moment.replace(tzinfo=UTC).timestamp()
    try:
        return start + float(text[17:23])
    except ValueError:
        return None


def _parse_due_slowly(text: bytes) -> float | None:
    try:
        return datetime.fromisoformat(text.decode("ascii").replace("Z", "+00:00")).timestamp()
    except (UnicodeDecodeError, ValueError):
        return None
