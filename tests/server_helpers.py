"""Helpers for the tests that meet a real server at its edge: errors that name the input,
probes, /metrics text and raw HTTP exchanges on a fresh connection."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
import sse
from aiohttp import web
from conftest import Server
from websockets.typing import Origin

TIMEOUT = 10


EVIL = Origin("http://evil.example")


def assert_error(status: int, body: Any, expected: int, where: str | None) -> None:
    assert status == expected, body
    assert body["status"] == expected and body["where"] == where, body
    assert isinstance(body["error"], str) and len(body["error"]) < 400


async def assert_healthy(server: Server) -> None:
    async with asyncio.timeout(2):
        status, body = await server.get("/healthz")
    assert status == 200 and body["ok"] is True


async def metrics_text(server: Server) -> tuple[int, str]:
    async with server.session.get(server.base + "/metrics") as response:
        return response.status, await response.text()


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


TOKEN = "s3cret-token-0123456789"


@contextlib.asynccontextmanager
async def third_refused(server: Server, url: str) -> AsyncIterator[Any]:
    """Two SSE connections to ``url`` held open while a third is refused (503, ``Retry-After:
    5``): its JSON body, the two still held."""
    async with (
        asyncio.timeout(TIMEOUT),
        sse.connect(server.session, url),
        sse.connect(server.session, url),
    ):
        async with server.session.get(url) as response:
            assert response.status == 503
            assert response.headers["Retry-After"] == "5"
            body = await response.json()
        yield body


async def serve_app(app: web.Application, **options: Any) -> tuple[web.AppRunner, str]:
    """``app`` on a free loopback port: its runner (to clean up) and its base URL."""
    runner = web.AppRunner(app, **options)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"
