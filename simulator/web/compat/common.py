"""What every platform's handlers share: the stream's changes brought up to date, and errors."""

from __future__ import annotations

import time
import weakref

from aiohttp import web

from ...core.errors import InputError
from ..api import get_stream
from ..errors import http_error, not_found
from ..state import STREAMS
from ..stream import Stream
from .changes import Changes

TRACKERS = web.AppKey("compat_changes", weakref.WeakKeyDictionary[Stream, Changes])


def look(request: web.Request, name: str | None = None) -> tuple[Stream, Changes]:
    """The stream named in the path (or ``name``), its due events published, and its changes
    brought up to date with what a reader sees now."""
    stream = get_stream(request) if name is None else _named(request, name)
    stream.catch_up()  # publishes what is due by now, as the snapshot does
    trackers = request.app[TRACKERS]
    changes = trackers.get(stream)
    if changes is None:
        changes = trackers[stream] = Changes()
    cursor = stream.replay.cursor
    if changes.source != cursor:  # every change of the posts is an event, and moves the cursor
        visible = [(pid, v.post, v.pinned) for pid, v in stream.replay.view.newest_first()]
        changes.observe(reversed(visible), int(time.time() * 1000))
        changes.source = cursor
    return stream, changes


def _named(request: web.Request, name: str) -> Stream:
    stream = request.app[STREAMS].get(name)
    if stream is None:
        raise not_found("stream", name[:100])
    return stream


def bad_param(exc: InputError) -> web.HTTPException:
    return http_error(str(exc), exc.where)


def whole(value: str | None, where: str, low: int, high: int, default: int) -> int:
    """A decimal integer query parameter within ``[low, high]``."""
    if value is None or value == "":
        return default
    if len(value) > 20 or not value.isascii() or not value.lstrip("-").isdigit():
        raise InputError(where, f"expected an integer from {low} to {high}")
    number = int(value)
    if not low <= number <= high:
        raise InputError(where, f"expected an integer from {low} to {high}")
    return number
