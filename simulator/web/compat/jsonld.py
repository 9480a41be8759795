"""``GET /api/streams/{id}/liveblog.jsonld``: the stream at its playhead as schema.org
``LiveBlogPosting``, what search engines read from a live-blog page's
``<script type="application/ld+json">``.

Each visible post is a ``BlogPosting`` in ``liveBlogUpdate``, newest first. ``datePublished``
is the post's archive time; ``dateModified`` the same for a post never changed, else the server's
time of the change (the replay has no archive time for an edit). ``<`` is written as ``\\u003c``
so the document can be pasted into a ``<script>`` element as it is.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from ..stream import Stream
from .changes import Changes, Tracked
from .common import look
from .guardian import iso
from .render import paragraphs, published_ms, text

routes = web.RouteTableDef()
CONTENT_TYPE = "application/ld+json"
HEADLINE = 110
"""Characters of a headline made from the body's first paragraph (Google's limit)."""


def posting_json(post: Tracked, base: str) -> dict[str, Any]:
    record = post.record
    body = text(record)
    first = next(iter(paragraphs(record)), "")
    headline = record.get("headline") or first[:HEADLINE] or post.post_id
    published = iso(published_ms(record, post.created))
    changed = iso(post.modified) if post.modified > post.created else published
    item: dict[str, Any] = {
        "@type": "BlogPosting",
        "@id": f"{base}#{post.post_id}",
        "headline": headline,
        "articleBody": body,
        "datePublished": published,
        "dateModified": changed,
    }
    if record.get("author"):
        item["author"] = {"@type": "Person", "name": record["author"]}
    return item


def live_blog_json(stream: Stream, changes: Changes, base: str) -> dict[str, Any]:
    posts = list(changes.posts.values())
    times = [iso(published_ms(p.record, p.created)) for p in posts]
    document: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "LiveBlogPosting",
        "@id": base,
        "url": base,
        "headline": stream.feed.title,
        "liveBlogUpdate": [posting_json(p, base) for p in reversed(posts)],
    }
    if stream.feed.description:
        document["description"] = stream.feed.description
    if times:
        document["coverageStartTime"] = min(times)
        document["datePublished"] = min(times)
        document["dateModified"] = iso(changes.last)
        if stream.replay.state == "ended":
            document["coverageEndTime"] = max(times)
    return document


def encode(document: dict[str, Any]) -> bytes:
    return orjson.dumps(document).replace(b"<", b"\\u003c")


@routes.get("/api/streams/{stream}/liveblog.jsonld")
async def live_blog(request: web.Request) -> web.Response:
    stream, changes = look(request)
    base = str(request.url.with_path(f"/api/streams/{stream.id}").with_query(None))
    body = encode(live_blog_json(stream, changes, base))
    return web.Response(body=body, content_type=CONTENT_TYPE)
