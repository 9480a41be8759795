"""JSON bodies for every answer, and 4xx errors that name the input at fault."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from ..core.errors import InputError, shorten, shown

_STATUS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest,
    404: web.HTTPNotFound,
    405: web.HTTPMethodNotAllowed,
    409: web.HTTPConflict,
    429: web.HTTPTooManyRequests,
}


MAX_ERROR = 300
"""Characters of an error message (``where``: of the place) at most: a client's 10 KB parameter
name or value is quoted, not echoed whole."""


def error_body(message: str, where: str | None, status: int) -> bytes:
    where = where if where is None else shorten(where, MAX_ERROR)
    return orjson.dumps({"error": shorten(message, MAX_ERROR), "where": where, "status": status})


def http_error(message: str, where: str | None, status: int = 400) -> web.HTTPException:
    """A 4xx with ``{"error": ..., "where": ...}``; ``where`` is a query parameter or JSON path."""
    # ``text=``, not ``body=``: aiohttp deprecates ``body`` for HTTP exceptions (warns each time).
    body = error_body(message, where, status).decode()
    return _STATUS[status](text=body, content_type="application/json")


def input_error(exc: InputError, prefix: str = "") -> web.HTTPException:
    """``exc`` as its 4xx, its place inside ``prefix`` (``body``, ``query``). The message quotes
    the place too (``body.to: …``), as every error body always has."""
    if prefix:
        exc = exc.under(prefix)
    return http_error(str(exc), exc.where or None, exc.status)


def json(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(value), status=status, content_type="application/json")


def not_found(kind: str, name: str) -> web.HTTPException:
    return http_error(f"no {kind} {shown(name, 100)}", where="path", status=404)
