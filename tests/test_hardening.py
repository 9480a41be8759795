"""Hostile requests against a real server (issue #6): each gets a clear answer, the server lives.

One test per reproduction of the issue: runaway speeds, half-applied commands, a stream whose
replay raises, absurd cursors, HEAD and missing files, limits, Host / Origin / token rules,
/metrics and /readyz.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiohttp
import orjson
import pytest
import sse
from conftest import BUNDLED_ID, Server, StartServer
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from simulator.stream import StreamFailed
from simulator.web.state import STREAMS

TIMEOUT = 10
EVIL = Origin("http://evil.example")
LOOPING = {"id": "s", "feed": BUNDLED_ID, "speed": 600, "max_gap": "1s", "loop": True}


def assert_error(status: int, body: Any, expected: int, where: str | None) -> None:
    assert status == expected, body
    assert body["status"] == expected and body["where"] == where, body
    assert isinstance(body["error"], str) and len(body["error"]) < 400


async def assert_healthy(server: Server) -> None:
    async with asyncio.timeout(2):
        status, body = await server.get("/healthz")
    assert status == 200 and body["ok"] is True


# A. One request must not take the server down -------------------------------------------------


@pytest.mark.parametrize("speed", [1e7, 1e8, 2e19, 2**64, 1e308, "1e400", "NaN", -1, "9" * 10_000])
async def test_out_of_range_speed_is_refused_and_changes_nothing(
    server: Server, speed: Any
) -> None:
    path = f"/api/streams/{BUNDLED_ID}"
    before = (await server.get(path))[1]["speed"]
    status, body = await server.post(path + "/speed", {"speed": speed})
    assert_error(status, body, 400, "body.speed")
    assert (await server.get(path))[1]["speed"] == before
    status, body = await server.post("/api/streams", {"feed": BUNDLED_ID, "speed": speed})
    assert_error(status, body, 400, "body.speed")
    await assert_healthy(server)


@pytest.mark.parametrize("speed", ["1e9", "2e19", "1e400", "nan"])
async def test_out_of_range_private_speed_is_refused(server: Server, speed: str) -> None:
    status, body = await server.get(f"/feeds/{BUNDLED_ID}/events?speed={speed}")
    assert_error(status, body, 400, "query.speed")


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


async def test_far_scenario_time_is_refused(server: Server) -> None:
    body = {
        "id": "far",
        "feed": BUNDLED_ID,
        "speed": "max",
        "loop": False,
        "scenario": [{"action": "pin", "post": "p-66e33032b5", "after": "1e12"}],
    }
    status, answer = await server.post("/api/streams", body)
    assert_error(status, answer, 400, "body.scenario[0].after")
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
    status, body = await server.post("/api/streams/s/pause")
    assert_error(status, body, 409, "path")
    status, body = await server.get("/streams/s/events")
    assert_error(status, body, 409, "path")
    status, body = await server.get("/api/streams/s/posts")
    assert_error(status, body, 409, "path")
    assert (await server.get("/readyz"))[1]["failed"] == ["s"]
    assert (await server.delete("/api/streams/s"))[0] == 200
    assert (await server.get("/api/streams/other/posts"))[0] == 200
    with pytest.raises(StreamFailed):
        stream.command(stream_pause())


def stream_pause() -> Any:
    from simulator.replay import Pause

    return Pause()


@pytest.mark.parametrize("digits", ["9" * 5000, "1" * 19, "0" * 30])
async def test_absurd_cursor_gets_a_reset(server: Server, digits: str) -> None:
    cursor = (await server.get(f"/api/streams/{BUNDLED_ID}"))[1]["cursor"]
    incarnation = cursor.rsplit("-", 1)[0]
    url = f"{server.base}/streams/{BUNDLED_ID}/events"
    async with asyncio.timeout(TIMEOUT):
        async with sse.connect(
            server.session, url, last_event_id=f"{incarnation}-{digits}"
        ) as reader:
            first = await reader.next_event()
        assert sse.envelope(first)["type"] == "stream.reset"
        async with ws_connect(f"{server.ws_base}/streams/{BUNDLED_ID}/ws") as ws:
            await ws.send(f'{{"op": "resume", "since": "{incarnation}-{digits}"}}')
            replies = [await ws.recv() for _ in range(2)]
        assert '"type":"resumed"' in replies[0] and '"type":"stream.reset"' in replies[1]


# B. Plain HTTP edges -----------------------------------------------------------------------------


async def test_head_on_event_streams_sends_no_body_and_starts_nothing(server: Server) -> None:
    for path in (f"/streams/{BUNDLED_ID}/events", f"/feeds/{BUNDLED_ID}/events"):
        async with asyncio.timeout(TIMEOUT), server.session.head(server.base + path) as response:
            assert response.status == 200
            assert response.content_type == "text/event-stream"
            assert await response.read() == b""
    status, metrics = await metrics_text(server)
    assert 'livesim_subscribers{stream="private"' not in metrics


async def test_missing_static_file_is_json_404(server: Server) -> None:
    status, body = await server.get("/static/nope.js")
    assert_error(status, body, 404, "path")


async def test_location_is_readable_cross_origin(server: Server) -> None:
    headers = {"Origin": "http://localhost:5173"}
    async with server.session.post(
        server.base + "/api/streams", json={"feed": BUNDLED_ID}, headers=headers
    ) as response:
        assert response.status == 201
        assert "Location" in response.headers["Access-Control-Expose-Headers"]


# C. Limits ---------------------------------------------------------------------------------------


async def test_streams_created_through_the_api_are_limited(start_server: StartServer) -> None:
    server = await start_server(server={"max_streams": 2})
    for n in range(2):
        assert (await server.post("/api/streams", {"id": f"a{n}", "feed": BUNDLED_ID}))[0] == 201
    status, body = await server.post("/api/streams", {"id": "a2", "feed": BUNDLED_ID})
    assert_error(status, body, 429, "server.max_streams")
    assert (await server.delete("/api/streams/a0"))[0] == 200
    assert (await server.post("/api/streams", {"id": "a3", "feed": BUNDLED_ID}))[0] == 201


async def test_event_log_memory_is_bounded(start_server: StartServer) -> None:
    server = await start_server(server={"max_log_bytes": 65536, "ws_control_rate": 100_000})
    async with ws_connect(f"{server.ws_base}/streams/{BUNDLED_ID}/ws") as ws:
        for _ in range(400):
            await ws.send('{"op": "pause"}')
    await asyncio.sleep(0.2)
    replay = server.app[STREAMS][BUNDLED_ID].replay
    assert replay.serial > 400
    assert sum(len(e.json) + len(e.sse) + len(e.ws_frame) for e in replay.log) <= 65536


@pytest.mark.parametrize("limit", ["max_connections", "max_connections_per_client"])
async def test_connections_over_the_limit_get_503(start_server: StartServer, limit: str) -> None:
    server = await start_server(server={limit: 2})
    url = f"{server.base}/streams/{BUNDLED_ID}/events"
    async with (
        asyncio.timeout(TIMEOUT),
        sse.connect(server.session, url),
        sse.connect(server.session, url),
    ):
        async with server.session.get(url) as response:
            assert response.status == 503
            assert response.headers["Retry-After"] == "5"
            body = await response.json()
            assert limit in body["error"]
        status, _ = await server.get(f"/feeds/{BUNDLED_ID}/events")
        assert status == 503
    status, metrics = await metrics_text(server)
    reason = "connections" if limit == "max_connections" else "connections_per_client"
    assert f'livesim_connections_refused_total{{reason="{reason}"}} 2.0' in metrics
    async with asyncio.timeout(TIMEOUT):  # slots are given back when connections close
        while True:
            async with server.session.get(url) as response:
                if response.status == 200:
                    break
            await asyncio.sleep(0.05)


async def test_slowloris_connections_are_closed(start_server: StartServer) -> None:
    server = await start_server(server={"header_timeout": 0.5})
    loop = asyncio.get_running_loop()
    port = int(server.base.rsplit(":", 1)[1])
    socks = []
    for _ in range(20):
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        await loop.sock_sendall(sock, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-a: ")
        socks.append(sock)
    await asyncio.sleep(0.2)
    async with asyncio.timeout(3):
        for sock in socks:
            try:  # the server closes them: an empty read, or a reset for the byte just sent
                await loop.sock_sendall(sock, b"b")
                assert await loop.sock_recv(sock, 100) == b""
            except ConnectionResetError:
                pass
            finally:
                sock.close()
    await assert_healthy(server)


# D. Control belongs to its owner ------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("evil.example", 421),
        ("evil.example:8080", 421),
        ("localhost:8080", 200),
        ("127.0.0.1", 200),
        ("[::1]:8080", 200),
        ("app.localhost", 200),
        ("x" * 8000, 421),
    ],
)
async def test_host_must_be_loopback_when_bound_to_loopback(
    server: Server, host: str, status: int
) -> None:
    async with server.session.get(server.base + "/api/streams", headers={"Host": host}) as response:
        assert response.status == status
        assert response.content_type == "application/json"


async def test_extra_hosts_can_be_allowed(start_server: StartServer) -> None:
    server = await start_server(server={"hosts": ["demo.test"]})
    async with server.session.get(server.base + "/healthz", headers={"Host": "demo.test:80"}) as r:
        assert r.status == 200


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        (None, 200),
        ("http://localhost:3000", 200),
        ("http://127.0.0.1:8080", 200),
        ("http://[::1]:5173", 200),
        ("http://evil.example", 403),
        ("http://localhost.evil.example", 403),
        ("https://localhost:3000", 403),
        ("null", 403),
        ("x" * 8000, 403),
    ],
)
async def test_control_from_foreign_origins_is_refused(
    server: Server, origin: str | None, status: int
) -> None:
    headers = {"Content-Type": "text/plain"} | ({"Origin": origin} if origin else {})
    path = f"{server.base}/api/streams/{BUNDLED_ID}/pause"
    async with server.session.post(path, data="{}", headers=headers) as response:
        assert response.status == status, await response.text()
        body = await response.json()
    if status == 403:
        assert_error(status, body, 403, "header.Origin")
        assert (await server.get(f"/api/streams/{BUNDLED_ID}"))[1]["state"] == "playing"
    # Reading stays open to every origin.
    async with server.session.get(
        f"{server.base}/api/streams/{BUNDLED_ID}/posts", headers={"Origin": "http://evil.example"}
    ) as response:
        assert response.status == 200


async def test_control_origins_are_configurable(start_server: StartServer) -> None:
    server = await start_server(server={"control_origins": ["https://*.newsroom.test"]})
    path = f"{server.base}/api/streams/{BUNDLED_ID}/pause"
    for origin, status in [("https://demo.newsroom.test", 200), ("http://localhost:3000", 403)]:
        async with server.session.post(path, headers={"Origin": origin}) as response:
            assert response.status == status


async def test_off_loopback_control_needs_the_token(start_server: StartServer) -> None:
    token = "s3cret-token-0123456789"
    server = await start_server(server={"host": "0.0.0.0", "token": token})
    path = f"{server.base}/api/streams/{BUNDLED_ID}/pause"
    for headers, status in [
        ({}, 401),
        ({"Authorization": "Bearer wrong-token-0123456789"}, 401),
        ({"Authorization": f"Bearer {token}"}, 200),
    ]:
        async with server.session.post(path, headers=headers) as response:
            assert response.status == status
            if status == 401:
                assert (await response.json())["where"] == "header.Authorization"
    assert (await server.get(f"/api/streams/{BUNDLED_ID}/posts"))[0] == 200
    async with server.session.get(server.base + "/healthz", headers={"Host": "evil.example"}) as r:
        assert r.status == 200  # not bound to loopback: Host is not checked


# E. Observability ---------------------------------------------------------------------------


async def metrics_text(server: Server) -> tuple[int, str]:
    async with server.session.get(server.base + "/metrics") as response:
        return response.status, await response.text()


async def test_metrics_count_what_happened(start_server: StartServer) -> None:
    server = await start_server(streams=[{**LOOPING, "speed": "max", "loop": False}])
    async with (
        asyncio.timeout(TIMEOUT),
        sse.connect(server.session, server.base + "/streams/s/events") as reader,
    ):
        status, text = await metrics_text(server)
        assert 'livesim_subscribers{stream="s",transport="sse"} 1.0' in text
        await server.post("/api/streams/s/resume")
        while sse.envelope(await reader.next_event()).get("data", {}).get("reason") != "ended":
            pass
    async with server.session.get(
        server.base + "/streams/s/events", headers={"Last-Event-ID": "nope-1"}
    ):
        pass
    status, text = await metrics_text(server)
    assert status == 200
    assert 'livesim_events_total{stream="s",type="post.created"} 42.0' in text
    assert 'livesim_deliveries_total{transport="sse"}' in text
    assert 'livesim_resumes_total{result="reset"} 1.0' in text
    assert "livesim_slow_drops_total 0.0" in text
    assert "livesim_emit_lateness_seconds_bucket" in text


async def test_readyz(server: Server) -> None:
    assert await server.get("/readyz") == (200, {"ready": True, "streams": 1, "failed": []})


async def test_unknown_client_session_does_not_need_origin(server: Server) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{server.base}/api/streams/{BUNDLED_ID}/resume") as response:
            assert response.status == 200


# WebSocket control: the same owner rules, and a message budget ---------------------------------


async def test_ws_control_from_a_foreign_origin_is_refused_but_reading_is_not(
    server: Server,
) -> None:
    url = f"{server.ws_base}/streams/{BUNDLED_ID}/ws"
    async with ws_connect(url, origin=EVIL) as ws:
        await ws.send('{"op": "pause"}')
        reply = orjson.loads(await ws.recv())
        assert reply["type"] == "error" and reply["where"] == "$.op"
        assert "control_origins" in reply["error"]
        await ws.send('{"op": "ping"}')
        assert orjson.loads(await ws.recv())["type"] == "pong"
    assert (await server.get(f"/api/streams/{BUNDLED_ID}"))[1]["state"] == "playing"
    async with ws_connect(f"{server.ws_base}/feeds/{BUNDLED_ID}/ws?paused=true", origin=EVIL) as ws:
        await ws.send('{"op": "resume"}')  # a private replay is its connection's own
        while (kind := orjson.loads(await ws.recv())["type"]) != "stream.state":
            assert kind != "error"


async def test_ws_messages_over_the_rate_get_one_error_then_a_close(
    start_server: StartServer,
) -> None:
    server = await start_server(server={"ws_control_rate": 5})
    async with ws_connect(f"{server.ws_base}/streams/{BUNDLED_ID}/ws") as ws:
        for _ in range(10):  # the burst: twice the rate
            await ws.send('{"op": "ping"}')
        for _ in range(1200):
            await ws.send('{"op": "ping"}')
        replies = []
        with pytest.raises(ConnectionClosed) as info:
            while True:
                replies.append(orjson.loads(await ws.recv()))
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008
    errors = [r for r in replies if r["type"] == "error"]
    assert len(errors) == 1 and "ws_control_rate" in errors[0]["error"]
    assert sum(r["type"] == "pong" for r in replies) >= 10
    status, text = await metrics_text(server)
    assert 'livesim_connections_refused_total{reason="ws_rate"} 1.0' in text
