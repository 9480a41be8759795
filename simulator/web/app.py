"""``create_app``: the one place the server is wired together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import ValidationError

from ..core import stats
from ..core.commands import Command
from ..core.errors import InputError, from_validation
from ..core.faults import FaultSpecError
from ..core.faults import parse as parse_faults
from ..core.model import Feed
from ..settings import ReplayConfig, Settings
from . import access, api, apidocs, compat, persist, posts
from .errors import error_body, http_error, input_error, json, not_found
from .metrics import CONTENT_TYPE, Metrics
from .private import PrivateReplays
from .schedule import Scheduler
from .snapshots import SNAPSHOTS, Snapshots
from .state import (
    API_STREAMS,
    CONNECTIONS,
    FEED_STATS,
    FEEDS,
    INCARNATIONS,
    METRICS,
    NODE,
    NUMBERS,
    OPEN,
    PREBUILT,
    PRIVATE,
    PRIVATE_STREAMS,
    SCHEDULER,
    SETTINGS,
    STREAMS,
    Numbers,
    Prebuilt,
    build_script,
    make_stream,
    open_private,
    stop_stream,
)
from .stream import Incarnations, Stream, StreamFailed, Unavailable
from .transports import FAULTS, SSE_HEADERS, serve_sse, serve_ws

SHUTDOWN = "server shutting down"
PRIVATE_PARAMS = {
    "speed": "speed",
    "from": "start",
    "max_gap": "max_gap",
    "loop": "loop",
    "paused": "paused",
    "faults": "faults",
    "scenario": "scenario",
    "timestamps": "timestamps",
}
RESUME_PARAMS = {"last_event_id", "since", "token"}
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, PATCH, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Last-Event-ID, Authorization",
    "Access-Control-Expose-Headers": "Location, Retry-After",
    "Access-Control-Max-Age": "600",
}
RETRY_AFTER = 5
"""Seconds a client refused for a connection limit is told to wait."""
LINGERING_TIME = 1.0
"""Seconds aiohttp goes on reading (and discarding) a body no one read before it closes the
connection: enough for a client to finish sending and read a 413, short for one refused for a
slow body (``server.body_timeout``), which is not to hold its connection much longer."""
PROBES = frozenset({"/healthz", "/readyz", "/metrics"})
"""Paths never refused for a connection limit (without a body): an operator must be able to see
a full server, and a liveness probe must not restart it for being busy."""
STATIC = Path(__file__).with_name("static")
log = logging.getLogger("livesim.web")


def create_app(
    settings: Settings, feeds: dict[str, Feed], prebuilt: Prebuilt | None = None
) -> web.Application:
    """``prebuilt``: the configured streams' replays, already made (``serve.configure``), which
    the app starts instead of making them again."""
    app = web.Application(middlewares=[_errors_as_json, _slot, _body, _access])
    app[SETTINGS] = settings
    app[FEEDS] = feeds
    app[INCARNATIONS] = prebuilt.incarnations if prebuilt else Incarnations()
    app[NUMBERS] = Numbers()
    if prebuilt:
        app[PREBUILT] = prebuilt
    app[FEED_STATS] = {feed_id: stats.summarize(feed) for feed_id, feed in feeds.items()}
    app[STREAMS] = {}
    app[PRIVATE_STREAMS] = set()
    app[PRIVATE] = PrivateReplays(settings.server, settings.scenarios, build_script)
    app[API_STREAMS] = set()
    app[OPEN] = access.Slots()
    app[CONNECTIONS] = weakref.WeakSet()
    app[METRICS] = Metrics(lambda: live_streams(app), lambda: app[OPEN].total)
    app[SNAPSHOTS] = Snapshots()
    app[SCHEDULER] = Scheduler(lambda stream_id, command: _scheduled(app, stream_id, command))
    persist.attach(app)
    app.add_routes(api.routes)
    app.add_routes(posts.routes)
    compat.setup(app)
    app.add_routes(apidocs.routes)
    app.add_routes(
        [
            web.get("/", _index),
            web.get("/healthz", _health),
            web.get("/readyz", _ready),
            web.get("/metrics", _metrics),
            web.get("/streams/{stream}/events", _stream_events),
            web.get("/streams/{stream}/ws", _stream_ws),
            web.get("/feeds/{feed}/events", _private_events),
            web.get("/feeds/{feed}/ws", _private_ws),
        ]
    )
    app.router.add_get("/static/{name}", _static)
    app.on_response_prepare.append(_cors)
    app.cleanup_ctx.append(_streams_ctx)
    app.on_shutdown.append(_close_connections)
    return app


def runner_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``web.AppRunner`` (or ``run_app``) that the settings decide.

    aiohttp's keep-alive timer starts when a connection opens and closes a connection still idle
    in its request parser when it fires, so it is also the deadline for a request's headers: the
    defence against slowloris. The body's deadline is ``_body``'s.
    """
    return {
        "keepalive_timeout": settings.server.header_timeout,
        "lingering_time": LINGERING_TIME,
        "access_log": None,
    }


async def _streams_ctx(app: web.Application) -> AsyncIterator[None]:
    """Start the configured streams with the app, and those the state file saved; stop them all
    with it, and save the state file a last time."""
    settings = app[SETTINGS]
    app[SCHEDULER].start()
    if settings.server.redis:
        async with _shared(app, settings.server.redis):
            yield
        return
    for config in settings.streams:
        feed = app[FEEDS].get(config.feed)
        if feed is None:
            raise ValueError(f"streams: stream {config.id!r} names unknown feed {config.feed!r}")
        app[STREAMS][config.id] = make_stream(app, config.id, feed, config)
    if PREBUILT in app:
        app[PREBUILT].replays.clear()  # what was not started (its start_at passed meanwhile)
    await persist.restore(app)
    yield
    app[SCHEDULER].shutdown()
    await persist.close(app)  # before the streams stop: a stopped replay lets go of its posts
    for stream in list(app[STREAMS].values()):
        await stop_stream(app, stream, SHUTDOWN)


@contextlib.asynccontextmanager
async def _shared(app: web.Application, url: str) -> AsyncIterator[None]:
    """The streams as a node of a Redis-shared service: configured ones shared with the nodes
    that have the same config, API-made ones made here when another node makes them. Live
    posts are kept by Redis's input logs, not by the state file."""
    from .cluster import Node, sync_definitions

    settings = app[SETTINGS]
    node = app[NODE] = Node(
        url, settings.server.redis_lease, settings.server.redis_checkpoint_every
    )
    if PREBUILT in app:
        app[PREBUILT].replays.clear()  # a shared replay is made from the shared definition
    try:
        await node.start()
        for config in settings.streams:
            feed = app[FEEDS].get(config.feed)
            if feed is None:
                raise ValueError(f"streams: stream {config.id!r} names unknown feed")
            app[STREAMS][config.id] = await node.share(app, config, feed)
        node.spawn(sync_definitions(app, node), "redis:definitions")
        yield
    finally:
        app[SCHEDULER].shutdown()
        for stream in list(app[STREAMS].values()):
            await stop_stream(app, stream, SHUTDOWN)
        await node.close()


def _scheduled(app: web.Application, stream_id: str, command: Command) -> None:
    """A schedule entry fires: the same command path as ``POST /api/streams/{id}/{op}``. A
    shared stream's schedule is carried out by the node running its clock, once for all."""
    stream = app[STREAMS].get(stream_id)
    if stream is None:
        return
    node = app.get(NODE)
    if node is None:
        stream.command(command)
        return
    link = node.links.get(stream_id)
    if link is not None and link.owner:
        node.spawn(stream.send(command), f"schedule:{stream_id}")


async def _close_connections(app: web.Application) -> None:
    connections = app[CONNECTIONS]
    for subscriber in list(connections):
        subscriber.drop(SHUTDOWN)


async def _cors(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(CORS_HEADERS)


@web.middleware
async def _errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error as JSON: aiohttp's own 404 and 405, failed streams, and our own bugs."""
    if request.method == "OPTIONS":
        return web.Response(status=204)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json" or exc.status < 400:
            raise
        return _error(f"{request.method} {request.path}: {exc.reason}", "path", exc.status)
    except StreamFailed as exc:
        return _error(str(exc), "path", 409)
    except Unavailable as exc:
        return _error(f"{request.method} {request.path}: {exc}", "redis", 503)
    except Exception as exc:  # a bug: the client gets JSON, the log the traceback
        log.exception("%s %s: %s", request.method, request.path, type(exc).__name__)
        return _error(f"{request.method} {request.path}: internal error", None, 500)
    return response


def _closing(response: web.Response) -> web.Response:
    """``response``, then the connection closed: the rest of its body is not worth reading."""
    response.force_close()
    return response


def _error(
    message: str, where: str | None, status: int, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=error_body(message, where, status),
        content_type="application/json",
        headers=headers,
    )


# Connection slots and request bodies ----------------------------------------------------------


@web.middleware
async def _slot(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request holds a connection slot until its handler returns: an SSE or WebSocket
    subscription for its whole life, any other request while its body arrives and its answer is
    made. ``server.max_connections*`` bound the slots, so a client cannot hold connections
    without being counted (an idle keep-alive connection, or one still sending its headers,
    holds none: ``header_timeout`` closes it).

    A request over the limits is refused here, except a probe and a subscription: a
    subscription is checked by ``_admitted`` once its request proved valid, so a bad one gets
    its 400, and a HEAD its headers, whatever the load.
    """
    slots = request.app[OPEN]
    client = request.remote or "?"
    subscription = request.match_info.handler in SUBSCRIPTIONS
    probe = request.path in PROBES and not request.body_exists
    if not (subscription or probe):
        _refuse_if_full(request, held=0)
    slots.take(client)
    try:
        return await handler(request)
    finally:
        slots.give_back(client)


@web.middleware
async def _body(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Read a request's whole body within ``server.body_timeout``, before any handler (which
    then gets it from ``request.read()``'s cache): a client that sends it slowly gets 408 and
    its connection closed instead of holding it for as long as it likes."""
    if request.body_exists:
        timeout = request.app[SETTINGS].server.body_timeout
        try:
            async with asyncio.timeout(timeout):
                await request.read()
        except TimeoutError:
            request.app[METRICS].totals.refused["body_timeout"] += 1
            message = f"body: not complete within server.body_timeout ({timeout:g} s)"
            return _closing(_error(message, "body", 408))
        except web.HTTPRequestEntityTooLarge:
            message = f"body: larger than {request.client_max_size} bytes"
            return _closing(_error(message, "body", 413))
        except ConnectionError:  # the client went away mid-body: nobody reads this answer
            return _error("body: the connection closed before the body was complete", "body", 400)
    return await handler(request)


# Access: Host, control origins, token ---------------------------------------------------------

CONTROL_METHODS = frozenset({"POST", "DELETE", "PATCH", "PUT"})


@web.middleware
async def _access(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse what DNS rebinding or a foreign web page could do, and tokens in URLs; count every
    refusal."""
    server = request.app[SETTINGS].server
    refused = request.app[METRICS].totals.refused
    host = request.headers.get("Host")
    if access.loopback_only(server) and not access.host_allowed(host, server.hosts):
        refused["host"] += 1
        if host is None:
            message = "a request without a Host header is not served here (server.hosts)"
        else:
            message = f"Host {access.host_name(host)[:100]!r} is not served here (server.hosts)"
        return _error(message, "header.Host", 421)
    in_query = access.query_token_refusal(request)
    if in_query:
        refused[in_query.reason] += 1
        return _error(in_query.message, in_query.where, 400)
    control = request.method in CONTROL_METHODS and request.path.startswith("/api/streams")
    why = access.control_refusal(request, server)
    request[access.CONTROL_REFUSAL] = why
    if control and why:
        refused[why.reason] += 1
        return _error(why.message, why.where, 403 if why.reason == "origin" else 401)
    return await handler(request)


# Plain routes ---------------------------------------------------------------------------------


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


STATIC_FILES = frozenset(p.name for p in STATIC.iterdir() if p.is_file())
"""The ticker's files, listed once: a name not in it is a JSON 404, never a path on disk."""


async def _static(request: web.Request) -> web.FileResponse:
    name = request.match_info["name"]
    if name not in STATIC_FILES:
        raise not_found("file", name)
    return web.FileResponse(STATIC / name)


async def _health(request: web.Request) -> web.Response:
    return json({"ok": True, "streams": len(request.app[STREAMS])})


async def _ready(request: web.Request) -> web.Response:
    """Ready once the configured streams run; failed streams are named but do not unready it."""
    streams = request.app[STREAMS].values()
    failed = sorted(s.id for s in streams if s.failed)
    node = request.app.get(NODE)
    if node is not None and not node.up:
        body = {"ready": False, "reason": node.reason, "streams": len(streams), "failed": failed}
        return json(body, status=503)
    return json({"ready": True, "streams": len(streams), "failed": failed})


async def _metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    node = request.app.get(NODE)
    if node is not None:
        body += node.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


# Subscriptions --------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _admitted(request: web.Request) -> AsyncIterator[None]:
    """Start a subscription only within ``server.max_connections*`` (503 beyond them), counting
    the slot ``_slot`` already holds for this request."""
    _refuse_if_full(request, held=1)
    yield


def _refuse_if_full(request: web.Request, held: int) -> None:
    """503 when this request, holding ``held`` slots already, may not have one."""
    server = request.app[SETTINGS].server
    slots = request.app[OPEN]
    if slots.total - held >= server.max_connections:
        raise _busy(request, "connections", f"server.max_connections ({server.max_connections})")
    per_client = access.per_client_limit(request.remote, server)
    if per_client is not None and slots.by_client[request.remote or "?"] - held >= per_client:
        limit = f"server.max_connections_per_client ({per_client})"
        raise _busy(request, "connections_per_client", limit)


def _busy(request: web.Request, reason: str, limit: str) -> web.HTTPException:
    """503 with ``Retry-After``, and the connection closed: a busy server sheds it."""
    request.app[METRICS].totals.refused[reason] += 1
    body = error_body(f"too many connections: {limit} reached; retry later", None, 503)
    refusal = web.HTTPServiceUnavailable(
        text=body.decode(),
        content_type="application/json",
        headers={"Retry-After": str(RETRY_AFTER)},
    )
    refusal.force_close()
    return refusal


Serve = Callable[[web.Request, Stream], Awaitable[web.StreamResponse]]


def _head() -> web.Response:
    """HEAD of a subscription: what a GET would answer, without subscribing or starting a replay."""
    return web.Response(headers=SSE_HEADERS)


async def _subscribe(request: web.Request, stream: Stream, serve: Serve) -> web.StreamResponse:
    stream.check()
    _faults(request, stream)
    if request.method == "HEAD":
        return _head()
    async with _admitted(request):
        return await serve(request, stream)


def _faults(request: web.Request, stream: Stream) -> None:
    """The faults this connection suffers: its stream's, with its own ``faults`` item by item
    over them (a private replay's ``faults`` parameter already is its stream's)."""
    spec = stream.faults
    text = request.query.get("faults")
    if text is not None and not stream.private:
        try:
            spec = parse_faults(text, spec)
        except FaultSpecError as exc:
            raise http_error(f"query.faults: {exc}", "query.faults") from None
    if spec is not None and spec.active:
        request[FAULTS] = spec


async def _stream_events(request: web.Request) -> web.StreamResponse:
    return await _subscribe(request, api.get_stream(request), serve_sse)


async def _stream_ws(request: web.Request) -> web.StreamResponse:
    return await _subscribe(request, api.get_stream(request), serve_ws)


def _private_config(request: web.Request) -> ReplayConfig:
    raw = {}
    for name, value in request.query.items():
        if name in PRIVATE_PARAMS:
            raw[PRIVATE_PARAMS[name]] = value
        elif name not in RESUME_PARAMS:
            known = ", ".join(sorted(PRIVATE_PARAMS))
            raise http_error(f"query.{name}: unknown parameter (known: {known})", f"query.{name}")
    try:
        return ReplayConfig.model_validate(raw)
    except ValidationError as exc:
        public = {internal: name for name, internal in PRIVATE_PARAMS.items()}
        raise input_error(from_validation(exc, "query", public)) from None


async def _private(request: web.Request, serve: Serve) -> web.StreamResponse:
    """A replay of its own for one connection, configured from the query string."""
    feed = api.get_feed(request)
    config = _private_config(request)
    if request.method == "HEAD":
        return _head()
    private = request.app[PRIVATE]
    async with _admitted(request):
        if private.open >= private.limit:
            raise _busy(request, "private_replays", f"server.max_private_replays ({private.limit})")
        private.open += 1
        try:
            stream = await _open_private(request, feed, config)
            live = request.app[PRIVATE_STREAMS]
            live.add(stream)
            try:
                _faults(request, stream)
                return await serve(request, stream)
            finally:
                live.discard(stream)
                await stop_stream(request.app, stream, "connection closed")
        finally:
            private.open -= 1


async def _open_private(request: web.Request, feed: Feed, config: ReplayConfig) -> Stream:
    stream_id = f"private-{feed.id}-{next(request.app[NUMBERS].private)}"
    try:
        return await open_private(request.app, stream_id, feed, config)
    except InputError as exc:
        if exc.where == "start" or exc.where.startswith(("start.", "start[")):
            exc = InputError("from" + exc.where.removeprefix("start"), exc.message, exc.status)
        raise input_error(exc, "query") from None


async def _private_events(request: web.Request) -> web.StreamResponse:
    return await _private(request, serve_sse)


async def _private_ws(request: web.Request) -> web.StreamResponse:
    return await _private(request, serve_ws)


def live_streams(app: web.Application) -> Iterator[Stream]:
    yield from app[STREAMS].values()
    yield from app[PRIVATE_STREAMS]


SUBSCRIPTIONS = frozenset({_stream_events, _stream_ws, _private_events, _private_ws})
"""Handlers whose requests ``_admitted`` checks against the connection limits."""
