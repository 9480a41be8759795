"""Live posting over REST: add, edit, delete, pin and unpin posts in a running stream.

Each route is a command (``commands.CreatePost`` …), the same the WebSocket ops send through
``commands.parse_command``; its events go to every subscriber at once and into the stream's
event log, so the snapshot and a resume include them like any other event.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..core.commands import CreatePost, DeletePost, PinPost, PostCommand, UpdatePost
from ..core.errors import InputError
from ..core.live import TooManyPosts, UnknownPost, parse_fields
from .api import get_stream, read_json
from .errors import http_error, input_error, json, not_found
from .stream import Stream

routes = web.RouteTableDef()


async def _run(stream: Stream, command: PostCommand) -> None:
    """The post named in the path is not visible: 404; the stream is full: 429 (the request
    was fine, the stream cannot take it)."""
    try:
        await stream.send(command)
    except UnknownPost as exc:
        raise not_found("post", exc.post) from None
    except TooManyPosts as exc:
        raise http_error(f"path: {exc.message}", "path", 429) from None
    except InputError as exc:
        raise input_error(exc, "body") from None


def _post(stream: Stream, post_id: str) -> dict[str, Any]:
    visible = stream.replay.view.get(post_id)
    if visible is None:
        raise not_found("post", post_id)
    return {**visible.post, "pinned": visible.pinned}


def _current(stream: Stream, post_id: str) -> dict[str, Any] | None:
    """The post after a change; None if a scripted delete due at the same moment removed it."""
    visible = stream.replay.view.get(post_id)
    return None if visible is None else {**visible.post, "pinned": visible.pinned}


def _answer(stream: Stream, post: dict[str, Any] | None, status: int = 200) -> web.Response:
    return json({"stream": stream.id, "cursor": stream.replay.cursor, "post": post}, status)


def _fields(body: dict[str, Any], create: bool) -> dict[str, Any]:
    try:
        return parse_fields(body, "body", create=create)
    except InputError as exc:
        raise input_error(exc) from None


@routes.post("/api/streams/{stream}/posts")
async def create_post(request: web.Request) -> web.Response:
    stream = get_stream(request)
    fields = _fields(await read_json(request), create=True)
    await _run(stream, CreatePost(fields))
    post_id = stream.replay.live.last_id
    assert post_id is not None
    response = _answer(stream, _post(stream, post_id), 201)
    response.headers["Location"] = f"/api/streams/{stream.id}/posts/{post_id}"
    return response


@routes.get("/api/streams/{stream}/posts/{post}")
async def show_post(request: web.Request) -> web.Response:
    stream = get_stream(request)
    stream.catch_up()  # publishes what is due by now first, as the snapshot does
    return _answer(stream, _post(stream, request.match_info["post"]))


@routes.patch("/api/streams/{stream}/posts/{post}")
async def update_post(request: web.Request) -> web.Response:
    stream = get_stream(request)
    post_id = request.match_info["post"]
    fields = _fields(await read_json(request), create=False)
    await _run(stream, UpdatePost(post_id, fields))
    return _answer(stream, _current(stream, post_id))


@routes.delete("/api/streams/{stream}/posts/{post}")
async def delete_post(request: web.Request) -> web.Response:
    stream = get_stream(request)
    post_id = request.match_info["post"]
    await _run(stream, DeletePost(post_id))
    return json({"stream": stream.id, "cursor": stream.replay.cursor, "deleted": post_id})


@routes.post(r"/api/streams/{stream}/posts/{post}/{op:pin|unpin}")
async def pin_post(request: web.Request) -> web.Response:
    stream = get_stream(request)
    post_id = request.match_info["post"]
    await _run(stream, PinPost(post_id, request.match_info["op"] == "pin"))
    return _answer(stream, _current(stream, post_id))
