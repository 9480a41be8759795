"""``livesim record`` of an RSS feed that changes between polls: each change is kept once."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from server_helpers import serve_app

from clients.record import Options, record
from clients.target import ClientError
from simulator.core.script import build
from simulator.sources import load_feed


def item(guid: str, title: str, body: str, minute: int) -> str:
    stamp = f"Mon, 09 Jun 2014 18:{minute:02d}:00 GMT"
    return (
        f"<item><guid>{guid}</guid><title>{title}</title><description>{body}</description>"
        f"<pubDate>{stamp}</pubDate></item>"
    )


A = item("a", "Storm nears coast", "Winds reach 120 km/h.", 0)
A_EDITED = item("a", "Storm nears coast", "Winds reach 150 km/h, forecasters say.", 0)
B = item("b", "Evacuations ordered", "Low-lying districts are being cleared.", 5)
C = item("c", "Landfall", "The storm has made landfall.", 10)
VERSIONS = [[A, B], [A, B], [A_EDITED, B, C], [A_EDITED, C]]
"""What each poll finds (the last one from then on): the second is the first again (a 304)."""


class Feed:
    def __init__(self) -> None:
        self.polls = 0
        self.not_modified = 0

    async def handle(self, request: web.Request) -> web.Response:
        version = min(self.polls, len(VERSIONS) - 1)
        self.polls += 1
        items = VERSIONS[version]
        etag = f'"{hash(tuple(items)) & 0xFFFFFFFF:x}"'
        if request.headers.get("If-None-Match") == etag:
            self.not_modified += 1
            return web.Response(status=304, headers={"ETag": etag})
        xml = "<rss version='2.0'><channel><title>Storm</title>" + "".join(items)
        return web.Response(
            text=xml + "</channel></rss>",
            content_type="application/rss+xml",
            headers={"ETag": etag},
        )


async def serve(feed: Feed) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_get("/feed.xml", feed.handle)
    runner, base = await serve_app(app)
    return runner, f"{base}/feed.xml"


async def test_each_change_of_a_polled_feed_is_recorded_once(tmp_path: Path) -> None:
    feed = Feed()
    runner, url = await serve(feed)
    out = tmp_path / "storm.jsonl"
    try:
        first = await record(Options(source=url, output=out, poll=0.1, duration=1.0))
        second = await record(Options(source=url, output=out, poll=0.1, duration=0.5))
    finally:
        await runner.cleanup()
    assert feed.polls >= 10 and feed.not_modified >= 5  # conditional GET answered 304
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    kinds = [(r["type"], r.get("action"), r.get("id") or r.get("post")) for r in lines[1:]]
    assert kinds == [
        ("post", None, "a"),
        ("post", None, "b"),
        ("change", "update", "a"),
        ("post", None, "c"),
        ("change", "delete", "b"),
    ]
    assert lines[3]["fields"] == {"body": "Winds reach 150 km/h, forecasters say."}
    assert lines[1]["published_at"] == "2014-06-09T18:00:00Z"  # the feed's own time
    assert first.counts.posts == 3 and second.counts.posts == 0 and second.counts.events == 0
    cues = build(load_feed(out)).cues
    assert [(str(c.type), c.post.id) for c in cues][:3] == [
        ("post.created", "a"),
        ("post.created", "b"),
        ("post.created", "c"),
    ]
    assert {str(c.type) for c in cues} == {"post.created", "post.updated", "post.deleted"}


async def test_a_feed_that_is_not_there_stops_with_one_line(tmp_path: Path) -> None:
    app = web.Application()
    runner, base = await serve_app(app)
    url = f"{base}/gone.xml"
    try:
        with pytest.raises(ClientError, match=re.escape(url + ": HTTP 404")):
            await asyncio.wait_for(
                record(Options(source=url, output=tmp_path / "g.jsonl", kind="feed", poll=0.1)), 10
            )
    finally:
        await runner.cleanup()
