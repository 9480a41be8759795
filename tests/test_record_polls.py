"""``livesim record`` of livesim's own /compat polling APIs: what the recording plays back ends as
the stream's snapshot; wrong URLs, garbage and 500s are one line or a retry, never a crash."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from compat_helpers import STREAM, fast_stream, snapshot
from conftest import Server, StartServer

from clients.record import Options, record
from clients.record.platforms import Guardian, Liveblog, ScribbleLive, from_html, platform_for
from clients.target import ClientError
from simulator.cli import main
from simulator.core import scenario as core_scenario
from simulator.sources import load_feed
from simulator.web.compat.changes import numeric_id
from simulator.web.compat.render import full_html, text

POLL = 0.1
Final = dict[str, tuple[Any, ...]]


def numeric(post_id: str) -> str:
    return str(numeric_id(post_id))


def same(post_id: str) -> str:
    return post_id


PLATFORMS = {
    "scribblelive": (f"/compat/scribblelive/event/{STREAM}/all", numeric, False),
    "wp-liveblog": (f"/compat/wp-liveblog/{STREAM}/entries", numeric, True),
    "guardian": (f"/compat/guardian/{STREAM}?show-blocks=body", same, True),
    "liveblog": (f"/compat/liveblog/client_blogs/{STREAM}/posts", same, True),
}


def played(out: Path) -> tuple[Final, set[str]]:
    """Each post as the recording's script leaves it, and the posts it deletes."""
    posts: Final = {}
    pinned: set[str] = set()
    deleted: set[str] = set()
    for cue in core_scenario.build(load_feed(out)).cues:
        post = cue.post
        if cue.type in ("post.created", "post.updated"):
            posts[post.id] = (post.headline, post.body, post.key_event)
        elif cue.type == "post.deleted":
            posts.pop(post.id, None)
            deleted.add(post.id)
        elif cue.type in ("post.pinned", "post.unpinned"):
            (pinned.add if cue.type == "post.pinned" else pinned.discard)(post.id)
    return {k: (*v, k in pinned) for k, v in posts.items()}, deleted


async def record_until_ended(server: Server, url: str, out: Path) -> Any:
    task = asyncio.ensure_future(record(Options(source=url, output=out, poll=POLL)))
    while not task.done():
        _, state = await server.get(f"/api/streams/{STREAM}")
        if state["state"] == "ended":
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(2.5)  # the seconds the whole-second cursors hold back are over
    assert not task.done(), task.exception()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("platform", list(PLATFORMS))
async def test_a_recorded_platform_plays_back_as_the_streams_snapshot(
    start_server: StartServer, tmp_path: Path, platform: str
) -> None:
    path, name, key_events = PLATFORMS[platform]
    server = await fast_stream(start_server)
    out = tmp_path / f"{platform}.jsonl"
    await record_until_ended(server, server.base + path, out)
    final = await snapshot(server)
    got, deleted = played(out)
    expected = {
        name(p["id"]): (
            p.get("headline") or None,
            text(p),
            bool(p.get("key_event")) and key_events,
            p["pinned"],
        )
        for p in final
    }
    assert got == expected
    assert any(p["pinned"] for p in final)
    # Whole-second cursors serve a second once it is over: at speed 2000 a retraction is often
    # in the second its post appeared, and the post is never seen (the other test has deletes).
    assert deleted or platform in ("wp-liveblog", "liveblog")
    assert not deleted & set(expected)
    cues = core_scenario.build(load_feed(out)).cues
    # Likewise an entry is sent as it is now: one created and edited within a second is new.
    assert any(c.type == "post.updated" for c in cues) or platform in ("wp-liveblog", "liveblog")
    once = [(c.type, c.post.id, c.post.body) for c in cues]
    assert len(once) == len(set(once))  # each change recorded once
    again = await record(Options(source=server.base + path, output=out, poll=POLL, duration=1.5))
    assert again.counts.polls >= 5 and again.counts.events == 0  # a cursor from 0 adds nothing


def test_the_url_shape_names_the_platform() -> None:
    base = "http://h:1/compat"
    for url, kind in [
        (f"{base}/scribblelive/event/x", "scribblelive"),
        (f"{base}/scribblelive/event/x/page/last?Token=t", "scribblelive"),
        (f"{base}/wp-liveblog/x/entries/0/5/", "wp-liveblog"),
        (f"{base}/guardian/x", "guardian"),
        ("https://content.guardianapis.com/world/live/x?show-blocks=body&api-key=k", "guardian"),
        (f"{base}/liveblog/client_blogs/x/posts", "liveblog"),
        (f"{base}/streams/x/events", None),
        ("http://h/feed.xml", None),
    ]:
        found = platform_for(url)
        assert (found.kind if found else None) == kind, url
    sl = platform_for(f"{base}/scribblelive/event/x/page/last?Token=t&Since=2020/1/1%200:0:0")
    assert isinstance(sl, ScribbleLive)
    assert sl.url(0) == f"{base}/scribblelive/event/x/all/?Token=t&Order=asc&format=json"
    sl.take({"LastModified": "/Date(1765000000999)/", "Posts": [], "Edits": [], "Deletes": []})
    assert sl.url(0).endswith("&Since=2025%2F12%2F6+5%3A46%3A40")
    guardian = platform_for("https://g/world/live/x?show-blocks=body&api-key=k")
    assert isinstance(guardian, Guardian)
    assert (
        guardian.url(0) == "https://g/world/live/x?api-key=k&show-blocks=body%3Apublished-since%3A0"
    )
    with pytest.raises(ValueError, match="not a Liveblog URL"):
        platform_for(f"{base}/other/posts", "liveblog")


def test_html_bodies_read_back_as_the_posts_text() -> None:
    record = {"headline": "A <b>&", "body": "One & two\n\n<three>\n\n  four\nfive  "}
    assert from_html(full_html(record), headline=True) == ("A <b>&", text(record))
    assert from_html("<div><p>x</p><ul><li>y</li></ul>z<br>w</div>") == (None, "x\n\ny\n\nz\nw")


def url_of(runner: web.AppRunner, path: str) -> str:
    return f"http://127.0.0.1:{runner.addresses[0][1]}{path}"


async def serve(handler: Callable[[web.Request], Any]) -> web.AppRunner:
    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


HUGE = b'{"entries": [' + b'"x",' * (5 << 20) + b'"x"]}'


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"<html><body>Log in</body></html>", "text/html", "is not JSON"),
        (b'{"entries": "none"}', "application/json", r"\$\.entries: missing"),
        (b'{"entries": [{"id": "x", "type": "new"}]}', "application/json", r"\$\.entries\[0\]\.id"),
        (HUGE, "application/json", "over 16777216 bytes"),
    ],
)
async def test_a_first_answer_that_is_not_the_platforms_is_one_line(
    tmp_path: Path, body: bytes, content_type: str, message: str
) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type=content_type)

    runner = await serve(handler)
    url = url_of(runner, "/x/entries")
    try:
        with pytest.raises(ClientError, match=message) as caught:
            await asyncio.wait_for(record(Options(source=url, output=tmp_path / "x.jsonl")), 20)
    finally:
        await runner.cleanup()
    assert "\n" not in str(caught.value) and "--source wp-liveblog" in str(caught.value)


async def test_500s_and_garbage_after_a_good_answer_are_retried_then_recovered(
    tmp_path: Path,
) -> None:
    answers = iter(
        [(200, '{"entries": [], "latest_timestamp": null}')]
        + [(500, "oops"), (200, "<html>proxy</html>"), (503, "")] * 2
    )
    new = '{"id": 7, "type": "new", "render": "<h2>Up</h2><p>Back</p>", "timestamp": 1}'
    edit = (
        '{"id": 7, "type": "update", "render": "<p>Back, for good</p>", "timestamp": 2,'
        ' "css_classes": "liveblog-entry liveblog-entry-sticky", "key_event": true}'
    )
    later = [
        (200, f'{{"entries": [{new}], "latest_timestamp": 1}}'),
        (200, f'{{"entries": [{new}, {edit}], "latest_timestamp": 2}}'),
        (200, '{"entries": [{"id": 7, "type": "delete", "timestamp": 3}], "latest_timestamp": 3}'),
    ]
    starts: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        starts.append(request.path.split("/")[-3])
        status, body = next(answers, None) or (later.pop(0) if len(later) > 1 else later[0])
        return web.Response(status=status, text=body, content_type="application/json")

    runner = await serve(handler)
    out = tmp_path / "r.jsonl"
    try:
        url = url_of(runner, "/compat/wp-liveblog/x/entries")
        outcome = await record(Options(source=url, output=out, poll=0.01, duration=3.0))
    finally:
        await runner.cleanup()
    counts = outcome.counts
    assert counts.reconnects == 6 and counts.posts == 1  # the same entry again is not a post
    assert (counts.edits, counts.pins, counts.deletions) == (1, 1, 1)
    assert starts[:8] == ["0"] * 8 and starts[8:11] == ["2", "3", "4"]
    cues = core_scenario.build(load_feed(out)).cues
    assert [(str(c.type), c.post.headline, c.post.body) for c in cues] == [
        ("post.created", "Up", "Back"),
        ("post.updated", None, "Back, for good"),
        ("post.pinned", None, "Back, for good"),
        ("post.deleted", None, "Back, for good"),
    ]


async def test_a_wrong_url_is_one_line(tmp_path: Path, start_server: StartServer) -> None:
    server = await fast_stream(start_server)
    for path in (
        "/compat/scribblelive/event/nope/all",
        "/compat/guardian/nope",
        "/compat/liveblog/client_blogs/nope/posts",
        "/compat/wp-liveblog/nope/entries",
    ):
        options = Options(source=server.base + path, output=tmp_path / "w.jsonl")
        with pytest.raises(ClientError, match=re.escape(f"{server.base}{path}") + ".*HTTP 404"):
            await asyncio.wait_for(record(options), 10)
    with pytest.raises(ClientError, match="not a Liveblog URL"):
        await record(
            Options(source=server.base + "/x", output=tmp_path / "l.jsonl", kind="liveblog")
        )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["http://h/compat/guardian/x", "--source", "guardian", "--type", "sse"], "--source"),
        (["http://h/x/entries", "--source", "wp-liveblog", "--map", "{}"], "--source"),
        (["http://h/x", "--source", "liveblog"], "--source: http://h/x: not a Liveblog URL"),
        (["http://h/x", "--source", "tumblr"], "--source: invalid choice"),
    ],
)
def test_bad_source_flags_are_usage_errors(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "a.jsonl"
    with pytest.raises(SystemExit) as exit_info:
        raise SystemExit(main(["record", *argv, "-o", str(out)]))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_retractions_and_deleted_posts_are_deletions() -> None:
    guardian = Guardian("http://h/compat/guardian/x")
    blocks = [
        {"id": "b", "published": False, "lastModifiedDate": "2026-12-06T00:00:02.500Z"},
        {
            "id": "a",
            "bodyHtml": "<p>One</p><p>Two &amp; three</p>",
            "title": "A",
            "attributes": {"pinned": True, "keyEvent": True},
            "contributors": ["Ann"],
            "firstPublishedDate": "2014-06-24T21:07:29Z",
            "lastModifiedDate": "2026-12-06T00:00:01.000Z",
        },
    ]
    answer = {"response": {"content": {"blocks": {"requestedBodyBlocks": {"body": blocks}}}}}
    items, more = guardian.take(answer)
    assert [(i.id, i.deleted) for i in items] == [("a", False), ("b", True)] and not more
    assert items[0].body == "One\n\nTwo & three" and items[0].pinned and items[0].key_event
    assert items[0].published_at == "2014-06-24T21:07:29.000Z" and items[0].author == "Ann"
    assert guardian.url(0).endswith("published-since%3A1796515202500")
    liveblog = Liveblog("http://h/compat/liveblog/client_blogs/x/posts?token=t")
    gone = {"_id": "c", "_updated": "2026-12-06T00:00:03+00:00", "deleted": False}
    later = {**gone, "published_date": "2026-12-06T00:00:00+00:00"}
    later["unpublished_date"] = "2026-12-06T00:00:03+00:00"
    items, more = liveblog.take({"_items": [{**gone, "deleted": True}, later]})
    assert [i.deleted for i in items] == [True, True] and not more
    assert "token=t" in liveblog.url(0) and "2026-12-06T00%3A00%3A03" in liveblog.url(0)
    with pytest.raises(ValueError, match=r"\$\._items\[0\]\._updated"):
        liveblog.take({"_items": [{"_id": "d", "_updated": "soon"}]})
    assert "2026-12-06T00%3A00%3A03" in liveblog.url(0)  # a bad answer moves no cursor
