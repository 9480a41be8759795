"""From event envelopes to archive records: what a recording keeps of what it sees.

Sans-I/O: ``Recorder.see`` takes one envelope (livesim's shape, docs/protocol.md "Events") and
returns the archive lines it adds, so every source (SSE, WebSocket) and a test share it. A post is
kept at the archive time it appeared; later envelopes about it become ``change`` records holding
only what changed. An event id seen before (a duplicate, a replayed backlog) adds nothing, and
neither does a second ``post.created`` of a post already kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from simulator.core.archive import POST_FIELDS, check_record
from simulator.core.model import CHANGE_FIELDS

CHANGE_TYPES = {
    "post.updated": "update",
    "post.deleted": "delete",
    "post.pinned": "pin",
    "post.unpinned": "unpin",
}
END_STATES = frozenset({"ended"})
END_RESETS = frozenset({"loop"})
"""A loop starts the blog over: a recording keeps one pass of it."""


@dataclass
class Counts:
    events: int = 0
    posts: int = 0
    edits: int = 0
    deletions: int = 0
    pins: int = 0
    duplicates: int = 0
    reconnects: int = 0
    """Reconnections to a stream; failed polls of a feed."""
    polls: int = 0
    gaps: int = 0
    """Resets that said events were missed (the cursor could not be served)."""
    unknown: int = 0
    """Changes to a post the recording never saw created."""
    refused: int = 0
    """Events that would have made a record the archive format refuses (a body over its bound,
    a time that is not one): left out, so the archive stays readable."""


@dataclass
class Recorder:
    posts: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Each kept post as it is now (its latest version)."""
    deleted: set[str] = field(default_factory=set)
    pinned: set[str] = field(default_factory=set)
    """Posts pinned now: a polled source says whether a post is pinned, not that it changed."""
    event_ids: set[str] = field(default_factory=set)
    last_event_id: str = ""
    counts: Counts = field(default_factory=Counts)
    ended: bool = False

    def resume(self, records: Iterable[dict[str, Any]]) -> None:
        """Take up the state an earlier run left in the archive."""
        for record in records:
            kind = record.get("type", "post")
            event_id = record.get("event_id")
            if isinstance(event_id, str) and event_id:
                self.event_ids.add(event_id)
                self.last_event_id = event_id
            post_id = record.get("id") if kind == "post" else record.get("post")
            if not isinstance(post_id, str):
                continue
            if kind == "post":
                self.posts[post_id] = {k: record.get(k) for k in CHANGE_FIELDS}
            elif kind == "change" and record.get("action") == "delete":
                self.deleted.add(post_id)
            elif kind == "change" and record.get("action") in ("pin", "unpin"):
                _pin(self.pinned, post_id, record.get("action") == "pin")
            elif kind == "change" and record.get("action") == "update" and post_id in self.posts:
                fields = record.get("fields")
                if isinstance(fields, dict):
                    self.posts[post_id].update(fields)

    def see(self, envelope: Any, event_id: str, seen_at: str) -> list[dict[str, Any]]:
        """The records this envelope adds (none for a duplicate or a stream event)."""
        if event_id:
            if event_id in self.event_ids:
                self.counts.duplicates += 1
                return []
            self.event_ids.add(event_id)
            self.last_event_id = event_id
        if not isinstance(envelope, dict):
            return []
        self.counts.events += 1
        kind = envelope.get("type")
        data = envelope.get("data")
        reason = data.get("reason") if isinstance(data, dict) else None
        if kind == "stream.state" and isinstance(data, dict) and data.get("state") in END_STATES:
            self.ended = True
        if kind == "stream.reset":
            if reason in END_RESETS:
                self.ended = True
            elif reason in ("resume", "no_resume"):
                self.counts.gaps += 1
        post = envelope.get("post")
        if not isinstance(post, dict) or not isinstance(post.get("id"), str):
            return []
        at = envelope.get("archive_time") or post.get("published_at") or seen_at
        noted = {"seen_at": seen_at, **({"event_id": event_id} if event_id else {})}
        post_id = post["id"]
        if kind == "post.created" or (kind == "post.updated" and post_id not in self.posts):
            if post_id in self.posts:
                self.counts.duplicates += 1
                return []
            created = self._record(post, at, noted)
            if check_record(created):
                self.counts.refused += 1
                return []
            self.posts[post_id] = {k: created.get(k) for k in CHANGE_FIELDS}
            self.counts.posts += 1
            return [created]
        action = CHANGE_TYPES.get(str(kind))
        if action is None:
            return []
        if post_id not in self.posts:
            self.counts.unknown += 1
            return []
        change: dict[str, Any] = {"type": "change", "action": action, "post": post_id, "at": at}
        fields: dict[str, Any] = {}
        if action == "update":
            now = self.posts[post_id]
            fields = {k: post.get(k) for k in CHANGE_FIELDS if post.get(k) != now.get(k)}
            if "key_event" in fields:
                fields["key_event"] = fields["key_event"] is True
            change["fields"] = fields
        if check_record(change):
            self.counts.refused += 1
            return []
        if action == "update":
            self.posts[post_id].update(fields)
            self.counts.edits += 1
        elif action == "delete":
            self.deleted.add(post_id)
            self.counts.deletions += 1
        else:
            _pin(self.pinned, post_id, action == "pin")
            self.counts.pins += 1
        return [{**change, **noted}]

    def _record(self, post: dict[str, Any], at: str, noted: dict[str, str]) -> dict[str, Any]:
        record: dict[str, Any] = {"type": "post"}
        for name in POST_FIELDS:
            if name in post:
                record[name] = post[name]
        if post.get("published_at") not in (None, at):
            record["source_published_at"] = post["published_at"]
        record["published_at"] = at
        record["time_source"] = "explicit"  # the source said when, by sending it then
        record.setdefault("body", "")
        record.update(noted)
        return record


def _pin(pinned: set[str], post_id: str, on: bool) -> None:
    if on:
        pinned.add(post_id)
    else:
        pinned.discard(post_id)
