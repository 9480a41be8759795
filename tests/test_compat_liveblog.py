"""Liveblog (Sourcefabric): the ``_updated`` filter and pages as pure functions, and a poller
written from livebridge-liveblog's rules (``source.py``, ``post.py``) on a real server."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from compat_helpers import STREAM, fast_stream, follow, snapshot
from conftest import StartServer

from simulator.core.errors import InputError
from simulator.web.compat.changes import Changes
from simulator.web.compat.liveblog import page_of, updated_after
from simulator.web.compat.render import body_html

BASE = f"/compat/liveblog/client_blogs/{STREAM}/posts"


def source(last_updated: datetime) -> str:
    """The query livebridge sends: ``_updated`` greater than its cursor, to the second."""
    updated = {"gt": datetime.strftime(last_updated, "%Y-%m-%dT%H:%M:%S+00:00")}
    query = {
        "query": {"filtered": {"filter": {"and": [{"range": {"_updated": updated}}]}}},
        "sort": [{"_updated": {"order": "asc"}}],
    }
    return json.dumps(query)


class Poller:
    """livebridge's state: posts by ``_id`` and ``get_action``'s create / update / delete."""

    def __init__(self) -> None:
        self.posts: dict[str, dict[str, Any]] = {}
        self.last_updated = datetime(1970, 1, 1, tzinfo=UTC)
        self.actions: list[tuple[str, str, str]] = []

    def take(self, body: dict[str, Any]) -> None:
        for item in body["_items"]:
            deleted = item["deleted"] or (
                item["unpublished_date"] and item["unpublished_date"] > item["published_date"]
            )
            known = item["_id"] in self.posts
            if deleted:
                action = "delete" if known else "ignore"
                self.posts.pop(item["_id"], None)
            else:
                action = "update" if known else "create"
                self.posts[item["_id"]] = item
            self.actions.append((action, item["_id"], item["_updated"]))
            self.last_updated = datetime.fromisoformat(item["_updated"])


def test_the_updated_filter_is_read_from_the_elasticsearch_query() -> None:
    t = datetime(2026, 12, 6, 2, 5, 9, tzinfo=UTC)
    assert updated_after(source(t)) == int(t.timestamp()) + 1
    gte = json.dumps(
        {
            "query": {
                "filtered": {"filter": {"range": {"_updated": {"gte": "2026-12-06T02:05:09Z"}}}}
            }
        }
    )
    assert updated_after(gte) == int(t.timestamp())
    assert updated_after(None) == 0 and updated_after(json.dumps({"sort": []})) == 0
    for bad in (
        "{",
        "x" * 9000,
        source(t).replace("2026-12-06T02:05:09", "NaN"),
        source(t).replace("12-06", "13-06"),
    ):
        with pytest.raises(InputError, match="^source"):
            updated_after(bad)


def test_a_page_never_ends_inside_a_second() -> None:
    items: list[Any] = [(1000, "a"), (1500, "b"), (1900, "c"), (2000, "d"), (3000, "e")]
    assert [i for _, i in page_of(items, 1, 2)] == ["a", "b", "c"]
    assert [i for _, i in page_of(items, 2, 2)] == ["d", "e"]
    assert page_of(items, 3, 2) == []
    assert [i for _, i in page_of(items, 1, 10)] == ["a", "b", "c", "d", "e"]


def test_changes_of_the_current_second_wait() -> None:
    from simulator.web.compat.liveblog import changes_from

    changes = Changes()
    changes.observe([("a", {"id": "a", "body": "x"}, False)], 5_500)
    assert changes_from(changes, 0, 4) == []
    assert [i.post_id for _, i in changes_from(changes, 0, 5)] == ["a"]  # type: ignore[union-attr]


async def test_the_poller_follows_a_stream_to_its_snapshot(start_server: StartServer) -> None:
    server = await fast_stream(start_server)
    poller = Poller()

    async def poll() -> None:
        params = urlencode(
            [("max_results", 20), ("page", 1), ("source", source(poller.last_updated))]
        )
        status, body = await server.get(f"{BASE}?{params}")
        assert status == 200, body
        poller.take(body)

    await follow(server, poll, pause=0.05)
    await asyncio.sleep(1.1)  # the last second over
    for _ in range(5):  # pages of 20 catch up
        await poll()
    final = await snapshot(server)
    shown = {
        i: (p["groups"][1]["refs"][0]["item"]["text"], p["sticky"], p["lb_highlight"])
        for i, p in poller.posts.items()
    }
    assert shown == {p["id"]: (body_html(p), p["pinned"], bool(p.get("key_event"))) for p in final}
    assert any(p["pinned"] for p in final)
    kinds = [a for a, _, _ in poller.actions]
    assert {"delete", "ignore"} & set(kinds) and "update" in kinds  # retractions reach it
    assert len(poller.actions) == len(set(poller.actions))


@pytest.mark.parametrize(
    ("query", "where"),
    [
        ("max_results=0", "max_results"),
        ("max_results=-1", "max_results"),
        ("max_results=18446744073709551616", "max_results"),
        ("page=0", "page"),
        ("page=NaN", "page"),
        (f"source={'%7B' * 2000}", "source"),
        (f"source={'%5B' * 1200}{'%5D' * 1200}", "source"),  # deeper than orjson reads
        ("source=%7B%22query%22", "source"),
        (
            "source="
            + json.dumps({"query": {"filtered": {"filter": {"range": {"_updated": {"gt": 5}}}}}}),
            "source._updated.gt",
        ),
    ],
)
async def test_bad_parameters_are_named(start_server: StartServer, query: str, where: str) -> None:
    server = await fast_stream(start_server)
    status, body = await server.get(f"{BASE}?{query}")
    assert status == 400 and body["_status"] == "ERR", body
    assert body["_error"]["message"].startswith(where + ":")


async def test_far_pages_and_future_filters_are_empty(start_server: StartServer) -> None:
    server = await fast_stream(start_server)
    far = source(datetime(9999, 1, 1, tzinfo=UTC))
    for query in ("page=1000000", urlencode([("source", far)])):
        status, body = await server.get(f"{BASE}?{query}")
        assert status == 200 and body["_items"] == [], body
