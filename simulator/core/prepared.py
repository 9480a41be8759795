"""A script with what every replay of it only reads, computed once and shared by its replays.

A replay reads each cue's post as wire-ready JSON data, the archive's post ids (a live post may
not take one) and each cue's play time under its ``max_gap``. All of it is as long as the script:
built per replay, opening a private replay of a 100 000-post archive took seconds. A
``PreparedScript`` holds them once; ``Replay`` takes one in place of a ``Script``, and replays of
one script share it (nothing in it changes after it is built).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .archive import post_record
from .script import Script
from .timeline import GapClamp

MAX_TIMINGS = 8
"""Play times kept per script, one per ``max_gap`` asked for; the oldest goes first."""


@dataclass(frozen=True, slots=True)
class Timing:
    """Each cue's play time under one ``max_gap``, and the clamp that made them."""

    clamp: GapClamp
    plays: tuple[float, ...]

    @classmethod
    def of(cls, times: Sequence[float], max_gap: float | None) -> Timing:
        clamp = GapClamp(times, max_gap)
        return cls(clamp, tuple(clamp.to_play(at) for at in times))


class PreparedScript:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.records: tuple[dict[str, Any], ...] = tuple(post_record(c.post) for c in script.cues)
        """Each cue's post as JSON-ready data, for events and snapshots alike (never changed:
        an edit makes a new record)."""
        self.post_ids = frozenset(cue.post.id for cue in script.cues)
        self.times = tuple(cue.at for cue in script.cues)
        self._timings: dict[float | None, Timing] = {}

    def has_timing(self, max_gap: float | None) -> bool:
        return max_gap in self._timings

    def timing(self, max_gap: float | None) -> Timing:
        """The play times under ``max_gap``, computed on the first call for it."""
        found = self._timings.get(max_gap)
        if found is None:
            found = Timing.of(self.times, max_gap)
            self.remember(max_gap, found)
        return found

    def remember(self, max_gap: float | None, timing: Timing) -> None:
        """Keep ``timing`` (computed elsewhere, e.g. off the event loop) for ``max_gap``.

        Copy on write: a replay made in a worker thread may ask for a timing while the loop
        keeps another; a dict once published is never changed, so neither sees one mid-change
        (at worst one of two timings kept at once is computed again later)."""
        timings = dict(self._timings)
        timings.pop(max_gap, None)
        while len(timings) >= MAX_TIMINGS:
            del timings[next(iter(timings))]
        timings[max_gap] = timing
        self._timings = timings
