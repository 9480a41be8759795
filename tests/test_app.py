"""``web/app.py`` against a real server: the server-wide limits (streams, connection slots, header
and body timeouts, body size), the edge settings behind them, probes and the JSON 404.

Each limit is met by a hostile client (issue #6, issue #12 F6): it gets a clear answer naming the
setting and the server lives on.
"""

from __future__ import annotations

import asyncio
import io
import socket
from typing import Any

import pytest
from conftest import BUNDLED_ID, Server, StartServer
from server_helpers import (
    TIMEOUT,
    assert_error,
    assert_healthy,
    json_of,
    metrics_text,
    port_of,
    status_of,
    third_refused,
)

from simulator.web.state import OPEN


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
    async with third_refused(server, url) as body:
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


async def test_readyz(server: Server) -> None:
    assert await server.get("/readyz") == (200, {"ready": True, "streams": 1, "failed": []})


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
