"""The Guardian: the Content API's live-blog blocks and the live page's update poll.

``GET /compat/guardian/{stream}?show-blocks=body:latest:N`` (or ``body:published-since:MS``, or
``body`` for all) answers ``response.content.blocks.requestedBodyBlocks`` keyed by the request,
as the Content API does (guardian/content-api-models ``Block``: ``attributes.pinned`` and
``keyEvent``; dates as ISO strings). ``published-since`` serves blocks created or changed at or
after ``MS``; a block deleted since is sent as ``published: false`` with no body, which the
Content API's ``Block`` can say but the live API does not do (it has no deletes to send).

``GET /compat/guardian/{stream}.json?lastUpdate=BLOCK_ID&isLivePage=true`` is the page's poll
(dotcom-rendering): ``{numNewBlocks, html, mostRecentBlockId}`` for the blocks created after
``BLOCK_ID``. Like the real page, it carries new blocks only, never edits or deletes.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from ..stream import Stream
from .changes import Changes, Tracked
from .common import look
from .render import body_html, published_ms, text

routes = web.RouteTableDef()
BLOCKS = re.compile(r"body(?::latest:(\d{1,6})|:published-since:(\d{1,16}))?", re.ASCII)
MAX_LATEST = 10_000
BLOCK_PREFIX = "block-"
SUMMARY = 250
"""Characters of ``bodyTextSummary``."""


class GuardianError(ValueError):
    """A bad parameter, answered as the Content API answers one."""


def iso(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def block_json(post: Tracked) -> dict[str, Any]:
    record = post.record
    author = record.get("author")
    summary = text(record)
    return {
        "id": post.post_id,
        "bodyHtml": body_html(record),
        "bodyTextSummary": summary[:SUMMARY],
        "title": record.get("headline") or None,
        "attributes": {
            "keyEvent": bool(record.get("key_event")),
            "pinned": post.pinned,
            "summary": False,
        },
        "published": True,
        "createdDate": iso(published_ms(record, post.created)),
        "firstPublishedDate": iso(published_ms(record, post.created)),
        "publishedDate": iso(post.modified),
        "lastModifiedDate": iso(post.modified),
        "contributors": [author] if author else [],
        "elements": [],
    }


def retracted_json(post_id: str, at: int) -> dict[str, Any]:
    return {
        "id": post_id,
        "bodyHtml": "",
        "bodyTextSummary": "",
        "attributes": {},
        "published": False,
        "lastModifiedDate": iso(at),
        "contributors": [],
        "elements": [],
    }


def parse_blocks(value: str | None) -> tuple[str, str, int]:
    """``show-blocks`` as (the key to answer under, ``latest`` / ``since`` / ``all``, number)."""
    if value is None:
        raise GuardianError("show-blocks: expected body, body:latest:N or body:published-since:MS")
    found = BLOCKS.fullmatch(value) if len(value) <= 64 else None
    if found is None:
        raise GuardianError("show-blocks: expected body, body:latest:N or body:published-since:MS")
    latest, since = found.groups()
    if latest is not None:
        count = int(latest)
        if not 1 <= count <= MAX_LATEST:
            raise GuardianError(f"show-blocks: latest:N takes N from 1 to {MAX_LATEST}")
        return value, "latest", count
    if since is not None:
        return value, "since", int(since)
    return value, "all", 0


def requested(changes: Changes, kind: str, number: int) -> list[dict[str, Any]]:
    """The blocks asked for, newest first as the Content API lists them."""
    posts = list(changes.posts.values())
    if kind == "latest":
        return [block_json(p) for p in reversed(posts[-number:])]
    if kind == "all":
        return [block_json(p) for p in reversed(posts)]
    changed = [(p.modified, p.order, block_json(p)) for p in changes.changed_since(number)]
    gone = [
        (at, _order(changes, pid), retracted_json(pid, at))
        for pid, at in changes.deleted_since(number)
    ]
    newest = sorted(changed + gone, key=lambda item: (-item[0], -item[1]))
    return [block for _, _, block in newest]


def _order(changes: Changes, post_id: str) -> int:
    post = changes.find(post_id)
    return post.order if post is not None else -1


def content_json(stream: Stream, changes: Changes, key: str, blocks: list[Any]) -> dict[str, Any]:
    return {
        "response": {
            "status": "ok",
            "userTier": "developer",
            "total": 1,
            "content": {
                "id": f"livesim/{stream.id}",
                "type": "liveblog",
                "webTitle": stream.feed.title,
                "webUrl": f"/compat/guardian/{stream.id}",
                "fields": {
                    "liveBloggingNow": "true" if stream.replay.state == "playing" else "false"
                },
                "blocks": {
                    "totalBodyBlocks": len(changes.posts),
                    "requestedBodyBlocks": {key: blocks},
                },
            },
        }
    }


def article_html(post: Tracked) -> str:
    record = post.record
    title = record.get("headline")
    head = f"<h2>{html.escape(title)}</h2>" if title else ""
    block_id = BLOCK_PREFIX + post.post_id
    return (
        f'<article id="{html.escape(block_id)}" class="block">{head}{body_html(record)}</article>'
    )


def newer_than(changes: Changes, block_id: str) -> list[Tracked] | None:
    """Blocks created after ``block_id`` (still shown or deleted since), oldest first; None for
    an id never seen."""
    post_id = block_id.removeprefix(BLOCK_PREFIX)
    cursor = changes.find(post_id)
    if cursor is None:
        return None
    return [p for p in changes.posts.values() if p.order > cursor.order]


def poll_json(posts: Iterable[Tracked], last_update: str) -> dict[str, Any]:
    new = list(posts)
    return {
        "numNewBlocks": len(new),
        "html": "".join(article_html(p) for p in reversed(new)),
        "mostRecentBlockId": BLOCK_PREFIX + new[-1].post_id if new else last_update,
    }


def error(message: str, status: int = 400) -> web.Response:
    body = orjson.dumps({"response": {"status": "error", "message": message}})
    return web.Response(body=body, status=status, content_type="application/json")


@routes.get("/compat/guardian/{name}")
async def guardian(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name.endswith(".json"):
        return await _page_poll(request, name.removesuffix(".json"))
    try:
        key, kind, number = parse_blocks(request.query.get("show-blocks"))
    except GuardianError as exc:
        return error(str(exc))
    stream, changes = look(request, name)
    blocks = requested(changes, kind, number)
    body = orjson.dumps(content_json(stream, changes, key, blocks))
    return web.Response(body=body, content_type="application/json")


async def _page_poll(request: web.Request, name: str) -> web.Response:
    last_update = request.query.get("lastUpdate", "")
    if not last_update or len(last_update) > 200:
        return error("lastUpdate: expected the id of the newest block the page shows")
    _, changes = look(request, name)
    newer = newer_than(changes, last_update)
    if newer is None:
        return error(f"lastUpdate: no block {last_update[:100]!r}", 404)
    return web.Response(
        body=orjson.dumps(poll_json(newer, last_update)), content_type="application/json"
    )
