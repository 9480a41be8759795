"""The state file (issue #12, F11): a restart keeps API-made streams and live posts.

Real servers in the test's loop (``start_server``), stopped with their runner's cleanup as SIGTERM
would, then started again on the same file; refusals through ``simulator.cli.main`` in-process.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import BUNDLED_ID, Server, StartServer
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect as ws_connect

from simulator.cli import build_parser, main
from simulator.cli.serve import resolve
from simulator.core.live import MAX_BODY, MAX_LIVE_POSTS
from simulator.core.model import ArchiveError, Feed, shown
from simulator.settings import validate
from simulator.web.persist import STATE, read, write_atomic

TIMEOUT = 10
SCHEDULED = {
    "id": "morning",
    "feed": BUNDLED_ID,
    "speed": 600,
    "max_gap": "30s",
    "loop": False,
    "start_at": "2099-12-01T09:00:00+00:00",
    "schedule": [
        {"cron": "0 9 * * mon-fri", "timezone": "Europe/London", "action": "restart"},
        {"interval": "30m", "action": "inject", "post": {"headline": "Update", "body": "More."}},
    ],
    "scenario": {"key_events": True, "pin_latest_key_event": True},
    "faults": "duplicate:0.1,seed:7",
}


async def until(check: Callable[[], Awaitable[bool] | bool]) -> None:
    """Wait, up to ``TIMEOUT``, for what only the server's answers or the disk can tell."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            done = check()
            if await done if inspect.isawaitable(done) else done:
                return
            await asyncio.sleep(0.02)


def on_disk(path: Path, text: bytes) -> bool:
    return path.exists() and text in path.read_bytes()


async def send(server: Server, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with server.session.request(method, server.base + path, json=body) as response:
        return response.status, await response.json()


async def live_posts(server: Server, stream: str) -> list[dict[str, Any]]:
    """The snapshot's live posts, newest first, with their pins: what a restart must keep."""
    status, snapshot = await server.get(f"/api/streams/{stream}/posts")
    assert status == 200, snapshot
    return [post for post in snapshot["posts"] if post["id"].startswith("live-")]


async def streams(server: Server) -> dict[str, dict[str, Any]]:
    """Each stream as configured, without where its playhead is."""
    status, listed = await server.get("/api/streams")
    assert status == 200
    return {
        stream["id"]: {
            "feed": stream["feed"],
            "state": stream["state"],
            "speed": stream["speed"],
            "loop": stream["loop"],
            "max_gap": stream["max_gap"],
            "faults": stream["faults"]["spec"],
            "actions": sorted(a["action"] for a in stream["next_actions"]),
            "timed": sorted(
                (a["action"], a["at"]) for a in stream["next_actions"] if a["action"] != "inject"
            ),
        }
        for stream in listed
    }


async def make_live_posts(server: Server, stream: str) -> None:
    """Posts made, edited, pinned, unpinned and deleted, through REST and a WebSocket op."""
    base = f"/api/streams/{stream}/posts"
    made = []
    for body in (
        {"headline": "A", "body": "first", "key_event": True, "author": "Desk"},
        {"body": "second", "media": [{"url": "https://e.org/1.jpg", "kind": "image"}]},
        {"body": "third", "pinned": True, "source": "AP"},
        {"body": "fourth"},
    ):
        status, answer = await send(server, "POST", base, body)
        assert status == 201, answer
        made.append(answer["post"]["id"])
    first, second, third, fourth = made
    status, answer = await send(
        server, "PATCH", f"{base}/{second}", {"body": "2nd", "headline": "B"}
    )
    assert status == 200, answer
    status, answer = await send(server, "PATCH", f"{base}/{first}", {"key_event": False})
    assert status == 200, answer
    assert (await send(server, "POST", f"{base}/{fourth}/pin"))[0] == 200
    assert (await send(server, "POST", f"{base}/{third}/unpin"))[0] == 200
    assert (await send(server, "DELETE", f"{base}/{third}"))[0] == 200
    async with ws_connect(f"{server.ws_base}/streams/{stream}/ws") as ws:
        await ws.send(json.dumps({"op": "post", "body": "over the socket", "pinned": True}))
        await ws.send(json.dumps({"op": "update_post", "post": first, "headline": "A, edited"}))

        async def edited() -> bool:
            return any(p["headline"] == "A, edited" for p in await live_posts(server, stream))

        await until(edited)


async def test_a_restart_keeps_api_streams_and_live_posts(
    start_server: StartServer, tmp_path: Path
) -> None:
    """F11: stop the server and start it again on its state file: the same streams, the same
    live posts (edited, pinned, deleted), and no live id given twice."""
    settings = {"state_file": str(tmp_path / "state.json")}
    first = await start_server(server=settings)
    status, made = await first.post("/api/streams", SCHEDULED)
    assert status == 201, made
    for stream in (BUNDLED_ID, "morning"):
        await make_live_posts(first, stream)
    before = {stream: await live_posts(first, stream) for stream in (BUNDLED_ID, "morning")}
    assert [p["id"] for p in before[BUNDLED_ID]] == ["live-5", "live-4", "live-2", "live-1"]
    assert [p["pinned"] for p in before[BUNDLED_ID]] == [True, True, False, False]
    listed = await streams(first)
    await first.runner.cleanup()

    second = await start_server(server=settings)
    assert await streams(second) == listed
    assert listed["morning"]["state"] == "paused"  # still waiting for its start_at
    assert listed["morning"]["actions"] == ["inject", "restart", "start"]
    for stream, posts in before.items():
        assert await live_posts(second, stream) == posts
    status, answer = await second.post(f"/api/streams/{BUNDLED_ID}/posts", {"body": "after"})
    assert status == 201 and answer["post"]["id"] == "live-6"  # live-3 was deleted, not free
    status, answer = await second.post("/api/streams", {**SCHEDULED, "id": "other"})
    assert status == 201, answer


async def test_a_deleted_stream_stays_deleted(start_server: StartServer, tmp_path: Path) -> None:
    settings = {"state_file": str(tmp_path / "state.json")}
    first = await start_server(server=settings)
    for stream_id in ("keep", "drop"):
        status, made = await first.post("/api/streams", {"id": stream_id, "feed": BUNDLED_ID})
        assert status == 201, made
        assert (await first.post(f"/api/streams/{stream_id}/posts", {"body": stream_id}))[0] == 201
    assert (await first.delete("/api/streams/drop"))[0] == 200
    await first.runner.cleanup()
    second = await start_server(server=settings)
    assert set(await streams(second)) == {BUNDLED_ID, "keep"}
    assert [p["body"] for p in await live_posts(second, "keep")] == ["keep"]


async def test_each_change_is_written_soon_without_a_shutdown(
    start_server: StartServer, tmp_path: Path
) -> None:
    """A crash after the write loses nothing: a second server started on the file while the
    first still runs (as after kill -9) has the post, as it was last edited."""
    path = tmp_path / "state.json"
    first = await start_server(server={"state_file": str(path)})
    first.app[STATE].delay = 0.05
    posts = f"/api/streams/{BUNDLED_ID}/posts"
    status, answer = await first.post(posts, {"body": "saved soon"})
    assert status == 201, answer
    await until(lambda: on_disk(path, b"saved soon"))
    status, answer = await send(first, "PATCH", f"{posts}/live-1", {"body": "edited since"})
    assert status == 200, answer
    await until(lambda: on_disk(path, b"edited since"))
    second = await start_server(server={"state_file": str(path)})
    assert [p["body"] for p in await live_posts(second, BUNDLED_ID)] == ["edited since"]


async def test_a_burst_of_posts_is_one_write(start_server: StartServer, tmp_path: Path) -> None:
    """Debounced: 30 posts within the delay are not 30 writes; shutdown writes them all."""
    path = tmp_path / "state.json"
    server = await start_server(server={"state_file": str(path)})
    state = server.app[STATE]
    assert state.writes == 1  # at start: the file can be written, or the server does not start
    state.delay = 60.0
    for number in range(30):
        status, _ = await server.post(f"/api/streams/{BUNDLED_ID}/posts", {"body": f"n{number}"})
        assert status == 201
    assert state.writes == 1
    await server.runner.cleanup()
    assert state.writes == 2
    saved = orjson.loads(path.read_bytes())
    assert [p["post"]["body"] for p in saved["live"][0]["posts"]] == [f"n{n}" for n in range(30)]


async def test_private_replays_are_never_saved(start_server: StartServer, tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    server = await start_server(server={"state_file": str(path)})
    async with ws_connect(f"{server.ws_base}/feeds/{BUNDLED_ID}/ws?paused=true") as ws:
        await ws.send(json.dumps({"op": "post", "body": "only mine"}))
        async with asyncio.timeout(TIMEOUT):
            while "only mine" not in str(await ws.recv()):
                pass
    await server.runner.cleanup()
    saved = orjson.loads(path.read_bytes())
    assert saved == {**saved, "streams": [], "live": []}
    assert b"only mine" not in path.read_bytes()


async def test_a_scheduled_inject_is_saved(start_server: StartServer, tmp_path: Path) -> None:
    """Scheduled injects go through the same command path as a person's post, and are saved."""
    path = tmp_path / "state.json"
    server = await start_server(server={"state_file": str(path)})
    server.app[STATE].delay = 0.02
    soon = (datetime.now(UTC) + timedelta(seconds=0.3)).isoformat()
    entry = {"at": soon, "action": "inject", "post": {"body": "on schedule"}}
    status, made = await server.post(
        "/api/streams", {"id": "timed", "feed": BUNDLED_ID, "schedule": [entry]}
    )
    assert status == 201, made

    def saved_live() -> list[Any]:
        live: list[Any] = orjson.loads(path.read_bytes())["live"]
        return live

    await until(lambda: bool(saved_live()))
    saved = {"live": saved_live()}
    assert [(e["stream"], [p["post"]["body"] for p in e["posts"]]) for e in saved["live"]] == [
        ("timed", ["on schedule"])
    ]


async def test_a_missing_file_is_an_empty_state_and_is_created(
    start_server: StartServer, tmp_path: Path
) -> None:
    path = tmp_path / "state.json"
    server = await start_server(server={"state_file": str(path)})
    assert await live_posts(server, BUNDLED_ID) == []
    saved = orjson.loads(path.read_bytes())
    assert (saved["version"], saved["streams"], saved["live"]) == (1, [], [])


async def test_a_stale_temporary_file_from_a_crash_is_ignored(
    start_server: StartServer, tmp_path: Path
) -> None:
    """A crash mid-write leaves the state file as it was and a partial ``.tmp`` beside it: the
    next start reads the state file, and its first write replaces the partial one."""
    path = tmp_path / "state.json"
    first = await start_server(server={"state_file": str(path)})
    assert (await first.post(f"/api/streams/{BUNDLED_ID}/posts", {"body": "kept"}))[0] == 201
    await first.runner.cleanup()
    good = path.read_bytes()
    (tmp_path / "state.json.tmp").write_bytes(good[: len(good) // 2])  # cut mid-write
    second = await start_server(server={"state_file": str(path)})
    assert [p["body"] for p in await live_posts(second, BUNDLED_ID)] == ["kept"]
    assert not (tmp_path / "state.json.tmp").exists()
    assert orjson.loads(path.read_bytes())["live"] == orjson.loads(good)["live"]


def test_write_atomic_replaces_the_whole_file_and_keeps_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "real.json"
    target.write_bytes(b"old " * 1000)
    link = tmp_path / "state.json"
    link.symlink_to(target)
    write_atomic(link, b"{}")
    assert link.is_symlink() and target.read_bytes() == b"{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["real.json", "state.json"]


async def test_a_failed_write_is_logged_once_and_retried(
    start_server: StartServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The directory vanishes under a running server: posting still works, the failure is one
    log line, and the state is written once the directory is back."""
    directory = tmp_path / "state"
    directory.mkdir()
    path = directory / "state.json"
    server = await start_server(server={"state_file": str(path)})
    state = server.app[STATE]
    state.delay = 0.02
    path.unlink()
    directory.rmdir()
    for body in ("one", "two"):
        assert (await server.post(f"/api/streams/{BUNDLED_ID}/posts", {"body": body}))[0] == 201
        await asyncio.sleep(0.1)
    failures = [r for r in caplog.records if r.name == "livesim.state" and r.levelname == "ERROR"]
    assert [r.getMessage() for r in failures] == [
        f"cannot write the state file {path}: No such file or directory"
    ]
    directory.mkdir()
    await until(lambda: on_disk(path, b'"two"'))
    saved = orjson.loads(path.read_bytes())
    assert [p["post"]["body"] for p in saved["live"][0]["posts"]] == ["one", "two"]


# Refusals at start: one line naming the file and the JSON path, exit status 1 ------------------


def post(post_id: str = "live-1", **fields: object) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": post_id,
        "headline": None,
        "body": "text",
        "author": None,
        "editor": None,
        "published_at": "2014-06-24T18:00:00Z",
        "time_source": "explicit",
        "source": None,
        "media": [],
    }
    return {"post": {**record, **fields}, "pinned": False}


def live(*posts: Any, stream: str = BUNDLED_ID, **extra: Any) -> dict[str, Any]:
    return {"version": 1, "live": [{"stream": stream, "next": 1, "posts": list(posts), **extra}]}


def stream(**fields: Any) -> dict[str, Any]:
    return {"version": 1, "streams": [{"id": "s", "feed": BUNDLED_ID, **fields}]}


LONG = "x" * 10_000
BAD: dict[str, tuple[Any, str]] = {
    "not JSON": (b'{"version": 1,', ":1: not JSON ("),
    "binary": (b"\xff\xfe\x00garbage", ":1: not JSON ("),
    "an array": ([], ": $: expected an object, got an array"),
    "no version": ({"streams": []}, ": version: expected 1 (a file this livesim writes), got None"),
    "a later version": (
        {"version": 2},
        ": version: expected 1 (a file this livesim writes), got 2",
    ),
    "version true": ({"version": True}, ": version: expected 1"),
    "saved_at a number": ({"version": 1, "saved_at": 5}, ": saved_at: expected a time as a"),
    "unknown key": ({"version": 1, LONG: 1}, f": {shown(LONG, 40)}: unknown key"),
    "streams not an array": (
        {"version": 1, "streams": {}},
        ": streams: expected an array, got an object",
    ),
    "a stream not an object": ({"version": 1, "streams": [5]}, ": streams[0]: expected an object"),
    "unknown feed": (stream(feed="nope"), ": streams[0].feed: no feed 'nope'"),
    "bad speed": (stream(speed=0), ": streams[0].speed: expected a positive number"),
    "huge speed": (stream(speed=1e308), ": streams[0].speed: expected a positive number"),
    "speed 2**64": (stream(speed=2**64 - 1), ": streams[0].speed: expected a positive number"),
    "unknown stream key": (stream(colour="red"), ": streams[0].colour: Extra inputs"),
    "10 KB stream id": (stream(id=LONG), ": streams[0].id: String should match pattern"),
    "unknown scenario": (stream(scenario="gone"), ": streams[0].scenario"),
    "bad schedule": (
        stream(schedule=[{"cron": "0 25 * * *", "action": "restart"}]),
        ": streams[0].schedule[0]",
    ),
    "duplicate stream ids": (
        {"version": 1, "streams": [{"id": "s", "feed": BUNDLED_ID}] * 2},
        ": streams[1].id: stream 's' is also streams[0]; rename or remove one of them",
    ),
    "a configured stream's id": (
        {"version": 1, "streams": [{"id": BUNDLED_ID, "feed": BUNDLED_ID}]},
        f": streams[0].id: stream '{BUNDLED_ID}' is also configured (streams[0])",
    ),
    "live not an array": ({"version": 1, "live": {}}, ": live: expected an array, got an object"),
    "unknown stream": (
        live(stream="gone"),
        ": live[0].stream: no stream 'gone' in the configuration",
    ),
    "10 KB stream name": (live(stream=LONG), ": live[0].stream: no stream 'xxxxxxx"),
    "stream twice": (
        {"version": 1, "live": [{"stream": BUNDLED_ID}] * 2},
        f": live[1].stream: '{BUNDLED_ID}' already has live[0]",
    ),
    "unknown live key": (live(colour=1), ": live[0].colour: unknown key (known: next, posts)"),
    "next negative": (live(next=-1), ": live[0].next: expected an integer 0-9007199254740992"),
    "next 2**64": (live(next=2**64 - 1), ": live[0].next: expected an integer"),
    "next 1e308": (live(next=1e308), ": live[0].next: expected an integer"),
    "next a string": (live(next="1"), ": live[0].next: expected an integer"),
    "posts not an array": (live(posts="x"), ": live[0].posts: expected an array, got a string"),
    "a post not an object": (live(7), ": live[0].posts[0]: expected an object, got a number"),
    "pinned a string": (
        live({**post(), "pinned": "yes"}),
        ": live[0].posts[0].pinned: expected true or false",
    ),
    "body a number": (
        live(post(body=5)),
        ": live[0].posts[0].post.body: expected a string, got a number",
    ),
    "no body": (
        live({"post": {"id": "live-1", "published_at": "2014-06-24T18:00:00Z"}}),
        ": live[0].posts[0].post.body: required",
    ),
    "10 KB body field name": (
        live({"post": {**post()["post"], LONG: 1}}),
        ": live[0].posts[0].post.xxxxxxxxx",
    ),
    "body too long": (
        live(post(body="x" * (MAX_BODY + 1))),
        f": live[0].posts[0].post.body: {MAX_BODY + 1} bytes, at most {MAX_BODY}",
    ),
    "bad media": (
        live(post(media=[{"kind": "hologram"}])),
        ": live[0].posts[0].post.media[0].kind",
    ),
    "10 KB post id": (
        live(post(LONG)),
        ": live[0].posts[0].post.id: expected a post id, a string of 1-200",
    ),
    "an archive post's id": (
        live(post("p-66e33032b5")),
        ": live[0].posts[0].post.id: 'p-66e33032b5' is a post of the stream's archive",
    ),
    "a post id twice": (
        live(post(), post()),
        ": live[0].posts[1].post.id: 'live-1' is saved twice",
    ),
    "bad time": (
        live(post(published_at="yesterday")),
        ": live[0].posts[0].post.published_at: expected an ISO-8601 time, got 'yesterday'",
    ),
    "10 KB time": (
        live(post(published_at=LONG)),
        ": live[0].posts[0].post.published_at: expected an ISO-8601 time, got 'xxxx",
    ),
    "not a live post": (
        live(post(time_source="interpolated")),
        ": live[0].posts[0].post.time_source: expected 'explicit'",
    ),
    "too many posts": (
        live(*[post(f"live-{n}") for n in range(MAX_LIVE_POSTS + 1)]),
        f": live[0].posts: {MAX_LIVE_POSTS + 1} posts, at most {MAX_LIVE_POSTS}",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_state_file_is_one_line_and_exit_1(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    content, expected = BAD[case]
    path = tmp_path / "state.json"
    path.write_bytes(content if isinstance(content, bytes) else orjson.dumps(content))
    assert main(["serve", "--port", "0", "--state-file", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith(f"livesim: {path}{expected}"), err
    assert len(err) < 400


def test_too_many_bytes_of_live_posts_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    """More than a stream's bound of live post bytes (32 MiB): refused at the post that passes
    it, not read into a stream."""
    big = "x" * (MAX_BODY - 100)
    path = tmp_path / "state.json"
    path.write_bytes(orjson.dumps(live(*[post(f"live-{n}", body=big) for n in range(600)])))
    assert main(["serve", "--port", "0", "--state-file", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"livesim: {path}: live[0].posts[5"), err
    assert "more than the 33554432 a stream keeps" in err and err.count("\n") == 1


def test_more_saved_streams_than_max_streams_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    config = tmp_path / "livesim.toml"
    config.write_text("[server]\nmax_streams = 1\n", encoding="utf-8")
    path = tmp_path / "state.json"
    saved = [{"id": f"s{n}", "feed": BUNDLED_ID} for n in range(2)]
    path.write_bytes(orjson.dumps({"version": 1, "streams": saved}))
    args = ["serve", "--port", "0", "--config", str(config), "--state-file", str(path)]
    assert main(args) == 1
    assert capsys.readouterr().err == (
        f"livesim: {path}: streams: 2 streams made through the API, more than "
        "server.max_streams (1); raise it to start with them\n"
    )


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("missing/state.json", "cannot write: No such file or directory"),
        (".", "is a directory, not a state file"),
    ],
)
def test_a_state_file_that_cannot_be_written_is_refused(
    where: str,
    expected: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    restore_logging: None,
) -> None:
    path = tmp_path / where
    assert main(["serve", "--port", "0", "--state-file", str(path)]) == 1
    assert capsys.readouterr().err == f"livesim: {path}: {expected}\n"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", "--state-file: expected a file name, got ''"),
        ("a\x00b", "--state-file: contains a NUL character"),
        (LONG, "--state-file: 10000 characters, at most 4096"),
    ],
)
def test_a_bad_state_file_name_is_refused(
    value: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--port", "0", "--state-file", value]) == 1
    assert capsys.readouterr().err == f"livesim: {expected}\n"


def test_the_flag_wins_over_the_environment_which_wins_over_the_file(tmp_path: Path) -> None:
    config = tmp_path / "livesim.toml"
    config.write_text('[server]\nstate_file = "from-file.json"\n', encoding="utf-8")
    parser = build_parser()
    layers = [
        ([], {}, None),
        (["--config", str(config)], {}, "from-file.json"),
        (["--config", str(config)], {"LIVESIM_STATE_FILE": "from-env.json"}, "from-env.json"),
        (
            ["--config", str(config), "--state-file", "flag.json"],
            {"LIVESIM_STATE_FILE": "e"},
            "flag.json",
        ),
    ]
    for flags, env, expected in layers:
        settings, _ = resolve(parser.parse_args(["serve", *flags]), env)
        assert settings.server.state_file == expected


# Hostile files: any damage to a good file is a one-line refusal, never another exception -------

INJECT = {"interval": "30m", "action": "inject", "post": {"headline": "Update", "body": "More."}}
GOOD: dict[str, Any] = {
    "version": 1,
    "saved_at": "2026-01-01T00:00:00Z",
    "streams": [{"id": "s", "feed": BUNDLED_ID, "speed": 60, "schedule": [INJECT]}],
    "live": [
        {"stream": "s", "next": 2, "posts": [post("live-1"), {**post("live-2"), "pinned": True}]},
        {"stream": BUNDLED_ID, "next": 1, "posts": [post(media=[{"kind": "image", "url": "u"}])]},
    ],
}
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(codec="utf-8"), max_size=20)
    | st.sampled_from(["live-1", "s", BUNDLED_ID, "p-66e33032b5", "", "x" * 10_000])
)
VALUES = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def places(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        yield from places(item, (*path, key))


def damaged(path: tuple[Any, ...], new: Any, remove: bool) -> Any:
    document = orjson.loads(orjson.dumps(GOOD))
    if not path:
        return new
    *parents, last = path
    holder = document
    for key in parents:
        holder = holder[key]
    if remove:
        del holder[last]
    else:
        holder[last] = new
    return document


PLACES = list(places(GOOD))


@hypothesis_settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(path=st.sampled_from(PLACES), new=VALUES, remove=st.booleans())
def test_a_damaged_state_file_is_refused_in_one_line_or_loaded(
    path: tuple[Any, ...], new: Any, remove: bool, tmp_path: Path, bundled: Feed
) -> None:
    """A value anywhere in a good file replaced by any JSON, or removed; each example checks the
    file as a start does, replays and all (100 examples, about 1 s)."""
    raw = {"server": {"state_file": "x"}, "streams": [{"id": BUNDLED_ID, "feed": BUNDLED_ID}]}
    file = tmp_path / "state.json"
    file.write_bytes(orjson.dumps(damaged(path, new, remove and bool(path))))
    try:
        read(file, validate(raw), {BUNDLED_ID: bundled})
    except ArchiveError as exc:
        text = str(exc)
        assert text.startswith(f"{file}: ") and "\n" not in text and len(text) < 400, text


def test_a_good_state_file_loads(tmp_path: Path, bundled: Feed) -> None:
    """The base of the damage above is valid, so each damage is what a refusal is about."""
    raw = {"server": {"state_file": "x"}, "streams": [{"id": BUNDLED_ID, "feed": BUNDLED_ID}]}
    file = tmp_path / "state.json"
    file.write_bytes(orjson.dumps(GOOD))
    saved = read(file, validate(raw), {BUNDLED_ID: bundled})
    assert [config.id for config, _ in saved.streams] == ["s"]
    assert [stream for stream, _, _ in saved.live] == ["s", BUNDLED_ID]


async def test_faults_changed_at_runtime_are_saved(
    start_server: StartServer, tmp_path: Path
) -> None:
    path = tmp_path / "state.json"
    first = await start_server(server={"state_file": str(path)})
    first.app[STATE].delay = 0.05
    status, answer = await first.post("/api/streams", {"id": "flaky", "feed": BUNDLED_ID})
    assert status == 201, answer
    status, answer = await send(first, "PATCH", "/api/streams/flaky", {"faults": "bandwidth:8"})
    assert status == 200, answer
    await until(lambda: on_disk(path, b"bandwidth:8"))
    second = await start_server(server={"state_file": str(path)})
    status, answer = await second.get("/api/streams/flaky")
    assert status == 200 and answer["faults"]["spec"] == "bandwidth:8"
