"""Test helpers over the SSE client in ``clients/sse.py``: connect with assertions, decode."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from clients.sse import Comment, Event, Item, Retry, SSEParser, SSEReader

__all__ = ["Comment", "Event", "Item", "Retry", "SSEParser", "SSEReader", "connect", "envelope"]


def envelope(event: Event) -> dict[str, Any]:
    """The event's data as JSON (livesim sends one JSON envelope per event)."""
    value = json.loads(event.data)
    assert isinstance(value, dict)
    return value


@contextlib.asynccontextmanager
async def connect(
    session: aiohttp.ClientSession,
    url: str,
    *,
    last_event_id: str | None = None,
    comments: bool = False,
    retries: bool = False,
    ready: bool = True,
) -> AsyncIterator[SSEReader]:
    """GET an event stream as EventSource would (``Accept``, ``Last-Event-ID``) and read it.

    Asserts a 200 ``text/event-stream``; with ``ready`` waits for the subscription to be live.
    Leaving the block closes the connection (a client going away mid-stream).
    """
    headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    async with session.get(url, headers=headers) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "text/event-stream"
        reader = SSEReader(response, comments=comments, retries=retries)
        try:
            if ready:
                await reader.ready()
            yield reader
        finally:
            await reader.aclose()
            response.close()
