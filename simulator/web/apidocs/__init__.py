"""Our own API, described: ``/openapi.json``, ``/asyncapi.json`` and ``/asyncapi.yaml``.

Each document is built from the models once per process and served as the same bytes.
"""

from __future__ import annotations

import functools

import orjson
from aiohttp import web

from . import asyncapi, openapi, yaml

routes = web.RouteTableDef()


@functools.cache
def openapi_json() -> bytes:
    return orjson.dumps(openapi.document(), option=orjson.OPT_INDENT_2)


@functools.cache
def asyncapi_json() -> bytes:
    return orjson.dumps(asyncapi.document(), option=orjson.OPT_INDENT_2)


@functools.cache
def asyncapi_yaml() -> bytes:
    return yaml.dumps(asyncapi.document())


@routes.get("/openapi.json")
async def openapi_document(request: web.Request) -> web.Response:
    return web.Response(body=openapi_json(), content_type="application/json")


@routes.get("/asyncapi.json")
async def asyncapi_document(request: web.Request) -> web.Response:
    return web.Response(body=asyncapi_json(), content_type="application/json")


@routes.get("/asyncapi.yaml")
async def asyncapi_document_yaml(request: web.Request) -> web.Response:
    return web.Response(body=asyncapi_yaml(), content_type="application/yaml")
