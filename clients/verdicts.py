"""Exit statuses and thresholds shared by the commands that judge (``load``, ``judge``, ``push``).

The statuses are k6's, so a CI job reads them the same way: 0 every check held, 99 a threshold
failed (a number the tester chose to bound: lateness, connect failures, resets…), 1 the service
was wrong (missing, duplicate, out-of-order or foreign events: no threshold makes those right),
2 the run could not happen (bad flags, unreachable, no such stream). When several apply the
worst wins: could-not-run over service-wrong over threshold.

A threshold is ``METRIC OP VALUE`` (``p95<200ms``, ``connect_failures<1%``, ``resets<10``),
given as ``--threshold`` (repeatable) or in a TOML file; parsing is pure and every error is one
line naming the text at fault.
"""

from __future__ import annotations

import math
import operator
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from .target import read_file

PASS = 0
SERVICE_WRONG = 1
COULD_NOT_RUN = 2
THRESHOLD_FAILED = 99

EXIT_CODES_HELP = (
    "Exit status (as k6's): 0 pass; 99 a threshold failed; 1 the service was wrong (missing, "
    "duplicate, out-of-order or foreign events); 2 could not run (bad flags, unreachable, no "
    "such stream)."
)


def worst(statuses: Iterable[int]) -> int:
    """The one status for several findings: could-not-run > service-wrong > threshold > pass."""
    rank = {PASS: 0, THRESHOLD_FAILED: 1, SERVICE_WRONG: 2, COULD_NOT_RUN: 3}
    return max(statuses, key=lambda status: rank.get(status, 3), default=PASS)


class ThresholdError(ValueError):
    """A threshold that cannot be used; the text names it."""


Unit = str  # "ms" (a duration), "%" (a share), "" (a count)

LATENCY = re.compile(r"(?:lateness_)?(?:p(\d{1,2}(?:\.\d{1,3})?|100)|max)\Z")
COUNTS = frozenset(
    {
        "connect_failures",
        "refused",
        "reconnects",
        "resets",
        "connection_resets",
        "missing",
        "duplicate",
        "out_of_order",
        "foreign",
        "malformed",
    }
)
"""Counted metrics; each may be bounded as a count or (with ``%``) as a share of its whole:
connect failures of connection attempts, the rest of events expected."""
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "<": operator.lt,
    ">": operator.gt,
}
_THRESHOLD = re.compile(
    r"\s*([a-z_0-9.]+)\s*(<=|>=|==|<|>)\s*((?:\d+(?:\.\d*)?|\.\d+))\s*(ms|s|m|h|%)?\s*\Z"
)
_MS_PER = {"ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}
MAX_THRESHOLD_TEXT = 100
MAX_THRESHOLDS = 100
MAX_FILE_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Threshold:
    text: str
    metric: str
    """``lateness_pNN``, ``lateness_max`` or one of ``COUNTS``."""
    op: str
    limit: float
    """Milliseconds for a lateness, a fraction (0.01 for 1 %) for a share, else a count."""
    unit: Unit

    def holds(self, value: float) -> bool:
        return _OPS[self.op](value, self.limit)

    def shown(self, value: float) -> str:
        if self.unit == "%":
            return f"{value * 100:.3g}%"
        if self.unit == "ms":
            return f"{value:g} ms"
        return f"{value:g}"


def parse_threshold(text: str) -> Threshold:
    """``"p95<200ms"`` → a ``Threshold``; a lateness without unit is in milliseconds (k6's)."""
    if len(text) > MAX_THRESHOLD_TEXT:
        raise ThresholdError(f"threshold {text[:40]!r}…: over {MAX_THRESHOLD_TEXT} characters")
    match = _THRESHOLD.match(text)
    if match is None:
        raise ThresholdError(
            f"threshold {text!r}: expected METRIC OP VALUE, e.g. 'p95<200ms', "
            "'connect_failures<1%', 'resets<10'"
        )
    name, op, number, unit = match.group(1), match.group(2), float(match.group(3)), match.group(4)
    latency = LATENCY.match(name)
    if latency is not None:
        percentile = latency.group(1)
        metric = f"lateness_p{percentile}" if percentile else "lateness_max"
        if unit == "%":
            raise ThresholdError(f"threshold {text!r}: {name} is a duration (ms or s), not a %")
        limit = number * _MS_PER.get(unit or "ms", 1.0)
        return Threshold(text.strip(), metric, op, limit, "ms")
    if name not in COUNTS:
        known = "p50, p95, p99, p99.9, max (lateness), " + ", ".join(sorted(COUNTS))
        raise ThresholdError(f"threshold {text!r}: unknown metric {name!r}; known: {known}")
    if unit in _MS_PER:
        raise ThresholdError(f"threshold {text!r}: {name} is a count or a %, not a duration")
    if unit == "%":
        if number > 100:
            raise ThresholdError(f"threshold {text!r}: a share is at most 100%")
        return Threshold(text.strip(), name, op, number / 100, "%")
    if number != math.floor(number):
        raise ThresholdError(f"threshold {text!r}: {name} is a whole count")
    return Threshold(text.strip(), name, op, number, "")


def read_thresholds(path: str) -> list[Threshold]:
    """A TOML file: ``thresholds = ["p95<200ms", …]``, or a ``[thresholds]`` table of
    ``metric = "<200ms"`` (a string or a list of them)."""
    data = read_file(path, MAX_FILE_BYTES, ThresholdError)
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ThresholdError(f"{path}: {exc}") from None
    unknown = sorted(set(document) - {"thresholds"})
    if unknown:
        raise ThresholdError(f"{path}: unknown key {unknown[0]!r}; expected 'thresholds'")
    given = document.get("thresholds")
    texts: list[tuple[str, str]] = []
    if isinstance(given, list):
        texts = [(f"thresholds[{i}]", item) for i, item in enumerate(given)]
    elif isinstance(given, Mapping):
        for metric, value in given.items():
            items = value if isinstance(value, list) else [value]
            for i, item in enumerate(items):
                where = f"thresholds.{metric}" + (f"[{i}]" if isinstance(value, list) else "")
                if not isinstance(item, str):
                    raise ThresholdError(f"{path}: {where}: expected a string such as '<200ms'")
                texts.append((where, f"{metric}{item}"))
    else:
        raise ThresholdError(f"{path}: expected 'thresholds' as a list or a table")
    if len(texts) > MAX_THRESHOLDS:
        raise ThresholdError(f"{path}: over {MAX_THRESHOLDS} thresholds")
    out = []
    for where, text in texts:
        if not isinstance(text, str):
            raise ThresholdError(f"{path}: {where}: expected a string such as 'p95<200ms'")
        try:
            out.append(parse_threshold(text))
        except ThresholdError as exc:
            raise ThresholdError(f"{path}: {where}: {exc}") from None
    return out


@dataclass(frozen=True, slots=True)
class Outcome:
    threshold: Threshold
    value: float | None
    """None when the run measured nothing for it (no lateness sample): that fails."""

    @property
    def passed(self) -> bool:
        return self.value is not None and self.threshold.holds(self.value)

    def line(self) -> str:
        shown = "no data" if self.value is None else self.threshold.shown(self.value)
        return f"{self.threshold.text}: {shown} {'ok' if self.passed else 'FAILED'}"

    def as_dict(self) -> dict[str, object]:
        return {
            "threshold": self.threshold.text,
            "metric": self.threshold.metric,
            "value": self.value,
            "unit": self.threshold.unit,
            "passed": self.passed,
        }
