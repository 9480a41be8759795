"""Every platform's cursor, exact under any timing: random edits, pins and deletes between polls
at random moments (many in one second), each client following the rules of its platform's own
client code, and every one ends with exactly the posts, texts and pins the stream shows."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_compat_guardian import Reader
from test_compat_liveblog import Poller, source
from test_compat_scribblelive import Widget, since_of
from test_compat_wp_liveblog import FrontEnd

from simulator.web.compat import guardian, liveblog, scribblelive, wp_liveblog
from simulator.web.compat.changes import Changes, numeric_id
from simulator.web.compat.render import body_html, full_html

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
T0 = 1_700_000_000_000
ACTIONS = ("create", "edit", "pin", "delete", "poll_sl", "poll_wp", "poll_lb", "poll_gu")
steps = st.lists(st.tuples(st.sampled_from(ACTIONS), st.integers(0, 1300), st.integers(0, 99)))


class Blog:
    """The stream's visible posts, as the projection holds them: a new record object per edit."""

    def __init__(self) -> None:
        self.posts: dict[str, tuple[dict[str, Any], bool]] = {}
        self.made = 0

    def act(self, action: str, pick: int) -> None:
        if action == "create" or not self.posts:
            self.made += 1
            post_id = f"p{self.made}"
            self.posts[post_id] = ({"id": post_id, "body": f"{post_id} v0"}, False)
            return
        post_id = list(self.posts)[pick % len(self.posts)]
        record, pinned = self.posts[post_id]
        if action == "edit":
            self.posts[post_id] = ({**record, "body": f"{record['body']}+"}, pinned)
        elif action == "pin":
            self.posts[post_id] = (record, not pinned)
        else:
            del self.posts[post_id]

    def view(self) -> list[tuple[str, dict[str, Any], bool]]:
        return [(post_id, record, pinned) for post_id, (record, pinned) in self.posts.items()]


class Clients:
    def __init__(self, changes: Changes) -> None:
        self.changes = changes
        self.widget = Widget()
        page = scribblelive.last_page(changes, 1000, ascending=True)
        self.widget.draw(scribblelive.event_json("s", "T", True, changes, page))
        self.front = FrontEnd()
        self.poller = Poller()
        self.reader = Reader()
        self.reader.take(guardian.requested(changes, "all", 0))

    def poll(self, which: str, now: int) -> None:
        changes, seconds = self.changes, now / 1000
        if which == "poll_sl":
            assert self.widget.last_modified is not None
            since = scribblelive.parse_since(since_of(f"/Date({self.widget.last_modified})/"))
            found = scribblelive.since_answer(changes, since, ascending=True)
            body = scribblelive.event_json(
                "s", "T", True, changes, found["posts"], found["edits"], found["deletes"]
            )
            self.widget.draw(body)
        elif which == "poll_wp":
            end = math.floor(seconds) + 5
            self.front.take(wp_liveblog.answer(changes, self.front.start(), end, seconds))
        elif which == "poll_lb":
            first = liveblog.updated_after(source(self.poller.last_updated))
            self.poller.take(liveblog.answer("s", changes, first, 1, 3, seconds))
        else:
            self.reader.take(guardian.requested(changes, "since", self.reader.since))

    def poll_all(self, now: int) -> None:
        for which in ("poll_sl", "poll_wp", "poll_lb", "poll_gu"):
            for _ in range(20):  # the Liveblog poller takes pages of 3
                self.poll(which, now)


@PROPERTY
@given(steps)
def test_every_client_ends_with_the_stream(script: list[tuple[str, int, int]]) -> None:
    blog, changes, now = Blog(), Changes(), T0
    blog.act("create", 0)
    changes.observe(blog.view(), now)
    clients = Clients(changes)
    for action, wait, pick in script:
        now += wait
        if action.startswith("poll"):
            changes.observe(blog.view(), now)  # the server looks when a request comes
            clients.poll(action, now)
        else:
            blog.act(action, pick)
    now += 2000
    changes.observe(blog.view(), now)  # the last changes seen ...
    now += 1000
    changes.observe(blog.view(), now)  # ... and their second over
    clients.poll_all(now)

    final = blog.view()
    widget = {i: (p["Content"], p["IsStuck"]) for i, p in clients.widget.posts.items()}
    assert widget == {numeric_id(i): (full_html(r), int(pin)) for i, r, pin in final}
    front = {
        i: (e["render"], "liveblog-entry-sticky" in e["css_classes"])
        for i, e in clients.front.entries.items()
    }
    assert front == {numeric_id(i): (full_html(r), pin) for i, r, pin in final}
    poller = {
        i: (p["groups"][1]["refs"][0]["item"]["text"], p["sticky"])
        for i, p in clients.poller.posts.items()
    }
    assert poller == {i: (body_html(r), pin) for i, r, pin in final}
    reader = {
        i: (b["bodyHtml"], b["attributes"]["pinned"]) for i, b in clients.reader.blocks.items()
    }
    assert reader == {i: (body_html(r), pin) for i, r, pin in final}
    adds = [i for kind, i, _ in clients.widget.applied if kind == "add"]
    news = [i for kind, i, _ in clients.front.applied if kind == "new"]
    creates = [i for kind, i, _ in clients.poller.actions if kind == "create"]
    edits = [(i, at) for kind, i, at in clients.widget.applied if kind == "edit"]
    updates = [(i, at) for kind, i, at in clients.front.applied if kind == "update"]
    for seen in (adds, news, creates, edits, updates, clients.poller.actions):
        assert len(seen) == len(set(seen))  # each post and each change arrives once
