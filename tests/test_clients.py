"""clients/tail.py against a real server: faults in the middle of a stream lose nothing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from conftest import BUNDLED_ID, Server, StartServer

from clients.tail import Follower, describe
from simulator.web.state import CONNECTIONS

TIMEOUT = 30


def serial(event_id: str) -> int:
    return int(event_id.rsplit("-", 1)[1])


def cut_every_connection(server: Server) -> int:
    """A fault the client did not ask for: the server drops every subscriber at once."""
    connections = server.app[CONNECTIONS]
    subscribers = list(connections)
    for subscriber in subscribers:
        subscriber.drop("test fault")
    return len(subscribers)


@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_follower_resumes_after_faults_without_gap_or_repeat(
    start_server: StartServer, transport: str
) -> None:
    server = await start_server(
        streams=[
            {"id": BUNDLED_ID, "feed": BUNDLED_ID, "speed": 60, "max_gap": "5s", "loop": False}
        ]
    )
    seen: list[dict[str, Any]] = []
    arrived = asyncio.Event()

    def on_event(envelope: dict[str, Any]) -> None:
        seen.append(envelope)
        arrived.set()

    async def until(done: Callable[[], bool]) -> None:
        while not done():
            arrived.clear()
            await arrived.wait()

    def ended() -> bool:
        last = seen[-1] if seen else {}
        return last.get("type") == "stream.state" and last["data"]["reason"] == "ended"

    faults: list[str] = []
    follower = Follower(
        server.base, BUNDLED_ID, on_event, transport=transport, on_fault=faults.append
    )
    task = asyncio.create_task(follower.run())
    try:
        async with asyncio.timeout(TIMEOUT):
            for cut_at in (3, 10, 20):
                await until(lambda: len(seen) >= cut_at)  # noqa: B023
                assert cut_every_connection(server) == 1
            await until(ended)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert follower.reconnects >= 3
    assert faults
    numbers = [serial(e["id"]) for e in seen]
    first = serial(follower.snapshot["cursor"]) if follower.snapshot else 0
    assert numbers == list(range(first + 1, first + 1 + len(numbers)))
    snapshot_posts = {p["id"] for p in (follower.snapshot or {}).get("posts", [])}
    created = [e["post"]["id"] for e in seen if e["type"] == "post.created"]
    assert len(set(created)) == len(created)
    _, feed = await server.get(f"/api/feeds/{BUNDLED_ID}/posts")
    assert snapshot_posts | set(created) == {p["id"] for p in feed["posts"]}


def test_describe_is_one_line() -> None:
    line = describe(
        {
            "id": "x-1",
            "type": "post.created",
            "archive_time": "2014-06-25T06:52:29Z",
            "post": {"headline": None, "body": "First line\n\nSecond"},
        }
    )
    assert line.startswith("x-1  post.created")
    assert "\n" not in line and line.endswith("First line")
