"""JSON bodies for every answer, and 4xx errors that name the input at fault."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError

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
    where = where if where is None else one_line(where, MAX_ERROR)
    return orjson.dumps({"error": one_line(message, MAX_ERROR), "where": where, "status": status})


def one_line(text: str, limit: int) -> str:
    """``text`` as one printable line of at most ``limit`` characters (control characters
    escaped as in a Python literal, the rest cut at ``…``)."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def http_error(message: str, where: str | None = None, status: int = 400) -> web.HTTPException:
    """A 4xx with ``{"error": ..., "where": ...}``; ``where`` is a query parameter or JSON path.

    Without ``where``, the message's own prefix (``body.speed: …``) names the place.
    """
    where = where or message.split(":", 1)[0]
    # ``text=``, not ``body=``: aiohttp deprecates ``body`` for HTTP exceptions (warns each time).
    body = error_body(message, where, status).decode()
    return _STATUS[status](text=body, content_type="application/json")


def json(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(value), status=status, content_type="application/json")


def not_found(kind: str, name: str) -> web.HTTPException:
    return http_error(f"no {kind} {name!r}", where="path", status=404)


def from_validation(
    exc: ValidationError, prefix: str, names: Mapping[str, str] | None = None
) -> web.HTTPException:
    """The first pydantic error as ``prefix.path: message``, fields renamed by ``names``."""
    error = exc.errors()[0]
    path = prefix
    for part in error["loc"]:
        part = (names or {}).get(str(part), part)
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return http_error(f"{path}: {message}", where=path)
