"""What a push sends and when: an archive's script as envelopes, each due at a play offset.

Pure: the same archive, speed and gap clamp always give the same plan. The envelopes are
livesim's own (docs/protocol.md "Events"), each serialised once; ``due`` is seconds from the
push's start, from the same ``GapClamp`` a served replay uses, divided by the speed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import orjson

from simulator.core.archive import post_record
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
