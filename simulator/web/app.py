"""``create_app``: the one place the server is wired together."""

from __future__ import annotations

import contextlib
import itertools
import weakref
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import ValidationError

from .. import stats
from ..model import Feed
from ..settings import ReplayConfig, Settings
from ..stream import Stream
from . import api
from .errors import error_body, from_validation, http_error, json
from .state import CONNECTIONS, FEED_STATS, FEEDS, SETTINGS, STREAMS, make_stream
from .transports import serve_sse, serve_ws

SHUTDOWN = "server shutting down"
PRIVATE_PARAMS = {
    "speed": "speed",
    "from": "start",
    "max_gap": "max_gap",
    "loop": "loop",
    "paused": "paused",
}
RESUME_PARAMS = {"last_event_id", "since"}
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Last-Event-ID",
    "Access-Control-Max-Age": "600",
}
STATIC = Path(__file__).with_name("static")
_private_numbers = itertools.count(1)


def create_app(settings: Settings, feeds: dict[str, Feed]) -> web.Application:
    app = web.Application(middlewares=[_errors_as_json])
    app[SETTINGS] = settings
    app[FEEDS] = feeds
    app[FEED_STATS] = {feed_id: stats.summarize(feed) for feed_id, feed in feeds.items()}
    app[STREAMS] = {}
    app[CONNECTIONS] = weakref.WeakSet()
    app.add_routes(api.routes)
    app.add_routes(
        [
            web.get("/", _index),
            web.get("/healthz", _health),
            web.get("/streams/{stream}/events", _stream_events),
            web.get("/streams/{stream}/ws", _stream_ws),
            web.get("/feeds/{feed}/events", _private_events),
            web.get("/feeds/{feed}/ws", _private_ws),
        ]
    )
    app.router.add_static("/static", STATIC)
    app.on_response_prepare.append(_cors)
    app.cleanup_ctx.append(_streams_ctx)
    app.on_shutdown.append(_close_connections)
    return app


async def _streams_ctx(app: web.Application) -> AsyncIterator[None]:
    """Start the configured streams with the app; stop them all with it."""
    settings = app[SETTINGS]
    for config in settings.streams:
        feed = app[FEEDS].get(config.feed)
        if feed is None:
            raise ValueError(f"streams: stream {config.id!r} names unknown feed {config.feed!r}")
        app[STREAMS][config.id] = make_stream(app, config.id, feed, config)
    yield
    for stream in list(app[STREAMS].values()):
        await stream.stop(SHUTDOWN)


async def _close_connections(app: web.Application) -> None:
    connections = app[CONNECTIONS]
    for subscriber in list(connections):
        subscriber.drop(SHUTDOWN)


async def _cors(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(CORS_HEADERS)


@web.middleware
async def _errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """CORS preflights, and aiohttp's own 404 and 405 in JSON like every other error here."""
    if request.method == "OPTIONS":
        return web.Response(status=204)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json" or exc.status < 400:
            raise
        return web.Response(
            status=exc.status,
            body=error_body(f"{request.method} {request.path}: {exc.reason}", "path", exc.status),
            content_type="application/json",
        )


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


async def _health(request: web.Request) -> web.Response:
    return json({"ok": True, "streams": len(request.app[STREAMS])})


async def _stream_events(request: web.Request) -> web.StreamResponse:
    return await serve_sse(request, api.get_stream(request))


async def _stream_ws(request: web.Request) -> web.StreamResponse:
    return await serve_ws(request, api.get_stream(request))


@contextlib.asynccontextmanager
async def _private_stream(request: web.Request) -> AsyncIterator[Stream]:
    """A replay of its own for one connection, configured from the query string."""
    feed = api.get_feed(request)
    raw = {}
    for name, value in request.query.items():
        if name in PRIVATE_PARAMS:
            raw[PRIVATE_PARAMS[name]] = value
        elif name not in RESUME_PARAMS:
            known = ", ".join(sorted(PRIVATE_PARAMS))
            raise http_error(f"query.{name}: unknown parameter (known: {known})", f"query.{name}")
    try:
        config = ReplayConfig.model_validate(raw)
    except ValidationError as exc:
        public = {internal: name for name, internal in PRIVATE_PARAMS.items()}
        raise from_validation(exc, "query", public) from None
    try:
        stream = make_stream(
            request.app, f"private-{feed.id}-{next(_private_numbers)}", feed, config, True
        )
    except ValueError as exc:
        raise http_error(f"query.from: {str(exc).split(': ', 1)[-1]}", "query.from") from None
    try:
        yield stream
    finally:
        await stream.stop()


async def _private_events(request: web.Request) -> web.StreamResponse:
    async with _private_stream(request) as stream:
        return await serve_sse(request, stream)


async def _private_ws(request: web.Request) -> web.StreamResponse:
    async with _private_stream(request) as stream:
        return await serve_ws(request, stream)
