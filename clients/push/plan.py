"""What a push sends and when: an archive's script as envelopes, each due at a play offset.

Pure: the same archive, speed and gap clamp always give the same plan. The envelopes are
livesim's own (docs/protocol.md "Events"), each serialised once; ``due`` is seconds from the
push's start, from the same ``GapClamp`` a served replay uses, divided by the speed.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace

import orjson

from simulator.core.archive import post_record
from simulator.core.faults import FaultSpec
from simulator.core.model import format_time
from simulator.core.script import Script
from simulator.core.timeline import GapClamp
from simulator.core.wire import wall_time


@dataclass(frozen=True, slots=True)
class Planned:
    id: str
    type: str
    due: float
    body: bytes
    archive_time: str


def plan(
    script: Script,
    speed: float,
    max_gap: float | None,
    run: str,
    wall_start: float,
    start_at: float = 0.0,
) -> list[Planned]:
    """``wall_start``: the epoch time of offset 0 (for ``due_at``); ``start_at``: archive
    seconds from the script's origin to begin at (``--from``)."""
    clamp = GapClamp([cue.at for cue in script.cues], max_gap)
    cues = [cue for cue in script.cues if cue.at >= start_at]
    if not cues:
        return []
    first = clamp.to_play(cues[0].at)
    out = []
    for number, cue in enumerate(cues, 1):
        offset = clamp.to_play(cue.at) - first
        due = 0.0 if math.isinf(speed) else offset / speed
        event_id = f"{run}-{number}"
        archive_time = format_time(script.archive_time(cue.at))
        envelope = {
            "id": event_id,
            "type": str(cue.type),
            "stream": script.feed.id,
            "archive_time": archive_time,
            "due_at": wall_time(wall_start + due),
            "post": post_record(cue.post),
        }
        out.append(Planned(event_id, str(cue.type), due, orjson.dumps(envelope), archive_time))
    return out


PUSH_FAULTS = ("drop", "delay", "jitter", "duplicate", "reorder", "seed")
"""The ``serve`` faults that mean something for a push; the others act on a connection."""


def with_faults(events: list[Planned], spec: FaultSpec) -> tuple[list[Planned], dict[str, int]]:
    """The plan as ``spec`` spoils it, and how many events each fault struck.

    As on a served connection (docs/protocol.md "Faults"): ``drop`` loses an event, ``delay``
    holds every event back, ``jitter`` by a random extra (order kept), ``duplicate`` sends an
    event twice (same id), ``reorder`` swaps an event with the next. Each item draws from its own
    generator seeded with ``seed``, so turning one on does not change another's choices.
    """
    seed = spec.seed if spec.seed is not None else 0
    rng = {name: random.Random(f"{seed}:{name}") for name in PUSH_FAULTS}
    struck = dict.fromkeys(("drop", "duplicate", "reorder"), 0)
    out: list[Planned] = []
    last_due = 0.0
    for event in events:
        if spec.drop and rng["drop"].random() < spec.drop:
            struck["drop"] += 1
            continue
        due = event.due + (spec.delay or 0.0)
        if spec.jitter:
            due += rng["jitter"].uniform(0.0, spec.jitter)
        last_due = due = max(due, last_due)
        event = replace(event, due=due)
        out.append(event)
        if spec.duplicate and rng["duplicate"].random() < spec.duplicate:
            struck["duplicate"] += 1
            out.append(event)
    i = 0
    while i < len(out) - 1:
        if spec.reorder and rng["reorder"].random() < spec.reorder:
            struck["reorder"] += 1
            first, second = out[i], out[i + 1]
            out[i], out[i + 1] = second, replace(first, due=second.due)  # held for the next
            i += 2
        else:
            i += 1
    return out, struck


def check_push_faults(spec: FaultSpec) -> None:
    """A ``ValueError`` naming the first item a push cannot carry out."""
    for name, value in spec.items():
        if value is not None and name not in PUSH_FAULTS:
            raise ValueError(
                f"{name!r} acts on a connection, not a push (a push takes "
                "drop, delay, jitter, duplicate, reorder, seed)"
            )
