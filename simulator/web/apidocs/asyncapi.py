"""``GET /asyncapi.json`` (and ``.yaml``): an AsyncAPI 3.0 document of the event channels.

Written from a front end's side: it *receives* events and *sends* WebSocket ops. AsyncAPI has no
SSE binding, so an SSE channel is a channel on an ``http`` server with a ``receive`` operation,
each message named by its SSE ``event:`` field, as tools such as Scalar's mock server read it.
Schemas come from ``models``; every event type of ``EventType`` has a message.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from ...core.wire import EventType
from . import models as m
from .openapi import CURSOR, FAULTS, PRIVATE, Param, package_version, private_params

REF = "#/components/schemas/{model}"

WS_REPLIES: dict[str, type[BaseModel]] = {"pong": m.Pong, "resumed": m.Resumed, "error": m.WsError}
WS_OPS: dict[str, type[BaseModel]] = {
    "ping": m.PingOp,
    "resume": m.ResumeOp,
    "pause": m.PauseOp,
    "restart": m.RestartOp,
    "seek": m.SeekOp,
    "speed": m.SpeedOp,
    "step": m.StepOp,
    "post": m.PostOp,
    "update_post": m.UpdatePostOp,
    "delete_post": m.DeletePostOp,
    "pin_post": m.PinPostOp,
}
"""Client messages; ``pin_post`` also stands for ``unpin_post`` (one model, both ops)."""

DESCRIPTION = """\
The event channels of livesim, a live-blog replay server, described from a client's side: a
front end receives events and sends WebSocket ops. Every event is one JSON envelope, the same
bytes on both transports.

Server-Sent Events: AsyncAPI has no SSE binding, so each SSE channel is a channel on the `http`
server with a `receive` operation (as tools such as Scalar's mock server read it). Each message's
`name` is the SSE `event:` field; its payload is the `data:` line; the SSE `id:` field is the
payload's `id`, the cursor to resume after it. The stream starts with `retry: <ms>` and carries
`: ping` comments as heartbeats.

WebSocket: text frames, each one JSON object: an event envelope, or a reply (`pong`, `resumed`,
`error`) that has no `id`. Clients send ops (`{"op": ...}`).

Protocol: docs/protocol.md; REST API: /openapi.json."""


def _event_message(event: EventType) -> dict[str, Any]:
    model = m.EVENTS[event]
    return {
        "name": str(event),
        "title": str(event),
        "summary": (model.__doc__ or "").strip(),
        "contentType": "application/json",
        "payload": {"$ref": REF.format(model=model.__name__)},
        "examples": [{"name": str(event), "payload": m.EXAMPLES[event]}],
    }


def _message(name: str, model: type[BaseModel]) -> dict[str, Any]:
    return {
        "name": name,
        "title": name,
        "summary": (model.__doc__ or name).strip(),
        "contentType": "application/json",
        "payload": {"$ref": REF.format(model=model.__name__)},
    }


def message_key(name: str) -> str:
    """A message's key in ``components.messages``: ``post.created`` is ``post_created``."""
    return name.replace(".", "_")


def components() -> dict[str, Any]:
    models: list[type[BaseModel]] = [
        *m.EVENTS.values(),
        m.Envelope,
        *WS_REPLIES.values(),
        *WS_OPS.values(),
    ]
    _, top = models_json_schema(
        [(model, "serialization") for model in models],
        ref_template=REF,
        schema_generator=m.Generator,
    )
    messages = {message_key(str(e)): _event_message(e) for e in EventType}
    messages |= {f"ws_{name}": _message(name, model) for name, model in WS_REPLIES.items()}
    messages |= {f"op_{name}": _message(name, model) for name, model in WS_OPS.items()}
    return {"schemas": dict(sorted(top["$defs"].items())), "messages": messages}


def _refs(keys: list[str]) -> dict[str, Any]:
    return {key: {"$ref": f"#/components/messages/{key}"} for key in keys}


def _query(params: tuple[Param, ...]) -> dict[str, Any]:
    """Query parameters (and headers) as the WebSocket binding's JSON Schema objects."""
    query = {p.name: {**p.schema, "description": p.description} for p in params}
    return {"type": "object", "properties": query}


def _channel(
    address: str, server: str, keys: list[str], description: str, bindings: dict[str, Any]
) -> dict[str, Any]:
    name = address.split("/")[2].strip("{}")
    channel = {
        "address": address,
        "description": description,
        "servers": [{"$ref": f"#/servers/{server}"}],
        "parameters": {name: {"description": f"The {name} id."}},
        "messages": _refs(keys),
    }
    if bindings:
        channel["bindings"] = bindings
    return channel


def _keys() -> tuple[list[str], list[str], list[str]]:
    """The keys of the messages in ``components.messages``: events, WebSocket replies, ops."""
    events = [message_key(str(e)) for e in EventType]
    return events, [f"ws_{name}" for name in WS_REPLIES], [f"op_{name}" for name in WS_OPS]


def _queries() -> dict[str, tuple[Param, ...]]:
    """The query of each kind of channel: a shared stream's, a private feed's."""
    cursor = tuple(p for p in CURSOR if p.where == "query")
    return {"stream": (*cursor, FAULTS), "feed": (*private_params(), *cursor)}


def channels() -> dict[str, Any]:
    events, replies, ops = _keys()
    queries = _queries()
    header = {
        "type": "object",
        "properties": {"Last-Event-ID": {"type": "string", "description": CURSOR[2].description}},
    }
    ws = "0.1.0"
    return {
        "streamEvents": _channel(
            "/streams/{stream}/events",
            "http",
            events,
            "A shared stream over Server-Sent Events: GET, then events as they are due.",
            {},
        ),
        "streamSocket": _channel(
            "/streams/{stream}/ws",
            "ws",
            [*events, *replies, *ops],
            "A shared stream over WebSocket: events, replies, and ops that control the stream.",
            {"ws": {"query": _query(queries["stream"]), "headers": header, "bindingVersion": ws}},
        ),
        "feedEvents": _channel(
            "/feeds/{feed}/events",
            "http",
            events,
            "A private replay of a feed for this connection (Server-Sent Events), configured "
            f"by the query ({', '.join(PRIVATE)}, faults).",
            {},
        ),
        "feedSocket": _channel(
            "/feeds/{feed}/ws",
            "ws",
            [*events, *replies, *ops],
            "A private replay of a feed for this connection (WebSocket); ops control it.",
            {"ws": {"query": _query(queries["feed"]), "headers": header, "bindingVersion": ws}},
        ),
    }


def _operation(
    channel: str, action: str, keys: list[str], summary: str, query: tuple[Param, ...] = ()
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "summary": summary,
        "messages": [{"$ref": f"#/channels/{channel}/messages/{key}"} for key in keys],
    }
    if query:  # SSE: the GET that opens the event stream
        http = {"method": "GET", "query": _query(query), "bindingVersion": "0.3.0"}
        operation["bindings"] = {"http": http}
    return operation


def operations() -> dict[str, Any]:
    events, replies, ops = _keys()
    queries = _queries()
    out = {}
    for channel, what in (("stream", "a shared stream"), ("feed", "a private replay")):
        out[f"{channel}Events"] = _operation(
            f"{channel}Events",
            "receive",
            events,
            f"Receive the events of {what} over SSE.",
            queries[channel],
        )
        out[f"{channel}SocketReceive"] = _operation(
            f"{channel}Socket",
            "receive",
            [*events, *replies],
            f"Receive the events of {what}, and replies, over WebSocket.",
        )
        out[f"{channel}SocketSend"] = _operation(
            f"{channel}Socket", "send", ops, f"Control {what} over WebSocket."
        )
    return out


def document() -> dict[str, Any]:
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "livesim events",
            "version": package_version(),
            "description": DESCRIPTION,
        },
        "defaultContentType": "application/json",
        "servers": {
            "http": {
                "host": "{host}",
                "protocol": "http",
                "description": "HTTP: Server-Sent Events (GET, text/event-stream).",
                "variables": {"host": {"default": "localhost:8080"}},
            },
            "ws": {
                "host": "{host}",
                "protocol": "ws",
                "description": "WebSocket upgrades on the same port.",
                "variables": {"host": {"default": "localhost:8080"}},
            },
        },
        "channels": channels(),
        "operations": operations(),
        "components": components(),
    }
