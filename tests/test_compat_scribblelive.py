"""ScribbleLive API v1: the mapping and the ``Since`` cursor as pure functions, and a follower
written from the recent-posts widget's rules (``SLRecentPostsv1.js``) against a real server."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from compat_helpers import STREAM, fast_stream, follow, snapshot
from conftest import Server, StartServer

from simulator.core.errors import InputError
from simulator.web.compat.changes import Changes, numeric_id
from simulator.web.compat.render import full_html
from simulator.web.compat.scribblelive import (
    check_callback,
    event_json,
    parse_since,
    since_answer,
)

BASE = f"/compat/scribblelive/event/{STREAM}"
A = {"id": "a", "body": "first"}
B = {"id": "b", "body": "second"}


def ms(text: str) -> int:
    return int(re.fullmatch(r"/Date\((\d+)\)/", text)[1])  # type: ignore[index]


def since_of(last_modified: str) -> str:
    """What the widget sends: ``LastModified`` in UTC, to the second, unpadded."""
    t = datetime.fromtimestamp(ms(last_modified) / 1000, UTC)
    return f"{t.year}/{t.month}/{t.day} {t.hour}:{t.minute}:{t.second}"


class Widget:
    """The widget's state and its ``DrawPosts`` rules, every post shown (no ``TotalPostsToShow``
    trimming, and no reload after a delete, so the cursor alone must carry every change)."""

    def __init__(self) -> None:
        self.posts: dict[int, dict[str, Any]] = {}
        self.last_modified: int | None = None
        self.applied: list[tuple[str, int, int]] = []

    def draw(self, answer: dict[str, Any]) -> None:
        for post in answer["Posts"]:
            if post["Id"] not in self.posts:
                self.posts[post["Id"]] = post
                self.applied.append(("add", post["Id"], ms(post["LastModified"])))
        for delete in answer["Deletes"]:
            if delete["Id"] in self.posts:
                del self.posts[delete["Id"]]
                self.applied.append(("delete", delete["Id"], 0))
        for edit in answer["Edits"]:
            newer = self.last_modified is None or ms(edit["LastModified"]) > self.last_modified
            if edit["Id"] in self.posts and newer:
                self.posts[edit["Id"]] = edit
                self.applied.append(("edit", edit["Id"], ms(edit["LastModified"])))
        self.last_modified = ms(answer["LastModified"])


def test_since_is_the_widgets_unpadded_utc_format() -> None:
    assert (
        parse_since("2026/12/6 2:5:9")
        == int(datetime(2026, 12, 6, 2, 5, 9, tzinfo=UTC).timestamp()) * 1000
    )
    assert parse_since("2014/06/24 17:03:00") > 0
    assert parse_since(None) == 0
    for bad in (
        "2026/13/1 0:0:0",
        "2026/2/30 0:0:0",
        "٢٠٢٦/1/1 0:0:0",
        "yesterday",
        "9" * 10_000,
        "NaN",
        "-1",
    ):
        with pytest.raises(InputError, match="^Since: "):
            parse_since(bad)


def test_callback_allows_the_widgets_name_and_no_script() -> None:
    assert check_callback("RecentPosts.GetInstance(0).DrawPosts") is not None
    assert check_callback("jQuery123_456") is not None
    for bad in (
        "alert(document.cookie)",
        "alert(1)",
        "a.b(1)",
        "a;b",
        "a b",
        "x=1",
        "a.b(c)",
        "ä",
        "f" * 201,
        "1a",
    ):
        with pytest.raises(InputError, match="^callback: "):
            check_callback(bad)


def test_changes_in_the_second_of_last_modified_are_sent_again_and_dropped_by_the_rules() -> None:
    changes = Changes()
    t0 = 1_700_000_000_000  # a whole second
    changes.observe([("a", A, False)], t0 + 100)
    widget = Widget()
    widget.draw(event_json("s", "T", True, changes, list(changes.posts.values())))
    # The same second: b appears and a is edited and pinned after the widget's LastModified.
    edited = {**A, "body": "first, corrected"}
    changes.observe([("a", edited, True), ("b", B, False)], t0 + 500)
    since = parse_since(since_of(f"/Date({widget.last_modified})/"))
    assert since == t0
    found = since_answer(changes, since, ascending=True)
    widget.draw(event_json("s", "T", True, changes, found["posts"], found["edits"]))
    assert widget.posts[numeric_id("a")]["IsStuck"] == 1
    assert widget.posts[numeric_id("a")]["Content"] == full_html(edited)
    # Still the same second: b is deleted; the next poll sends a and b again, and their delete.
    changes.observe([("a", edited, True)], t0 + 900)
    found = since_answer(changes, parse_since(since_of(f"/Date({widget.last_modified})/")), True)
    assert [p.post_id for p in found["posts"]] == ["a"] and found["deletes"] == ["b"]
    widget.draw(
        event_json("s", "T", True, changes, found["posts"], found["edits"], found["deletes"])
    )
    assert list(widget.posts) == [numeric_id("a")]
    kinds = [(kind, post_id) for kind, post_id, _ in widget.applied]
    assert kinds == [
        ("add", numeric_id("a")),
        ("add", numeric_id("b")),
        ("edit", numeric_id("a")),
        ("delete", numeric_id("b")),
    ]


def test_stamps_increase_between_looks_that_change_something() -> None:
    changes = Changes()
    assert changes.observe([("a", A, False)], 5) == 5
    assert changes.observe([("a", A, False)], 5) == 5  # nothing changed: the same stamp
    assert changes.observe([("a", A, True)], 5) == 6  # a pin within the same ms: a later stamp
    assert changes.posts["a"].modified == 6 and changes.posts["a"].created == 5


def test_tombstones_are_bounded() -> None:
    changes = Changes(max_tombstones=2)
    changes.observe([(str(i), A, False) for i in range(5)], 1)
    changes.observe([], 2)
    assert list(changes.deleted) == ["3", "4"]


def expected(posts: list[dict[str, Any]]) -> dict[int, tuple[str, int]]:
    return {numeric_id(p["id"]): (full_html(p), int(p["pinned"])) for p in posts}


async def get(server: Server, path: str) -> tuple[int, str, bytes]:
    async with server.session.get(server.base + path) as response:
        return response.status, response.content_type, await response.read()


async def test_the_widget_follows_a_stream_to_its_snapshot(start_server: StartServer) -> None:
    server = await fast_stream(start_server)
    widget = Widget()
    callback = "RecentPosts.GetInstance(0).DrawPosts"
    status, kind, body = await get(
        server, f"{BASE}/page/last/?Token=x&Max=1000&Order=asc&format=json&callback={callback}"
    )
    assert status == 200 and kind == "application/javascript"
    assert body.startswith(b"/**/" + callback.encode() + b"(") and body.endswith(b");")
    widget.draw(orjson.loads(body[len(callback) + 5 : -2]))

    async def poll() -> None:
        assert widget.last_modified is not None
        since = since_of(f"/Date({widget.last_modified})/")
        status, answer = await server.get(
            f"{BASE}/all/?Token=x&Order=asc&format=json&Since={since}"
        )
        assert status == 200, answer
        widget.draw(answer)

    polls = await follow(server, poll)
    final = await snapshot(server)
    shown = {post_id: (p["Content"], p["IsStuck"]) for post_id, p in widget.posts.items()}
    assert shown == expected(final)
    assert polls > 10
    assert any(p["pinned"] for p in final)
    adds = [post_id for kind, post_id, _ in widget.applied if kind == "add"]
    edits = [(post_id, at) for kind, post_id, at in widget.applied if kind == "edit"]
    deletes = [post_id for kind, post_id, _ in widget.applied if kind == "delete"]
    assert len(adds) == len(set(adds)) and len(edits) == len(set(edits)) and deletes
    assert len(deletes) == len(set(deletes)) and edits


@pytest.mark.parametrize(
    ("query", "where"),
    [
        ("page/last?Max=0", "Max"),
        ("page/last?Max=-1", "Max"),
        ("page/last?Max=18446744073709551616", "Max"),
        ("page/last?Max=NaN", "Max"),
        ("page/last?Max=%D9%A1", "Max"),  # an Arabic-Indic 1: int() reads it, we do not
        (f"page/last?Max={'9' * 4000}", "Max"),
        ("page/last?Order=sideways", "Order"),
        ("page/last?format=xml", "format"),
        ("page/last?callback=alert(1)", "callback"),
        (f"all?Since={'1' * 4000}", "Since"),
        ("all?Since=99999/1/1%200:0:0", "Since"),
        ("all?Since=2026/1/1%2024:0:0", "Since"),
        ("all?Since=NaN", "Since"),
    ],
)
async def test_bad_parameters_are_named(start_server: StartServer, query: str, where: str) -> None:
    server = await fast_stream(start_server)
    status, body = await server.get(f"{BASE}/{query}")
    assert status == 400 and body["where"] == where, body


async def test_far_future_since_is_an_empty_answer_and_unknown_stream_404(
    start_server: StartServer,
) -> None:
    server = await fast_stream(start_server)
    status, body = await server.get(f"{BASE}/all?Since=9999/12/31%2023:59:59")
    assert status == 200 and body["Posts"] == body["Edits"] == body["Deletes"] == []
    status, body = await server.get("/compat/scribblelive/event/nope/all")
    assert status == 404 and body["where"] == "path"
