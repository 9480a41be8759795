"""The REST surface: feeds, streams, controls, errors as JSON naming the input, CORS."""

from __future__ import annotations

import asyncio
import json as json_module
from datetime import UTC, datetime
from typing import Any

import pytest
import sse
from conftest import BUNDLED_ID, Server, StartServer
from server_helpers import assert_error as assert_bounded_error
from server_helpers import assert_healthy
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from simulator.core.model import Feed

TIMEOUT = 10


def assert_error(status: int, body: Any, expected_status: int, where: str) -> None:
    assert status == expected_status, body
    assert body["status"] == expected_status
    assert body["where"] == where, body
    assert isinstance(body["error"], str) and body["error"]


# Feeds --------------------------------------------------------------------------------------


async def test_feeds_list(server: Server, bundled: Feed) -> None:
    status, feeds = await server.get("/api/feeds")
    assert status == 200
    assert [f["id"] for f in feeds] == [BUNDLED_ID]
    (feed,) = feeds
    assert feed["title"] == bundled.title
    assert feed["posts"] == len(bundled.posts)
    assert feed["links"] == {
        "self": f"/api/feeds/{BUNDLED_ID}",
        "posts": f"/api/feeds/{BUNDLED_ID}/posts",
        "events": f"/feeds/{BUNDLED_ID}/events",
        "ws": f"/feeds/{BUNDLED_ID}/ws",
    }


async def test_feed_show(server: Server) -> None:
    status, listed = await server.get("/api/feeds")
    status, feed = await server.get(f"/api/feeds/{BUNDLED_ID}")
    assert status == 200
    assert feed["id"] == BUNDLED_ID
    assert {k: v for k, v in feed.items() if k != "stats"} == listed[0]
    assert feed["stats"]["posts"] == feed["posts"]


async def test_feed_posts(server: Server, bundled: Feed) -> None:
    status, body = await server.get(f"/api/feeds/{BUNDLED_ID}/posts")
    assert status == 200
    assert body["feed"] == BUNDLED_ID
    posts = body["posts"]
    assert [p["id"] for p in posts] == [p.id for p in bundled.posts]
    assert len({p["id"] for p in posts}) == len(posts)
    times = [p["published_at"] for p in posts]
    assert times == sorted(times)
    assert all(p["body"] or p["media"] for p in posts)  # a media-only post has no text


@pytest.mark.parametrize("path", ["/api/feeds/nope", "/api/feeds/nope/posts"])
async def test_unknown_feed_is_404(server: Server, path: str) -> None:
    status, body = await server.get(path)
    assert_error(status, body, 404, "path")
    assert "nope" in body["error"]


# Streams ------------------------------------------------------------------------------------


async def test_streams_list_and_show(server: Server) -> None:
    status, streams = await server.get("/api/streams")
    assert status == 200
    assert [s["id"] for s in streams] == [BUNDLED_ID]
    status, stream = await server.get(f"/api/streams/{BUNDLED_ID}")
    assert status == 200
    assert stream["id"] == BUNDLED_ID
    assert stream["feed"] == BUNDLED_ID
    assert stream["state"] == "playing"
    assert stream["speed"] == 60
    assert stream["loop"] is True
    assert stream["private"] is False
    assert stream["subscribers"] == 0
    assert stream["dropped_slow"] == 0
    assert stream["position"]["total"] >= stream["position"]["index"] >= 0
    assert stream["links"]["events"] == f"/streams/{BUNDLED_ID}/events"
    assert stream["links"]["ws"] == f"/streams/{BUNDLED_ID}/ws"


async def test_create_stream(server: Server) -> None:
    body = {"id": "fast", "feed": BUNDLED_ID, "speed": 3600, "max_gap": "1s", "paused": True}
    async with server.session.post(server.base + "/api/streams", json=body) as response:
        assert response.status == 201
        assert response.headers["Location"] == "/api/streams/fast"
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        created = await response.json()
    assert created["id"] == "fast"
    assert created["feed"] == BUNDLED_ID
    assert created["state"] == "paused"
    assert created["speed"] == 3600
    assert created["max_gap"] == 1.0
    assert created["position"]["index"] == 0
    assert created["position"]["lap"] == 0
    assert created["position"]["archive_time"].startswith("2014-06-24T17:52:29")
    status, shown = await server.get("/api/streams/fast")
    assert status == 200
    assert shown["id"] == "fast"
    assert shown["state"] == "paused"
    _, streams = await server.get("/api/streams")
    assert sorted(s["id"] for s in streams) == sorted([BUNDLED_ID, "fast"])


async def test_create_stream_without_id_gets_one(server: Server) -> None:
    body = {"feed": BUNDLED_ID, "speed": "max", "loop": False, "paused": True}
    async with server.session.post(server.base + "/api/streams", json=body) as response:
        assert response.status == 201
        created = await response.json()
        assert response.headers["Location"] == f"/api/streams/{created['id']}"
    assert created["speed"] == "max"
    assert created["loop"] is False
    status, _ = await server.get(f"/api/streams/{created['id']}")
    assert status == 200


async def test_create_stream_starting_at_a_post(server: Server, bundled: Feed) -> None:
    post = bundled.posts[5]
    status, created = await server.post(
        "/api/streams", {"id": "late", "feed": BUNDLED_ID, "start": post.id, "paused": True}
    )
    assert status == 201
    assert created["start"] == post.id
    assert created["position"]["archive_time"].startswith(post.timed.strftime("%Y-%m-%dT%H:%M"))
    _, snapshot = await server.get("/api/streams/late/posts")
    assert [p["id"] for p in snapshot["posts"]] == [p.id for p in reversed(bundled.posts[:5])]


async def test_create_duplicate_id_is_409(server: Server) -> None:
    status, body = await server.post("/api/streams", {"id": BUNDLED_ID, "feed": BUNDLED_ID})
    assert_error(status, body, 409, "body.id")
    status, _ = await server.post("/api/streams", {"id": "twice", "feed": BUNDLED_ID})
    assert status == 201
    status, body = await server.post("/api/streams", {"id": "twice", "feed": BUNDLED_ID})
    assert_error(status, body, 409, "body.id")
    assert "twice" in body["error"]


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"feed": "nope"}, "body.feed"),
        ({"feed": None}, "body.feed"),
        ({"speed": "fast"}, "body.speed"),
        ({"speed": 0}, "body.speed"),
        ({"speed": -2}, "body.speed"),
        ({"speed": True}, "body.speed"),
        ({"max_gap": "abc"}, "body.max_gap"),
        ({"max_gap": -1}, "body.max_gap"),
        ({"start": "nonsense"}, "body.start"),
        ({"start": "+forever"}, "body.start"),
        ({"loop": "maybe"}, "body.loop"),
        ({"id": "no spaces please"}, "body.id"),
        ({"colour": "red"}, "body.colour"),
        ({"scenario": [{"action": "explode", "post": "x"}]}, "body.scenario[0].action"),
    ],
)
async def test_create_stream_bad_field(server: Server, fields: dict[str, Any], where: str) -> None:
    status, body = await server.post("/api/streams", {"id": "new", "feed": BUNDLED_ID, **fields})
    assert_error(status, body, 400, where)
    assert body["error"].startswith(where + ": ")
    status, _ = await server.get("/api/streams/new")
    assert status == 404


async def test_create_stream_without_feed(server: Server) -> None:
    status, body = await server.post("/api/streams", {"id": "new"})
    assert_error(status, body, 400, "body.feed")


@pytest.mark.parametrize("data", [b"{", b"{'feed': 1}", b"[1, 2]", b'"text"', b"\xff\xfe", b"null"])
async def test_create_stream_malformed_body(server: Server, data: bytes) -> None:
    headers = {"Content-Type": "application/json"}
    url = server.base + "/api/streams"
    async with server.session.post(url, data=data, headers=headers) as response:
        assert response.content_type == "application/json"
        status, body = response.status, await response.json()
    assert_error(status, body, 400, "body")


async def test_delete_stream_ends_its_subscribers(server: Server) -> None:
    url = f"{server.base}/streams/{BUNDLED_ID}/events"
    async with asyncio.timeout(TIMEOUT):
        async with (
            sse.connect(server.session, url) as first,
            sse.connect(server.session, url) as second,
            ws_connect(f"{server.ws_base}/streams/{BUNDLED_ID}/ws") as ws,
        ):
            await ws.send('{"op": "ping"}')
            assert '"pong"' in str(await ws.recv())
            _, shown = await server.get(f"/api/streams/{BUNDLED_ID}")
            assert shown["subscribers"] == 3
            status, body = await server.delete(f"/api/streams/{BUNDLED_ID}")
            assert (status, body) == (200, {"deleted": BUNDLED_ID})
            # Both event streams end: the server finishes the responses.
            for reader in (first, second):
                async for _ in reader:  # whatever was on its way, then the end
                    pass
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    status, body = await server.get(f"/api/streams/{BUNDLED_ID}")
    assert_error(status, body, 404, "path")
    status, body = await server.delete(f"/api/streams/{BUNDLED_ID}")
    assert_error(status, body, 404, "path")
    async with server.session.get(url) as response:
        assert response.status == 404
    _, streams = await server.get("/api/streams")
    assert streams == []


# Controls -----------------------------------------------------------------------------------


async def test_controls_answer_with_the_new_state(start_server: StartServer, bundled: Feed) -> None:
    server = await start_server(
        streams=[{"id": "s", "feed": BUNDLED_ID, "speed": 60, "max_gap": "1s", "paused": True}]
    )
    status, state = await server.post("/api/streams/s/resume")
    assert (status, state["state"]) == (200, "playing")
    status, state = await server.post("/api/streams/s/pause")
    assert (status, state["state"]) == (200, "paused")
    status, state = await server.post("/api/streams/s/speed", {"speed": 120})
    assert (status, state["speed"], state["state"]) == (200, 120, "paused")
    status, state = await server.post("/api/streams/s/speed", {"speed": "max"})
    assert (status, state["speed"]) == (200, "max")
    status, state = await server.post("/api/streams/s/speed", {"speed": "2.5"})
    assert (status, state["speed"]) == (200, 2.5)
    target = bundled.posts[10]
    status, state = await server.post("/api/streams/s/seek", {"to": target.id})
    assert status == 200
    assert state["position"]["archive_time"].startswith(target.timed.strftime("%Y-%m-%dT%H:%M:%S"))
    assert state["state"] == "paused"
    _, snapshot = await server.get("/api/streams/s/posts")
    assert len(snapshot["posts"]) == 10
    status, state = await server.post("/api/streams/s/seek", {"to": "start"})
    assert (status, state["position"]["index"]) == (200, 0)
    status, state = await server.post("/api/streams/s/seek", {"to": "2014-06-25T12:00:00Z"})
    assert status == 200
    assert state["position"]["archive_time"].startswith("2014-06-25T12:00:00")
    status, state = await server.post("/api/streams/s/restart")
    assert status == 200
    assert state["state"] == "playing"
    assert state["position"]["index"] <= 1
    _, shown = await server.get("/api/streams/s")
    assert int(shown["cursor"].rsplit("-", 1)[1]) >= int(state["cursor"].rsplit("-", 1)[1])


@pytest.mark.parametrize(
    ("op", "body", "where"),
    [
        ("seek", {"to": "nonsense"}, "body.to"),
        ("seek", {}, "body.to"),
        ("seek", {"to": 5}, "body.to"),
        ("seek", {"to": "+soon"}, "body.to"),
        ("speed", {"speed": "fast"}, "body.speed"),
        ("speed", {}, "body.speed"),
        ("speed", {"speed": -1}, "body.speed"),
    ],
)
async def test_control_bad_arguments(server: Server, op: str, body: Any, where: str) -> None:
    _, before = await server.get(f"/api/streams/{BUNDLED_ID}")
    status, error = await server.post(f"/api/streams/{BUNDLED_ID}/{op}", body)
    assert_error(status, error, 400, where)
    assert error["error"].startswith(where + ": ")
    _, after = await server.get(f"/api/streams/{BUNDLED_ID}")
    assert after["speed"] == before["speed"]


async def test_control_malformed_body(server: Server) -> None:
    url = f"{server.base}/api/streams/{BUNDLED_ID}/seek"
    async with server.session.post(url, data=b"{nope") as response:
        status, body = response.status, await response.json()
    assert_error(status, body, 400, "body")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/streams/nope"),
        ("DELETE", "/api/streams/nope"),
        ("GET", "/api/streams/nope/posts"),
        ("POST", "/api/streams/nope/pause"),
        ("POST", "/api/streams/nope/seek"),
        ("GET", "/streams/nope/ws"),
    ],
)
async def test_unknown_stream_is_404_json(server: Server, method: str, path: str) -> None:
    async with server.session.request(method, server.base + path) as response:
        assert response.status == 404
        assert response.content_type == "application/json"
        body = await response.json()
    assert_error(404, body, 404, "path")
    assert "nope" in body["error"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nope", 404),
        ("GET", "/api/nope", 404),
        ("POST", f"/api/streams/{BUNDLED_ID}/jump", 404),
        ("PUT", "/api/streams", 405),
        ("POST", "/api/feeds", 405),
    ],
)
async def test_unknown_path_or_method_is_json(
    server: Server, method: str, path: str, status: int
) -> None:
    async with server.session.request(method, server.base + path) as response:
        assert response.status == status
        assert response.content_type == "application/json"
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        body = await response.json()
    assert_error(status, body, status, "path")


async def test_health(server: Server) -> None:
    assert await server.get("/healthz") == (200, {"ok": True, "streams": 1})


# Snapshot -----------------------------------------------------------------------------------


async def test_snapshot_lists_visible_posts_newest_first(
    start_server: StartServer, bundled: Feed
) -> None:
    server = await start_server(
        streams=[{"id": "s", "feed": BUNDLED_ID, "max_gap": "1s", "paused": True}]
    )
    status, empty = await server.get("/api/streams/s/posts")
    assert status == 200
    assert empty["stream"] == "s"
    assert empty["posts"] == []
    await server.post("/api/streams/s/seek", {"to": bundled.posts[4].id})
    _, snapshot = await server.get("/api/streams/s/posts")
    assert [p["id"] for p in snapshot["posts"]] == [p.id for p in reversed(bundled.posts[:4])]
    assert all(p["pinned"] is False for p in snapshot["posts"])
    _, shown = await server.get("/api/streams/s")
    assert snapshot["cursor"] == shown["cursor"]
    assert snapshot["state"] == "paused"


# CORS ---------------------------------------------------------------------------------------


async def test_cors_on_api_and_sse(server: Server) -> None:
    async with server.session.get(server.base + "/api/streams") as response:
        assert response.headers["Access-Control-Allow-Origin"] == "*"
    url = f"{server.base}/streams/{BUNDLED_ID}/events"
    async with server.session.get(url) as response:
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        response.close()


@pytest.mark.parametrize(
    "path", ["/api/streams", f"/api/streams/{BUNDLED_ID}/seek", f"/streams/{BUNDLED_ID}/events"]
)
async def test_cors_preflight(server: Server, path: str) -> None:
    headers = {
        "Origin": "http://example.test",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Content-Type, Last-Event-ID",
    }
    async with server.session.options(server.base + path, headers=headers) as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        methods = {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")}
        assert {"GET", "POST", "DELETE"} <= methods
        allowed = response.headers["Access-Control-Allow-Headers"].lower()
        assert "content-type" in allowed and "last-event-id" in allowed
        assert await response.read() == b""


# Out-of-range input changes nothing (issue #6) ------------------------------------------------


@pytest.mark.parametrize("speed", [1e7, 1e8, 2e19, 2**64, 1e308, "1e400", "NaN", -1, "9" * 10_000])
async def test_out_of_range_speed_is_refused_and_changes_nothing(
    server: Server, speed: Any
) -> None:
    path = f"/api/streams/{BUNDLED_ID}"
    before = (await server.get(path))[1]["speed"]
    status, body = await server.post(path + "/speed", {"speed": speed})
    assert_bounded_error(status, body, 400, "body.speed")
    assert (await server.get(path))[1]["speed"] == before
    status, body = await server.post("/api/streams", {"feed": BUNDLED_ID, "speed": speed})
    assert_bounded_error(status, body, 400, "body.speed")
    await assert_healthy(server)


@pytest.mark.parametrize("speed", ["1e9", "2e19", "1e400", "nan"])
async def test_out_of_range_private_speed_is_refused(server: Server, speed: str) -> None:
    status, body = await server.get(f"/feeds/{BUNDLED_ID}/events?speed={speed}")
    assert_bounded_error(status, body, 400, "query.speed")


async def test_far_scenario_time_is_refused(server: Server) -> None:
    body = {
        "id": "far",
        "feed": BUNDLED_ID,
        "speed": "max",
        "loop": False,
        "scenario": [{"action": "pin", "post": "p-66e33032b5", "after": "1e12"}],
    }
    status, answer = await server.post("/api/streams", body)
    assert_bounded_error(status, answer, 400, "body.scenario[0].after")
    await assert_healthy(server)


# Stepping and timestamps (#15) --------------------------------------------------------------

STEPPED = {"id": "s", "feed": BUNDLED_ID, "paused": True, "loop": False, "max_gap": "1s"}


async def test_step_over_rest_and_ws(start_server: StartServer, bundled: Feed) -> None:
    server = await start_server(streams=[STEPPED])
    async with ws_connect(f"{server.ws_base}/streams/s/ws") as ws:
        status, state = await server.post("/api/streams/s/step", {"events": 2})
        assert (status, state["state"], state["position"]["index"]) == (200, "paused", 2)
        await ws.send('{"op":"step","events":1}')
        got: list[dict[str, Any]] = []
        async with asyncio.timeout(TIMEOUT):
            while len([e for e in got if e["type"] == "stream.state"]) < 2:
                got.append(orjson_loads(await ws.recv()))
    created = [e["post"]["id"] for e in got if e["type"] == "post.created"]
    assert created == [p.id for p in bundled.posts[:3]]
    assert [e["data"]["reason"] for e in got if e["type"] == "stream.state"] == ["step", "step"]
    _, snapshot = await server.get("/api/streams/s/posts")
    assert len(snapshot["posts"]) == 3 and snapshot["state"] == "paused"
    status, state = await server.post("/api/streams/s/step", {"until": "+2h"})
    assert status == 200 and state["position"]["index"] > 3


async def test_step_refused_while_playing_and_for_bad_input(start_server: StartServer) -> None:
    server = await start_server(streams=[{**STEPPED, "paused": False}])
    status, error = await server.post("/api/streams/s/step", {"events": 1})
    assert_error(status, error, 409, "body")
    assert "pause" in error["error"]
    for events in (0, -1, 2**64, 1e308, "3", None, True):
        status, error = await server.post("/api/streams/s/step", {"events": events})
        assert_error(status, error, 400, "body.events")
    async with server.session.post(
        f"{server.base}/api/streams/s/step", data=b'{"events": NaN}'
    ) as response:
        assert response.status == 400
    for until in ("-5m", "soon", 0, 1e308):
        status, error = await server.post("/api/streams/s/step", {"until": until})
        assert_error(status, error, 400, "body.until")
    async with ws_connect(f"{server.ws_base}/streams/s/ws") as ws:
        await ws.send('{"op":"step","events":1}')
        async with asyncio.timeout(TIMEOUT):
            while (reply := orjson_loads(await ws.recv()))["type"] != "error":
                pass
        assert reply["where"] == "$" and "pause" in reply["error"]


async def test_timestamps_now_from_api_and_private_query(server: Server) -> None:
    body = {"id": "n", "feed": BUNDLED_ID, "timestamps": "now", "start": "+2h", "paused": True}
    status, stream = await server.post("/api/streams", body)
    assert (status, stream["timestamps"]) == (201, "now")
    _, shown = await server.get("/api/streams/n/posts")
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    times = [p["published_at"] for p in shown["posts"]]
    assert times and all("2026" <= t[:4] and t <= now for t in times)
    status, error = await server.post("/api/streams", {**body, "id": "m", "timestamps": "today"})
    assert_error(status, error, 400, "body.timestamps")
    url = f"{server.base}/feeds/{BUNDLED_ID}/events?timestamps=now&speed=max"
    async with sse.connect(server.session, url) as reader:
        async with asyncio.timeout(TIMEOUT):
            events = [sse.envelope(e) for e in await reader.events(4)]
    assert events[0]["data"]["timestamps"] == "now"
    post = next(e["post"] for e in events if e["type"] == "post.created")
    assert post["published_at"][:4] >= "2026" and post["published_at"] <= events[-1]["due_at"]
    async with server.session.get(f"{server.base}/feeds/{BUNDLED_ID}/events?timestamps=x") as r:
        assert r.status == 400
        assert (await r.json())["where"] == "query.timestamps"


def orjson_loads(data: str | bytes) -> dict[str, Any]:
    value: dict[str, Any] = json_module.loads(data)
    return value


async def test_step_a_private_replay_over_its_websocket(server: Server, bundled: Feed) -> None:
    url = f"{server.ws_base}/feeds/{BUNDLED_ID}/ws?paused=1&speed=max&timestamps=now"
    async with ws_connect(url) as ws:
        await ws.send('{"op":"step","events":2}')
        got: list[dict[str, Any]] = []
        async with asyncio.timeout(TIMEOUT):
            while not any(e.get("data", {}).get("reason") == "step" for e in got):
                got.append(orjson_loads(await ws.recv()))
    posts = [e["post"] for e in got if e["type"] == "post.created"]
    assert [p["id"] for p in posts] == [p.id for p in bundled.posts[:2]]
    assert all(p["published_at"] <= got[-1]["due_at"] for p in posts)
    assert got[-1]["data"]["state"] == "paused" and got[-1]["data"]["timestamps"] == "now"
