"""Sending snapshots and feed post lists: shared bytes, written in slices, with a server-wide bound.

The body is encoded once per change of the stream (``Projection.encoded``) or once per feed, and
every reader is sent that same ``bytes`` in ``CHUNK`` slices, each ``await``-ed: a slow reader
holds a slice of it in its socket buffer, never a copy of all of it. The bytes promised to readers
and not yet written are bounded server-wide (``server.max_snapshot_bytes_in_flight``: over it,
503 with ``Retry-After``, counted as ``reason="snapshot_bytes"``), and a reader that has not taken
a whole snapshot within ``server.snapshot_timeout`` is disconnected, so stalled readers cannot hold
that bound for ever.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.client_exceptions import ClientConnectionResetError

from ..core import snapshot
from ..core.model import Feed
from ..settings import ServerConfig
from .errors import error_body
from .metrics import Metrics

CHUNK = 64 * 1024
"""Bytes per ``write``: what one reader's socket buffer holds of the shared body at the most,
give or take the transport's high-water mark."""
RETRY_AFTER = 5
"""Seconds a reader refused for the in-flight bound is told to wait (as for connection limits)."""
GONE = (ConnectionError, ClientConnectionResetError)
CONTENT_TYPE = "application/json"


@dataclass
class Snapshots:
    """The server's snapshot bytes in flight now, and each feed's post list once encoded."""

    in_flight: int = 0
    feeds: dict[str, bytes] = field(default_factory=dict)
    indexes: dict[str, dict[str, int]] = field(default_factory=dict)
    """Each feed's post ids and their places, made on its first page request."""

    def feed_posts(self, feed: Feed, max_bytes: int) -> bytes:
        """A feed never changes while the server runs (nor ``max_bytes``, a setting): encoded on
        its first request, kept."""
        body = self.feeds.get(feed.id)
        if body is None:
            body = self.feeds[feed.id] = snapshot.feed_posts(feed, max_bytes)
        return body

    def feed_page(self, feed: Feed, page: snapshot.Page, max_bytes: int) -> bytes:
        """A page of the feed's posts, encoded per request: at most ``snapshot.MAX_PAGE``
        posts and ``max_bytes``."""
        index = self.indexes.get(feed.id)
        if index is None:
            index = self.indexes[feed.id] = {p.id: i for i, p in enumerate(feed.posts)}
        return snapshot.feed_page(feed, page, index, max_bytes)


SNAPSHOTS = web.AppKey("snapshots", Snapshots)


async def send(
    request: web.Request,
    parts: Sequence[bytes],
    server: ServerConfig,
    metrics: Metrics,
) -> web.StreamResponse:
    """Write ``parts`` (one JSON body) in slices, within the in-flight bound and the timeout."""
    total = sum(len(part) for part in parts)
    response = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE})
    response.content_length = total
    if request.method == "HEAD":
        await response.prepare(request)
        return response
    flight = request.app[SNAPSHOTS]
    limit = server.max_snapshot_bytes_in_flight
    if flight.in_flight + total > limit:
        metrics.totals.refused["snapshot_bytes"] += 1
        message = (
            f"too many snapshot bytes in flight: server.max_snapshot_bytes_in_flight ({limit}) "
            "reached; retry later"
        )
        body = error_body(message, "server.max_snapshot_bytes_in_flight", 503)
        raise web.HTTPServiceUnavailable(
            text=body.decode(), content_type=CONTENT_TYPE, headers={"Retry-After": str(RETRY_AFTER)}
        )
    flight.in_flight += total
    try:
        async with asyncio.timeout(server.snapshot_timeout):
            await response.prepare(request)
            for part in parts:
                view = memoryview(part)
                for start in range(0, len(view), CHUNK):
                    await response.write(view[start : start + CHUNK])
    except GONE:
        pass  # the reader left: nothing to answer, nothing to log
    except TimeoutError:
        if request.transport is not None:
            request.transport.abort()  # drops what its buffer holds of the body at once
    finally:
        flight.in_flight -= total
    return response
