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

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

import orjson

from .live import export_live, restore_live
from .projection import Visible
from .replay import Mode, Replay
from .timeline import format_speed, parse_speed
from .wire import Event, EventType, framed

CHUNK = 1000
"""Posts or events encoded by one ``orjson.dumps``: orjson holds the GIL for a whole call, so a
worker thread encoding a checkpoint lets the event loop's thread run between two such calls
(about a millisecond each) rather than after the whole checkpoint (tens of MB)."""


@dataclass(frozen=True, slots=True)
class Captured:
    """What a checkpoint holds, taken at one instant (``capture``), to encode later: nothing in
    it changes when the replay goes on."""

    head: dict[str, Any]
    visible: dict[str, Visible]
    log: list[Event]


def capture(replay: Replay) -> Captured:
    """The replay's state as it is now, cheaply (a few milliseconds for 100 000 posts): every
    container copied once (``Visible`` and ``Event`` objects are never changed, only replaced),
    nothing encoded. Run it on the loop, at the input the checkpoint is taken after."""
    base_now, base_position = replay.timeline.bases
    head = {
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
    }
    return Captured(head, replay.view.copy(), list(replay.log))


def pieces(captured: Captured) -> Iterator[bytes]:
    """The checkpoint's bytes, in ``CHUNK``-sized pieces (see there), to be joined or fed to a
    compressor one by one (a joined checkpoint of 100 000 posts is 59 MB, whose one copy takes
    ~85 ms). Pure, and made to run in a worker thread while the loop goes on."""
    yield orjson.dumps(captured.head)[:-1]
    yield b',"visible":{'
    items = iter(captured.visible.items())
    comma = b""
    while chunk := dict(islice(items, CHUNK)):  # "id":{"post":…,"pinned":…}, oldest first
        yield comma + orjson.dumps(chunk)[1:-1]
        comma = b","
    yield b'},"log":['
    events = iter(captured.log)
    comma = b""
    while part := list(islice(events, CHUNK)):
        yield comma + orjson.dumps([_logged(e) for e in part])[1:-1]
        comma = b","
    yield b"]}"


def encode(captured: Captured) -> bytes:
    return b"".join(pieces(captured))


def export(replay: Replay) -> bytes:
    """``encode(capture(replay))``, at once."""
    return encode(capture(replay))


def _logged(event: Event) -> list[Any]:
    return [event.serial, event.id, str(event.type), event.json.decode()]


def restore(replay: Replay, data: bytes) -> None:
    """Put the state ``export`` gave into ``replay`` (made from the same definition). Raises
    ``ValueError`` (``InputError`` for live posts) or ``KeyError`` if it does not fit."""
    state: dict[str, Any] = orjson.loads(data)
    replay.view.clear()
    replay.live.close()
    restore_live(replay.live, state["live"], "checkpoint.live")
    visible = state["visible"]
    if isinstance(visible, list):  # as checkpoints were written before they were chunked
        visible = {post_id: {"post": post, "pinned": pinned} for post_id, post, pinned in visible}
    for post_id, item in visible.items():
        record = item["post"]
        replay.view.apply(EventType.POST_CREATED, post_id, record)
        if item["pinned"]:
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
