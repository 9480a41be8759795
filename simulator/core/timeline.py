"""The virtual clock: where in the archive a replay is, as a function of an injected ``now``.

Two pure pieces, composed by the replay:

- ``GapClamp`` maps archive seconds to *play* seconds, shortening every quiet stretch longer than
  ``max_gap`` to ``max_gap``. It is piecewise linear and strictly monotonic, so it inverts exactly.
- ``Timeline`` maps monotonic time to play seconds as ``base_position + (now - base_now) * rate``
  (trio's MockClock idea). Every change of speed, pause or seek *rebases*: it fixes the current
  position as the new base. Positions and deadlines are always computed from the base, never by
  accumulating steps, so a replay hours long does not drift.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Sequence

from .errors import InputError
from .model import shown

MAX_SPEED = math.inf
"""``speed=max``: events go out as fast as subscribers take them."""

SPEED_LIMIT = 1_000_000.0
"""The fastest numeric speed. Beyond it no clock could pace events one by one anyway; ``max``
(paced by the subscribers) is the way to go faster."""

MAX_DURATION = 100 * 365.25 * 86400
"""A century: longer than any live blog, short enough that archive times stay representable."""

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration(value: object, where: str | None = None) -> float:
    """Seconds from ``90``, ``"90s"``, ``"2m"``, ``"1h30m"`` or ``"250ms"``.

    Raises ``InputError`` at ``where`` (a query parameter or JSON path) for anything else.
    """
    if isinstance(value, bool):
        raise InputError(where or "", f"expected a duration, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value) if abs(value) < 1e300 else math.inf  # float(2**2000) raises
    elif isinstance(value, str) and value.strip():
        text = value.strip().lower().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            parts = _DURATION.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise InputError(
                    where or "", f"{shown(value)} is not a duration (try 90, '90s', '2m', '1h30m')"
                ) from None
            scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
            seconds = sum(float(n) * scale[u] for n, u in parts)
    else:
        raise InputError(where or "", f"expected a duration, got {shown(value)}")
    if not (0 <= seconds <= MAX_DURATION):  # NaN fails too
        raise InputError(
            where or "", f"must be a non-negative duration of at most 100 years, got {shown(value)}"
        )
    return seconds


def parse_speed(value: object, where: str | None = None) -> float:
    """A factor in ``(0, SPEED_LIMIT]``, or ``"max"``."""
    if isinstance(value, str) and value.strip().lower() == "max":
        return MAX_SPEED
    try:
        speed = float(value) if isinstance(value, int | float | str) and value != "" else math.nan
    except (ValueError, OverflowError):
        speed = math.nan
    if isinstance(value, bool) or not (0 < speed <= SPEED_LIMIT):
        raise InputError(
            where or "", f"expected a positive number up to 1000000 or 'max', got {shown(value)}"
        )
    return speed


def format_speed(speed: float) -> float | str:
    if speed == MAX_SPEED:
        return "max"
    return int(speed) if float(speed).is_integer() else speed  # an int has no is_integer (3.11)


class GapClamp:
    """Archive seconds ↔ play seconds, with long gaps between event times clamped."""

    def __init__(self, times: Sequence[float], max_gap: float | None = None):
        points = sorted(set(times)) or [0.0]
        self.archive = points
        self.play = [0.0] * len(points)
        self.play[0] = points[0]
        for i in range(1, len(points)):
            gap = points[i] - points[i - 1]
            self.play[i] = self.play[i - 1] + (gap if max_gap is None else min(gap, max_gap))

    def to_play(self, archive: float) -> float:
        return _interpolate(archive, self.archive, self.play)

    def to_archive(self, play: float) -> float:
        return _interpolate(play, self.play, self.archive)


def _interpolate(x: float, xs: list[float], ys: list[float]) -> float:
    i = bisect_right(xs, x) - 1
    if i < 0:
        return ys[0] + (x - xs[0])
    if i >= len(xs) - 1:
        return ys[-1] + (x - xs[-1])
    x0, x1, y0, y1 = xs[i], xs[i + 1], ys[i], ys[i + 1]
    return y0 + (x - x0) * (y1 - y0) / (x1 - x0)


class Timeline:
    """Play position under speed and pause; ``now`` is always passed in."""

    def __init__(
        self, now: float, *, speed: float = 1.0, position: float = 0.0, paused: bool = False
    ):
        self.speed = speed
        self.paused = paused
        self._base_now = now
        self._base_position = position

    @property
    def flat_out(self) -> bool:
        """Speed ``max``: the clock does not pace events, the replay steps it to each one."""
        return self.speed == MAX_SPEED

    @property
    def rate(self) -> float:
        """Play seconds per second of ``now``; 0 when paused or at ``max`` (the replay steps it)."""
        return 0.0 if self.paused or self.flat_out else self.speed

    def position(self, now: float) -> float:
        return self._base_position + (now - self._base_now) * self.rate

    def when(self, position: float) -> float | None:
        """The ``now`` at which ``position`` is reached, or None if the clock is not moving."""
        if self.rate == 0:
            return None
        return self._base_now + (position - self._base_position) / self.rate

    @property
    def bases(self) -> tuple[float, float]:
        """``(now, position)`` the clock counts from: with ``speed`` and ``paused``, all of its
        state (``seek(position, now)`` puts it back exactly)."""
        return self._base_now, self._base_position

    def _rebase(self, now: float) -> None:
        self._base_position = self.position(now)
        self._base_now = now

    def set_speed(self, speed: float, now: float) -> None:
        self._rebase(now)
        self.speed = speed

    def pause(self, now: float) -> None:
        self._rebase(now)
        self.paused = True

    def resume(self, now: float) -> None:
        self._rebase(now)
        self.paused = False

    def seek(self, position: float, now: float) -> None:
        self._base_position = position
        self._base_now = now

    def shift(self, delta: float) -> None:
        """Move the whole timeline by ``delta`` play seconds without rebasing: a loop's wrap."""
        self._base_position += delta
