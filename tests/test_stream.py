"""``web/stream.py``: one replay shared by its subscribers, paced by one task; built once.

A stream keeps pacing and subscription only: what it counts is ``metrics.StreamCounts``, what the
API shows of it ``stream_view``. A configured stream's replay is made once, before the server
starts (``serve.configure``), and the app starts that very replay.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sse
from aiohttp import web
from conftest import BUNDLED_ID, Server, StartServer

from simulator.cli import build_parser
from simulator.cli.serve import configure
from simulator.core.model import ArchiveError
from simulator.core.replay import Pause
from simulator.web import state
from simulator.web.app import create_app, runner_options
from simulator.web.state import STREAMS, Prebuilt
from simulator.web.stream import Incarnations, StreamFailed
from simulator.web.stream_view import describe

TIMEOUT = 10
LOOPING = {"id": "s", "feed": BUNDLED_ID, "speed": 600, "max_gap": "1s", "loop": True}


async def assert_healthy(server: Server) -> None:
    async with asyncio.timeout(2):
        status, body = await server.get("/healthz")
    assert status == 200 and body["ok"] is True


# Built once -----------------------------------------------------------------------------------


@pytest.fixture
async def served() -> AsyncIterator[list[web.AppRunner]]:
    runners: list[web.AppRunner] = []
    yield runners
    for runner in runners:
        await runner.cleanup()


async def serve_prebuilt(
    runners: list[web.AppRunner], flags: list[str]
) -> tuple[web.Application, Prebuilt]:
    """What ``livesim serve FLAGS`` does, in this loop: configure, then start the app."""
    settings, feeds, prebuilt = configure(build_parser().parse_args(["serve", *flags]), {})
    app = create_app(settings, feeds, prebuilt)
    runner = web.AppRunner(app, **runner_options(settings))
    runners.append(runner)
    made = dict(prebuilt.replays)
    await runner.setup()
    prebuilt.replays.update(made)  # what setup used up, for the test to look at
    return app, prebuilt


async def test_a_configured_stream_is_built_once_and_served_as_built(
    served: list[web.AppRunner], monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []
    build_script = state.build_script

    def counted(*args: Any, **kwargs: Any) -> Any:
        built.append(args[1].id if hasattr(args[1], "id") else "?")
        return build_script(*args, **kwargs)

    monkeypatch.setattr(state, "build_script", counted)
    app, prebuilt = await serve_prebuilt(served, ["--port", "0"])
    assert built == [BUNDLED_ID]
    stream = app[STREAMS][BUNDLED_ID]
    assert stream.replay is prebuilt.replays[BUNDLED_ID][0]


async def test_a_prebuilt_replay_starts_where_it_was_built(served: list[web.AppRunner]) -> None:
    """However long start-up took after it was made, it starts at its start, not that much
    further on: its clock restarts when its stream starts."""
    settings, feeds, prebuilt = configure(
        build_parser().parse_args(["serve", "--speed", "1", "--max-gap", "2m"]), {}
    )
    replay, made_at = prebuilt.replays[BUNDLED_ID]
    prebuilt.replays[BUNDLED_ID] = (replay, made_at - 3600)  # an hour at speed 1: 30+ posts
    app = create_app(settings, feeds, prebuilt)
    runner = web.AppRunner(app, **runner_options(settings))
    served.append(runner)
    await runner.setup()
    stream = app[STREAMS][BUNDLED_ID]
    assert stream.replay is replay
    assert describe(stream)["position"]["index"] <= 2


def test_a_stream_that_does_not_fit_is_refused_before_serving(tmp_path: Path) -> None:
    config = tmp_path / "livesim.toml"
    config.write_text(f'[[streams]]\nid = "s"\nfeed = "{BUNDLED_ID}"\nstart = "nowhere"\n')
    with pytest.raises(ArchiveError, match=r"streams\[0\]\.start: 'nowhere' is not a post id"):
        configure(build_parser().parse_args(["serve", "--config", str(config)]), {})


def test_incarnations_are_distinct_within_and_between_sources() -> None:
    first, second = Incarnations(), Incarnations()
    names = [first.next() for _ in range(3)] + [second.next() for _ in range(3)]
    assert len(set(names)) == 6
    assert all(name.isascii() and name.isalnum() and name.islower() for name in names)


async def test_two_apps_share_no_counter(start_server: StartServer) -> None:
    """Automatic stream ids and private replay numbers belong to each app."""
    first, second = await start_server(), await start_server()
    for server in (first, second):
        status, created = await server.post("/api/streams", {"feed": BUNDLED_ID})
        assert (status, created["id"]) == (201, "s1")
    ids = {
        (await first.get(f"/api/streams/{BUNDLED_ID}"))[1]["cursor"].rsplit("-", 1)[0],
        (await second.get(f"/api/streams/{BUNDLED_ID}"))[1]["cursor"].rsplit("-", 1)[0],
    }
    assert len(ids) == 2


# What the API shows, what /metrics counts -------------------------------------------------------


async def test_the_api_view_and_the_counts(start_server: StartServer) -> None:
    server = await start_server(streams=[{**LOOPING, "paused": True}])
    stream = server.app[STREAMS]["s"]
    async with (
        asyncio.timeout(TIMEOUT),
        sse.connect(server.session, server.base + "/streams/s/events", last_event_id="x") as r,
    ):
        assert sse.envelope(await r.next_event())["data"] == {"reason": "resume"}
        await server.post("/api/streams/s/seek", {"to": "+10m"})
        _, shown = await server.get("/api/streams/s")
    assert shown["links"] == {
        "self": "/api/streams/s",
        "posts": "/api/streams/s/posts",
        "events": "/streams/s/events",
        "ws": "/streams/s/ws",
    }
    assert shown["subscribers"] == 1 and shown["faults"] == {
        "spec": None,
        "injected": {},
        "reconnects_without_cursor": 0,
    }
    assert stream.counts.resumes == {"reset": 1}
    assert stream.counts.events["stream.state"] == 1  # the seek's: the start's went to no one
    assert sum(stream.counts.events.values()) == stream.replay.serial - 1


# Pacing ---------------------------------------------------------------------------------------


async def test_top_speed_stays_bounded_and_the_server_answers(start_server: StartServer) -> None:
    """1e6 on a looping archive: far more due than anyone can take; paced by the subscriber."""
    server = await start_server(streams=[{**LOOPING, "speed": 1_000_000}])
    async with (
        asyncio.timeout(TIMEOUT),
        sse.connect(server.session, server.base + "/streams/s/events") as reader,
    ):
        serials = []
        for _ in range(600):
            event = await reader.next_event()
            serials.append(int(event.id.rsplit("-", 1)[1]))
            if len(serials) % 100 == 0:
                await assert_healthy(server)
        assert serials == list(range(serials[0], serials[0] + 600))  # nothing lost
    stream = server.app[STREAMS]["s"]
    assert len(stream.replay.log) <= stream.replay.options.log_limit


async def test_top_speed_without_subscribers_does_not_spin(start_server: StartServer) -> None:
    server = await start_server(streams=[{**LOOPING, "speed": 1_000_000}])
    await asyncio.sleep(0.3)
    stream = server.app[STREAMS]["s"]
    emitted = stream.replay.serial
    await asyncio.sleep(0.5)
    assert stream.replay.serial - emitted <= 2 * 64  # waits for a subscriber, like max
    await assert_healthy(server)


async def test_a_failing_stream_is_isolated(start_server: StartServer) -> None:
    """A replay that raises (a bug) fails its own stream only, visibly, and can be deleted."""
    server = await start_server(
        streams=[LOOPING, {**LOOPING, "id": "other"}], server={"sse_heartbeat": 0.2}
    )
    stream = server.app[STREAMS]["s"]

    def broken(now: float) -> list[Any]:
        raise OverflowError("date value out of range")

    async with (
        asyncio.timeout(TIMEOUT),
        sse.connect(server.session, server.base + "/streams/s/events") as reader,
    ):
        stream.replay.advance = broken  # type: ignore[method-assign]
        async for _ in reader:  # its subscribers' responses end cleanly
            pass
    status, streams = await server.get("/api/streams")
    assert status == 200
    by_id = {s["id"]: s for s in streams}
    assert by_id["s"]["state"] == "failed"
    assert "OverflowError: date value out of range" in by_id["s"]["error"]
    assert by_id["other"]["state"] == "playing"
    for answer in (
        await server.post("/api/streams/s/pause"),
        await server.get("/streams/s/events"),
        await server.get("/api/streams/s/posts"),
    ):
        assert answer[0] == 409 and answer[1]["where"] == "path", answer
    assert (await server.get("/readyz"))[1]["failed"] == ["s"]
    assert (await server.delete("/api/streams/s"))[0] == 200
    assert (await server.get("/api/streams/other/posts"))[0] == 200
    with pytest.raises(StreamFailed):
        stream.command(Pause())
