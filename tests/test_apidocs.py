"""Our API described: ``/openapi.json``, ``/asyncapi.json`` and ``schemas/``, checked by real
validators (openapi-spec-validator, the official AsyncAPI 3.0 JSON Schema, jsonschema,
schemathesis) and against what a real server sends."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import hypothesis
import jsonschema  # type: ignore[import-untyped]
import orjson
import pytest
import schemathesis
import yaml
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from compat_helpers import newsroom
from conftest import BUNDLED_ID, Server, StartServer
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sse import Event, SSEReader, connect, envelope

from simulator import settings as settings_module
from simulator.core.wire import EventType
from simulator.sources import bundled_feed
from simulator.web.apidocs import asyncapi, models, openapi, schemas
from simulator.web.app import PRIVATE_PARAMS, create_app, runner_options

ROOT = Path(__file__).resolve().parent.parent
ASYNCAPI_SCHEMA = Path(__file__).with_name("fixtures") / "asyncapi" / "asyncapi-3.0.0.schema.json"
SAMPLE = {"stream": BUNDLED_ID, "feed": BUNDLED_ID, "post": "p-1", "name": "x"}
"""Values for a documented path's parameters, to resolve it in the router."""


@pytest.fixture(scope="module")
def asyncapi_document() -> dict[str, Any]:
    return asyncapi.document()


# OpenAPI ---------------------------------------------------------------------------------------


def test_openapi_is_valid() -> None:
    validate_openapi(openapi.document())


def test_openapi_bodies_are_the_models_the_server_validates_with() -> None:
    schemas_ = openapi.document()["components"]["schemas"]
    assert schemas_["StreamConfig"]["properties"].keys() >= {"feed", "speed", "scenario"}
    assert "id" in schemas_["StreamConfig"]["required"]
    assert "id" not in schemas_["StreamCreate"]["required"]
    assert schemas_["PostFields"]["additionalProperties"] is False
    speed = schemas_["StreamConfig"]["properties"]["speed"]
    assert {"type": "string"} in speed["anyOf"]  # "max", "2.5": what parse_speed reads


def test_private_replay_parameters_are_those_the_server_reads() -> None:
    assert {**openapi.PRIVATE, "faults": "faults"} == PRIVATE_PARAMS
    names = {param.name for param in openapi.private_params()}
    assert names == set(PRIVATE_PARAMS)


def _documented(app: web.Application) -> dict[tuple[str, str], str]:
    """(method, canonical route) each documented operation resolves to, by documented path."""
    found = {}
    for route in openapi.routes():
        url = re.sub(r"\{(\w+)\}", lambda match: SAMPLE.get(match[1], "1"), route.path)
        request = make_mocked_request(route.method.upper(), url, app=app)
        info = asyncio.run(app.router.resolve(request))
        assert info.http_exception is None, f"{route.method} {route.path} is not served"
        resource = info.route.resource
        assert resource is not None
        found[(route.method.upper(), resource.canonical)] = route.path
    return found


def test_every_route_served_is_documented_and_every_documented_route_served() -> None:
    settings = settings_module.validate({"server": {"port": 0}})
    app = create_app(settings, {})
    documented = _documented(app)
    served = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    assert served == set(documented)
    ids = [openapi.operation_id(route) for route in openapi.routes()]
    assert len(ids) == len(set(ids))


# AsyncAPI --------------------------------------------------------------------------------------


def test_asyncapi_is_valid_against_the_official_schema(asyncapi_document: dict[str, Any]) -> None:
    official = orjson.loads(ASYNCAPI_SCHEMA.read_bytes())
    validator = jsonschema.Draft7Validator(official)
    errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(asyncapi_document)
    ]
    assert errors == []
    broken = {**asyncapi_document, "operations": {"x": {"action": "listen", "channel": {}}}}
    assert not validator.is_valid(broken)  # the validator does look inside


def test_every_event_type_has_a_message_with_its_schema(asyncapi_document: dict[str, Any]) -> None:
    messages = asyncapi_document["components"]["messages"]
    names = {message["name"] for message in messages.values()}
    assert {str(event) for event in EventType} <= names
    assert set(models.EVENTS) == set(EventType)
    for channel in ("streamEvents", "feedEvents"):
        keys = asyncapi_document["channels"][channel]["messages"]
        assert set(keys) == {asyncapi.message_key(str(event)) for event in EventType}
    assert "http" in asyncapi_document["info"]["description"]  # how SSE is described


def test_the_examples_are_valid_events(asyncapi_document: dict[str, Any]) -> None:
    validators = _message_validators(asyncapi_document)
    for event, example in models.EXAMPLES.items():
        assert example["type"] == event
        validators[str(event)].validate(example)
        _file_validator(f"events/{event}.schema.json").validate(example)


def test_asyncapi_yaml_reads_back_as_the_json_document(asyncapi_document: dict[str, Any]) -> None:
    from simulator.web.apidocs import asyncapi_yaml

    assert yaml.safe_load(asyncapi_yaml()) == orjson.loads(orjson.dumps(asyncapi_document))


# schemas/ and TypeScript -----------------------------------------------------------------------


def test_schemas_directory_is_current() -> None:
    """Regenerate with ``python -m simulator.web.apidocs.schemas``."""
    for name, data in schemas.files().items():
        path = ROOT / "schemas" / name
        assert path.exists() and path.read_bytes() == data, f"schemas/{name} is out of date"
    for name in schemas.files():
        jsonschema.Draft202012Validator.check_schema(orjson.loads(schemas.files()[name]))


def test_typescript_declarations_name_every_event() -> None:
    declarations = (ROOT / "schemas" / schemas.TYPESCRIPT).read_text()
    assert "generated by json-schema-to-typescript" in declarations
    for event in EventType:
        assert f'type: "{event}";' in declarations
    for name in ("LivesimEvent", "ServerReply", "ClientOp", "Post", "StateData"):
        assert re.search(rf"export (type|interface) {name}\b", declarations)


@pytest.mark.skipif(
    shutil.which("npx") is None and os.environ.get("CI") != "true",
    reason="Node.js (npx) is not installed (under CI=true: a failure; .ci/run installs it)",
)
def test_typescript_declarations_are_current(tmp_path: Path) -> None:
    source = tmp_path / schemas.COMBINED
    source.write_bytes(schemas.files()[schemas.COMBINED])
    assert schemas.typescript(source) == (ROOT / "schemas" / schemas.TYPESCRIPT).read_bytes()


# What a real server sends ----------------------------------------------------------------------

URN = "urn:livesim:asyncapi"


def _message_validators(document: dict[str, Any]) -> dict[str, Any]:
    """A validator per message name (``post.created``, ``pong`` …), each checking the payload
    against the AsyncAPI document's own schema for it."""
    registry: Registry[Any] = Registry().with_resource(
        URN, Resource.from_contents(document, DRAFT202012)
    )
    out = {}
    for message in document["components"]["messages"].values():
        ref = URN + message["payload"]["$ref"]
        out[message["name"]] = jsonschema.Draft202012Validator({"$ref": ref}, registry=registry)
    return out


def _file_validator(name: str) -> Any:
    return jsonschema.Draft202012Validator(orjson.loads((ROOT / "schemas" / name).read_bytes()))


async def _ws_until(ws: aiohttp.ClientWebSocketResponse, done: Any, into: list[Any]) -> None:
    while True:
        message = await asyncio.wait_for(ws.receive(), 10)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        value = orjson.loads(message.data)
        into.append(value)
        if done(value):
            return


async def test_every_event_sent_validates_against_its_asyncapi_schema(
    start_server: StartServer, asyncapi_document: dict[str, Any]
) -> None:
    """A stream of the bundled blog under the shipped ``newsroom`` scenario, faults off, at
    speed max, followed over SSE and WebSocket; then a seek back, a restart, replies and a
    foreign cursor. Every event and reply validates against the AsyncAPI document (and
    ``schemas/``), and every event type is seen."""
    server = await start_server(streams=[])
    body = {"id": "docs", "feed": BUNDLED_ID, "speed": "max", "loop": False, "paused": True}
    status, stream = await server.post("/api/streams", {**body, "scenario": newsroom()})
    assert status == 201, stream
    origin = stream["cursor"].rsplit("-", 1)[0] + "-0"
    sse_events: list[dict[str, Any]] = []
    ws_messages: list[Any] = []

    def ended(value: dict[str, Any]) -> bool:
        return bool(value.get("data", {}).get("reason") == "ended")

    async def read_sse() -> None:
        async with connect(
            server.session, f"{server.base}/streams/docs/events?since={origin}"
        ) as reader:
            async for item in reader:
                if isinstance(item, Event):
                    sse_events.append(envelope(item))
                    if ended(sse_events[-1]):
                        return

    url = f"{server.ws_base}/streams/docs/ws?since={origin}"
    async with server.session.ws_connect(url) as ws:
        sse = asyncio.create_task(read_sse())
        await asyncio.sleep(0.2)
        await ws.send_str('{"op":"resume"}')
        await _ws_until(ws, ended, ws_messages)
        await asyncio.wait_for(sse, 30)
        await ws.send_str('{"op":"seek","to":"start"}')
        await _ws_until(ws, lambda v: v.get("data", {}).get("reason") == "seek", ws_messages)
        await ws.send_str('{"op":"restart"}')
        await _ws_until(ws, lambda v: v.get("data", {}).get("reason") == "restart", ws_messages)
        await ws.send_str('{"op":"pause"}')
        await ws.send_str('{"op":"ping"}')
        await _ws_until(ws, lambda v: v.get("type") == "pong", ws_messages)
        await ws.send_str('{"op":"fly"}')
        await _ws_until(ws, lambda v: v.get("type") == "error", ws_messages)
        await ws.send_str('{"op":"resume","since":"nope-1"}')
        await _ws_until(ws, lambda v: v.get("type") == "stream.reset", ws_messages)
    private = f"{server.base}/feeds/{BUNDLED_ID}/events?paused=true"
    async with server.session.get(private, headers={"Last-Event-ID": "nope-1"}) as response:
        reader = SSEReader(response)
        async for item in reader:
            if isinstance(item, Event):
                sse_events.append(envelope(item))
                if sse_events[-1]["type"] == "stream.state":
                    break

    validators = _message_validators(asyncapi_document)
    any_event = _file_validator("envelope.schema.json")
    by_type = {str(t): _file_validator(f"events/{t}.schema.json") for t in EventType}
    seen = set()
    for value in [*sse_events, *ws_messages]:
        name = value["type"]
        errors = [e.message for e in validators[name].iter_errors(value)]
        assert errors == [], (value, errors)
        if name in by_type:
            any_event.validate(value)
            by_type[name].validate(value)
        seen.add(name)
    assert seen == {str(t) for t in EventType} | {"pong", "error", "resumed"}
    assert {
        e["data"]["reason"] for e in sse_events + ws_messages if e["type"] == "stream.reset"
    } >= {
        "seek",
        "restart",
        "resume",
        "private",
    }


# schemathesis against a real server ------------------------------------------------------------

SCHEMATHESIS_EXAMPLES = 4
"""Examples per operation: about 150 requests in all, a few seconds."""
NEVER_END = r"/(events|ws)$"
"""Subscriptions: an event stream never ends (and a WebSocket is no HTTP answer to check)."""


@pytest.fixture
def threaded_server() -> Iterator[str]:
    """A real server on its own loop in a thread: schemathesis' client blocks (requests)."""
    loop = asyncio.new_event_loop()
    settings = settings_module.validate({"server": {"port": 0}, "streams": [STREAM]})
    app = create_app(settings, {BUNDLED_ID: bundled_feed()})
    runner = web.AppRunner(app, shutdown_timeout=1.0, **runner_options(settings))

    async def start() -> str:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


STREAM = {"id": BUNDLED_ID, "feed": BUNDLED_ID}


def _run_cases(strategy: Any, base: str, checks: list[Any]) -> None:
    @hypothesis.given(case=strategy)
    @hypothesis.settings(
        max_examples=SCHEMATHESIS_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
        case.call_and_validate(base_url=base, checks=checks, timeout=10)

    check()


def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(
    threaded_server: str,
) -> None:
    """Requests generated from the served /openapi.json: no 5xx, every status, content type
    and body as documented."""
    loaded = schemathesis.openapi.from_url(f"{threaded_server}/openapi.json")
    schema = loaded.exclude(path_regex=NEVER_END)
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 30
    failures = []
    for operation in operations:  # its documented examples first, then generated cases
        for strategy in [*operation.get_strategies_from_examples(), operation.as_strategy()]:
            try:
                _run_cases(strategy, threaded_server, checks)
            except Exception as exc:  # every operation's failure, not only the first
                failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:3000])
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("path", ["/openapi.json", "/asyncapi.json", "/asyncapi.yaml"])
async def test_documents_answer_any_accept_header_and_head(
    start_server: StartServer, path: str
) -> None:
    server = await start_server()
    odd = ["", "*/*", "text/html", "application/xml;q=0.9, */*;q=0.1", "x" * 5000, "\u00e9/\u00e9"]
    bodies = set()
    for accept in odd:
        async with server.session.get(server.base + path, headers={"Accept": accept}) as response:
            assert response.status == 200
            bodies.add(await response.read())
    assert len(bodies) == 1  # the same bytes whatever is asked
    async with server.session.head(server.base + path) as response:
        assert response.status == 200 and response.content_length == len(bodies.pop())
    async with server.session.get(server.base + path + "?x=%ff&x=1") as response:
        assert response.status == 200
    async with server.session.post(server.base + path) as response:
        assert response.status == 405 and (await response.json())["where"] == "path"
    document = (await server.get("/asyncapi.json"))[1]
    assert document["asyncapi"] == "3.0.0"


async def test_head_and_odd_accept_headers_on_every_documented_route(server: Server) -> None:
    """HEAD on every GET route (subscriptions included: headers only, nothing subscribed) and
    GET under Accept headers no handler asked for: never a 5xx."""
    odd = {"Accept": "application/xml;q=1, text/event-stream;q=0, */*;q=0"}
    for route in openapi.routes():
        path = re.sub(r"\{(\w+)\}", lambda match: openapi.EXAMPLES.get(match[1], "1"), route.path)
        url = server.base + path
        if route.method == "get":
            async with server.session.head(url, headers=odd) as response:
                assert response.status < 500, (route.path, response.status)
        if route.method == "get" and not re.search(NEVER_END, route.path):
            async with server.session.get(url, headers=odd) as response:
                assert response.status < 500, (route.path, response.status)
