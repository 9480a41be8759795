"""ScribbleLive API v1 (``apiv1.scribblelive.com``) as its "recent posts" widget reads it.

The widget (scribblelive/recent-posts ``js/SLRecentPostsv1.js``) loads ``event/{id}/page/last``
once, then polls ``event/{id}/all/?Since=…`` with the ``LastModified`` of its previous answer cut
to the second and written unpadded in UTC (``2026/12/6 2:5:9``), through JSONP. It adds a post
only if its id is not on the page, applies an edit only if the edit's ``LastModified`` is later
than that previous ``LastModified``, and a delete only to a post on the page. So ``Since`` is
taken inclusively, to the whole second: what changed in the same second as ``LastModified`` is
sent again, and those rules drop what the widget already has instead of losing what it has not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from ...core.errors import InputError
from ..stream import Stream
from .changes import Changes, Tracked, numeric_id
from .common import bad_param, look, whole
from .render import full_html, published_ms

routes = web.RouteTableDef()
SINCE = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2}) (\d{1,2}):(\d{1,2}):(\d{1,2})", re.ASCII)
CALLBACK = re.compile(
    r"[A-Za-z_$][\w$]*(?:(?:\(\d{1,9}\)|\[\d{1,9}\])*\.[A-Za-z_$][\w$]*)*", re.ASCII
)
"""A JavaScript name or a dotted path through calls and indexes with a number argument, ending
in a name: what the widget sends (``RecentPosts.GetInstance(0).DrawPosts``). No quotes, no
operators, no call at the end (``alert(1)`` is refused): nothing that could carry script."""
MAX_CALLBACK = 200
MAX_PAGE = 1000
DEFAULT_PAGE = 50
MEDIA_TYPES = {"image": "IMAGE", "gallery": "IMAGE", "video": "VIDEO", "youtube": "VIDEO"}


def date(ms: int) -> str:
    return f"/Date({ms})/"


def parse_since(value: str | None) -> int:
    """``Since`` (``YYYY/M/D H:M:S``, UTC) as ms since the epoch; 0 when absent."""
    if value is None or value == "":
        return 0
    found = SINCE.fullmatch(value.strip()) if len(value) <= 40 else None
    if found is None:
        raise InputError("Since", "expected a UTC time as YYYY/M/D H:M:S")
    try:
        year, month, day, hour, minute, second = map(int, found.groups())
        moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as exc:
        raise InputError("Since", f"not a time ({exc})") from None
    return int(moment.timestamp()) * 1000


def check_callback(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if len(value) > MAX_CALLBACK or not CALLBACK.fullmatch(value):
        raise InputError("callback", "expected a JavaScript name such as Widget.DrawPosts")
    return value


def post_type(record: Mapping[str, Any]) -> str:
    for media in record.get("media") or ():
        kind = MEDIA_TYPES.get(media.get("kind", ""))
        if kind:
            return kind
    return "TEXT"


def post_json(tracked: Tracked) -> dict[str, Any]:
    record = tracked.record
    author = record.get("author") or ""
    return {
        "Id": numeric_id(tracked.post_id),
        "Content": full_html(record),
        "Type": post_type(record),
        "Source": record.get("source") or "",
        "Creator": {"Id": numeric_id(author) if author else 0, "Name": author, "Avatar": ""},
        "IsComment": 0,
        "IsDeleted": 0,
        "IsStuck": int(tracked.pinned),
        "IsApproved": 1,
        "Created": date(published_ms(record, tracked.created)),
        "LastModified": date(tracked.modified),
        "Media": [
            {"Type": post_type({"media": [m]}), "Url": m["url"]}
            for m in record.get("media") or ()
            if m.get("url")
        ],
    }


def event_json(
    stream_id: str,
    title: str,
    live: bool,
    changes: Changes,
    posts: Iterable[Tracked],
    edits: Iterable[Tracked] = (),
    deletes: Iterable[str] = (),
) -> dict[str, Any]:
    return {
        "Id": numeric_id(stream_id),
        "Title": title,
        "IsLive": int(live),
        "NumPosts": len(changes.posts),
        "LastModified": date(changes.last),
        "Posts": [post_json(p) for p in posts],
        "Edits": [post_json(p) for p in edits],
        "Deletes": [{"Id": numeric_id(post_id)} for post_id in deletes],
    }


def last_page(changes: Changes, size: int, ascending: bool) -> list[Tracked]:
    newest = list(changes.posts.values())[-size:]
    return newest if ascending else newest[::-1]


def since_answer(changes: Changes, since: int, ascending: bool) -> dict[str, list[Any]]:
    posts = list(changes.created_since(since))
    edits = sorted(changes.edited_since(since), key=lambda p: p.modified)
    deletes = [post_id for post_id, _ in changes.deleted_since(since)]
    return {"posts": posts if ascending else posts[::-1], "edits": edits, "deletes": deletes}


def encode(value: Any, callback: str | None) -> web.Response:
    """JSON, or JSONP when a callback is named (U+2028/9 escaped for pre-ES2019 parsers)."""
    body = orjson.dumps(value)
    if callback is None:
        return web.Response(body=body, content_type="application/json")
    body = body.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
    script = b"/**/" + callback.encode() + b"(" + body + b");"
    response = web.Response(body=script, content_type="application/javascript")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _common(request: web.Request) -> tuple[bool, str | None]:
    """``Order`` and ``callback``, checked; ``format`` must be json; ``Token`` is ignored."""
    query = request.query
    order = query.get("Order", "desc").lower()
    if order not in ("asc", "desc"):
        raise InputError("Order", "expected asc or desc")
    if query.get("format", "json").lower() != "json":
        raise InputError("format", "only json is served")
    return order == "asc", check_callback(query.get("callback"))


def _live(stream: Stream) -> bool:
    return stream.replay.state == "playing"


@routes.get(r"/compat/scribblelive/event/{stream}/page/last{slash:/?}")
async def page_last(request: web.Request) -> web.Response:
    try:
        ascending, callback = _common(request)
        size = whole(request.query.get("Max"), "Max", 1, MAX_PAGE, DEFAULT_PAGE)
    except InputError as exc:
        raise bad_param(exc) from None
    stream, changes = look(request)
    page = last_page(changes, size, ascending)
    return encode(event_json(stream.id, stream.feed.title, _live(stream), changes, page), callback)


@routes.get(r"/compat/scribblelive/event/{stream}/all{slash:/?}")
async def all_since(request: web.Request) -> web.Response:
    try:
        ascending, callback = _common(request)
        since = parse_since(request.query.get("Since"))
    except InputError as exc:
        raise bad_param(exc) from None
    stream, changes = look(request)
    found = since_answer(changes, since, ascending)
    body = event_json(
        stream.id,
        stream.feed.title,
        _live(stream),
        changes,
        found["posts"],
        found["edits"],
        found["deletes"],
    )
    return encode(body, callback)
