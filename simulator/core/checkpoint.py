"""A replay's state as data, and back: what lets a node that joins late (or a node behind the
others) take up a shared stream from a checkpoint instead of replaying every input since the
stream began (``web/cluster.py``).

Everything a replay changes while it runs is here, exactly (floats as orjson writes them, which
read back to the same bits): its counters, mode and clock, its live posts and held edits, the
visible posts in order, and the current epoch's events for resume. What it was made from (the
script, its options, its incarnation) is not: the checkpoint is put into a replay made from the
same definition.
"""

from __future__ import annotations

from typing import Any

import orjson

from .live import export_live, restore_live
from .replay import Mode, Replay
from .timeline import format_speed, parse_speed
from .wire import EventType, framed


def export(replay: Replay) -> bytes:
    base_now, base_position = replay.timeline.bases
    state = {
        "serial": replay.serial,
        "lap": replay.lap,
        "index": replay.index,
        "mode": replay.mode.value,
        "behind": replay.behind,
        "clock": {
            "speed": format_speed(replay.timeline.speed),
            "paused": replay.timeline.paused,
            "now": base_now,
            "position": base_position,
        },
        "live": export_live(replay.live),
        "edited": replay.live.edited_ids(),
        "visible": [
            [post_id, visible.post, visible.pinned]
            for post_id, visible in reversed(list(replay.view.newest_first()))
        ],
        "log": [[e.serial, e.id, str(e.type), e.json.decode()] for e in replay.log],
    }
    return orjson.dumps(state)


def restore(replay: Replay, data: bytes) -> None:
    """Put the state ``export`` gave into ``replay`` (made from the same definition). Raises
    ``ValueError`` (``InputError`` for live posts) or ``KeyError`` if it does not fit."""
    state: dict[str, Any] = orjson.loads(data)
    replay.view.clear()
    replay.live.close()
    restore_live(replay.live, state["live"], "checkpoint.live")
    for post_id, record, pinned in state["visible"]:
        replay.view.apply(EventType.POST_CREATED, post_id, record)
        if pinned:
            replay.view.apply(EventType.POST_PINNED, post_id, record)
    for post_id in state["edited"]:
        visible = replay.view.get(post_id)
        if visible is not None:
            replay.live.edited(post_id, visible.post)
    clock = state["clock"]
    replay.timeline.speed = parse_speed(clock["speed"], "checkpoint.clock.speed")
    replay.timeline.paused = bool(clock["paused"])
    replay.timeline.seek(float(clock["position"]), float(clock["now"]))
    replay.serial = int(state["serial"])
    replay.lap = int(state["lap"])
    replay.index = int(state["index"])
    replay.mode = Mode(state["mode"])
    replay.behind = bool(state["behind"])
    replay.log.clear()
    for serial, event_id, type, envelope in state["log"]:
        replay.log.append(framed(serial, event_id, EventType(type), envelope.encode()))
