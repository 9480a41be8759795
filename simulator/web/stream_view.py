"""A stream as the API shows it: its replay's state, its settings, its subscribers and links.

Kept apart from ``Stream`` (pacing and subscription) because it is the API's view of one: what
``GET /api/streams/{id}`` answers and what ``POST /api/streams`` creates.
"""

from __future__ import annotations

from typing import Any

from .stream import Stream


def describe(stream: Stream) -> dict[str, Any]:
    """The stream as JSON, after publishing what is due by now; a failed stream says why
    instead of asking its replay."""
    options = stream.replay.options
    if stream.failed:
        state: dict[str, Any] = {"state": "failed", "error": stream.failed}
    else:
        stream.catch_up()
        state = stream.replay.describe(stream.now())
    return {
        "id": stream.id,
        "feed": stream.feed.id,
        **state,
        "start": options.start,
        "private": stream.private,
        "subscribers": len(stream.hub.subscribers),
        "dropped_slow": stream.hub.dropped_slow,
        "faults": {
            "spec": stream.faults_text,
            "injected": dict(stream.counts.faults),
            "reconnects_without_cursor": stream.counts.reconnects_without_cursor,
        },
        "links": links(stream.id),
    }


def links(stream_id: str) -> dict[str, str]:
    return {
        "self": f"/api/streams/{stream_id}",
        "posts": f"/api/streams/{stream_id}/posts",
        "events": f"/streams/{stream_id}/events",
        "ws": f"/streams/{stream_id}/ws",
    }
