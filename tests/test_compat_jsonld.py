"""``liveblog.jsonld``: schema.org LiveBlogPosting of a stream at its playhead."""

from __future__ import annotations

import asyncio

import orjson
from compat_helpers import STREAM, fast_stream, follow, snapshot
from conftest import StartServer

from simulator.web.compat.changes import Changes
from simulator.web.compat.jsonld import encode, posting_json
from simulator.web.compat.render import text

PATH = f"/api/streams/{STREAM}/liveblog.jsonld"


def test_a_post_is_a_blog_posting_and_script_end_tags_are_escaped() -> None:
    changes = Changes()
    record = {"id": "a", "body": "Ends </script><b>", "published_at": "2014-06-24T17:52:29Z"}
    changes.observe([("a", record, False)], 1_700_000_000_000)
    item = posting_json(changes.posts["a"], "http://x/api/streams/s")
    assert item["headline"] == "Ends </script><b>"  # no headline: the body's start
    assert item["datePublished"] == item["dateModified"] == "2014-06-24T17:52:29.000Z"
    edited = {**record, "headline": "H"}
    changes.observe([("a", edited, False)], 1_700_000_001_000)
    item = posting_json(changes.posts["a"], "http://x/api/streams/s")
    assert item["headline"] == "H" and item["dateModified"] == "2023-11-14T22:13:21.000Z"
    data = encode({"x": item})
    assert b"</script>" not in data and orjson.loads(data)["x"] == item


async def test_the_document_lists_the_snapshots_posts(start_server: StartServer) -> None:
    server = await fast_stream(start_server)
    await follow(server, lambda: asyncio.sleep(0), pause=0.05)  # to the end of the stream
    async with server.session.get(server.base + PATH) as response:
        assert response.status == 200
        assert response.content_type == "application/ld+json"
        document = orjson.loads(await response.read())
    assert document["@context"] == "https://schema.org"
    assert document["@type"] == "LiveBlogPosting" and document["coverageEndTime"]
    final = await snapshot(server)
    updates = document["liveBlogUpdate"]
    assert [u["@id"].rsplit("#", 1)[1] for u in updates] == [p["id"] for p in reversed(final)]
    assert [u["articleBody"] for u in updates] == [text(p) for p in reversed(final)]
    assert all(
        u["@type"] == "BlogPosting" and u["headline"] and u["datePublished"] for u in updates
    )
    status, body = await server.get("/api/streams/nope/liveblog.jsonld")
    assert status == 404 and body["where"] == "path"
