"""The REST surface: feeds, streams, stream controls and the snapshot a page loads first."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError

from ..core.commands import SetFaults, parse_command
from ..core.errors import InputError, from_validation
from ..core.model import Feed
from ..core.snapshot import Page, parse_page
from ..settings import StreamConfig
from . import persist, snapshots, stream_view
from .errors import http_error, input_error, json, not_found
from .schedule import Job, plan
from .snapshots import SNAPSHOTS
from .state import (
    API_STREAMS,
    FEED_STATS,
    FEEDS,
    METRICS,
    NODE,
    NUMBERS,
    SCHEDULER,
    SETTINGS,
    STREAMS,
    make_stream,
    stop_stream,
)
from .stream import Stream

routes = web.RouteTableDef()


def feed_summary(request: web.Request, feed: Feed) -> dict[str, Any]:
    summary = request.app[FEED_STATS][feed.id]
    return {
        "id": feed.id,
        "title": feed.title,
        "description": feed.description,
        "timezone": feed.timezone,
        **{k: summary[k] for k in ("posts", "first", "last", "span_seconds", "times")},
        "links": {
            "self": f"/api/feeds/{feed.id}",
            "posts": f"/api/feeds/{feed.id}/posts",
            "events": f"/feeds/{feed.id}/events",
            "ws": f"/feeds/{feed.id}/ws",
        },
    }


def get_feed(request: web.Request) -> Feed:
    name = request.match_info["feed"]
    feed = request.app[FEEDS].get(name)
    if feed is None:
        raise not_found("feed", name)
    return feed


def stream_json(request: web.Request, stream: Stream) -> dict[str, Any]:
    """A stream as the API shows it: its own state, and what its schedule does next."""
    return {
        **stream_view.describe(stream),
        "next_actions": request.app[SCHEDULER].next_actions(stream.id),
    }


def get_stream(request: web.Request) -> Stream:
    name = request.match_info["stream"]
    stream = request.app[STREAMS].get(name)
    if stream is None:
        raise not_found("stream", name)
    return stream


async def read_json(request: web.Request) -> dict[str, Any]:
    data = await request.read()
    if not data.strip():
        return {}
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise http_error(f"body: invalid JSON ({exc.msg})", where="body") from None
    if not isinstance(value, dict):
        raise http_error("body: expected a JSON object", where="body")
    return value


@routes.get("/api/feeds")
async def list_feeds(request: web.Request) -> web.Response:
    return json([feed_summary(request, f) for f in request.app[FEEDS].values()])


@routes.get("/api/feeds/{feed}")
async def show_feed(request: web.Request) -> web.Response:
    feed = get_feed(request)
    return json({**feed_summary(request, feed), "stats": request.app[FEED_STATS][feed.id]})


@routes.get("/api/feeds/{feed}/posts")
async def feed_posts(request: web.Request) -> web.StreamResponse:
    feed = get_feed(request)
    server = request.app[SETTINGS].server
    page = page_query(request)
    try:
        if page is None:
            body = request.app[SNAPSHOTS].feed_posts(feed, server.max_snapshot_bytes)
        else:
            body = request.app[SNAPSHOTS].feed_page(feed, page, server.max_snapshot_bytes)
    except InputError as exc:
        raise input_error(exc, "query") from None
    return await snapshots.send(request, [body], server, request.app[METRICS])


def page_query(request: web.Request) -> Page | None:
    """``?limit=N&before=POST`` (``snapshot.parse_page``), each given once at the most."""
    values: dict[str, str | None] = {}
    for name in ("limit", "before"):
        given = request.query.getall(name, [])
        if len(given) > 1:
            raise http_error(f"query.{name}: given {len(given)} times", f"query.{name}")
        values[name] = given[0] if given else None
    try:
        return parse_page(values["limit"], values["before"])
    except InputError as exc:
        raise input_error(exc, "query") from None


@routes.get("/api/streams")
async def list_streams(request: web.Request) -> web.Response:
    return json([stream_json(request, s) for s in request.app[STREAMS].values()])


@routes.post("/api/streams")
async def create_stream(request: web.Request) -> web.Response:
    body = await read_json(request)
    streams = request.app[STREAMS]
    if "id" not in body:
        body["id"] = _new_stream_id(streams, request.app[NUMBERS].streams)
    try:
        config, jobs = await asyncio.to_thread(_read_stream_config, body, datetime.now(UTC))
    except ValidationError as exc:
        raise input_error(from_validation(exc, "body")) from None
    except InputError as exc:
        raise input_error(exc, "body") from None  # body.schedule[3]: cron … does not fire
    if config.id in streams:
        raise http_error(f"body.id: stream {config.id!r} already exists", "body.id", 409)
    made = request.app[API_STREAMS]
    limit = request.app[SETTINGS].server.max_streams
    if len(made) >= limit:
        message = f"server.max_streams: {limit} streams made through the API; delete one first"
        raise http_error(message, "server.max_streams", 429)
    feed = request.app[FEEDS].get(config.feed)
    if feed is None:
        raise http_error(f"body.feed: no feed {config.feed!r}", where="body.feed")
    node = request.app.get(NODE)
    try:
        if node is None:
            stream = make_stream(request.app, config.id, feed, config, jobs=jobs)
        else:
            stream = await node.share(request.app, config, feed, body, new=True)
    except InputError as exc:
        raise input_error(exc, "body") from None  # body.start, body.scenario[0]…
    streams[stream.id] = stream
    made.add(stream.id)
    try:
        response = json(stream_json(request, stream), status=201)
    except Exception:  # nobody would learn of the stream: it must not stay, listed or not
        del streams[stream.id]
        made.discard(stream.id)
        await stop_stream(request.app, stream, "stream not made")
        raise
    persist.stream_created(request.app, stream, body)
    response.headers["Location"] = f"/api/streams/{stream.id}"
    return response


def _read_stream_config(
    body: dict[str, Any], now: datetime
) -> tuple[StreamConfig, tuple[Job, ...]]:
    """The body as a stream config, and its schedule as jobs. Run in a worker thread: a hundred
    schedule entries cost each a parse and a (bounded) calendar search, up to half a second in
    all, which on the event loop would stall every other request and stream."""
    config = StreamConfig.model_validate(body)
    return config, plan(config.schedule, config.start_at, now)


def _new_stream_id(streams: dict[str, Stream], numbers: Iterator[int]) -> str:
    while True:
        candidate = f"s{next(numbers)}"
        if candidate not in streams:
            return candidate


@routes.get("/api/streams/{stream}")
async def show_stream(request: web.Request) -> web.Response:
    return json(stream_json(request, get_stream(request)))


@routes.delete("/api/streams/{stream}")
async def delete_stream(request: web.Request) -> web.Response:
    stream = get_stream(request)
    node = request.app.get(NODE)
    if node is not None:
        await node.forget(stream.id)
    del request.app[STREAMS][stream.id]
    request.app[API_STREAMS].discard(stream.id)
    persist.stream_deleted(request.app, stream.id)
    await stop_stream(request.app, stream, "stream deleted")
    return json({"deleted": stream.id})


@routes.patch("/api/streams/{stream}")
async def change_stream(request: web.Request) -> web.Response:
    """``{"faults": "…"}``: the stream's faults, for new and open connections ("" or null: none)."""
    stream = get_stream(request)
    body = await read_json(request)
    unknown = sorted(set(body) - {"faults"})
    if unknown or "faults" not in body:
        where = f"body.{unknown[0]}" if unknown else "body.faults"
        why = "unknown field; only faults can be changed" if unknown else "missing"
        raise http_error(f"{where}: {why}", where)
    try:
        command = SetFaults.parse(body["faults"], "body.faults")
    except InputError as exc:
        raise input_error(exc) from None
    await stream.send(command)  # shared: on every node, answered once applied on this one
    persist.faults_changed(request.app, stream.id, stream.faults_text)
    return json(stream_json(request, stream))


@routes.get("/api/streams/{stream}/posts")
async def stream_posts(request: web.Request) -> web.StreamResponse:
    server = request.app[SETTINGS].server
    stream = get_stream(request)
    page = page_query(request)
    if page is None:
        parts = stream.snapshot(server.max_snapshot_bytes)
    else:
        try:
            parts = stream.page(server.max_snapshot_bytes, page)
        except InputError as exc:
            raise input_error(exc, "query") from None
    return await snapshots.send(request, parts, server, request.app[METRICS])


@routes.post(r"/api/streams/{stream}/{op:pause|resume|restart|seek|speed|step}")
async def control_stream(request: web.Request) -> web.Response:
    stream = get_stream(request)
    body = await read_json(request)
    try:
        command = parse_command(request.match_info["op"], body, "body")
    except InputError as exc:
        raise input_error(exc) from None
    try:
        await stream.send(command)
    except InputError as exc:  # a seek to no post or time (``to``), a step while playing (409)
        raise input_error(exc, "body") from None
    return json(stream_json(request, stream))
