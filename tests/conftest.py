"""Shared fixtures: a real livesim server on an ephemeral loopback port, in the test's loop."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from simulator import settings as settings_module
from simulator.core.model import Feed
from simulator.sources import bundled_feed
from simulator.web.app import create_app, runner_options

BUNDLED_ID = "aljazeera-iraq-2014-06"


class Server:
    """A running server: its base URL, its app, and an HTTP session to talk to it."""

    def __init__(self, app: web.Application, runner: web.AppRunner, base: str):
        self.app = app
        self.runner = runner
        self.base = base
        self.ws_base = base.replace("http://", "ws://", 1)
        self.session = aiohttp.ClientSession()

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.session.get(self.base + path) as response:
            return response.status, await response.json()

    async def post(self, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.session.post(self.base + path, json=body) as response:
            return response.status, await response.json()

    async def delete(self, path: str) -> tuple[int, Any]:
        async with self.session.delete(self.base + path) as response:
            return response.status, await response.json()


StartServer = Callable[..., Awaitable[Server]]


@pytest.fixture(scope="session")
def bundled() -> Feed:
    return bundled_feed()


@pytest.fixture
async def start_server(bundled: Feed) -> AsyncIterator[StartServer]:
    """``await start_server(streams=[...], server={...}, feeds={...})`` → a running ``Server``.

    ``streams`` are StreamConfig dicts (default: the bundled feed as one stream of the same id, at
    speed 60, max_gap 2m, looping); ``server`` overrides ServerConfig fields.
    """
    started: list[Server] = []

    async def start(
        streams: list[dict[str, Any]] | None = None,
        server: dict[str, Any] | None = None,
        feeds: dict[str, Feed] | None = None,
    ) -> Server:
        raw = {
            "server": {"port": 0, **(server or {})},
            "streams": streams if streams is not None else [{"id": BUNDLED_ID, "feed": BUNDLED_ID}],
        }
        settings = settings_module.validate(raw)
        app = create_app(settings, feeds if feeds is not None else {BUNDLED_ID: bundled})
        runner = web.AppRunner(app, shutdown_timeout=1.0, **runner_options(settings))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        instance = Server(app, runner, f"http://127.0.0.1:{port}")
        started.append(instance)
        return instance

    yield start
    for instance in started:
        await instance.session.close()
        await instance.runner.cleanup()


@pytest.fixture
async def server(start_server: StartServer) -> Server:
    """The default server: the bundled archive as one looping stream at speed 60."""
    return await start_server()


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """``serve`` configures logging for the process; put it back for the tests after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
