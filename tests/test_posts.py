"""Live posting against a real server: REST and WebSocket, subscribers, snapshot, resume, limits."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import pytest
from conftest import BUNDLED_ID, Server, StartServer
from sse import connect, envelope
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

from simulator.core.model import Feed

TIMEOUT = 10
PAUSED = {"id": "s", "feed": BUNDLED_ID, "speed": 60, "loop": False, "paused": True}
POST = {
    "headline": "Breaking: dam reopened",
    "body": "Engineers reopened the dam at 10:00.\n\nMore soon.",
    "author": "Desk",
    "source": "AP",
    "media": [{"kind": "image", "caption": "The dam", "url": "https://example.org/dam.jpg"}],
    "key_event": True,
}


async def send(server: Server, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with server.session.request(method, server.base + path, json=body) as response:
        return response.status, await response.json()


async def recv_json(ws: ClientConnection) -> dict[str, Any]:
    value = json.loads(await ws.recv())
    assert isinstance(value, dict)
    return value


async def test_a_post_reaches_every_subscriber_at_once(start_server: StartServer) -> None:
    server = await start_server(streams=[PAUSED])
    session = server.session
    async with (
        asyncio.timeout(TIMEOUT),
        connect(session, server.base + "/streams/s/events") as sse,
        ws_connect(server.ws_base + "/streams/s/ws") as ws,
    ):
        await ws.send(json.dumps({"op": "ping"}))
        assert (await recv_json(ws))["type"] == "pong"
        status, answer = await server.post("/api/streams/s/posts", POST)
        assert status == 201, answer
        post = answer["post"]
        assert post["id"] == "live-1"
        assert post["pinned"] is False and post["key_event"] is True
        assert post["media"] == POST["media"]
        async with asyncio.timeout(1.0):  # the bound: seen within a second
            by_sse = envelope(await sse.next_event())
            by_ws = await recv_json(ws)
    assert by_sse == by_ws
    assert by_sse["type"] == "post.created"
    assert by_sse["id"] == answer["cursor"]
    assert {k: by_sse["post"][k] for k in POST} == POST
    assert by_sse["post"]["published_at"] == by_sse["archive_time"]  # the replay's position


async def test_snapshot_and_resume_include_live_posts(start_server: StartServer) -> None:
    server = await start_server(streams=[PAUSED])
    _, before = await server.get("/api/streams/s/posts")
    status, made = await server.post("/api/streams/s/posts", {"body": "First live post."})
    assert status == 201
    _, snapshot = await server.get("/api/streams/s/posts")
    assert snapshot["posts"][0]["id"] == made["post"]["id"]
    assert snapshot["cursor"] == made["cursor"]
    # A subscriber that had the earlier snapshot resumes with exactly the new event.
    async with (
        asyncio.timeout(TIMEOUT),
        connect(
            server.session, server.base + "/streams/s/events", last_event_id=before["cursor"]
        ) as sse,
    ):
        event = envelope(await sse.next_event())
    assert event["type"] == "post.created" and event["post"]["id"] == made["post"]["id"]
    status, shown = await server.get(f"/api/streams/s/posts/{made['post']['id']}")
    assert status == 200 and shown["post"]["body"] == "First live post."


async def test_edit_pin_unpin_delete(start_server: StartServer) -> None:
    server = await start_server(streams=[PAUSED])
    _, made = await server.post("/api/streams/s/posts", {"body": "Draft.", "pinned": True})
    post_id = made["post"]["id"]
    assert made["post"]["pinned"] is True
    cursor = made["cursor"]
    status, edited = await send(
        server, "PATCH", f"/api/streams/s/posts/{post_id}", {"body": "Final.", "headline": "H"}
    )
    assert status == 200, edited
    assert edited["post"]["body"] == "Final." and edited["post"]["pinned"] is True
    status, unpinned = await server.post(f"/api/streams/s/posts/{post_id}/unpin")
    assert status == 200 and unpinned["post"]["pinned"] is False
    status, pinned = await server.post(f"/api/streams/s/posts/{post_id}/pin")
    assert status == 200 and pinned["post"]["pinned"] is True
    status, deleted = await server.delete(f"/api/streams/s/posts/{post_id}")
    assert status == 200 and deleted["deleted"] == post_id
    _, snapshot = await server.get("/api/streams/s/posts")
    assert post_id not in [p["id"] for p in snapshot["posts"]]
    async with (
        asyncio.timeout(TIMEOUT),
        connect(server.session, server.base + "/streams/s/events", last_event_id=cursor) as sse,
    ):
        events = [envelope(await sse.next_event()) for _ in range(4)]
    assert [e["type"] for e in events] == [
        "post.updated",
        "post.unpinned",
        "post.pinned",
        "post.deleted",
    ]
    assert events[0]["post"]["headline"] == "H"
    status, gone = await send(server, "PATCH", f"/api/streams/s/posts/{post_id}", {"body": "x"})
    assert status == 404 and gone["where"] == "path"


async def test_archive_posts_can_be_edited_and_pinned(start_server: StartServer) -> None:
    server = await start_server(streams=[{**PAUSED, "start": "end"}])
    _, snapshot = await server.get("/api/streams/s/posts")
    archive_id = snapshot["posts"][3]["id"]
    status, answer = await send(
        server, "PATCH", f"/api/streams/s/posts/{archive_id}", {"key_event": True}
    )
    assert status == 200 and answer["post"]["key_event"] is True
    _, snapshot = await server.get("/api/streams/s/posts")
    assert archive_id in snapshot["key_events"]


async def test_live_posts_survive_seek_back_and_restart(start_server: StartServer) -> None:
    server = await start_server(streams=[{**PAUSED, "start": "end"}])
    _, made = await server.post("/api/streams/s/posts", {"body": "Stays.", "pinned": True})
    await server.post("/api/streams/s/posts", {"body": "Goes."})
    await server.delete("/api/streams/s/posts/live-2")
    for path, body in [("seek", {"to": "start"}), ("restart", None), ("seek", {"to": "end"})]:
        status, _ = await server.post(f"/api/streams/s/{path}", body)
        assert status == 200
        _, snapshot = await server.get("/api/streams/s/posts")
        live = [(p["id"], p["pinned"]) for p in snapshot["posts"] if p["id"].startswith("live-")]
        assert live == [(made["post"]["id"], True)], path


async def test_websocket_post_ops(start_server: StartServer) -> None:
    server = await start_server(streams=[PAUSED])
    async with asyncio.timeout(TIMEOUT), ws_connect(server.ws_base + "/streams/s/ws") as ws:
        await ws.send(json.dumps({"op": "post", "body": "Over the socket.", "key_event": True}))
        created = await recv_json(ws)
        assert created["type"] == "post.created" and created["post"]["id"] == "live-1"
        await ws.send(json.dumps({"op": "update_post", "post": "live-1", "body": "Edited."}))
        assert (await recv_json(ws))["post"]["body"] == "Edited."
        await ws.send(json.dumps({"op": "pin_post", "post": "live-1"}))
        assert (await recv_json(ws))["type"] == "post.pinned"
        await ws.send(json.dumps({"op": "unpin_post", "post": "live-1"}))
        assert (await recv_json(ws))["type"] == "post.unpinned"
        await ws.send(json.dumps({"op": "delete_post", "post": "live-1"}))
        assert (await recv_json(ws))["type"] == "post.deleted"
        for message, where in [
            ({"op": "update_post", "post": "nope", "body": "x"}, "$.post"),
            ({"op": "delete_post"}, "$.post"),
            ({"op": "post"}, "$.body"),
            ({"op": "post", "body": "x", "headline": "h" * 2000}, "$.headline"),
            ({"op": "post", "body": "x", "colour": "red"}, "$.colour"),
        ]:
            await ws.send(json.dumps(message))
            error = await recv_json(ws)
            assert error["type"] == "error" and error["where"] == where, (message, error)
        await ws.send(json.dumps({"op": "ping"}))
        assert (await recv_json(ws))["type"] == "pong"


HOSTILE: list[tuple[Any, str]] = [
    ({}, "body.body"),
    ({"body": ""}, "body.body"),
    ({"body": 5}, "body.body"),
    ({"body": None}, "body.body"),
    ({"body": "x" * (64 * 1024 + 1)}, "body.body"),
    ({"body": "é" * (40 * 1024)}, "body.body"),  # 80 KB in UTF-8
    ({"body": "x", "headline": "h" * 10_240}, "body.headline"),
    ({"body": "x", "author": ["a"]}, "body.author"),
    ({"body": "x", "source": {"a": 1}}, "body.source"),
    ({"body": "x", "key_event": "yes"}, "body.key_event"),
    ({"body": "x", "key_event": 1}, "body.key_event"),
    ({"body": "x", "pinned": None}, "body.pinned"),
    ({"body": "x", "media": "img"}, "body.media"),
    ({"body": "x", "media": [{"kind": "image"}] * 21}, "body.media"),
    ({"body": "x", "media": [{"caption": "no kind"}]}, "body.media[0].kind"),
    ({"body": "x", "media": [{"kind": "hologram"}]}, "body.media[0].kind"),
    ({"body": "x", "media": [{"kind": "gallery", "count": 2**64}]}, "body.media[0].count"),
    ({"body": "x", "media": [{"kind": "gallery", "count": 1e308}]}, "body.media[0].count"),
    ({"body": "x", "media": [{"kind": "image", "url": "u" * 10_240}]}, "body.media[0].url"),
    ({"body": "x", "media": [{"kind": "image", "exif": {}}]}, "body.media[0].exif"),
    ({"body": "x", "id": "p-66e33032b5"}, "body.id"),
    ({"body": "x\u0000y"}, "body.body"),
    ([1, 2], "body"),
]


@pytest.mark.parametrize(("body", "where"), HOSTILE)
async def test_hostile_post_bodies(start_server: StartServer, body: Any, where: str) -> None:
    server = await start_server(streams=[PAUSED])
    status, answer = await server.post("/api/streams/s/posts", body)
    assert status == 400, answer
    assert answer["where"] == where
    assert len(answer["error"]) < 300
    _, snapshot = await server.get("/api/streams/s/posts")
    assert snapshot["posts"] == []
    status, _ = await server.get("/healthz")
    assert status == 200


async def test_patch_needs_a_field_and_a_post(start_server: StartServer) -> None:
    server = await start_server(streams=[PAUSED])
    await server.post("/api/streams/s/posts", {"body": "x"})
    status, answer = await send(server, "PATCH", "/api/streams/s/posts/live-1", {})
    assert status == 400 and answer["where"] == "body"
    status, answer = await send(server, "PATCH", "/api/streams/s/posts/live-1", {"body": None})
    assert status == 400 and answer["where"] == "body.body"
    status, answer = await send(server, "PATCH", "/api/streams/s/posts/live-9", {"body": "y"})
    assert status == 404 and answer["where"] == "path"
    status, answer = await server.post("/api/streams/s/posts/" + "x" * 5000 + "/pin")
    assert status == 404 and len(answer["error"]) < 300
    status, answer = await server.post("/api/streams/nope/posts", {"body": "x"})
    assert status == 404


async def test_live_ids_never_collide_with_the_archive(
    start_server: StartServer, bundled: Feed
) -> None:
    posts = (replace(bundled.posts[0], id="live-1"), *bundled.posts[1:])
    feed = replace(bundled, posts=posts)
    server = await start_server(streams=[PAUSED], feeds={BUNDLED_ID: feed})
    _, made = await server.post("/api/streams/s/posts", {"body": "x"})
    assert made["post"]["id"] == "live-2"


async def test_patch_is_allowed_by_cors(server: Server) -> None:
    async with server.session.options(server.base + "/api/streams") as response:
        assert "PATCH" in response.headers["Access-Control-Allow-Methods"]


async def test_a_foreign_origin_cannot_post(server: Server) -> None:
    headers = {"Origin": "https://evil.example"}
    url = f"{server.base}/api/streams/{BUNDLED_ID}/posts"
    async with server.session.post(url, json={"body": "x"}, headers=headers) as response:
        assert response.status == 403
    async with server.session.patch(url + "/live-1", json={"body": "x"}, headers=headers) as r:
        assert r.status == 403


async def test_websocket_post_ops_on_a_private_replay(server: Server) -> None:
    url = f"{server.ws_base}/feeds/{BUNDLED_ID}/ws?paused=true"
    async with asyncio.timeout(TIMEOUT), ws_connect(url) as ws:
        assert (await recv_json(ws))["data"]["reason"] == "start"
        await ws.send(json.dumps({"op": "post", "body": "Mine only."}))
        created = await recv_json(ws)
        assert created["type"] == "post.created" and created["post"]["id"] == "live-1"
        assert created["stream"].startswith("private-")
    _, snapshot = await server.get(f"/api/streams/{BUNDLED_ID}/posts")
    assert "live-1" not in [p["id"] for p in snapshot["posts"]]  # the shared stream is untouched
