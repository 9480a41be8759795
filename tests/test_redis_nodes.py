"""Nodes sharing their streams through a real Redis (#14): two livesim processes, one service.

The steady-state tests share one Redis and two nodes (module scope); the tests that kill a node or
Redis get their own.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis_nodes import STREAM, Node, Redis, nodes, redis_server, spawn_node
from sse import Event, connect

EVENTS = f"/streams/{STREAM}/events"
CONTROL = f"/api/streams/{STREAM}"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Node]]:
    workdir = tmp_path_factory.mktemp("redis-nodes")
    with redis_server(workdir) as redis, nodes(redis.url, workdir, 2) as started:
        yield started


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def call(
    session: aiohttp.ClientSession, method: str, url: str, body: Any = None
) -> tuple[int, Any]:
    async with session.request(method, url, json=body) as response:
        return response.status, await response.json()


def serial(event: Event) -> int:
    return int(event.id.rsplit("-", 1)[1].removesuffix(".reset"))


async def test_every_node_sends_the_same_events_with_the_same_ids(
    shared: list[Node], session: aiohttp.ClientSession
) -> None:
    a, b = shared
    status, described = await call(session, "GET", a.url + CONTROL)
    assert status == 200
    cursor = described["cursor"]
    async with (
        connect(session, a.url + EVENTS, last_event_id=cursor) as on_a,
        connect(session, b.url + EVENTS, last_event_id=cursor) as on_b,
    ):
        seen_a = await asyncio.wait_for(on_a.events(12), 10)
        seen_b = await asyncio.wait_for(on_b.events(12), 10)
    assert [e.id for e in seen_a] == [e.id for e in seen_b]
    assert [e.data for e in seen_a] == [e.data for e in seen_b]  # the same bytes, due_at too
    assert [serial(e) for e in seen_a] == list(range(serial(seen_a[0]), serial(seen_a[0]) + 12))
    assert serial(seen_a[0]) == int(cursor.rsplit("-", 1)[1]) + 1


async def test_a_pause_on_one_node_stops_the_others_subscribers_within_250ms(
    shared: list[Node], session: aiohttp.ClientSession
) -> None:
    a, b = shared
    async with connect(session, a.url + EVENTS) as on_a:
        await asyncio.wait_for(on_a.next_event(), 5)
        sent = time.monotonic()
        status, answer = await call(session, "POST", b.url + CONTROL + "/pause", {})
        assert status == 200 and answer["state"] == "paused"
        await asyncio.wait_for(on_a.until("stream.state", reason="pause"), 0.25)
        assert time.monotonic() - sent < 0.25
        await asyncio.sleep(0.6)
        status, answer = await call(session, "POST", a.url + CONTROL + "/resume", {})
        assert status == 200 and answer["state"] == "playing"
        meanwhile = await asyncio.wait_for(on_a.until("stream.state", reason="resume"), 0.25)
        assert len(meanwhile) == 1  # nothing while paused, on any node


async def test_a_live_post_on_one_node_reaches_the_others_subscribers(
    shared: list[Node], session: aiohttp.ClientSession
) -> None:
    a, b = shared
    async with connect(session, a.url + EVENTS) as on_a:
        status, made = await call(session, "POST", b.url + CONTROL + "/posts", {"body": "from B"})
        assert status == 201
        post_id = made["post"]["id"]
        created = await asyncio.wait_for(on_a.until("post.created"), 2)
        while json.loads(created[-1].data)["post"]["id"] != post_id:
            created = await asyncio.wait_for(on_a.until("post.created"), 2)
        assert json.loads(created[-1].data)["post"]["body"] == "from B"
    status, found = await call(session, "GET", a.url + CONTROL + f"/posts/{post_id}")
    assert status == 200 and found["post"]["body"] == "from B"
    status, _ = await call(session, "DELETE", a.url + CONTROL + f"/posts/{post_id}")
    assert status == 200


async def test_websocket_ops_and_resume_work_across_nodes(
    shared: list[Node], session: aiohttp.ClientSession
) -> None:
    a, b = shared
    ws_path = f"/streams/{STREAM}/ws"
    async with (
        connect(session, b.url + EVENTS) as on_b,
        session.ws_connect(a.url.replace("http", "ws", 1) + ws_path) as ws,
    ):
        await ws.send_str(json.dumps({"op": "speed", "speed": 300}))
        changed = await asyncio.wait_for(on_b.until("stream.state", reason="speed"), 0.25)
        assert json.loads(changed[-1].data)["data"]["speed"] == 300
        await ws.send_str(json.dumps({"op": "seek", "to": "no-such"}))
        while True:
            message = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
            if message.get("type") == "error":
                break
        assert message["where"] == "$.to"
        await ws.send_str(json.dumps({"op": "speed", "speed": 600}))
        seen = await asyncio.wait_for(on_b.events(3), 5)
    async with session.ws_connect(b.url.replace("http", "ws", 1) + ws_path) as ws:
        await ws.send_str(json.dumps({"op": "resume", "since": seen[0].id}))
        ids: list[str] = []
        while len(ids) < 2:
            message = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
            if "id" in message:
                ids.append(message["id"])
        assert ids == [e.id for e in seen[1:3]]


async def test_a_client_switching_nodes_loses_nothing(
    shared: list[Node], session: aiohttp.ClientSession
) -> None:
    a, b = shared
    async with connect(session, a.url + EVENTS) as on_a:
        first = await asyncio.wait_for(on_a.events(3), 5)
    await asyncio.sleep(0.5)  # events go on meanwhile
    async with connect(session, b.url + EVENTS, last_event_id=first[-1].id) as on_b:
        then = await asyncio.wait_for(on_b.events(5), 5)
    assert then[0].event != "stream.reset"
    assert [serial(e) for e in first + then] == list(range(serial(first[0]), serial(first[0]) + 8))


async def test_a_command_that_does_not_fit_is_refused_on_any_node(
    shared: list[Node], session: aiohttp.ClientSession
) -> None:
    _, b = shared
    status, answer = await call(session, "POST", b.url + CONTROL + "/seek", {"to": "no-such"})
    assert status == 400 and answer["where"] == "body.to"
    status, _ = await call(session, "DELETE", b.url + CONTROL + "/posts/no-such-post")
    assert status == 404


async def test_api_streams_appear_and_go_on_every_node_within_a_second(
    shared: list[Node], session: aiohttp.ClientSession
) -> None:
    a, b = shared
    body = {"id": "made-on-a", "feed": STREAM, "speed": 600}
    status, _ = await call(session, "POST", a.url + "/api/streams", body)
    assert status == 201
    status, _ = await call(session, "POST", b.url + "/api/streams", body)
    assert status in (400, 409)  # one stream of that id for the whole service
    for _ in range(20):
        status, found = await call(session, "GET", b.url + "/api/streams/made-on-a")
        if status == 200:
            break
        await asyncio.sleep(0.05)
    assert status == 200 and found["id"] == "made-on-a"
    status, _ = await call(session, "DELETE", b.url + "/api/streams/made-on-a")
    assert status == 200
    for _ in range(20):
        status, _ = await call(session, "GET", a.url + "/api/streams/made-on-a")
        if status == 404:
            break
        await asyncio.sleep(0.05)
    assert status == 404


async def test_metrics_name_the_node_and_its_redis(
    shared: list[Node], session: aiohttp.ClientSession
) -> None:
    for node in shared:
        async with session.get(node.url + "/metrics") as response:
            text = await response.text()
        assert "livesim_redis_up 1" in text
        assert "livesim_node_info{node=" in text
        assert "livesim_redis_round_trip_seconds" in text
        assert "livesim_redis_clock_offset_seconds" in text
    owned = []
    for node in shared:
        async with session.get(node.url + "/metrics") as response:
            owned.append("livesim_redis_streams_owned 1" in await response.text())
    assert sorted(owned) == [False, True]  # one clock per stream


async def owner_of(session: aiohttp.ClientSession, started: list[Node]) -> Node:
    for node in started:
        async with session.get(node.url + "/metrics") as response:
            if "livesim_redis_streams_owned 1" in await response.text():
                return node
    raise AssertionError("no node runs the stream's clock")


async def test_the_owner_killed_another_takes_over_with_contiguous_ids(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    with redis_server(tmp_path) as redis, nodes(redis.url, tmp_path, 2) as started:
        owner = await owner_of(session, started)
        other = next(node for node in started if node is not owner)
        async with connect(session, other.url + EVENTS) as watcher:
            before = await asyncio.wait_for(watcher.events(3), 5)
            owner.stop(signal.SIGKILL)
            killed = time.monotonic()
            after = await asyncio.wait_for(watcher.events(15), 10)
        serials = [serial(e) for e in before + after]
        assert serials == list(range(serials[0], serials[0] + len(serials)))
        assert time.monotonic() - killed < 8
        async with session.get(other.url + "/metrics") as response:
            text = await response.text()
        assert "livesim_redis_takeovers_total 1" in text
        assert "livesim_redis_streams_owned 1" in text
        with nodes(redis.url, tmp_path, 1, name="again") as (again,):  # rejoins in step
            cursor = after[-1].id
            async with (
                connect(session, other.url + EVENTS, last_event_id=cursor) as on_other,
                connect(session, again.url + EVENTS, last_event_id=cursor) as on_again,
            ):
                expected = await asyncio.wait_for(on_other.events(5), 5)
                assert await asyncio.wait_for(on_again.events(5), 5) == expected


async def test_redis_down_then_back(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    with redis_server(tmp_path) as redis, nodes(redis.url, tmp_path, 2) as started:
        a, b = started
        async with connect(session, a.url + EVENTS) as watcher:
            first = await asyncio.wait_for(watcher.next_event(), 5)
            redis.kill()
            status, ready = await _until(session, a.url + "/readyz", 503)
            assert "redis" in ready["reason"]
            status, answer = await call(session, "POST", b.url + CONTROL + "/pause", {})
            assert status == 503 and "Redis" in answer["error"]
            body = {"id": "while-down", "feed": STREAM}
            status, answer = await call(session, "POST", b.url + "/api/streams", body)
            assert status == 503 and "Redis" in answer["error"]
            status, _ = await call(session, "GET", a.url + "/healthz")
            assert status == 200  # up, and the open connection stays open
            redis.start()  # empty: no persistence
            await _until(session, a.url + "/readyz", 200)
            await _until(session, b.url + "/readyz", 200)
            status, answer = await _until(session, b.url + CONTROL + "/pause", 200, "POST")
            assert answer["state"] == "paused"
            seen = await asyncio.wait_for(watcher.until("stream.state", reason="pause"), 5)
        serials = [serial(e) for e in [first, *seen]]
        assert serials == list(range(serials[0], serials[0] + len(serials)))  # nothing lost
        logs = a.log.read_text()
        assert logs.count("serving what this node holds") == 1, logs
        assert "redis reached" in logs
        status, _ = await call(session, "POST", a.url + CONTROL + "/resume", {})
        assert status == 200
        with nodes(redis.url, tmp_path, 1, name="late") as (late,):
            cursor = seen[-1].id  # the log's start is gone: it starts from the checkpoint
            async with (
                connect(session, a.url + EVENTS, last_event_id=cursor) as on_a,
                connect(session, late.url + EVENTS, last_event_id=cursor) as on_late,
            ):
                expected = await asyncio.wait_for(on_a.events(5), 5)
                assert await asyncio.wait_for(on_late.events(5), 5) == expected


async def _until(
    session: aiohttp.ClientSession, url: str, wanted: int, method: str = "GET"
) -> tuple[int, Any]:
    deadline = time.monotonic() + 10
    while True:
        status, body = await call(session, method, url, {} if method == "POST" else None)
        if status == wanted or time.monotonic() > deadline:
            assert status == wanted, body
            return status, body
        await asyncio.sleep(0.1)


def test_redis_helper_restarts_on_its_port(tmp_path: Path) -> None:
    redis = Redis(0, tmp_path)
    assert redis.url.startswith("redis://127.0.0.1:")


async def test_workers_share_one_port_each_a_node(tmp_path: Path) -> None:
    """On each of two addresses (``--host 127.0.0.1,::1``): the port is held on both."""
    pool_args = ("--workers", "2", "--host", "127.0.0.1,::1")
    with redis_server(tmp_path) as redis, nodes(redis.url, tmp_path, 1, *pool_args) as pool:
        started = time.monotonic()
        port = pool[0].url.rsplit(":", 1)[1]
        seen: dict[str, set[str]] = {pool[0].url: set(), f"http://[::1]:{port}": set()}
        connector = aiohttp.TCPConnector(force_close=True)  # a new connection each time
        async with aiohttp.ClientSession(connector=connector) as fresh:
            for _ in range(200):  # the banner is the first worker's: the other may still start
                for url, nodes_seen in seen.items():
                    async with fresh.get(url + "/metrics") as response:
                        text = await response.text()
                    nodes_seen.add(text.split("livesim_node_info{node=", 1)[1].split("}", 1)[0])
                if all(len(nodes_seen) == 2 for nodes_seen in seen.values()):
                    break
                await asyncio.sleep(0.05)
        assert [len(nodes_seen) for nodes_seen in seen.values()] == [2, 2]
        parent = pool[0].process.pid
        workers = _children(parent)
        await asyncio.sleep(max(0.0, 2.2 - (time.monotonic() - started)))
        os.kill(int(workers[0]), signal.SIGKILL)  # a crash: another worker takes its place
        for _ in range(100):
            await asyncio.sleep(0.1)
            if "starting another" in pool[0].log.read_text():
                break
        assert "starting another" in pool[0].log.read_text()
        pool[0].stop()
        assert pool[0].process.returncode == 0


def _children(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()


def test_workers_without_redis_are_refused_with_one_line(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "simulator", "serve", "--port", "0", "--workers", "2"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVESIM_")}
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "--workers needs --redis" in done.stderr


async def test_a_node_joining_late_starts_from_a_checkpoint_and_the_log_is_trimmed(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    import redis.asyncio as aioredis

    every = {"LIVESIM_SERVER__REDIS_CHECKPOINT_EVERY": "100"}
    with redis_server(tmp_path) as redis, nodes(redis.url, tmp_path, 1, env=every) as (a,):
        client = aioredis.Redis.from_url(redis.url)
        try:
            await call(session, "POST", a.url + CONTROL + "/speed", {"speed": "max"})
            key = f"livesim:in:{STREAM}"
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                received = await _metric(session, a, "livesim_redis_inputs_received_total")
                if received > 3 * 100 + 50 and await client.exists(f"livesim:checkpoint:{STREAM}"):
                    break
                await asyncio.sleep(0.2)
            await call(session, "POST", a.url + CONTROL + "/speed", {"speed": 600})
            assert await client.xlen(key) < received - 90  # trimmed to the last checkpoint but one
            with nodes(redis.url, tmp_path, 1, name="late", env=every) as (late,):
                status, described = await call(session, "GET", a.url + CONTROL)
                cursor = described["cursor"]
                async with (
                    connect(session, a.url + EVENTS, last_event_id=cursor) as on_a,
                    connect(session, late.url + EVENTS, last_event_id=cursor) as on_late,
                ):
                    expected = await asyncio.wait_for(on_a.events(5), 5)
                    assert await asyncio.wait_for(on_late.events(5), 5) == expected
                for _ in range(20):  # an event may fall between the two reads: read again
                    _, on_a_now = await call(session, "GET", a.url + CONTROL + "/posts")
                    _, on_late_now = await call(session, "GET", late.url + CONTROL + "/posts")
                    if on_a_now["cursor"] == on_late_now["cursor"]:
                        break
                assert on_a_now["cursor"] == on_late_now["cursor"]
                assert on_a_now["posts"] == on_late_now["posts"]
        finally:
            await client.aclose()


async def _metric(session: aiohttp.ClientSession, node: Node, name: str) -> float:
    async with session.get(node.url + "/metrics") as response:
        for line in (await response.text()).splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"no {name}")


async def test_a_node_with_another_config_refuses_the_stream(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    with (
        redis_server(tmp_path) as redis,
        nodes(redis.url, tmp_path, 1) as (a,),
        nodes(redis.url, tmp_path, 1, "--speed", "300", name="other") as (b,),
    ):
        status, answer = await call(session, "GET", b.url + CONTROL + "/posts")
        assert status == 409 and "differs" in answer["error"]
        status, _ = await call(session, "GET", a.url + CONTROL + "/posts")
        assert status == 200


async def _all_events(session: aiohttp.ClientSession, url: str) -> list[Event]:
    """Every event of one connection, until the server ends it."""
    async with connect(session, url) as reader, asyncio.timeout(10):
        return [item async for item in reader if isinstance(item, Event)]


async def test_faults_patched_on_one_node_apply_on_every_node_and_to_a_late_one(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    """``PATCH {"faults"}`` goes through the input log: every node's connections suffer it, and
    a node that joins after it (from a checkpoint taken after it) does too."""
    import redis.asyncio as aioredis

    env = {"LIVESIM_SERVER__REDIS_CHECKPOINT_EVERY": "10"}
    with redis_server(tmp_path) as redis, nodes(redis.url, tmp_path, 2, env=env) as (a, b):
        status, answer = await call(
            session, "PATCH", b.url + CONTROL, {"faults": "disconnect_after:2"}
        )
        assert status == 200 and answer["faults"]["spec"] == "disconnect_after:2"
        await _faults_on(session, a, "disconnect_after:2")
        assert len(await _all_events(session, a.url + EVENTS)) == 2
        client = aioredis.Redis.from_url(redis.url)
        try:
            log: Any = await client.xrange(f"livesim:in:{STREAM}")
            patched = next(i for i, f in log if b'"faults"' in f.get(b"c", b""))
            for _ in range(100):  # a checkpoint after the PATCH: a late node does not read it
                taken: Any = await client.hget(f"livesim:checkpoint:{STREAM}", "id")
                if taken is not None and _entry(taken) > _entry(patched):
                    break
                await asyncio.sleep(0.1)
            assert taken is not None and _entry(taken) > _entry(patched)
        finally:
            await client.aclose()
        with nodes(redis.url, tmp_path, 1, name="late", env=env) as (late,):
            status, shown = await call(session, "GET", late.url + CONTROL)
            assert shown["faults"]["spec"] == "disconnect_after:2"
            assert len(await _all_events(session, late.url + EVENTS)) == 2
        status, _ = await call(session, "PATCH", a.url + CONTROL, {"faults": None})
        assert status == 200
        await _faults_on(session, b, None)


async def _faults_on(session: aiohttp.ClientSession, node: Node, spec: str | None) -> None:
    """The node shows ``spec`` as its stream's faults within 250 ms."""
    deadline = time.monotonic() + 0.25
    while True:
        _, shown = await call(session, "GET", node.url + CONTROL)
        if shown["faults"]["spec"] == spec or time.monotonic() > deadline:
            assert shown["faults"]["spec"] == spec
            return
        await asyncio.sleep(0.01)


def _entry(entry_id: bytes) -> tuple[int, int]:
    millis, _, sequence = entry_id.partition(b"-")
    return int(millis), int(sequence)


CHECKPOINT_OFTEN = {"LIVESIM_SERVER__REDIS_CHECKPOINT_EVERY": "10"}
LOG = f"livesim:in:{STREAM}"
CHECKPOINT = f"livesim:checkpoint:{STREAM}"


async def _first_number(client: Any) -> int:
    """The number of the first input the log still holds (0: none)."""
    first: Any = await client.xrange(LOG, count=1)
    return int(first[0][1][b"n"]) if first else 0


async def _poll(check: Any, what: str, seconds: float = 20) -> Any:
    """``await check()`` until it is truthy; fail naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {seconds} s: {what}")


async def _same_state(session: aiohttp.ClientSession, one: Node, other: Node) -> None:
    """Both nodes' replays stand at the same point (the stream is paused): same cursor, posts."""

    async def same() -> bool:
        _, on_one = await call(session, "GET", one.url + CONTROL + "/posts")
        _, on_other = await call(session, "GET", other.url + CONTROL + "/posts")
        return bool(on_one == on_other)

    await _poll(same, "the same snapshot on both nodes", 5)


async def test_a_node_joining_while_the_log_is_trimmed_takes_the_newer_checkpoint(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    """The joiner reads a checkpoint whose following inputs are gone from the log, as if two
    checkpoints were written between its two reads (planted by hand, deterministically): it
    must notice and take the newer checkpoint, not apply what follows over the old one."""
    import redis.asyncio as aioredis

    with redis_server(tmp_path) as redis:
        client = aioredis.Redis.from_url(redis.url)
        try:
            with nodes(redis.url, tmp_path, 1, env=CHECKPOINT_OFTEN) as (a,):
                await call(session, "POST", a.url + CONTROL + "/speed", {"speed": "max"})
                old: Any = await _poll(lambda: client.hgetall(CHECKPOINT), "a checkpoint")
                old_number = int(old[b"n"])

                async def trimmed_past_it() -> bool:
                    return await _first_number(client) > old_number + 1

                await _poll(trimmed_past_it, "the log trimmed past the checkpoint")
                status, _ = await call(session, "POST", a.url + CONTROL + "/pause", {})
                assert status == 200
            newer: Any = await client.hgetall(CHECKPOINT)  # a is gone: nothing changes now
            assert int(newer[b"n"]) > old_number
            await client.delete(CHECKPOINT)
            await client.hset(CHECKPOINT, mapping=old)
            starting = spawn_node(redis.url, tmp_path, "joiner", env=CHECKPOINT_OFTEN)
            try:

                async def noticed() -> bool:
                    return "taking it up from the latest checkpoint" in starting.log.read_text()

                await _poll(noticed, "the joiner noticing the gap", 10)
                await client.delete(CHECKPOINT)
                await client.hset(CHECKPOINT, mapping=newer)  # what the owner wrote meanwhile
                joiner = await asyncio.to_thread(starting.serving)
            finally:
                starting.kill_unless_serving()
            try:
                with nodes(redis.url, tmp_path, 1, name="reference", env=CHECKPOINT_OFTEN) as (
                    reference,
                ):
                    await _same_state(session, joiner, reference)
            finally:
                joiner.stop()
        finally:
            await client.aclose()


async def test_a_node_fallen_behind_a_trim_resets_its_subscribers_and_goes_on_in_step(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    """A node stopped (SIGSTOP) while the log is trimmed past where it stood: when it goes on,
    its subscribers get a ``stream.reset`` (their history was lost here), never a silent gap,
    and its replay is in step with the owner's again."""
    import redis.asyncio as aioredis

    with (
        redis_server(tmp_path) as redis,
        nodes(redis.url, tmp_path, 1, env=CHECKPOINT_OFTEN) as (a,),
    ):
        client = aioredis.Redis.from_url(redis.url)
        try:
            owned = lambda: _metric(session, a, "livesim_redis_streams_owned")  # noqa: E731
            await _poll(owned, "node a running the clock", 5)
            with nodes(redis.url, tmp_path, 1, name="behind", env=CHECKPOINT_OFTEN) as (b,):
                async with connect(session, b.url + EVENTS) as on_b:
                    await asyncio.wait_for(on_b.next_event(), 5)
                    b.process.send_signal(signal.SIGSTOP)
                    try:
                        last: Any = await client.xrevrange(LOG, count=1)
                        stood = int(last[0][1][b"n"])
                        await call(session, "POST", a.url + CONTROL + "/speed", {"speed": "max"})

                        async def trimmed_past_b() -> bool:  # past what one read could hold
                            return await _first_number(client) > stood + 512 + 20

                        await _poll(trimmed_past_b, "the log trimmed past node b")
                        await call(session, "POST", a.url + CONTROL + "/pause", {})
                    finally:
                        b.process.send_signal(signal.SIGCONT)
                    await asyncio.wait_for(on_b.until("stream.reset", reason="redis"), 10)
                await _same_state(session, a, b)
                assert "taking it up from the latest checkpoint" in b.log.read_text()
        finally:
            await client.aclose()


async def test_a_node_reads_all_its_streams_with_one_blocking_read(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    """One ``XREAD BLOCK`` per node, whatever its number of streams (not one per stream): Redis
    never holds more than one of its clients blocked."""
    import redis.asyncio as aioredis

    with redis_server(tmp_path) as redis, nodes(redis.url, tmp_path, 1) as (a,):
        for number in range(4):
            body = {"id": f"more-{number}", "feed": STREAM, "speed": 600}
            status, _ = await call(session, "POST", a.url + "/api/streams", body)
            assert status == 201
        client = aioredis.Redis.from_url(redis.url)
        try:
            blocked = []
            for _ in range(40):
                info: Any = await client.info("clients")
                blocked.append(info["blocked_clients"])
                await asyncio.sleep(0.025)
        finally:
            await client.aclose()
        assert max(blocked) == 1, blocked
        status, answer = await call(session, "POST", a.url + "/api/streams/more-3/pause", {})
        assert status == 200 and answer["state"] == "paused"
