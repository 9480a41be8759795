"""``GET /openapi.json``: an OpenAPI 3.1 document of the HTTP API, built from a route table.

Request bodies and query parameters come from the models the server validates them with
(``StreamConfig``, ``ReplayConfig``, ``PostFields``); answers from ``models``. ``routes()`` is held
to the app's router by a test, both ways: every route served is here, every route here is served.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from ...core.commands import CONTROL_OPS
from ...core.live import PostFields
from ...core.snapshot import DEFAULT_PAGE, MAX_PAGE
from ...settings import ReplayConfig, StreamConfig
from . import models as m

REF = "#/components/schemas/{model}"
JSON = "application/json"
SSE = "text/event-stream"
ANY: dict[str, Any] = {}
"""The schema of a platform's own JSON (``/compat``): described by that platform's docs."""

DOCUMENT: dict[str, Any] = {"type": "object"}

Schema = type[BaseModel] | dict[str, Any] | None


@dataclass(frozen=True)
class Answer:
    description: str
    schema: Schema = m.Error
    media: str = JSON
    headers: tuple[str, ...] = ()
    """Response headers it carries, from ``HEADERS``."""


HEADERS = {
    "Location": "The path of what was created.",
    "Retry-After": "Seconds to wait before trying again.",
}


@dataclass(frozen=True)
class Param:
    name: str
    description: str
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    where: str = "query"
    example: str | None = None


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    summary: str
    tag: str
    answers: dict[str, Answer]
    body: Schema = None
    query: tuple[Param, ...] = ()
    description: str = ""
    examples: dict[str, Any] = field(default_factory=dict)
    """Examples of path parameters (``stream``…) and of the ``body``, for readers and for
    schemathesis, which sends them first; the rest come from ``EXAMPLES``."""


FEED = "aljazeera-iraq-2014-06"
"""The bundled archive, which ``livesim serve`` serves as a feed and a stream of that id."""
EXAMPLES = {"stream": FEED, "feed": FEED, "post": "p-66e33032b5", "name": FEED}


def _ok(schema: Schema, description: str = "OK", media: str = JSON) -> Answer:
    return Answer(description, schema, media)


def _created(schema: Schema) -> Answer:
    return Answer("Created; `Location` names it.", schema, headers=("Location",))


NOT_FOUND = Answer("No such feed, stream, post or file (`where`: `path`).")
BAD = Answer("A bad body, field or query parameter, named in `where`.")
FAILED = Answer("The stream failed (`where`: `path`).")
BUSY = Answer(
    "A limit: `server.max_connections*` or snapshot bytes in flight, with `Retry-After` "
    "(a 500 would be a bug).",
    headers=("Retry-After",),
)
OTHER = Answer(
    "Any other refusal: control (POST, PATCH, DELETE) without the token off loopback (401) or "
    "from a foreign `Origin` (403); a `Host` not served (421); a body too slow (408) or too "
    "large (413); `?token=` in the URL (400); a method the path does not have (405)."
)

CURSOR = (
    Param("since", "Resume after this event id."),
    Param("last_event_id", "The same, as EventSource polyfills send it."),
    Param("Last-Event-ID", "The same, as EventSource sends it on a reconnect.", where="header"),
)
PAGE = (
    Param(
        "limit",
        f"Posts in this page (default {DEFAULT_PAGE}, at most {MAX_PAGE}).",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
    ),
    Param("before", "A post id: the page holds the posts after it in the list's order."),
)
TOKEN = Param("token", "The control token, on a WebSocket upgrade only.")
FAULTS = Param("faults", "Faults this connection suffers (docs/protocol.md#faults).")
PRIVATE = {
    "speed": "speed",
    "from": "start",
    "max_gap": "max_gap",
    "loop": "loop",
    "paused": "paused",
    "scenario": "scenario",
    "timestamps": "timestamps",
}
"""Query parameters of a private replay and the ``ReplayConfig`` field each sets (as
``app.PRIVATE_PARAMS``, less ``faults``, which is ``FAULTS``)."""


def private_params() -> tuple[Param, ...]:
    schema = ReplayConfig.model_json_schema(schema_generator=m.Generator)["properties"]
    params = []
    for name, config in PRIVATE.items():
        prop = schema[config]
        if name == "scenario":  # a query parameter can only name one
            prop = {"type": "string"}
        prop = {k: v for k, v in prop.items() if k not in ("title", "default")}
        params.append(Param(name, f"The replay's `{config}` (default {_default(config)}).", prop))
    return (*params, FAULTS)


def _default(name: str) -> str:
    value = ReplayConfig.model_fields[name].default
    return "none" if value in (None, ()) else str(value)


def _stream_routes() -> list[Route]:
    bodies: dict[str, Schema] = {"seek": m.SeekBody, "speed": m.SpeedBody, "step": m.StepBody}
    routes = [
        Route(
            "post",
            f"/api/streams/{{stream}}/{op}",
            f"{op.capitalize()} the stream",
            "control",
            {"200": _ok(m.StreamInfo, "The stream after the command"), "400": BAD, "409": FAILED},
            body=bodies.get(op),
            examples={
                "body": {
                    "seek": {"to": "+10m"},
                    "speed": {"speed": 120},
                    "step": {"events": 1},
                }.get(op)
            },
        )
        for op in CONTROL_OPS
    ]
    return routes


def _post_routes() -> list[Route]:
    post = {"$ref": REF.format(model="PostFields")}
    answered = {"400": BAD, "404": NOT_FOUND, "429": Answer("The stream holds all it may.")}
    return [
        Route(
            "post",
            "/api/streams/{stream}/posts",
            "Add a live post",
            "posts",
            {"201": _created(m.PostAnswer), **answered},
            body={"allOf": [post, {"required": ["body"]}]},
            examples={"body": {"headline": "Breaking", "body": "Engineers reopened the dam."}},
        ),
        Route(
            "get",
            "/api/streams/{stream}/posts/{post}",
            "A visible post",
            "posts",
            {"200": _ok(m.PostAnswer), "404": NOT_FOUND},
        ),
        Route(
            "patch",
            "/api/streams/{stream}/posts/{post}",
            "Edit a post (and pin or unpin it)",
            "posts",
            {"200": _ok(m.PostAnswer), **answered},
            body={"allOf": [post, {"minProperties": 1}]},
            examples={"post": "live-1", "body": {"body": "Engineers reopened the dam at 10:30."}},
        ),
        Route(
            "delete",
            "/api/streams/{stream}/posts/{post}",
            "Delete a post",
            "posts",
            {"200": _ok(m.DeletedPost), "404": NOT_FOUND},
            examples={"post": "live-1"},
        ),
        *(
            Route(
                "post",
                f"/api/streams/{{stream}}/posts/{{post}}/{op}",
                f"{op.capitalize()} a post",
                "posts",
                {"200": _ok(m.PostAnswer), "404": NOT_FOUND},
            )
            for op in ("pin", "unpin")
        ),
    ]


def _subscriptions() -> list[Route]:
    sse = (
        "Server-Sent Events: each event's `id:`, `event:` (its type) and one `data:` line "
        "holding the envelope. The events are described in /asyncapi.json."
    )
    ws = "A WebSocket upgrade; the channel is described in /asyncapi.json."
    upgrade = {"101": _ok(None, "Switching Protocols"), "400": Answer("Not an upgrade.")}
    stream = {"404": NOT_FOUND, "409": FAILED, "503": BUSY}
    feed = {"400": BAD, "404": NOT_FOUND, "503": BUSY}
    private = (*private_params(), *CURSOR)
    return [
        Route(
            "get",
            "/streams/{stream}/events",
            "Follow a stream (SSE)",
            "subscribe",
            {"200": _ok({"type": "string"}, sse, SSE), "400": BAD, **stream},
            query=(*CURSOR, FAULTS),
        ),
        Route(
            "get",
            "/streams/{stream}/ws",
            "Follow and control a stream (WebSocket)",
            "subscribe",
            {**upgrade, **stream},
            query=(*CURSOR, FAULTS, TOKEN),
            description=ws,
        ),
        Route(
            "get",
            "/feeds/{feed}/events",
            "A private replay of a feed (SSE)",
            "subscribe",
            {"200": _ok({"type": "string"}, sse, SSE), **feed},
            query=private,
        ),
        Route(
            "get",
            "/feeds/{feed}/ws",
            "A private replay of a feed (WebSocket)",
            "subscribe",
            {**upgrade, **feed},
            query=(*private, TOKEN),
            description=ws,
        ),
    ]


def _compat() -> list[Route]:
    platform = "The platform's own JSON, as docs/compat.md describes it."
    platform_error = Answer("A bad parameter, answered as the platform would (or our JSON).", ANY)
    platform_missing = Answer("No such stream, answered as the platform would (or our JSON).", ANY)
    answers = {"200": _ok(ANY, platform), "400": platform_error, "404": platform_missing}
    scribble = (
        Param("Order", "asc or desc (default)."),
        Param("format", "json (the only one)."),
        Param("callback", "JSONP: the answer wrapped in a call of this function."),
        Param("Token", "Accepted and ignored."),
    )
    jsonp = {
        **answers,
        "200": Answer(f"{platform} With `callback`, JSONP.", ANY),
    }
    return [
        Route(
            "get",
            "/compat/scribblelive/event/{stream}/page/last",
            "ScribbleLive: the newest posts",
            "compat",
            jsonp,
            query=(Param("Max", "Posts, at most.", example="20"), *scribble),
        ),
        Route(
            "get",
            "/compat/scribblelive/event/{stream}/all",
            "ScribbleLive: changes since a time",
            "compat",
            jsonp,
            query=(Param("Since", "YYYY/M/D H:M:S, UTC."), *scribble),
        ),
        Route(
            "get",
            "/compat/wp-liveblog/{stream}/entries/{start}/{end}/",
            "WordPress Liveblog: entries between two times (seconds)",
            "compat",
            answers,
            examples={"start": "0", "end": "2000000000"},
        ),
        Route(
            "get",
            "/compat/guardian/{name}",
            "The Guardian: Content API blocks ({stream}) or the page poll ({stream}.json)",
            "compat",
            answers,
            query=(
                Param(
                    "show-blocks",
                    "body:latest:N or body:published-since:MS.",
                    example="body:latest:10",
                ),
                Param("lastUpdate", "The page poll's last block id."),
                Param("isLivePage", "Accepted (true)."),
            ),
        ),
        Route(
            "get",
            "/compat/liveblog/client_blogs/{stream}/posts",
            "Liveblog (Superdesk): a page of posts",
            "compat",
            answers,
            query=(
                Param("max_results", "Posts a page (default 25)."),
                Param("page", "The page, from 1."),
                Param("source", "An Elasticsearch query with an `_updated` range filter (JSON)."),
            ),
        ),
        Route(
            "get",
            "/api/streams/{stream}/liveblog.jsonld",
            "schema.org LiveBlogPosting of the stream at its playhead",
            "compat",
            {"200": _ok(ANY, "JSON-LD", "application/ld+json"), "404": NOT_FOUND},
        ),
    ]


def _documents() -> list[Route]:
    return [
        Route("get", "/openapi.json", "This document", "docs", {"200": _ok(DOCUMENT)}),
        Route("get", "/asyncapi.json", "The AsyncAPI 3.0 document", "docs", {"200": _ok(DOCUMENT)}),
        Route(
            "get",
            "/asyncapi.yaml",
            "The same, as YAML",
            "docs",
            {"200": _ok({"type": "object"}, media="application/yaml")},
        ),
    ]


def _plain() -> list[Route]:
    text = {"type": "string"}
    return [
        Route("get", "/", "The ticker page", "site", {"200": _ok(text, media="text/html")}),
        Route(
            "get",
            "/static/{name}",
            "The ticker's script, stylesheet and icon",
            "site",
            {"200": _ok(text, media="*/*"), "404": NOT_FOUND},
            examples={"name": "ticker.js"},
        ),
        Route("get", "/healthz", "Liveness", "operations", {"200": _ok(m.Health)}),
        Route("get", "/readyz", "Readiness", "operations", {"200": _ok(m.Ready)}),
        Route(
            "get",
            "/metrics",
            "Prometheus metrics",
            "operations",
            {"200": _ok(text, media="text/plain")},
        ),
    ]


def _api() -> list[Route]:
    create = {"$ref": REF.format(model="StreamCreate")}
    return [
        Route(
            "get",
            "/api/feeds",
            "Feeds",
            "feeds",
            {"200": _ok({"type": "array", "items": _ref(m.FeedSummary)})},
        ),
        Route(
            "get",
            "/api/feeds/{feed}",
            "A feed, with its statistics",
            "feeds",
            {"200": _ok(m.FeedDetail), "404": NOT_FOUND},
        ),
        Route(
            "get",
            "/api/feeds/{feed}/posts",
            "A feed's posts, oldest first",
            "feeds",
            {"200": _ok(m.PostList), "400": BAD, "404": NOT_FOUND, "503": BUSY},
            query=PAGE,
        ),
        Route(
            "get",
            "/api/streams",
            "Shared streams",
            "streams",
            {"200": _ok({"type": "array", "items": _ref(m.StreamInfo)})},
        ),
        Route(
            "post",
            "/api/streams",
            "Create a stream",
            "streams",
            {
                "201": _created(m.StreamInfo),
                "400": BAD,
                "409": Answer("The id is taken."),
                "429": Answer("`server.max_streams` streams made through the API."),
            },
            body=create,
            examples={"body": {"id": "example", "feed": FEED, "speed": "max", "paused": True}},
        ),
        Route(
            "get",
            "/api/streams/{stream}",
            "A stream",
            "streams",
            {"200": _ok(m.StreamInfo), "404": NOT_FOUND},
        ),
        Route(
            "patch",
            "/api/streams/{stream}",
            "Change a stream's faults, for new and open connections",
            "streams",
            {"200": _ok(m.StreamInfo), "400": BAD, "404": NOT_FOUND},
            body={
                "type": "object",
                "properties": {
                    "faults": {
                        "type": ["string", "null"],
                        "maxLength": 1000,
                        "description": 'A fault spec (docs/protocol.md, Faults); "" or null: none',
                    }
                },
                "required": ["faults"],
                "additionalProperties": False,
            },
            examples={"body": {"faults": "duplicate:0.1,seed:7"}},
        ),
        Route(
            "delete",
            "/api/streams/{stream}",
            "Delete a stream; its subscribers are disconnected",
            "streams",
            {"200": _ok(m.Deleted), "404": NOT_FOUND},
            examples={"stream": "example"},
        ),
        Route(
            "get",
            "/api/streams/{stream}/posts",
            "Snapshot: the visible posts, newest first, and the cursor to subscribe from",
            "streams",
            {"200": _ok(m.Snapshot), "400": BAD, "404": NOT_FOUND, "409": FAILED, "503": BUSY},
            query=PAGE,
        ),
    ]


def routes() -> list[Route]:
    """Every route the server answers (GET routes also answer HEAD, and any path OPTIONS)."""
    return [
        *_api(),
        *_stream_routes(),
        *_post_routes(),
        *_subscriptions(),
        *_compat(),
        *_documents(),
        *_plain(),
    ]


def _ref(model: type[BaseModel]) -> dict[str, Any]:
    return {"$ref": REF.format(model=model.__name__)}


def _schema(schema: Schema) -> dict[str, Any] | None:
    if schema is None:
        return None
    if isinstance(schema, dict):
        return schema
    return _ref(schema)


RESPONSE_MODELS: tuple[type[BaseModel], ...] = (
    m.Error,
    m.FeedSummary,
    m.FeedDetail,
    m.PostList,
    m.StreamInfo,
    m.Snapshot,
    m.PostAnswer,
    m.DeletedPost,
    m.Deleted,
    m.Health,
    m.Ready,
)
REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    StreamConfig,
    PostFields,
    m.SeekBody,
    m.SpeedBody,
    m.StepBody,
)


def components() -> dict[str, Any]:
    """Every model's JSON Schema, as ``components.schemas``; ``StreamCreate`` is
    ``StreamConfig`` without a required ``id`` (the API picks one)."""
    pairs: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        *((model, "validation") for model in REQUEST_MODELS),
        *((model, "serialization") for model in RESPONSE_MODELS),
    ]
    _, top = models_json_schema(pairs, ref_template=REF, schema_generator=m.Generator)
    schemas: dict[str, Any] = top["$defs"]
    create = copy.deepcopy(schemas["StreamConfig"])
    create["required"] = [name for name in create["required"] if name != "id"]
    create["title"] = "StreamCreate"
    create["description"] = "A stream's settings; `id` is picked (s1, s2…) when not given."
    schemas["StreamCreate"] = create
    return dict(sorted(schemas.items()))


def _parameters(route: Route) -> list[dict[str, Any]]:
    out = []
    for name in _path_names(route.path):
        param = {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        example = route.examples.get(name, EXAMPLES.get(name))
        if example is not None:
            param["example"] = example
        out.append(param)
    for query in route.query:
        param = {
            "name": query.name,
            "in": query.where,
            "description": query.description,
            "schema": query.schema,
        }
        if query.example is not None:
            param["example"] = query.example
        out.append(param)
    return out


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def _operation(route: Route) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": operation_id(route),
        "summary": route.summary,
        "tags": [route.tag],
    }
    if route.description:
        operation["description"] = route.description
    parameters = _parameters(route)
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        content: dict[str, Any] = {"schema": _schema(route.body)}
        if route.examples.get("body") is not None:
            content["example"] = route.examples["body"]
        operation["requestBody"] = {
            "required": False,
            "description": "A JSON object; an empty body counts as {}.",
            "content": {JSON: content},
        }
    responses: dict[str, Any] = {}
    for status, answer in {**route.answers, "4XX": OTHER, "5XX": BUSY}.items():
        response: dict[str, Any] = {"description": answer.description}
        schema = _schema(answer.schema)
        if schema is not None:
            response["content"] = {answer.media: {"schema": schema}}
        if answer.headers:
            response["headers"] = {
                name: {"description": HEADERS[name], "schema": {"type": "string"}}
                for name in answer.headers
            }
        responses[status] = response
    operation["responses"] = responses
    return operation


def operation_id(route: Route) -> str:
    words = [w.strip("{}") for w in route.path.replace(".", "/").split("/") if w]
    return "_".join([route.method, *words]).replace("-", "_") or route.method


DESCRIPTION = """\
The HTTP API of livesim, a live-blog replay server. Every error is JSON
`{"error", "where", "status"}`; GET routes also answer HEAD; any OPTIONS request is a 204 with
the CORS headers. The events of the SSE and WebSocket routes are described by the AsyncAPI
document at /asyncapi.json. Docs: docs/protocol.md."""


def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes():
        paths.setdefault(route.path, {})[route.method] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {"title": "livesim", "version": package_version(), "description": DESCRIPTION},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": components()},
    }


def package_version() -> str:
    try:
        return version("livesim")
    except PackageNotFoundError:
        return "0"
