"""The shapes the server sends, as pydantic models: the event envelope and each event type, the
WebSocket messages, and the REST answers that have no model of their own.

The server builds these objects as plain dicts (``replay._encode``, ``Stream.describe``…) and
encodes them once with orjson; the models exist so the API documents and ``schemas/`` are
generated from one description, and the tests hold every emitted event and every answer to it.
Requests are described by the models the server validates with (``StreamConfig``, ``PostFields``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import (
    DefsRef,
    GenerateJsonSchema,
    JsonSchemaKeyT,
    JsonSchemaMode,
    JsonSchemaValue,
    SkipJsonSchema,
)
from pydantic_core import CoreSchema

from ...core.live import MEDIA_KINDS, PostFields
from ...core.wire import EventType

ID_PATTERN = r"^[0-9a-z]+-[0-9]+(\.reset)?$"
"""An event id: ``{incarnation}-{serial}``; a ``stream.reset`` made for one connection's resume
adds ``.reset`` (an id of its own that still works as a cursor)."""
TIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$"
"""ISO-8601 in UTC with a ``Z``, which every JavaScript ``Date`` parses."""


class Generator(GenerateJsonSchema):
    """pydantic's JSON Schema without a title on each field: the field's name says it, and
    TypeScript generators make a type alias of every title (``Id1``, ``Id2`` …)."""

    def field_title_should_be_set(self, schema: CoreSchema) -> bool:
        return False

    def generate(self, schema: CoreSchema, mode: JsonSchemaMode = "validation") -> JsonSchemaValue:
        value = super().generate(schema, mode)
        _drop_null_defaults(value)
        return value

    def generate_definitions(
        self, inputs: Sequence[tuple[JsonSchemaKeyT, JsonSchemaMode, CoreSchema]]
    ) -> tuple[
        dict[tuple[JsonSchemaKeyT, JsonSchemaMode], JsonSchemaValue],
        dict[DefsRef, JsonSchemaValue],
    ]:
        keys, definitions = super().generate_definitions(inputs)
        _drop_null_defaults(definitions)
        return keys, definitions


def _drop_null_defaults(value: object) -> None:
    """No ``"default": null`` where null is not allowed: on a key that is left out rather than
    sent as null (``Absent``); validators of the documents check defaults against types."""
    if isinstance(value, list):
        for item in value:
            _drop_null_defaults(item)
    elif isinstance(value, dict):
        for item in value.values():
            _drop_null_defaults(item)
        if "default" in value and value["default"] is None and b'"null"' not in orjson.dumps(value):
            del value["default"]


Absent = SkipJsonSchema[None]
"""A key that is left out rather than sent as null: ``str | Absent = None``."""


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Media(_Closed):
    """An embed or picture; keys without a value are left out."""

    kind: str = Field(
        description=f"Archives use {', '.join(MEDIA_KINDS)}; an archive may name others."
    )
    title: str | Absent = None
    caption: str | Absent = None
    credit: str | Absent = None
    url: str | Absent = None
    count: int | Absent = Field(default=None, ge=0)


class Post(BaseModel):
    """A post as events, snapshots and feed lists carry it; an archive's extra fields follow."""

    model_config = ConfigDict(extra="allow")

    id: str
    headline: str | None
    body: str = Field(description='Paragraphs separated by "\\n\\n"; "" for an embed-only post.')
    author: str | None
    editor: str | None
    published_at: str | None = Field(pattern=TIME)
    time_source: Literal["explicit", "interpolated", "extrapolated"] | None
    source: str | None = Field(description="The agency the text came from (AP, Reuters…).")
    media: list[Media]
    key_event: Literal[True] | Absent = Field(
        default=None, description="Present, and true, only on a key event."
    )


class SnapshotPost(Post):
    """A post in a snapshot or a REST answer: with whether it is pinned."""

    pinned: bool


class Position(_Closed):
    archive_time: str = Field(pattern=TIME)
    index: int = Field(ge=0, description="Script events played in this lap.")
    total: int = Field(ge=0, description="Events in the script.")
    lap: int = Field(ge=0, description="Loops completed since start or the last restart.")


Speed = float | Literal["max"]


class ReplayState(_Closed):
    """A replay's state: in ``stream.state`` events, stream objects and snapshots."""

    state: Literal["playing", "paused", "ended"]
    speed: Speed
    loop: bool
    max_gap: float | None = Field(description="Seconds; null: quiet stretches are not cut.")
    position: Position
    cursor: str = Field(pattern=ID_PATTERN)
    timestamps: Literal["archive", "now"] = Field(
        description="archive: times are the archive's; now: the wall-clock instant each was due."
    )


class StateData(ReplayState):
    reason: Literal["start", "pause", "resume", "speed", "seek", "restart", "step", "ended"]


class ResetData(_Closed):
    reason: Literal["seek", "loop", "restart", "resume", "private"]


class _Envelope(_Closed):
    id: str = Field(pattern=ID_PATTERN, description="The event id, also its cursor.")
    type: str
    stream: str = Field(description="The stream id; private-{feed}-{n} for a private replay.")
    archive_time: str | None = Field(pattern=TIME)
    due_at: str = Field(pattern=TIME, description="Wall-clock time it was due (UTC, ms).")


class PostCreated(_Envelope):
    """A post's time is reached: add it on top, not pinned."""

    type: Literal["post.created"]
    post: Post


class PostUpdated(_Envelope):
    """A post was edited: replace it in place, keep its pin; ignore if absent."""

    type: Literal["post.updated"]
    post: Post


class PostDeleted(_Envelope):
    """A post was deleted (retracted): remove it."""

    type: Literal["post.deleted"]
    post: Post


class PostPinned(_Envelope):
    """A post was pinned; ignore if absent."""

    type: Literal["post.pinned"]
    post: Post


class PostUnpinned(_Envelope):
    """A post was unpinned; ignore if absent."""

    type: Literal["post.unpinned"]
    post: Post


class StreamState(_Envelope):
    """The replay's state changed (or it started: the first event of every replay)."""

    type: Literal["stream.state"]
    data: StateData


class StreamReset(_Envelope):
    """What a client holds is no longer right: reload the snapshot, subscribe from its cursor."""

    type: Literal["stream.reset"]
    archive_time: None
    data: ResetData


_POST: dict[str, Any] = {
    "id": "p-1713eadc02",
    "headline": None,
    "body": "The AP news agency has suggested …",
    "author": "Shafik.Mandhai",
    "editor": None,
    "published_at": "2014-06-25T06:52:29Z",
    "time_source": "explicit",
    "source": None,
    "media": [],
}
_HEAD = {"stream": "demo", "due_at": "2026-11-25T09:46:10.232Z"}
EXAMPLES: dict[EventType, dict[str, Any]] = {
    EventType.POST_CREATED: {
        "id": "mwvxupaj1-21",
        "type": "post.created",
        **_HEAD,
        "archive_time": "2014-06-25T06:52:29Z",
        "post": _POST,
    },
    EventType.POST_UPDATED: {
        "id": "mwvxupaj1-22",
        "type": "post.updated",
        **_HEAD,
        "archive_time": "2014-06-25T06:55:29Z",
        "post": {**_POST, "editor": "Graeme Baker"},
    },
    EventType.POST_DELETED: {
        "id": "mwvxupaj1-23",
        "type": "post.deleted",
        **_HEAD,
        "archive_time": "2014-06-25T07:22:29Z",
        "post": _POST,
    },
    EventType.POST_PINNED: {
        "id": "mwvxupaj1-24",
        "type": "post.pinned",
        **_HEAD,
        "archive_time": "2014-06-25T06:52:59Z",
        "post": _POST,
    },
    EventType.POST_UNPINNED: {
        "id": "mwvxupaj1-25",
        "type": "post.unpinned",
        **_HEAD,
        "archive_time": "2014-06-25T07:52:29Z",
        "post": _POST,
    },
    EventType.STREAM_STATE: {
        "id": "mwvxupaj1-7",
        "type": "stream.state",
        **_HEAD,
        "archive_time": "2014-06-24T20:53:00.646330Z",
        "data": {
            "reason": "pause",
            "state": "paused",
            "speed": 2,
            "loop": False,
            "max_gap": 120.0,
            "position": {
                "archive_time": "2014-06-24T20:53:00.646330Z",
                "index": 2,
                "total": 46,
                "lap": 0,
            },
            "cursor": "mwvxupaj1-7",
            "timestamps": "archive",
        },
    },
    EventType.STREAM_RESET: {
        "id": "mwvxupaj1-8",
        "type": "stream.reset",
        **_HEAD,
        "archive_time": None,
        "data": {"reason": "seek"},
    },
}
"""An event of each type, as a server sent it (docs/protocol.md; bodies cut): in the schemas
and the AsyncAPI messages for readers and mock servers; a test validates each."""

EVENTS: dict[EventType, type[_Envelope]] = {
    EventType.POST_CREATED: PostCreated,
    EventType.POST_UPDATED: PostUpdated,
    EventType.POST_DELETED: PostDeleted,
    EventType.POST_PINNED: PostPinned,
    EventType.POST_UNPINNED: PostUnpinned,
    EventType.STREAM_STATE: StreamState,
    EventType.STREAM_RESET: StreamReset,
}
"""Every event type's model; a test holds it to ``EventType``."""


class Envelope(_Closed):
    """Any event, as both transports send it: SSE's ``data:`` line, a WebSocket text frame."""

    id: str = Field(pattern=ID_PATTERN)
    type: EventType
    stream: str
    archive_time: str | None = Field(pattern=TIME)
    due_at: str = Field(pattern=TIME)
    post: Post | Absent = Field(default=None, description="Post events only.")
    data: StateData | ResetData | Absent = Field(
        default=None, description="stream.state and stream.reset only."
    )


# WebSocket messages ------------------------------------------------------------------------


class Pong(_Closed):
    """The answer to ``{"op": "ping"}``."""

    type: Literal["pong"]


class Resumed(_Closed):
    """Queued ahead of the replay from ``since``, in answer to ``{"op": "resume", "since"}``."""

    type: Literal["resumed"]
    since: str


class WsError(_Closed):
    """A message the server cannot act on; the connection stays open."""

    type: Literal["error"]
    error: str = Field(description="One line, starting with the JSON path at fault.")
    where: str = Field(description="The JSON path at fault ($, $.op, $.to…).")


class PingOp(_Closed):
    op: Literal["ping"]


class ResumeOp(BaseModel):
    """Re-position this connection after ``since``; without ``since``: resume the stream."""

    op: Literal["resume"]
    since: str | None = None


class PauseOp(BaseModel):
    op: Literal["pause"]


class RestartOp(BaseModel):
    op: Literal["restart"]


class SeekOp(BaseModel):
    op: Literal["seek"]
    to: str = Field(min_length=1, max_length=200, description="A post id, time or offset.")


class StepOp(BaseModel):
    """On a paused stream: the next ``events`` now, or up to ``until``; it stays paused."""

    op: Literal["step"]
    events: int | Absent = Field(default=None, ge=1, le=10_000)
    until: float | str | Absent = Field(
        default=None, description="An offset ('+5m') or seconds ahead on the archive clock."
    )


class SpeedOp(BaseModel):
    op: Literal["speed"]
    speed: float | str = Field(description="A positive number up to 1000000, or 'max'.")


class PostOp(PostFields):
    """A live post: the fields of ``POST /api/streams/{stream}/posts`` (``body`` required)."""

    op: Literal["post"]


class UpdatePostOp(PostFields):
    """The fields to change, as ``PATCH /api/streams/{stream}/posts/{post}``."""

    op: Literal["update_post"]
    post: str


class DeletePostOp(BaseModel):
    op: Literal["delete_post"]
    post: str


class PinPostOp(BaseModel):
    op: Literal["pin_post", "unpin_post"]
    post: str


# REST answers ------------------------------------------------------------------------------


class Error(_Closed):
    """Every 4xx and 5xx answer."""

    error: str = Field(description="One line, starting with the place at fault.")
    where: str | None = Field(description="body.<path>, query.<param>, body, path, a setting…")
    status: int


class Links(_Closed):
    self: str
    posts: str
    events: str
    ws: str


class Times(_Closed):
    explicit: int
    interpolated: int
    extrapolated: int


class FeedSummary(_Closed):
    id: str
    title: str
    description: str | None
    timezone: str
    posts: int
    first: str | None
    last: str | None
    span_seconds: float
    times: Times
    links: Links


class FeedDetail(FeedSummary):
    stats: dict[str, Any] = Field(description="The figures of `livesim inspect --json`.")


class PageInfo(_Closed):
    """What a paged request asked for and what to ask next."""

    limit: int = Field(ge=1)
    before: str | None
    next: str | None = Field(description="The post id to pass as `before`; null: no more.")


class PostList(_Closed):
    feed: str
    page: PageInfo | Absent = Field(default=None, description="Only with `limit` or `before`.")
    posts: list[Post] = Field(description="Oldest first, each in its final form.")
    truncated: bool
    omitted: int


class FaultCounts(_Closed):
    spec: str | None
    injected: dict[str, int]
    reconnects_without_cursor: int = Field(
        description="New subscriptions without a cursor from an address whose connection a "
        "fault had just closed (within a short window): clients that do not resume."
    )


class NextAction(_Closed):
    action: str
    at: str


class StreamInfo(_Closed):
    """A stream: its replay's state, or ``failed`` and why."""

    id: str
    feed: str
    state: Literal["playing", "paused", "ended", "failed"]
    error: str | Absent = Field(default=None, description="Only when the stream failed.")
    speed: Speed | Absent = None
    loop: bool | Absent = None
    max_gap: float | None = None
    position: Position | Absent = None
    cursor: str | Absent = None
    timestamps: Literal["archive", "now"] | Absent = None
    start: str | None
    private: bool
    subscribers: int
    dropped_slow: int
    faults: FaultCounts
    links: Links
    next_actions: list[NextAction] = Field(description="What its schedule does next.")


class Snapshot(ReplayState):
    """The posts visible now, newest first, and the cursor to subscribe from."""

    stream: str
    page: PageInfo | Absent = Field(default=None, description="Only with `limit` or `before`.")
    posts: list[SnapshotPost]
    key_events: list[str]
    truncated: bool
    omitted: int


class PostAnswer(_Closed):
    stream: str
    cursor: str
    post: SnapshotPost | None = Field(description="null when a scripted delete took it at once.")


class DeletedPost(_Closed):
    stream: str
    cursor: str
    deleted: str


class Deleted(_Closed):
    deleted: str


class Health(_Closed):
    ok: bool
    streams: int


class Ready(_Closed):
    ready: bool
    streams: int
    failed: list[str]


class SeekBody(BaseModel):
    """``to``: a post id, ``start``, ``end``, an ISO-8601 archive time or an offset (``+10m``)."""

    to: str = Field(min_length=1, max_length=200)


class StepBody(BaseModel):
    """``events`` (1 … 10 000) or ``until`` (an offset such as ``+5m``, or seconds)."""

    events: int | None = Field(default=None, ge=1, le=10_000)
    until: float | str | None = None


class SpeedBody(BaseModel):
    speed: float | str = Field(description="A positive number up to 1000000, or 'max'.")
