"""WordPress Liveblog (Automattic/liveblog) as its React front end polls it.

The front end (``src/react/services/api.js``) polls ``entries/{newest + 1}/{now}/``: ``start`` is
one second after the newest entry it holds, ``end`` the current time rounded to the refresh
interval. Every change is an entry of its own: ``new``, ``update`` or ``delete``, the last two
carrying the original entry's id, applied in order (``flatten_entries``). Timestamps are whole
seconds, so an entry stamped in the second a poll was answered in would be skipped by the next
poll's ``newest + 1``: only changes of seconds already over are served (at most a second's delay),
and a later change always falls in a later second.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from .changes import Changes, Tracked, numeric_id
from .common import look
from .render import full_html, text

routes = web.RouteTableDef()
REFRESH_INTERVAL = 2
"""Seconds between polls the front end is told (the plugin's default is 10; replays run fast)."""
PER_PAGE = 10
"""Entries per page, for ``pages`` (the plugin's default lazy-load page)."""
MAX_TIMESTAMP = 2**53
"""Timestamps past this are refused: no second of a replay is that far, and JavaScript numbers
stop being exact there."""
MAX_AGE = 3600
"""The longest ``Cache-Control: max-age`` sent: the plugin caches until ``end`` with no bound, so
a far-future ``end`` would be cached for ever."""
Entry = tuple[int, str, Tracked | str]


def entries_between(changes: Changes, start: int, end: int) -> list[Entry]:
    """Changes stamped from second ``start`` to second ``end``, both included, oldest first:
    ``(timestamp, type, post or deleted id)``."""
    low, high = start * 1000, (end + 1) * 1000
    found: list[tuple[int, int, str, Tracked | str]] = []
    for post in changes.posts.values():
        if low <= post.created < high:
            found.append((post.created, 0, "new", post))
        if post.modified > post.created and low <= post.modified < high:
            found.append((post.modified, 1, "update", post))
    for post_id, at in changes.deleted_since(low):
        if at < high:
            found.append((at, 2, "delete", post_id))
    found.sort(key=lambda item: (item[0], item[1]))
    return [(at // 1000, kind, item) for at, _, kind, item in found]


def entry_json(timestamp: int, kind: str, item: Tracked | str) -> dict[str, Any]:
    if isinstance(item, str):
        return {"id": numeric_id(item), "type": "delete", "timestamp": timestamp}
    record = item.record
    author = record.get("author")
    classes = ["liveblog-entry"]
    if record.get("key_event"):
        classes.append("type-key-event")
    if item.pinned:
        classes.append("liveblog-entry-sticky")
    entry_id = numeric_id(item.post_id)
    return {
        "id": entry_id,
        "type": kind,
        "render": full_html(record),
        "content": text(record),
        "headline": record.get("headline") or "",
        "css_classes": " ".join(classes),
        "timestamp": timestamp,
        "entry_time": datetime.fromtimestamp(timestamp, UTC).strftime("%H:%M"),
        "authors": [{"id": numeric_id(author), "name": author}] if author else [],
        "share_link": f"#id_{entry_id}",
        "key_event": bool(record.get("key_event")),
    }


def answer(changes: Changes, start: int, end: int, now: float) -> dict[str, Any]:
    """The plugin's ``get_entries_by_time`` answer, changes of the current second held back."""
    served = min(end, math.floor(now) - 1)
    entries = entries_between(changes, start, served) if start <= served else []
    latest = max((timestamp for timestamp, _, _ in entries), default=None)
    return {
        "entries": [entry_json(*entry) for entry in entries],
        "latest_timestamp": latest,
        "refresh_interval": REFRESH_INTERVAL,
        "pages": max(1, math.ceil(len(changes.posts) / PER_PAGE)) if entries else False,
    }


def cache_control(end: int, now: float) -> str | None:
    """``max-age`` until ``end`` when it is in the future, as the plugin sets it."""
    if end > now:
        return f"max-age={min(MAX_AGE, math.ceil(end - now))}"
    return None


def wp_error(code: str, message: str, status: int, params: Iterable[str] = ()) -> web.Response:
    """An error as the WordPress REST API writes it."""
    data: dict[str, Any] = {"status": status}
    if params:
        data["params"] = {name: "Invalid parameter." for name in params}
    body = orjson.dumps({"code": code, "message": message, "data": data})
    return web.Response(body=body, status=status, content_type="application/json")


def parse_stamps(start: str, end: str) -> list[str]:
    """The names of the timestamps that are not whole seconds WordPress would take."""
    return [
        name
        for name, value in (("start_time", start), ("end_time", end))
        if len(value) > 16 or int(value) > MAX_TIMESTAMP
    ]


@routes.get(r"/compat/wp-liveblog/{stream}/entries/{start}/{end}{slash:/*}")
async def entries(request: web.Request) -> web.Response:
    start, end = request.match_info["start"], request.match_info["end"]
    if not (start.isascii() and start.isdigit() and end.isascii() and end.isdigit()):
        message = "No route was found matching the URL and request method."
        return wp_error("rest_no_route", message, 404)
    bad = parse_stamps(start, end)
    if bad:
        message = f"Invalid parameter(s): {', '.join(bad)}"
        return wp_error("rest_invalid_param", message, 400, bad)
    _, changes = look(request)
    now = time.time()
    response = web.Response(
        body=orjson.dumps(answer(changes, int(start), int(end), now)),
        content_type="application/json",
    )
    header = cache_control(int(end), now)
    if header:
        response.headers["Cache-Control"] = header
    return response
