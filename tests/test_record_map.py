"""``livesim record --map``: someone else's SSE stream, read by JSON paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from server_helpers import serve_app

from clients.record import Options, record
from clients.record.mapping import MapError, parse_map
from simulator.cli import main
from simulator.core.script import build
from simulator.sources import load_feed

MAP = {
    "id": "$.seq",
    "type": "$.kind",
    "post": "$.entry.uuid",
    "headline": "$.entry.title",
    "body": "$.entry.text",
    "time": "$.entry.ts",
    "types": {"new": "post.created", "edit": "post.updated", "gone": "post.deleted"},
}
EVENTS = [
    {"seq": 1, "kind": "new", "entry": {"uuid": "u1", "title": "Vote opens", "text": "Polls open.",
                                        "ts": 1402336800}},
    {"seq": 2, "kind": "new", "entry": {"uuid": "u2", "text": "Queues in the rain.",
                                        "ts": "2014-06-09T18:05:00Z"}},
    {"seq": 2, "kind": "new", "entry": {"uuid": "u2", "text": "a duplicate, by its seq"}},
    {"seq": 3, "kind": "edit", "entry": {"uuid": "u1", "title": "Vote opens",
                                         "text": "Polls open at 8.", "ts": 1402337100000}},
    {"seq": 4, "kind": "heartbeat"},
    {"seq": 5, "kind": "gone", "entry": {"uuid": "u2", "ts": 1402337400}},
]  # fmt: skip


async def foreign(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for event in EVENTS:
        await response.write(b"data: " + orjson.dumps(event) + b"\n\n")
    return response  # the stream ends; the recorder's --duration stops it


async def test_a_foreign_stream_is_recorded_through_the_map(tmp_path: Path) -> None:
    app = web.Application()
    app.router.add_get("/live", foreign)
    runner, base = await serve_app(app)
    url = f"{base}/live"
    out = tmp_path / "vote.jsonl"
    try:
        outcome = await record(
            Options(url, out, duration=1.0, kind="sse", map=parse_map(orjson.dumps(MAP).decode()))
        )
    finally:
        await runner.cleanup()
    assert outcome.counts.posts == 2 and outcome.counts.edits == 1
    assert outcome.counts.deletions == 1
    assert 1 <= outcome.counts.reconnects <= 4  # the same events again: backed off, not hammered
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert (
        lines[1]["published_at"] == "2014-06-09T18:00:00Z" and lines[1]["headline"] == "Vote opens"
    )
    assert lines[3] == {**lines[3], "action": "update", "at": "2014-06-09T18:05:00Z"}
    assert lines[3]["fields"] == {"body": "Polls open at 8."}
    cues = build(load_feed(out)).cues
    assert [(str(c.type), c.post.id, c.at) for c in cues] == [
        ("post.created", "u1", 0.0),
        ("post.created", "u2", 300.0),
        ("post.updated", "u1", 300.0),
        ("post.deleted", "u2", 600.0),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[]", "--map: expected a JSON object"),
        ("{", "--map: not JSON"),
        ('{"body": "$.text"}', "--map.post: required"),
        ('{"post": "$.id", "body": "text"}', "--map.body: a JSON path starts with '$'"),
        ('{"post": "$.id", "body": "$..x"}', "--map.body: cannot read"),
        ('{"post": "$.id", "body": "$.a", "colour": "$.c"}', "--map.'colour': not one of"),
        ('{"post": "$.id", "body": "$.a", "types": {"x": "post.exploded"}}', "--map.types"),
        ('{"post": "$.id", "body": "$' + ".a" * 40 + '"}', "--map.body: cannot read"),
    ],
)
def test_bad_maps_name_their_key(text: str, message: str) -> None:
    with pytest.raises(MapError, match=r"^" + __import__("re").escape(message)):
        parse_map(text)


def test_a_bad_map_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["record", "http://127.0.0.1:9/live", "-o", str(tmp_path / "a"), "--map", "@nope.json"]
    assert main(argv) == 2
    assert "--map: nope.json: No such file" in capsys.readouterr().err


HOSTILE: list[dict[str, Any]] = [
    {"id": "h1", "type": "post.created", "archive_time": "2020-01-01T00:00:00Z",
     "post": {"id": "ok", "body": "fine"}},
    {"id": "h2", "type": "post.created", "archive_time": "2020-01-01T00:01:00Z",
     "post": {"id": "huge", "body": "x" * 300_000}},
    {"id": "h3", "type": "post.created", "archive_time": "soon",
     "post": {"id": "when", "body": "?"}},
    {"id": "h4", "type": "post.created", "archive_time": "2020-01-01T00:02:00Z",
     "post": {"id": "", "body": "no id"}},
    {"id": "h5", "type": "post.updated", "archive_time": "2020-01-01T00:03:00Z",
     "post": {"id": "ok", "body": "y" * 300_000}},
    {"id": "h6", "type": "post.updated", "archive_time": "2020-01-01T00:04:00Z",
     "post": {"id": "ok", "body": "fine, edited", "media": [{"no": "kind"}]}},
    {"id": "h7", "type": "post.pinned", "archive_time": "2020-01-01T00:05:00Z",
     "post": {"id": "ok"}},
]  # fmt: skip


async def hostile(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for event in HOSTILE:
        data = orjson.dumps(event)
        await response.write(b"id: %s\ndata: %s\n\n" % (event["id"].encode(), data))
    return response


async def test_what_the_format_refuses_is_left_out_and_the_archive_loads(tmp_path: Path) -> None:
    app = web.Application()
    app.router.add_get("/streams/h/events", hostile)
    runner, base = await serve_app(app)
    out = tmp_path / "h.jsonl"
    try:
        url = f"{base}/streams/h/events"
        outcome = await record(Options(url, out, duration=0.5, progress=True))
    finally:
        await runner.cleanup()
    assert outcome.counts.posts == 1 and outcome.counts.refused == 5 and outcome.counts.pins == 1
    feed = load_feed(out)
    assert [p.id for p in feed.posts] == ["ok"] and [c.action for c in feed.changes] == ["pin"]
