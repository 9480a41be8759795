"""WordPress Liveblog: entries between two seconds as pure functions, and a follower written from
the React front end's rules (``services/api.js`` polling, ``flatten_entries``) on a real server."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from compat_helpers import STREAM, fast_stream, follow, snapshot
from conftest import Server, StartServer

from simulator.web.compat.changes import Changes, numeric_id
from simulator.web.compat.render import full_html
from simulator.web.compat.wp_liveblog import answer, cache_control

BASE = f"/compat/wp-liveblog/{STREAM}/entries"
A = {"id": "a", "body": "first"}
B = {"id": "b", "body": "second"}


class FrontEnd:
    """The front end's state: entries by id, updated by the rules of ``flatten_entries``, and
    the newest timestamp it polls from."""

    def __init__(self) -> None:
        self.entries: dict[int, dict[str, Any]] = {}
        self.newest: int | None = None
        self.applied: list[tuple[str, int, int]] = []

    def start(self) -> int:
        return self.newest + 1 if self.newest is not None else 0

    def take(self, body: dict[str, Any]) -> None:
        for entry in body["entries"]:
            kind, entry_id = entry["type"], entry["id"]
            if kind == "new" and entry_id not in self.entries:
                self.entries[entry_id] = entry
            elif kind == "update" and entry_id in self.entries:
                self.entries[entry_id] = entry
            elif kind == "delete":
                self.entries.pop(entry_id, None)
            self.applied.append((kind, entry_id, entry["timestamp"]))
        if body["latest_timestamp"] is not None:
            self.newest = body["latest_timestamp"]


def test_changes_of_the_current_second_wait_for_it_to_end() -> None:
    changes = Changes()
    t0 = 1_700_000_000
    changes.observe([("a", A, False)], t0 * 1000 + 100)
    front = FrontEnd()
    front.take(answer(changes, 0, t0 + 5, now=t0 + 0.2))
    assert front.entries == {}  # a is of the second being answered in: held back
    front.take(answer(changes, front.start(), t0 + 5, now=t0 + 1.1))
    assert list(front.entries) == [numeric_id("a")] and front.newest == t0
    # b appears, a is edited and pinned, b deleted, all in the next second.
    changes.observe([("a", A, False), ("b", B, False)], (t0 + 1) * 1000 + 300)
    edited = {**A, "body": "first, corrected"}
    changes.observe([("a", edited, True)], (t0 + 1) * 1000 + 600)
    front.take(answer(changes, front.start(), t0 + 5, now=t0 + 1.9))
    assert front.newest == t0  # nothing served from the second not over yet
    front.take(answer(changes, front.start(), t0 + 5, now=t0 + 2.0))
    # b came and went between two polls: only its delete is left, a no-op for the front end.
    assert [kind for kind, _, _ in front.applied] == ["new", "update", "delete"]
    assert front.entries[numeric_id("a")]["render"] == full_html(edited)
    assert "liveblog-entry-sticky" in front.entries[numeric_id("a")]["css_classes"]


def test_cache_control_until_a_future_end_and_bounded() -> None:
    assert cache_control(100, 90.5) == "max-age=10"
    assert cache_control(100, 100.0) is None
    assert cache_control(2**40, 0.0) == "max-age=3600"


def expected(posts: list[dict[str, Any]]) -> dict[int, tuple[str, bool]]:
    return {numeric_id(p["id"]): (full_html(p), p["pinned"]) for p in posts}


async def poll_once(server: Server, front: FrontEnd) -> None:
    interval = 2
    end = round(time.time() / interval) * interval
    async with server.session.get(f"{server.base}{BASE}/{front.start()}/{end}/") as response:
        assert response.status == 200
        body = await response.json()
        if end > time.time():
            assert response.headers["Cache-Control"].startswith("max-age=")
    front.take(body)


async def test_the_front_end_follows_a_stream_to_its_snapshot(start_server: StartServer) -> None:
    server = await fast_stream(start_server)
    front = FrontEnd()
    await follow(server, lambda: poll_once(server, front), pause=0.1)
    await asyncio.sleep(2.2)  # the last second over, and the rounded end past it
    await poll_once(server, front)
    final = await snapshot(server)
    shown = {
        entry_id: (e["render"], "liveblog-entry-sticky" in e["css_classes"])
        for entry_id, e in front.entries.items()
    }
    assert shown == expected(final)
    assert any(p["pinned"] for p in final)
    kinds = [kind for kind, _, _ in front.applied]
    assert "update" in kinds and "delete" in kinds
    news = [entry_id for kind, entry_id, _ in front.applied if kind == "new"]
    assert len(news) == len(set(news))


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("0/18446744073709551616/", 400, "rest_invalid_param"),
        (f"{'9' * 4000}/0/", 400, "rest_invalid_param"),
        ("-1/10/", 404, "rest_no_route"),
        ("NaN/10/", 404, "rest_no_route"),
        ("1.5/10/", 404, "rest_no_route"),
        ("%D9%A1/10/", 404, "rest_no_route"),
    ],
)
async def test_bad_timestamps_answer_as_wordpress(
    start_server: StartServer, path: str, status: int, code: str
) -> None:
    server = await fast_stream(start_server)
    got, body = await server.get(f"{BASE}/{path}")
    assert got == status and body["code"] == code, body
    if status == 400:
        assert body["data"]["params"]


async def test_an_empty_or_reversed_range_is_empty(start_server: StartServer) -> None:
    server = await fast_stream(start_server)
    for path in ("0/0/", "10/5/", f"{2**53}/{2**53}"):
        status, body = await server.get(f"{BASE}/{path}")
        assert status == 200 and body["entries"] == [] and body["latest_timestamp"] is None
