"""The Guardian: Content API blocks and the live page's poll, as pure functions and followed on a
real server by clients written from the Content API's block model and the page's poll."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Any

import pytest
from compat_helpers import STREAM, fast_stream, follow, snapshot
from conftest import Server, StartServer

from simulator.web.compat.changes import Changes
from simulator.web.compat.guardian import (
    GuardianError,
    newer_than,
    parse_blocks,
    poll_json,
    requested,
)
from simulator.web.compat.render import body_html

CAPI = f"/compat/guardian/{STREAM}"
A = {"id": "a", "body": "first"}
B = {"id": "b", "body": "second", "headline": "B"}


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


class Reader:
    """A Content API client: blocks by id, replaced by a newer ``lastModifiedDate``, dropped when
    ``published`` is false; it polls ``published-since`` its newest ``lastModifiedDate``."""

    def __init__(self) -> None:
        self.blocks: dict[str, dict[str, Any]] = {}
        self.since = 0
        self.applied: list[tuple[str, int]] = []
        self.retracted = 0

    def take(self, blocks: list[dict[str, Any]]) -> None:
        for block in reversed(blocks):  # oldest first
            at = ms(block["lastModifiedDate"])
            self.since = max(self.since, at)
            if (block["id"], at) in self.applied:
                continue
            self.applied.append((block["id"], at))
            if not block["published"]:
                self.retracted += 1
                self.blocks.pop(block["id"], None)
            else:
                self.blocks[block["id"]] = block


def test_show_blocks_is_parsed_as_the_content_api_writes_it() -> None:
    assert parse_blocks("body:latest:5") == ("body:latest:5", "latest", 5)
    assert parse_blocks("body:published-since:1556529318000")[1:] == ("since", 1556529318000)
    assert parse_blocks("body") == ("body", "all", 0)
    for bad in (
        None,
        "body:latest:0",
        "body:latest:-1",
        "body:latest:NaN",
        "main",
        "x" * 10_000,
        "body:published-since:18446744073709551616123",
        "body:latest:99999999",
    ):
        with pytest.raises(GuardianError, match="^show-blocks: "):
            parse_blocks(bad)


def test_published_since_sends_changes_and_retractions_newest_first() -> None:
    changes = Changes()
    changes.observe([("a", A, False), ("b", B, False)], 1000)
    edited = {**A, "body": "edited"}
    changes.observe([("a", edited, True), ("b", B, False)], 2000)
    blocks = requested(changes, "since", 1500)
    assert [(b["id"], b["attributes"]["pinned"]) for b in blocks] == [("a", True)]
    assert blocks[0]["bodyHtml"] == body_html(edited)
    changes.observe([("a", edited, True)], 3000)
    assert [(b["id"], b["published"]) for b in requested(changes, "since", 2500)] == [("b", False)]
    assert [(b["id"], b["published"]) for b in requested(changes, "since", 0)] == [
        ("b", False),
        ("a", True),
    ]
    assert [b["id"] for b in requested(changes, "latest", 5)] == ["a"]


def test_the_page_poll_sends_blocks_created_after_its_cursor_even_if_deleted() -> None:
    changes = Changes()
    changes.observe([("a", A, False)], 1000)
    changes.observe([("a", A, False), ("b", B, False)], 2000)
    changes.observe([("b", B, False)], 3000)  # a, the page's newest block, is deleted
    newer = newer_than(changes, "block-a")
    assert newer is not None and [p.post_id for p in newer] == ["b"]
    answer = poll_json(newer, "block-a")
    assert answer["numNewBlocks"] == 1 and answer["mostRecentBlockId"] == "block-b"
    assert 'id="block-b"' in answer["html"]
    assert newer_than(changes, "block-nope") is None
    together = Changes()  # first seen at one look: told apart by their order, not their stamp
    together.observe([("a", A, False), ("b", B, False)], 1000)
    assert [p.post_id for p in newer_than(together, "block-a") or []] == ["b"]
    assert [b["id"] for b in requested(together, "since", 0)] == ["b", "a"]
    assert poll_json([], "block-b")["mostRecentBlockId"] == "block-b"


async def capi(server: Server, show: str) -> dict[str, Any]:
    status, body = await server.get(f"{CAPI}?show-blocks={show}")
    assert status == 200, body
    content: dict[str, Any] = body["response"]["content"]
    return content


async def test_a_content_api_reader_follows_a_stream_to_its_snapshot(
    start_server: StartServer,
) -> None:
    server = await fast_stream(start_server)
    reader = Reader()
    reader.take((await capi(server, "body"))["blocks"]["requestedBodyBlocks"]["body"])

    async def poll() -> None:
        show = f"body:published-since:{reader.since}"
        reader.take((await capi(server, show))["blocks"]["requestedBodyBlocks"][show])

    await follow(server, poll)
    final = await snapshot(server)
    shown = {
        i: (b["bodyHtml"], b["title"], b["attributes"]["pinned"]) for i, b in reader.blocks.items()
    }
    assert shown == {p["id"]: (body_html(p), p["headline"], p["pinned"]) for p in final}
    assert any(p["pinned"] for p in final)
    assert reader.retracted
    assert len(reader.applied) == len(set(reader.applied))


async def test_the_live_page_sees_every_new_block_once(start_server: StartServer) -> None:
    server = await fast_stream(start_server)
    while True:
        latest = (await capi(server, "body:latest:1"))["blocks"]["requestedBodyBlocks"][
            "body:latest:1"
        ]
        if latest:
            break
        await asyncio.sleep(0.01)
    first = latest[0]["id"]
    cursor = f"block-{first}"
    seen: list[str] = []

    async def poll() -> None:
        nonlocal cursor
        status, body = await server.get(f"{CAPI}.json?lastUpdate={cursor}&isLivePage=true")
        assert status == 200, body
        ids = re.findall(r'<article id="block-([^"]+)"', body["html"])
        assert len(ids) == body["numNewBlocks"]
        seen.extend(reversed(ids))  # the html is newest first
        cursor = body["mostRecentBlockId"]

    await follow(server, poll)
    final = [p["id"] for p in await snapshot(server)]
    assert len(seen) == len(set(seen)) and first not in seen
    after = final[final.index(first) + 1 :] if first in final else final
    assert set(after) <= set(seen)


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("?show-blocks=body:latest:0", 400),
        ("?show-blocks=body:latest:-5", 400),
        ("?show-blocks=body:latest:NaN", 400),
        ("?show-blocks=body:latest:%D9%A1", 400),
        ("?show-blocks=body:published-since:18446744073709551616000", 400),
        (f"?show-blocks={'b' * 4000}", 400),
        ("", 400),
        (".json", 400),
        (".json?lastUpdate=block-nope", 404),
        (f".json?lastUpdate={'x' * 4000}", 400),
    ],
)
async def test_bad_parameters_answer_as_the_content_api(
    start_server: StartServer, query: str, status: int
) -> None:
    server = await fast_stream(start_server)
    got, body = await server.get(f"{CAPI}{query}")
    assert got == status and body["response"]["status"] == "error", body
    assert re.match(r"(show-blocks|lastUpdate): ", body["response"]["message"])


async def test_far_future_since_is_empty_and_unknown_stream_404(start_server: StartServer) -> None:
    server = await fast_stream(start_server)
    show = "body:published-since:9999999999999999"
    assert (await capi(server, show))["blocks"]["requestedBodyBlocks"][show] == []
    status, body = await server.get("/compat/guardian/nope?show-blocks=body")
    assert status == 404 and body["where"] == "path"
