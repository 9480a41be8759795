"""clients/tail.py against a real server: faults in the middle of a stream lose nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from conftest import BUNDLED_ID, Server, StartServer

from clients import commands
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


# `livesim tail` (clients/commands.py) -----------------------------------------------------------


async def test_tail_command_takes_a_url_or_livesim_url(
    start_server: StartServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = {"id": "t", "feed": BUNDLED_ID, "speed": 60, "max_gap": "1s", "loop": True}
    server = await start_server(streams=[stream])
    argv = ["tail", f"{server.base}/streams/t", "--count", "3", "--json"]
    assert await asyncio.to_thread(commands.main, argv) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 3 and all(line["stream"] == "t" for line in lines)
    # LIVESIM_URL, naming only the server: its one stream is followed
    monkeypatch.setenv("LIVESIM_URL", server.base)
    assert await asyncio.to_thread(commands.main, ["tail", "--count", "2", "--ws"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


async def test_tail_command_errors_are_one_line(
    start_server: StartServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = await start_server(
        streams=[{"id": "a", "feed": BUNDLED_ID}, {"id": "b", "feed": BUNDLED_ID}]
    )
    monkeypatch.delenv("LIVESIM_URL", raising=False)
    cases = {
        "no URL": ["tail"],
        "unreachable": ["tail", "http://127.0.0.1:9/streams/a"],
        "no such stream": ["tail", f"{server.base}/streams/zzz"],
        "which stream": ["tail", server.base],
        "a feed": ["tail", f"{server.base}/feeds/{BUNDLED_ID}"],
        "bad path": ["tail", f"{server.base}/stream/a"],
        "not http": ["tail", "ws://127.0.0.1:9/streams/a"],
        "both": ["tail", f"{server.base}/streams/a", "--url", f"{server.base}/streams/b"],
        "huge port": ["tail", "http://127.0.0.1:99999/streams/a"],
        "10 KB": ["tail", "http://127.0.0.1:9/streams/" + "x" * 10_000],
    }
    for name, argv in cases.items():
        assert await asyncio.to_thread(commands.main, argv) == 1, name
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err.startswith("livesim: ") and captured.err.count("\n") == 1, name
        assert len(captured.err) < 300, name
    assert await asyncio.to_thread(commands.main, ["tail", server.base]) == 1
    assert "streams here: a, b" in capsys.readouterr().err


def test_python_m_clients_tail_still_works() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "clients.tail", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0 and "--server" in result.stdout
