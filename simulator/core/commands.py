"""Stream control commands, typed, and the one parser that makes them from JSON input.

REST (``web/api.py``, ``web/posts.py``), WebSocket ops (``web/transports.py``) and the scheduler
(``web/schedule.py``) all hand ``Replay.apply`` a command from here; each reads its input once,
with ``parse_command``, and bad input is an ``InputError`` naming the place under the caller's
prefix (``body.to``, ``$.speed``, ``schedule[2].post.body``). ``SetFaults`` (``PATCH
/api/streams/{id}``) is the stream's, not the replay's; it is a command so that a shared
stream's input log can carry it, which ``command_message`` writes and ``parse_logged`` reads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import InputError, join, shorten
from .faults import FaultSpec, FaultSpecError
from .faults import parse as parse_faults
from .live import parse_fields
from .model import utc
from .timeline import format_speed, parse_duration, parse_speed

MAX_TARGET = 200
"""Characters of a seek target at most: longer is no post id, time or offset (and an error
quoting it would be as long)."""
MAX_POST_ID = 1000
TARGET_HELP = "expected a post id, an ISO-8601 time or an offset"

# Seek targets -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Edge:
    """``start`` or ``end`` of the archive."""

    end: bool


@dataclass(frozen=True, slots=True)
class Offset:
    """``+10m`` / ``-5s``: archive seconds from the current position."""

    seconds: float


@dataclass(frozen=True, slots=True)
class PostOrTime:
    """A post id, or else (if it reads as one) an ISO-8601 archive time: only the script knows
    which ids exist, so the replay decides, the post id first."""

    text: str
    moment: datetime | None


SeekTarget = Edge | Offset | PostOrTime


def parse_target(text: str, where: str) -> SeekTarget:
    """A seek (or ``start``) target from its text; ``InputError`` at ``where`` for an offset that
    is no duration."""
    value = text.strip()
    if value in ("start", "end"):
        return Edge(value == "end")
    if re.fullmatch(r"[+-].+", value):
        sign = -1 if value[0] == "-" else 1
        return Offset(sign * parse_duration(value[1:], where))
    try:
        moment: datetime | None = utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        moment = None
    return PostOrTime(value, moment)


# Commands -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pause:
    pass


@dataclass(frozen=True, slots=True)
class Resume:
    pass


@dataclass(frozen=True, slots=True)
class Restart:
    pass


@dataclass(frozen=True, slots=True)
class SetSpeed:
    speed: float
    """A factor, or ``timeline.MAX_SPEED``."""


@dataclass(frozen=True, slots=True)
class Seek:
    to: SeekTarget
    text: str = ""
    """The target as given, quoted by an error the replay finds (no such post or time)."""

    @classmethod
    def parse(cls, text: str, where: str = "to") -> Seek:
        return cls(parse_target(text, where), text)


@dataclass(frozen=True, slots=True)
class CreatePost:
    """A live post; ``fields`` as ``live.parse_fields`` returns them (``pinned`` pins it)."""

    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UpdatePost:
    post: str
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeletePost:
    post: str


@dataclass(frozen=True, slots=True)
class PinPost:
    post: str
    pinned: bool = True


@dataclass(frozen=True, slots=True)
class Step:
    """On a paused stream: the next ``events`` events now, or every event up to ``until`` archive
    seconds ahead; the stream stays paused. Exactly one of the two is set."""

    events: int | None = None
    until: float | None = None


@dataclass(frozen=True, slots=True)
class SetFaults:
    """The faults every connection to the stream suffers from now on (``PATCH
    /api/streams/{id}``); None: none. Not the replay's to carry out but the stream's: it is a
    command so that a shared stream's input log carries it to every node, in order."""

    spec: FaultSpec | None

    @classmethod
    def parse(cls, text: object, where: str) -> SetFaults:
        """From a spec's text (None or "": none); ``InputError`` at ``where`` naming the item."""
        if text is None:
            return cls(None)
        try:
            spec = parse_faults(text)
        except FaultSpecError as exc:
            raise InputError(where, str(exc)) from None
        return cls(spec if spec.active else None)


MAX_STEP = 10_000
"""Events one step emits at the most: a deterministic UI test steps a few at a time, and a
larger step is a seek (``until``) or a resume."""
STEP_HELP = f"expected a whole number of events from 1 to {MAX_STEP}"

PostCommand = CreatePost | UpdatePost | DeletePost | PinPost
ReplayCommand = Pause | Resume | Restart | SetSpeed | Seek | Step | PostCommand
"""What a replay carries out (``Replay.apply``), and what clients send as ops."""
Command = ReplayCommand | SetFaults
"""What a stream carries out: a shared stream's input log holds any of these."""

CONTROL_OPS = ("pause", "resume", "restart", "seek", "speed", "step")
POST_OPS = ("post", "update_post", "delete_post", "pin_post", "unpin_post")
"""Ops for live posts (the WebSocket's; REST has a route for each, in ``web/posts.py``)."""


def parse_command(op: str, payload: Mapping[str, Any], where: str) -> ReplayCommand:
    """The command ``op`` with its JSON arguments ``payload`` (the request body, the WebSocket
    message, a schedule entry's); errors name the place under ``where``. Keys the op does not
    read are ignored, as a WebSocket message's ``op`` is."""
    if op == "pause":
        return Pause()
    if op == "resume":
        return Resume()
    if op == "restart":
        return Restart()
    if op == "seek":
        return _seek(payload.get("to"), join(where, "to"))
    if op == "speed":
        return SetSpeed(parse_speed(payload.get("speed"), join(where, "speed")))
    if op == "step":
        return _step(payload, where)
    if op in POST_OPS:
        return _post_command(op, payload, where)
    raise InputError(join(where, "op"), f"unknown op {shorten(repr(op), 60)}")


def _seek(target: object, where: str) -> Seek:
    if not isinstance(target, str) or not target.strip():
        raise InputError(where, TARGET_HELP)
    if len(target) > MAX_TARGET:  # none of them is this long; the error must not quote it
        raise InputError(where, f"{TARGET_HELP}, got {len(target)} characters")
    return Seek.parse(target, where)


def _step(payload: Mapping[str, Any], where: str) -> Step:
    """``{"events": N}`` (default 1) or ``{"until": "+5m"}``, never both."""
    if "until" in payload:
        if "events" in payload:
            raise InputError(join(where, "until"), "give either events or until, not both")
        return Step(until=_step_until(payload["until"], join(where, "until")))
    events = payload.get("events", 1)
    if isinstance(events, float) and events.is_integer():
        events = int(events)  # 3.0 is 3; 1e308 is refused below, as out of range
    if isinstance(events, bool) or not isinstance(events, int):
        raise InputError(join(where, "events"), f"{STEP_HELP}, got {shorten(repr(events), 60)}")
    if not 1 <= events <= MAX_STEP:
        raise InputError(join(where, "events"), f"{STEP_HELP}, got {shorten(str(events), 60)}")
    return Step(events=events)


def _step_until(value: object, where: str) -> float:
    """Archive seconds ahead: ``"+5m"``, ``"5m"`` or a number of seconds (never backwards)."""
    if isinstance(value, str):
        text = value.strip()
        if len(text) > MAX_TARGET:
            raise InputError(where, f"expected an offset such as '+5m', got {len(text)} characters")
        if text.startswith("-"):
            raise InputError(where, "a step goes forward only; seek to go back")
        value = text.removeprefix("+")
    seconds = parse_duration(value, where)
    if seconds <= 0:
        raise InputError(where, "expected an offset above zero, such as '+5m'")
    return seconds


def _post_command(op: str, payload: Mapping[str, Any], where: str) -> PostCommand:
    """``{"op":"post", headline, body, …}`` or ``{"op":"update_post","post":ID, …}`` …"""
    if op == "post":
        return CreatePost(parse_fields(payload, where, create=True, ignore=("op",)))
    post = post_id(payload.get("post"), join(where, "post"))
    if op == "update_post":
        return UpdatePost(post, parse_fields(payload, where, create=False, ignore=("op", "post")))
    if op == "delete_post":
        return DeletePost(post)
    return PinPost(post, op == "pin_post")


def post_id(value: object, where: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_POST_ID:
        raise InputError(where, "expected the id of a post in the stream")
    return value


def parse_logged(message: Mapping[str, Any], where: str) -> Command:
    """A command as ``command_message`` wrote it into a shared stream's input log: an op as
    ``parse_command`` reads it, or ``faults``, which is no op a client sends (clients change a
    stream's faults with ``PATCH /api/streams/{id}``)."""
    op = message.get("op")
    if op == "faults":
        return SetFaults.parse(message.get("faults"), join(where, "faults"))
    if not isinstance(op, str):
        raise InputError(join(where, "op"), "expected a string")
    return parse_command(op, message, where)


def command_message(command: Command) -> dict[str, Any]:
    """The inverse of ``parse_logged``: a command as the JSON it reads back as itself (a
    cluster's input log carries commands this way)."""
    if isinstance(command, SetFaults):
        return {"op": "faults", "faults": str(command.spec) if command.spec else None}
    if isinstance(command, Pause):
        return {"op": "pause"}
    if isinstance(command, Resume):
        return {"op": "resume"}
    if isinstance(command, Restart):
        return {"op": "restart"}
    if isinstance(command, SetSpeed):
        return {"op": "speed", "speed": format_speed(command.speed)}
    if isinstance(command, Seek):
        return {"op": "seek", "to": command.text}
    if isinstance(command, CreatePost):
        return {**command.fields, "op": "post"}
    if isinstance(command, UpdatePost):
        return {**command.fields, "op": "update_post", "post": command.post}
    if isinstance(command, DeletePost):
        return {"op": "delete_post", "post": command.post}
    if isinstance(command, Step):
        return (
            {"op": "step", "events": command.events}
            if command.until is None
            else {
                "op": "step",
                "until": command.until,
            }
        )
    assert isinstance(command, PinPost)
    return {"op": "pin_post" if command.pinned else "unpin_post", "post": command.post}
