"""Liveblog (Sourcefabric, on Superdesk and Eve) as livebridge-liveblog polls it.

The poller (dpa-newslab/livebridge-liveblog ``source.py``) asks
``client_blogs/{blog}/posts?max_results=20&page=1&source=…`` where ``source`` is an Elasticsearch
query: ``_updated`` greater than its last item's ``_updated``, written to the second, sorted by
``_updated`` ascending. It then creates, updates or deletes by ``_id`` (``post.py``:
``deleted`` or a later ``unpublished_date`` is a delete). Because the cursor is a whole second
and strictly greater, two rules keep it exact: only changes of seconds already over are served,
and a page never ends inside a second (it takes the rest of that second, past ``max_results``).
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from ...core.errors import InputError
from .changes import Changes, Tracked
from .common import look, whole
from .render import body_html, published_ms

routes = web.RouteTableDef()
MAX_RESULTS = 200
"""Eve's default ``PAGINATION_LIMIT``."""
MAX_SOURCE = 8192
Item = tuple[int, Tracked | str]


def date(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def parse_date(value: object, where: str) -> int:
    """An ISO time from the query as whole seconds since the epoch."""
    if not isinstance(value, str) or len(value) > 64:
        raise InputError(where, "expected an ISO 8601 time")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(where, "expected an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return math.floor(moment.timestamp())


def updated_after(source: str | None) -> int:
    """The first second served from the ``_updated`` range of ``source`` (``gt`` or ``gte``);
    0 without one. Other filters are not applied."""
    if not source:
        return 0
    if len(source) > MAX_SOURCE:
        raise InputError("source", f"at most {MAX_SOURCE} characters")
    try:
        query = orjson.loads(source)
    except orjson.JSONDecodeError:
        raise InputError("source", "invalid JSON") from None
    first = 0
    for clause in _clauses(query):
        bounds = clause.get("range", {}).get("_updated") if isinstance(clause, dict) else None
        if not isinstance(bounds, dict):
            continue
        if "gt" in bounds:
            first = max(first, parse_date(bounds["gt"], "source._updated.gt") + 1)
        if "gte" in bounds:
            first = max(first, parse_date(bounds["gte"], "source._updated.gte"))
    return first


def _clauses(query: Any) -> list[Any]:
    filtered = query.get("query", {}).get("filtered", {}) if isinstance(query, dict) else {}
    found = filtered.get("filter", {}) if isinstance(filtered, dict) else {}
    if not isinstance(found, dict):
        return []
    clauses = found.get("and", [found])
    return clauses if isinstance(clauses, list) else []


def changes_from(changes: Changes, first: int, served: int) -> list[Item]:
    """Posts and deletions stamped in seconds ``first`` to ``served``, by ``_updated``."""
    low, high = first * 1000, (served + 1) * 1000
    items: list[Item] = [(p.modified, p) for p in changes.changed_since(low) if p.modified < high]
    items += [(at, pid) for pid, at in changes.deleted_since(low) if at < high]
    items.sort(key=lambda item: item[0])
    return items


def page_of(items: list[Item], page: int, size: int) -> list[Item]:
    """Page ``page`` of about ``size`` items: each page runs on to the end of the second its
    last item is in, so the next one starts with a new second."""
    start = 0
    for number in range(1, page + 1):
        end = min(start + size, len(items))
        while 0 < end < len(items) and items[end][0] // 1000 == items[end - 1][0] // 1000:
            end += 1
        if number == page or end >= len(items):
            return items[start:end] if number == page else []
        start = end
    return []


def item_json(stream_id: str, at: int, item: Tracked | str, born: int | None) -> dict[str, Any]:
    if isinstance(item, str):
        created = born if born is not None else at
        return {
            "_id": item,
            "_created": date(created),
            "_updated": date(at),
            "blog": stream_id,
            "post_status": "open",
            "deleted": True,
            "sticky": False,
            "lb_highlight": False,
            "published_date": date(created),
            "unpublished_date": date(at),
            "groups": [],
        }
    record = item.record
    return {
        "_id": item.post_id,
        "_created": date(item.created),
        "_updated": date(item.modified),
        "blog": stream_id,
        "post_status": "open",
        "deleted": False,
        "sticky": item.pinned,
        "lb_highlight": bool(record.get("key_event")),
        "published_date": date(published_ms(record, item.created)),
        "unpublished_date": None,
        "groups": [
            {"id": "root", "refs": [{"idRef": "main"}], "role": "grpRole:NEP"},
            {
                "id": "main",
                "role": "grpRole:Main",
                "refs": [
                    {
                        "residRef": f"{item.post_id}-text",
                        "item": {
                            "_id": f"{item.post_id}-text",
                            "item_type": "text",
                            "text": body_html(record),
                            "headline": record.get("headline") or "",
                        },
                    }
                ],
            },
        ],
    }


def answer(
    stream_id: str, changes: Changes, first: int, page: int, size: int, now: float
) -> dict[str, Any]:
    served = math.floor(now) - 1
    items = changes_from(changes, first, served) if first <= served else []
    chosen = page_of(items, page, size)
    return {
        "_items": [item_json(stream_id, at, it, _born(changes, it)) for at, it in chosen],
        "_meta": {"page": page, "max_results": size, "total": len(items)},
    }


def _born(changes: Changes, item: Tracked | str) -> int | None:
    gone = changes.find(item) if isinstance(item, str) else None
    return gone.created if gone is not None else None


def eve_error(message: str, status: int = 400) -> web.Response:
    body = orjson.dumps({"_status": "ERR", "_error": {"code": status, "message": message}})
    return web.Response(body=body, status=status, content_type="application/json")


@routes.get("/compat/liveblog/client_blogs/{stream}/posts")
async def posts(request: web.Request) -> web.Response:
    query = request.query
    try:
        size = whole(query.get("max_results"), "max_results", 1, MAX_RESULTS, 25)
        page = whole(query.get("page"), "page", 1, 1_000_000, 1)
        first = updated_after(query.get("source"))
    except InputError as exc:
        return eve_error(str(exc))
    stream, changes = look(request)
    body = orjson.dumps(answer(stream.id, changes, first, page, size, time.time()))
    return web.Response(body=body, content_type="application/json")
