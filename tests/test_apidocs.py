"""Our API described: ``/openapi.json``, ``/asyncapi.json`` and ``schemas/``, checked by real
validators (openapi-spec-validator, the official AsyncAPI 3.0 JSON Schema, jsonschema,
schemathesis) and against what a real server sends."""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import orjson
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from conftest import BUNDLED_ID
from openapi_spec_validator import validate as validate_openapi

from simulator import settings as settings_module
from simulator.core.script import EventType
from simulator.web.apidocs import asyncapi, models, openapi, schemas
from simulator.web.app import create_app

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


def _documented(app: web.Application) -> dict[tuple[str, str], str]:
    """(method, canonical route) each documented operation resolves to, by documented path."""
    found = {}
    for route in openapi.routes():
        url = re.sub(r"\{(\w+)\}", lambda match: SAMPLE.get(match[1], "1"), route.path)
        request = make_mocked_request(route.method.upper(), url, app=app)
        info = asyncio.run(app.router.resolve(request))
        assert info.http_exception is None, f"{route.method} {route.path} is not served"
        found[(route.method.upper(), info.route.resource.canonical)] = route.path  # type: ignore[union-attr]
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
    ids = [openapi._operation_id(route) for route in openapi.routes()]
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


@pytest.mark.skipif(shutil.which("npx") is None, reason="Node.js (npx) is not installed")
def test_typescript_declarations_are_current(tmp_path: Path) -> None:
    source = tmp_path / schemas.COMBINED
    source.write_bytes(schemas.files()[schemas.COMBINED])
    assert schemas.typescript(source) == (ROOT / "schemas" / schemas.TYPESCRIPT).read_bytes()
