"""Hostile requests against a real server (issue #6): each gets a clear answer, the server lives.

One test per reproduction of the issue: runaway speeds, half-applied commands, absurd cursors,
HEAD and missing files, limits, Host / Origin / token rules, /metrics and /readyz. (A stream
whose replay raises, and top speeds, are in test_stream.py; the event log's bound in
test_eventlog.py.)
"""

from __future__ import annotations

import asyncio
import io
import re
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

from simulator.web.state import OPEN

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


@pytest.mark.parametrize("limit", ["max_connections", "max_connections_per_client"])
async def test_connections_over_the_limit_get_503(start_server: StartServer, limit: str) -> None:
    server = await start_server(server={limit: 2, "limit_loopback_per_client": True})
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


# F. The HTTP edge (issue #12: F6, F13, F14, F15) ------------------------------------------------


def port_of(server: Server) -> int:
    return int(server.base.rsplit(":", 1)[1])


async def raw_exchange(server: Server, request: bytes) -> bytes:
    """Send ``request`` on a fresh connection and read until the server closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
    try:
        writer.write(request)
        async with asyncio.timeout(5):
            return await reader.read()
    finally:
        writer.close()


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def json_of(answer: bytes) -> Any:
    return orjson.loads(answer.split(b"\r\n\r\n", 1)[1])


async def trickle(writer: asyncio.StreamWriter, every: float, drop: bytes = b" ") -> None:
    """A slow body: a ``drop`` every ``every`` seconds, until the server closes the connection."""
    try:
        while not writer.is_closing():
            writer.write(drop)
            await writer.drain()
            await asyncio.sleep(every)
    except (ConnectionError, OSError):
        pass


SLOW_POST = (
    f"POST /api/streams/{BUNDLED_ID}/posts HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    "Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{"
).encode()


SLOW_CHUNKED_GET = (
    f"GET /streams/{BUNDLED_ID}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    "Transfer-Encoding: chunked\r\n\r\n1\r\n{\r\n"
).encode()


@pytest.mark.parametrize(
    ("head", "drop"),
    [(SLOW_POST, b" "), (SLOW_CHUNKED_GET, b"1\r\n \r\n")],
    ids=["post", "chunked-get"],
)
async def test_a_slow_request_body_gets_408_and_its_connection_is_closed(
    start_server: StartServer, head: bytes, drop: bytes
) -> None:
    """F6: one byte every 0.2 s of a 1 MB body (or one-byte chunks that never end); cut after
    body_timeout, not kept forever."""
    server = await start_server(server={"body_timeout": 0.5})
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
    writer.write(head)
    dripping = asyncio.create_task(trickle(writer, 0.2, drop))
    try:
        async with asyncio.timeout(5):  # body_timeout, then at most a moment of lingering
            answer = await reader.read(1)
            dripping.cancel()  # a byte sent after the server closed would be answered by a RST
            answer += await reader.read()
    finally:
        dripping.cancel()
        writer.close()
    assert status_of(answer) == 408, answer
    body = json_of(answer)
    assert body["where"] == "body" and "server.body_timeout" in body["error"], body
    status, metrics = await metrics_text(server)
    assert 'livesim_connections_refused_total{reason="body_timeout"} 1.0' in metrics
    await assert_healthy(server)
    assert server.app[OPEN].total == 0  # every slot given back


async def test_a_body_over_client_max_size_gets_413_naming_the_body(server: Server) -> None:
    async with server.session.post(
        f"{server.base}/api/streams/{BUNDLED_ID}/posts", data=io.BytesIO(b" " * 2_000_000)
    ) as response:
        body = await response.json()
    assert_error(response.status, body, 413, "body")


async def test_a_prompt_body_is_still_read_whole(start_server: StartServer) -> None:
    server = await start_server(server={"body_timeout": 0.5})
    status, body = await server.post(f"/api/streams/{BUNDLED_ID}/posts", {"body": "x" * 60_000})
    assert status == 201, body


async def test_requests_awaiting_their_body_hold_connection_slots(
    start_server: StartServer,
) -> None:
    """F6: slow bodies count toward max_connections; more requests get 503, probes still answer."""
    server = await start_server(server={"max_connections": 2, "body_timeout": 30})
    writers = []
    try:
        for _ in range(2):
            _, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
            writer.write(SLOW_POST)
            writers.append(writer)
        async with asyncio.timeout(TIMEOUT):
            while True:
                async with server.session.get(server.base + "/api/streams") as response:
                    if response.status == 503:
                        assert "server.max_connections" in (await response.json())["error"]
                        assert response.headers["Retry-After"] == "5"
                        break
                await asyncio.sleep(0.05)
        async with server.session.get(f"{server.base}/streams/{BUNDLED_ID}/events") as response:
            assert response.status == 503
        for probe in ("/healthz", "/readyz", "/metrics"):
            async with asyncio.timeout(1), server.session.get(server.base + probe) as response:
                assert response.status == 200, probe
        _, metrics = await metrics_text(server)
        assert "livesim_connection_slots 3.0" in metrics  # the two slow bodies and this scrape
    finally:
        for writer in writers:
            writer.close()
    async with asyncio.timeout(TIMEOUT):  # closing them gives the slots back
        while True:
            if (await server.get("/api/streams"))[0] == 200:
                break
            await asyncio.sleep(0.05)


async def test_accept_errors_are_logged_once_a_second_with_a_count() -> None:
    """F6: asyncio reports EMFILE on accept up to ``backlog`` times a tick; one line a second."""
    import errno

    from simulator.web.accept_errors import AcceptErrors

    now = [100.0]
    passed: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []
    throttle = AcceptErrors(clock=lambda: now[0], report=passed.append, other=others.append)
    emfile = OSError(errno.EMFILE, "Too many open files")
    context = {"message": "socket.accept() out of system resource", "exception": emfile}
    loop = asyncio.get_running_loop()
    for _ in range(4096):
        throttle(loop, dict(context))
    assert len(passed) == 1 and "suppressed" not in passed[0]["message"]
    now[0] += 0.5
    throttle(loop, dict(context))
    assert len(passed) == 1
    now[0] += 0.6
    throttle(loop, dict(context))
    assert len(passed) == 2
    assert "4096 more like it in the last 1.1 s" in passed[1]["message"], passed[1]
    unrelated = {"message": "Task exception was never retrieved"}
    throttle(loop, unrelated)
    assert others == [unrelated]


def test_a_server_out_of_file_descriptors_logs_accept_errors_sparingly(tmp_path: Any) -> None:
    """F6: a real server under ``ulimit -n 64`` flooded with connections: a few log lines with
    counts, not hundreds of thousands; it answers again once the flood is gone."""
    import time
    import urllib.request

    from test_cli import serving

    with serving("--port", "0", cwd=tmp_path, shell="ulimit -n 64") as served:
        port = int(served.url.rsplit(":", 1)[1])
        flood = []
        try:
            for _ in range(150):
                flood.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            time.sleep(1.5)  # two reports at least: the first, and one a second later
        finally:
            for sock in flood:
                sock.close()
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(served.url + "/healthz", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        status, stderr = served.stop()
    lines = [line for line in stderr.splitlines() if "out of system resource" in line]
    assert 2 <= len(lines) <= 5, (len(lines), stderr[:2000])
    assert re.search(r"\(\d+ more like it in the last 1\.\d s\)", lines[1]), lines[1]
    assert "the open-file limit (64) is below server.max_connections (19000) + 64" in stderr
    assert "Traceback" not in stderr


async def test_a_deleted_streams_event_counts_stay_in_metrics(start_server: StartServer) -> None:
    """F13: livesim_events_total of a deleted stream is kept, as docs/operations.md says."""
    server = await start_server()
    body = {"id": "gone", "feed": BUNDLED_ID, "speed": 10_000, "max_gap": "1s", "loop": False}
    assert (await server.post("/api/streams", body))[0] == 201
    created = re.compile(r'livesim_events_total\{stream="gone",type="post.created"\} (\d+)')
    async with asyncio.timeout(TIMEOUT):
        while True:
            if found := created.search((await metrics_text(server))[1]):
                break
            await asyncio.sleep(0.05)
    assert (await server.delete("/api/streams/gone"))[0] == 200
    kept = created.search((await metrics_text(server))[1])
    assert kept is not None and int(kept.group(1)) >= int(found.group(1)) > 0


@pytest.mark.parametrize("spec", ["delay:1h", "stall:1h"])
async def test_drops_by_a_delay_or_stall_overflow_are_counted_as_slow(
    start_server: StartServer, spec: str
) -> None:
    """F13: a subscriber dropped because its delay/stall stage held max_pending events is a
    slow drop like any other: in the stream's dropped_slow and livesim_slow_drops_total."""
    server = await start_server(streams=[{**LOOPING, "speed": 10_000}], server={"max_pending": 4})
    async with asyncio.timeout(TIMEOUT):
        async with server.session.get(f"{server.base}/streams/s/events?faults={spec}") as response:
            assert response.status == 200
            await response.read()  # the server ends the response when it drops the subscriber
        while True:
            if (await server.get("/api/streams/s"))[1]["dropped_slow"] == 1:
                break
            await asyncio.sleep(0.05)
    _, metrics = await metrics_text(server)
    assert "livesim_slow_drops_total 1.0" in metrics


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /healthz HTTP/1.0\r\n\r\n",
        b"GET /healthz HTTP/1.0\r\nHost: \r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: \r\nConnection: close\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost:   \r\nConnection: close\r\n\r\n",
    ],
    ids=["http/1.0-without-host", "http/1.0-empty-host", "empty-host", "blank-host"],
)
async def test_a_missing_or_empty_host_is_refused_on_loopback(
    server: Server, request_bytes: bytes
) -> None:
    """F14: DNS rebinding defence: no Host is not a loopback Host."""
    answer = await raw_exchange(server, request_bytes)
    assert status_of(answer) == 421, answer
    assert json_of(answer)["where"] == "header.Host"


async def test_http_1_1_without_host_is_refused_by_the_parser(server: Server) -> None:
    """HTTP/1.1 requires Host (RFC 9112 §3.2): aiohttp's parser answers 400 before livesim."""
    answer = await raw_exchange(server, b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert status_of(answer) == 400, answer


async def test_http_1_0_with_a_loopback_host_is_served(server: Server) -> None:
    answer = await raw_exchange(server, b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
    assert status_of(answer) == 200, answer


TOKEN = "s3cret-token-0123456789"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
async def test_the_bearer_scheme_is_case_insensitive(
    start_server: StartServer, scheme: str
) -> None:
    """F14: RFC 7235 §2.1: the auth scheme is case-insensitive."""
    server = await start_server(server={"host": "0.0.0.0", "token": TOKEN})
    path = f"{server.base}/api/streams/{BUNDLED_ID}/pause"
    async with server.session.post(path, headers={"Authorization": f"{scheme} {TOKEN}"}) as r:
        assert r.status == 200, await r.text()
    async with server.session.post(path, headers={"Authorization": f"{scheme}  {TOKEN} "}) as r:
        assert r.status == 200, await r.text()
    for wrong in (f"Basic {TOKEN}", f"Bearer{TOKEN}", TOKEN, "Bearer", ""):
        async with server.session.post(path, headers={"Authorization": wrong}) as r:
            assert r.status == 401, wrong


@pytest.mark.parametrize(
    "path",
    [
        f"/api/streams/{BUNDLED_ID}/pause",
        "/api/streams",
        f"/streams/{BUNDLED_ID}/events",
        f"/feeds/{BUNDLED_ID}/events",
        "/healthz",
    ],
)
async def test_a_token_in_the_query_is_refused_off_websocket(
    start_server: StartServer, path: str
) -> None:
    """F14: ?token= ends up in logs and histories: only a WebSocket upgrade may carry it."""
    server = await start_server(server={"host": "0.0.0.0", "token": TOKEN})
    method = "POST" if path.endswith("/pause") else "GET"
    async with server.session.request(method, f"{server.base}{path}?token={TOKEN}") as response:
        assert response.status == 400
        body = await response.json()
    assert_error(400, body, 400, "query.token")
    assert "Authorization" in body["error"]
    assert (await server.get(f"/api/streams/{BUNDLED_ID}"))[1]["state"] == "playing"


async def test_a_token_in_the_query_still_works_for_websocket_control(
    start_server: StartServer,
) -> None:
    server = await start_server(server={"host": "0.0.0.0", "token": TOKEN})
    async with ws_connect(f"{server.ws_base}/streams/{BUNDLED_ID}/ws?token={TOKEN}") as ws:
        await ws.send('{"op": "pause"}')
        while True:
            reply = orjson.loads(await ws.recv())
            assert reply["type"] != "error", reply
            if reply["type"] == "stream.state" and reply["data"]["state"] == "paused":
                break


def test_one_address_cannot_take_every_connection_by_default() -> None:
    """F15: the per-client default leaves room for others; loopback is exempt by default."""
    from simulator.settings import ServerConfig
    from simulator.web.access import per_client_limit

    server = ServerConfig()
    assert server.max_connections_per_client <= server.max_connections // 10
    assert per_client_limit("203.0.113.7", server) == server.max_connections_per_client
    assert per_client_limit("2001:db8::1", server) == server.max_connections_per_client
    assert per_client_limit("10.0.0.1", server) == server.max_connections_per_client
    for loopback in ("127.0.0.1", "127.3.4.5", "::1", "::ffff:127.0.0.1"):
        assert per_client_limit(loopback, server) is None, loopback
    strict = ServerConfig(limit_loopback_per_client=True)
    assert per_client_limit("127.0.0.1", strict) == strict.max_connections_per_client
    assert per_client_limit(None, server) == server.max_connections_per_client


async def test_loopback_clients_are_not_limited_per_address_by_default(
    start_server: StartServer,
) -> None:
    """F15: `livesim load` from this host still gets max_connections, not the per-client share."""
    server = await start_server(server={"max_connections_per_client": 2})
    url = f"{server.base}/streams/{BUNDLED_ID}/events"
    async with (
        asyncio.timeout(TIMEOUT),
        sse.connect(server.session, url),
        sse.connect(server.session, url),
        sse.connect(server.session, url),
    ):
        pass


def test_deleted_streams_keep_their_label_up_to_a_bound() -> None:
    """F13: creating and deleting streams for ever must not grow /metrics for ever."""
    from collections import Counter
    from types import SimpleNamespace

    from simulator.web.hub import Hub
    from simulator.web.metrics import RETIRED_STREAMS, Metrics, StreamCounts

    metrics = Metrics(list)

    def retire(stream_id: str, created: int) -> None:
        stream = SimpleNamespace(
            id=stream_id,
            private=False,
            hub=Hub(),
            counts=StreamCounts(events=Counter({"post.created": created})),
        )
        metrics.totals.retire(stream)  # type: ignore[arg-type]

    retire("first", 5)
    retire("first", 2)  # the same id again: its counts add up
    for number in range(RETIRED_STREAMS):
        retire(f"s{number}", 1)
    text = metrics.render().decode()
    assert 'stream="first"' not in text
    assert 'livesim_events_total{stream="deleted",type="post.created"} 7.0' in text
    newest = f"s{RETIRED_STREAMS - 1}"
    assert f'livesim_events_total{{stream="{newest}",type="post.created"}} 1.0' in text
    assert text.count("livesim_events_total{") == RETIRED_STREAMS + 1


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("body_timeout", 0),
        ("body_timeout", -1),
        ("body_timeout", 3601),
        ("body_timeout", 1e308),
        ("body_timeout", 2**64),
        ("body_timeout", "NaN"),
        ("body_timeout", "x" * 10_000),
        ("body_timeout", True),
        ("limit_loopback_per_client", "maybe"),
        ("limit_loopback_per_client", 2),
        ("max_connections_per_client", 0),
        ("max_connections_per_client", 2**64),
        ("max_connections_per_client", 1.5),
    ],
)
def test_edge_settings_out_of_range_are_refused_by_name(key: str, value: Any) -> None:
    from simulator.core.model import ArchiveError
    from simulator.settings import validate

    with pytest.raises(ArchiveError) as info:
        validate({"server": {key: value}}, "livesim.toml")
    message = str(info.value)
    assert f"server.{key}:" in message and len(message) < 400, message


def test_the_open_file_limit_is_checked_against_max_connections() -> None:
    """F6: past the open-file limit clients get no 503, only failed connects: serve says so at
    start (the ``ulimit -n 64`` test above sees the line)."""
    import resource

    from simulator.cli.serve import FILES_BESIDES_CONNECTIONS, open_file_shortfall

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        pytest.skip("no open-file limit here")
    assert open_file_shortfall(soft - FILES_BESIDES_CONNECTIONS) is None
    warning = open_file_shortfall(soft)
    assert warning is not None and f"open-file limit ({soft}) is below" in warning
