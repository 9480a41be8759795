"""Our own API, described: ``/openapi.json``, ``/asyncapi.json`` and ``/asyncapi.yaml``.

Each document is built from the models on its first request and then served as the same
bytes. The modules that build them (pydantic models, JSON Schema generation) are imported then
too, not with the server: they would add a tenth to its start-up for documents few ask for.
The first build (some 30 ms) runs in a worker thread, not on the event loop the streams pace on.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable

import orjson
from aiohttp import web

routes = web.RouteTableDef()


@functools.cache
def openapi_json() -> bytes:
    from . import openapi

    return orjson.dumps(openapi.document(), option=orjson.OPT_INDENT_2)


@functools.cache
def asyncapi_json() -> bytes:
    from . import asyncapi

    return orjson.dumps(asyncapi.document(), option=orjson.OPT_INDENT_2)


@functools.cache
def asyncapi_yaml() -> bytes:
    from . import asyncapi, yaml

    return yaml.dumps(asyncapi.document())


async def _answer(build: Callable[[], bytes], content_type: str) -> web.Response:
    body = await asyncio.to_thread(build)
    return web.Response(body=body, content_type=content_type)


@routes.get("/openapi.json")
async def openapi_document(request: web.Request) -> web.Response:
    return await _answer(openapi_json, "application/json")


@routes.get("/asyncapi.json")
async def asyncapi_document(request: web.Request) -> web.Response:
    return await _answer(asyncapi_json, "application/json")


@routes.get("/asyncapi.yaml")
async def asyncapi_document_yaml(request: web.Request) -> web.Response:
    return await _answer(asyncapi_yaml, "application/yaml")
