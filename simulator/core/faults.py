"""Fault specs: what a connection is to suffer on purpose, as a client-testing tool.

A spec is comma-separated ``name:value`` items (``disconnect_after:5,jitter:200ms,seed:7``),
given per connection (the ``faults`` query parameter) or per stream (its ``faults`` setting).
This module only parses and bounds it; the stages that carry the faults out sit in the runtime
(``simulator/web/faults.py``). Every field is ``None`` until an item sets it, so a connection's
spec can override a stream's item by item (``FaultSpec.merged``).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, fields, replace
from typing import Literal

from .model import shown
from .timeline import parse_duration

MAX_SPEC = 1000
"""The longest spec accepted, in characters (every item at once fits in a quarter of it)."""
MAX_COUNT = 10**9
MAX_FAULT_DURATION = 3600.0
"""Delays and stalls are bounded by an hour: longer would only hold a connection's events."""
MIN_FAULT_DURATION = 0.001
"""A duration other than 0 is at least a millisecond: a timer cannot be finer, and a smaller value
would be written back (``str(spec)``) in a form no spec accepts."""

Kind = Literal["count", "probability", "duration", "flag", "seed"]
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
    "no_resume": "flag",
    "seed": "seed",
}
"""Every item, in the order a spec is written back (``str(spec)``)."""

_DECIMAL = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)\Z")
_DURATION = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)\Z|(?:\d+(?:\.\d+)?(?:ms|s|m|h))+\Z")
"""A duration as a spec writes it: unsigned decimals with units (``250ms``, ``1m30s``) or plain
seconds; no sign, no exponent, no ``inf``."""
MAX_DURATION_TEXT = 40
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
    no_resume: bool | None = None
    seed: int | None = None

    def merged(self, override: FaultSpec) -> FaultSpec:
        """This spec with every item ``override`` sets replaced (a connection over its stream)."""
        given = {f.name: getattr(override, f.name) for f in fields(override)}
        return replace(self, **{k: v for k, v in given.items() if v is not None})

    @property
    def active(self) -> bool:
        """Something would happen: a connection whose spec is not active stays plain."""
        return (
            self.disconnect_after is not None
            or self.reset_after is not None
            or bool(self.no_resume)
            or any(
                getattr(self, name)
                for name in ("drop", "delay", "jitter", "stall", "duplicate", "reorder", "garble")
            )
        )

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
            else:
                out.append(f"{name}:{value:g}" if kind == "probability" else f"{name}:{value}")
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


def _seconds(value: float) -> str:
    """The duration as a spec writes it, read back to exactly ``value`` (a stream's ``faults``
    setting is kept as this text and parsed again for each connection)."""
    short = f"{value * 1000:g}ms" if 0 < value < 1 else f"{value:g}s"
    return short if parse_duration(short) == value else f"{value!r}s"
