"""``web/access.py`` against a real server: who may do what. Host must be loopback on a loopback
bind (DNS rebinding), control only from allowed origins or with the bearer token, the token never
in a query off WebSocket, and the per-client share of connection slots (issue #6, #12 F14, F15).
"""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
import pytest
import sse
from conftest import BUNDLED_ID, Server, StartServer
from server_helpers import (
    EVIL,
    TIMEOUT,
    TOKEN,
    assert_error,
    json_of,
    raw_exchange,
    status_of,
)
from websockets.asyncio.client import connect as ws_connect


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


async def test_unknown_client_session_does_not_need_origin(server: Server) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{server.base}/api/streams/{BUNDLED_ID}/resume") as response:
            assert response.status == 200


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
