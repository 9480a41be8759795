"""Bytes on the wire: the event envelope as JSON, its SSE frame, and client messages.

Each event is serialised once with orjson; the SSE frame wraps those same bytes. Transports write
``Event.json`` (WebSocket text frame) or ``Event.sse`` unchanged to every subscriber.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from .script import EventType


@dataclass(frozen=True, slots=True)
class Event:
    """One event as every subscriber sees it, encoded once for each transport."""

    serial: int
    id: str
    type: str
    json: bytes
    sse: bytes


def encode(serial: int, event_id: str, type: EventType, envelope: dict[str, Any]) -> Event:
    data = orjson.dumps(envelope)
    frame = b"id: %s\nevent: %s\ndata: %s\n\n" % (event_id.encode(), str(type).encode(), data)
    return Event(serial, event_id, type, data, frame)


def wall_time(epoch_seconds: float) -> str:
    """ISO-8601 UTC with milliseconds, which every JavaScript ``Date`` parses."""
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sse_retry(milliseconds: int) -> bytes:
    return b"retry: %d\n\n" % milliseconds


SSE_HEARTBEAT = b": ping\n\n"


def message(kind: str, **fields: Any) -> bytes:
    """A server message that is not a stream event (``error``, ``pong``, ``resumed``)."""
    return orjson.dumps({"type": kind, **fields})


def resumed(since: str) -> Event:
    """The WebSocket marker queued ahead of a resume's backlog: what follows it is the replay."""
    return Event(-1, "", "resumed", message("resumed", since=since), b"")


class ClientMessageError(ValueError):
    """A client message we cannot act on; the text names the JSON path at fault."""


def parse_client_message(data: str | bytes) -> dict[str, Any]:
    """A client's WebSocket message as an object with a string ``op``."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ClientMessageError(f"$: invalid JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise ClientMessageError("$: expected a JSON object")
    op = value.get("op")
    if not isinstance(op, str):
        raise ClientMessageError("$.op: expected a string")
    return value
