"""clients/tail.py against a real server: faults in the middle of a stream lose nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import orjson
import pytest
from conftest import BUNDLED_ID, Server, StartServer
from hostile import (
    SNAPSHOT,
    SSE_HEAD,
    SSE_PIECES,
    Handler,
    Hostiles,
    Request,
    a_post,
    answer,
    cut,
    dumps,
    envelope,
    frame,
    gzip_bomb,
    hold,
    in_turn,
    json_answer,
    livesim_like,
    redirect,
    sse,
    websocket,
    ws_frame,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import simulator.cli as commands
from clients import reads
from clients import sse as client_sse
from clients.tail import Follower, describe, run_tail
from clients.target import ClientError, get_json
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
    assert line.startswith("x-1              post.created")
    assert "\n" not in line and line.endswith("First line")


def test_describe_keeps_its_columns_and_names_an_embed_only_posts_media() -> None:
    def line(event_id: str, post: dict[str, object]) -> str:
        envelope = {"id": event_id, "type": "post.created", "archive_time": "-", "post": post}
        return describe(envelope)

    short = line("mwvzdmih0-9", {"body": "Nine"})
    longer = line("mwvzdmih0-10", {"body": "Ten"})
    assert short.index("post.created") == longer.index("post.created")
    media = [
        {"kind": "youtube", "title": "Clip from Mosul", "url": None},
        {"kind": "image", "title": None, "caption": None},
    ]
    assert line("x-2", {"headline": None, "body": "", "media": media}).endswith(
        "[youtube] Clip from Mosul · [image]"
    )


# `livesim tail` (simulator/cli/tail.py) ---------------------------------------------------


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


# Hostile servers (issue #12): the tools never trust their server ---------------------------------


@pytest.fixture
async def hostile() -> AsyncIterator[Hostiles]:
    servers = Hostiles()
    yield servers
    await servers.close()


GOOD = envelope(2, a_post("p-good", "the good one"))
NO_ID = {k: v for k, v in envelope(1).items() if k != "id"}
MALFORMED = {
    "no id": (NO_ID, "no string 'id'"),
    "post is a string": (envelope(1, post="just text"), "'post'"),
    "headline is an int": (envelope(1, a_post("p-1", "x", headline=5)), "'post.headline'"),
    "id with a CRLF": (
        envelope(1) | {"id": "x-1\r\nX-Evil: 1"},
        "'id' is not 1 to 256 printable ASCII characters",
    ),
    "data is a list": (
        {"id": "x-1", "type": "stream.state", "stream": "s", "data": []},
        "'data'",
    ),
}


def events_of(transport: str, *envelopes: dict[str, Any]) -> dict[str, Handler]:
    """The route that sends these envelopes over ``transport``, then holds the connection."""
    if transport == "sse":
        body = b"retry: 1000\n\n" + b"".join(frame(e, str(e.get("id", ""))) for e in envelopes)
        return {"events": sse(body)}
    return {"ws": websocket(b"".join(ws_frame(dumps(e)) for e in envelopes))}


@pytest.mark.parametrize("transport", ["sse", "ws"])
@pytest.mark.parametrize("case", sorted(MALFORMED))
async def test_tail_reports_and_skips_a_malformed_event(
    hostile: Hostiles, capsys: pytest.CaptureFixture[str], case: str, transport: str
) -> None:
    bad, problem = MALFORMED[case]
    url = livesim_like(await hostile(), **events_of(transport, bad, GOOD))
    async with asyncio.timeout(10):
        assert await run_tail(url, ws=transport == "ws", json=False, count=1) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [describe(GOOD)]
    assert "skipped" in err and problem in err, err


async def test_tail_reports_a_snapshot_that_is_not_an_object_and_retries(
    hostile: Hostiles, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot = in_turn(json_answer([1, 2]), json_answer(SNAPSHOT))
    url = livesim_like(await hostile(), snapshot=snapshot, **events_of("sse", GOOD))
    async with asyncio.timeout(10):
        assert await run_tail(url, ws=False, json=False, count=1) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [describe(GOOD)]
    assert "snapshot" in err and "not a JSON object" in err, err


@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_tail_takes_a_number_beyond_64_bits(
    hostile: Hostiles, capsys: pytest.CaptureFixture[str], transport: str
) -> None:
    big = envelope(2, a_post("p-big", "big", count=2**64, small=-(2**63) - 1))
    url = livesim_like(await hostile(), **events_of(transport, big))
    async with asyncio.timeout(10):
        assert await run_tail(url, ws=transport == "ws", json=True, count=1) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert orjson.loads(line)["post"]["count"] == 2**64


async def test_ten_events_sharing_an_id_are_one_line_and_a_warning(
    hostile: Hostiles, capsys: pytest.CaptureFixture[str]
) -> None:
    same = [envelope(1, a_post(f"p-{n}", f"post number {n}")) for n in range(10)]
    url = livesim_like(await hostile(), **events_of("sse", *same, GOOD))
    async with asyncio.timeout(10):
        assert await run_tail(url, ws=False, json=False, count=2) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [describe(same[0]), describe(GOOD)]
    assert "9 events skipped: their id was already seen (9 with other content)" in err, err


Until = Callable[[list[str], list[dict[str, Any]]], bool]


async def follow(
    url: str, until: Until, within: float = 10, **options: Any
) -> tuple[Follower, list[str], list[dict[str, Any]]]:
    """A Follower on ``url`` until ``until(faults, events)``; its faults and events."""
    base, stream = url.rsplit("/streams/", 1)
    faults: list[str] = []
    seen: list[dict[str, Any]] = []
    changed = asyncio.Event()

    def note(into: list[Any]) -> Callable[[Any], None]:
        def add(item: Any) -> None:
            into.append(item)
            changed.set()

        return add

    follower = Follower(base, stream, note(seen), on_fault=note(faults), **options)
    task = asyncio.create_task(follower.run())
    try:
        async with asyncio.timeout(within):
            while not until(faults, seen):
                changed.clear()
                await changed.wait()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return follower, faults, seen


def mentions(*words: str) -> Until:
    return lambda faults, seen: any(all(w in fault for w in words) for fault in faults)


@contextlib.contextmanager
def peak_memory() -> Iterator[list[int]]:
    """``[peak bytes]`` allocated by Python meanwhile (tracemalloc)."""
    peak = [0]
    tracemalloc.start()
    try:
        yield peak
    finally:
        peak[0] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


MiB = 1024 * 1024


@pytest.mark.parametrize(
    "what,then",
    [
        ("an endless line", b"x" * 65536),
        ("endless data lines", (b"data: " + b"x" * 1000 + b"\n") * 64),
    ],
)
async def test_tail_bounds_what_an_endless_event_holds(
    hostile: Hostiles, what: str, then: bytes
) -> None:
    url = livesim_like(await hostile(), events=sse(b"retry: 1000\n\ndata: ", then=then))
    with peak_memory() as peak:
        await follow(url, mentions("over 1048576 bytes", "--max-event-bytes"))
    assert peak[0] < 16 * MiB, what


def test_sse_parser_is_linear_in_a_long_line() -> None:
    parser = client_sse.SSEParser()
    chunk = b"x" * 1024
    began = time.monotonic()
    for _ in range(1023):
        assert parser.feed(chunk) == []
    assert time.monotonic() - began < 2.0  # a rescan per chunk took minutes
    with pytest.raises(client_sse.EventTooLarge, match="over 1048576 bytes"):
        parser.feed(chunk * 2)


async def test_tail_caps_a_gzip_bomb_snapshot(hostile: Hostiles) -> None:
    bomb = answer(
        gzip_bomb(256 * MiB),
        headers=[("Content-Type", "application/json"), ("Content-Encoding", "gzip")],
    )
    url = livesim_like(await hostile(), snapshot=bomb)
    with peak_memory() as peak:
        await follow(url, mentions("snapshot", "over 67108864 bytes"), within=20)
    assert peak[0] < 100 * MiB


async def test_tail_decompresses_an_event_stream_in_bounded_steps(hostile: Hostiles) -> None:
    bomb = gzip_bomb(64 * MiB)  # 64 MiB of NUL bytes: one endless line

    async def gzipped_events(request: Request, reader: Any, w: Any) -> None:
        w.write(SSE_HEAD.replace(b"\r\n\r\n", b"\r\nContent-Encoding: gzip\r\n\r\n") + bomb)
        await w.drain()
        await hold(reader)

    url = livesim_like(await hostile(), events=gzipped_events)
    with peak_memory() as peak:
        await follow(url, mentions("over 1048576 bytes"), within=20)
    assert peak[0] < 16 * MiB


@pytest.mark.parametrize("route", ["snapshot", "events", "ws"])
async def test_tail_follows_no_redirect_to_another_origin(hostile: Hostiles, route: str) -> None:
    elsewhere = await hostile()
    livesim_like(elsewhere)
    path = {
        "snapshot": "/api/streams/s/posts",
        "events": "/streams/s/events",
        "ws": "/streams/s/ws",
    }[route]
    scheme = "ws" if route == "ws" else "http"
    location = f"{scheme}://{elsewhere.base.split('//')[1]}{path}"
    url = livesim_like(await hostile(), **{route: redirect(location)})
    await follow(url, mentions("redirect", location), transport=scheme.replace("http", "sse"))
    assert elsewhere.requests == []


async def test_tail_follows_a_redirect_within_its_origin(hostile: Hostiles) -> None:
    server = await hostile()
    url = livesim_like(server, snapshot=redirect("/moved"), **events_of("sse", GOOD))
    server.on("/moved", json_answer(SNAPSHOT))
    _, faults, seen = await follow(url, lambda faults, seen: bool(seen))
    assert seen == [GOOD] and faults == [] and server.hits("/moved") == 1


async def test_tail_reads_the_stream_list_from_no_other_origin(hostile: Hostiles) -> None:
    elsewhere = await hostile()
    livesim_like(elsewhere)
    server = await hostile()
    server.on("/api/streams", redirect(elsewhere.base + "/api/streams", 307))
    with pytest.raises(ClientError, match="redirect"):
        await run_tail(server.base, ws=False, json=False, count=1)
    assert elsewhere.requests == []


# The parsers fed hostile bytes (hypothesis) -----------------------------------------------------

BOUND = 256


def parse_all(chunks: list[bytes]) -> list[client_sse.Item] | str:
    parser = client_sse.SSEParser(comments=True, retries=True, max_event_bytes=BOUND)
    out: list[client_sse.Item] = []
    try:
        for chunk in chunks:
            out += parser.feed(chunk)
            assert parser.held <= BOUND + 1
    except client_sse.EventTooLarge as exc:
        return str(exc)
    return out + parser.close()


@settings(max_examples=300, deadline=None)
@given(st.lists(SSE_PIECES, max_size=30), st.lists(st.integers(min_value=0), max_size=12))
def test_sse_parser_takes_any_bytes_however_cut(pieces: list[bytes], points: list[int]) -> None:
    """Only ``EventTooLarge``, never more held than the bound, and the same items (or the same
    refusal) whether the bytes come whole or cut anywhere."""
    data = b"".join(pieces)
    assert parse_all(cut(data, points)) == parse_all([data])


async def test_the_bounds_are_the_flags(
    hostile: Hostiles, capsys: pytest.CaptureFixture[str]
) -> None:
    big = envelope(1, a_post("p-big", "x" * 2000))
    events = in_turn(events_of("sse", big)["events"], events_of("sse", GOOD)["events"])
    snapshot = in_turn(json_answer({**SNAPSHOT, "pad": "x" * 2000}), json_answer(SNAPSHOT))
    url = livesim_like(await hostile(), events=events, snapshot=snapshot)
    async with asyncio.timeout(10):
        assert (
            await run_tail(
                url, ws=False, json=False, count=1, max_event_bytes=1024, max_snapshot_bytes=1024
            )
            == 0
        )
    out, err = capsys.readouterr()
    assert out.splitlines() == [describe(GOOD)]
    assert "the snapshot is over 1024 bytes (--max-snapshot-bytes)" in err, err
    assert "over 1024 bytes (--max-event-bytes)" in err, err


@pytest.mark.parametrize("command", ["tail", "alert"])
@pytest.mark.parametrize("value", ["0", "-5", "1e308", str(2**64), "nan", "17GiB", "x" * 10_000])
def test_bad_max_snapshot_bytes_are_usage_errors(
    command: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [command, "http://127.0.0.1:9/streams/x", "--max-snapshot-bytes", value]
    with pytest.raises(SystemExit) as exit:
        commands.main([*argv, "--rules", "r.toml"] if command == "alert" else argv)
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert "--max-snapshot-bytes" in err and "expected a size" in err and len(err) < 600


@pytest.mark.parametrize("command", ["tail", "alert", "load"])
def test_help_gives_the_bounds(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        commands.main([command, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--max-event-bytes SIZE" in out and "default 1MiB" in out
    assert ("--max-snapshot-bytes SIZE" in out) is (command != "load")


@pytest.mark.parametrize(
    "location,error",
    [
        ("//127.0.0.1:9/x", "another origin"),
        ("https://{host}/ok", "another origin"),
        ("http://localhost:{port}/ok", "another origin"),
        ("ftp://{host}/ok", "another origin"),
        ("http://[bad", "not a URL"),
        ("/r", "more than 5 redirects"),
        ("x" * 10_000, "Got more than"),
        ("/ok", None),
    ],
)
async def test_reads_follow_redirects_only_within_the_origin(
    hostile: Hostiles, location: str, error: str | None
) -> None:
    server = await hostile()
    host = server.base.split("//")[1]
    server.on("/r", redirect(location.format(host=host, port=host.split(":")[1])))
    server.on("/ok", json_answer({"fine": True}))
    async with reads.session() as session:
        if error is None:
            assert await get_json(session, f"{server.base}/r") == {"fine": True}
            return
        with pytest.raises(ClientError, match=error) as raised:
            await get_json(session, f"{server.base}/r")
    assert "\n" not in str(raised.value) and len(str(raised.value)) < 400
    assert server.hits("/ok") == 0
