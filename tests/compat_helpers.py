"""Shared by the platform tests: a stream of the bundled blog under the shipped ``newsroom``
scenario (developing posts, corrections, retractions, pins) at a speed that plays it in seconds,
and the snapshot a follower must end with."""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from conftest import BUNDLED_ID, Server, StartServer

CONFIG = Path(__file__).resolve().parents[1] / "config" / "livesim.toml"
SPEED = 2000
"""The 104 events of the bundled blog under ``newsroom`` in about four seconds."""
STREAM = "compat"


def newsroom() -> dict[str, Any]:
    with CONFIG.open("rb") as file:
        rules: dict[str, Any] = tomllib.load(file)["scenarios"]["newsroom"]
    return rules


async def fast_stream(start_server: StartServer) -> Server:
    server = await start_server(streams=[])
    body = {
        "id": STREAM,
        "feed": BUNDLED_ID,
        "speed": SPEED,
        "max_gap": "2m",
        "loop": False,
        "scenario": newsroom(),
    }
    status, answer = await server.post("/api/streams", body)
    assert status == 201, answer
    return server


async def follow(server: Server, poll: Callable[[], Awaitable[None]], pause: float = 0.02) -> int:
    """Call ``poll`` until the stream has ended, then once more; the number of polls."""
    polls = 0
    while True:
        _, state = await server.get(f"/api/streams/{STREAM}")
        await poll()
        polls += 1
        if state["state"] == "ended":
            return polls
        await asyncio.sleep(pause)


async def snapshot(server: Server) -> list[dict[str, Any]]:
    """The stream's visible posts, oldest first, each with ``pinned``."""
    status, body = await server.get(f"/api/streams/{STREAM}/posts")
    assert status == 200 and not body["truncated"]
    posts: list[dict[str, Any]] = body["posts"][::-1]
    return posts
