"""The platforms' polling APIs as sources: ScribbleLive, WordPress Liveblog, Guardian, Liveblog.

Each platform is a cursor (``platforms``): the URL of the next poll, and ``take(answer)``, which
reads an answer into ``Item``\\ s (what the platform says about a post now) and moves the cursor.
Their cursors are inclusive or whole seconds, so a change can come back in the next answer;
``envelopes`` compares each item with the recording so far (``Recorder.posts``, ``pinned``,
``deleted``) and turns only what differs into livesim's envelopes, so each change is recorded
once however often it is sent, and a run that resumes an archive starts its cursor over for free.
Every change is stamped with the time it was seen; the platform's own publication time is kept
as ``source_published_at``.

An answer that is not the platform's JSON stops the first poll with one line (a wrong URL); after
a good answer it is a failed poll, retried with backoff like a 5xx (a proxy's error page).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from clients import reads
from clients.target import ClientError
from simulator.core.wire import wall_time

from .platforms import PLATFORMS, Item, Platform, Shape, platform_for
from .recorder import Recorder

__all__ = ["PLATFORMS", "Item", "Platform", "envelopes", "follow_platform", "platform_for"]

MAX_ANSWER_BYTES = 16 << 20
MAX_BACKOFF = 300.0
COMPARED = ("headline", "body", "author", "key_event")


@dataclass(frozen=True, slots=True)
class Batch:
    items: list[Item]
    seen: str


async def follow_platform(
    platform: Platform, every: float, on_failure: Callable[[str], None]
) -> AsyncIterator[Batch]:
    """Each good answer's items, polled every ``every`` seconds (at once while a page is full)."""
    failures = 0
    answered = False
    deadlines = aiohttp.ClientTimeout(total=max(30.0, every))
    async with reads.session() as session:
        while True:
            started = time.monotonic()
            url = platform.url(time.time())
            more = False
            try:
                async with reads.get(
                    session, url, deadlines=deadlines, headers={"Accept": "application/json"}
                ) as answer:
                    if 400 <= answer.status < 500 and answer.status not in (408, 429):
                        quote = await reads.read_quote(answer)
                        raise ClientError(f"{url}: HTTP {answer.status}: {quote}")
                    if answer.status != 200:
                        raise ConnectionError(f"HTTP {answer.status}")
                    if answer.content_type == "text/event-stream":
                        raise ClientError(f"{url}: an event stream: record it without --source")
                    value = await reads.read_json(
                        answer, MAX_ANSWER_BYTES, f"the {platform.title} answer"
                    )
                items, more = platform.take(value)
            except (Shape, reads.ReadError) as exc:
                message = f"{url}: {exc}" if isinstance(exc, Shape) else str(exc)
                if not answered:
                    raise ClientError(f"{message} (--source {platform.kind}?)") from None
                failures += 1
                on_failure(message)
            except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
                failures += 1
                on_failure(str(exc) or type(exc).__name__)
            else:
                answered = True
                failures = 0
                yield Batch(items, wall_time(time.time()))
            if more and not failures:
                continue
            pause = every if not failures else min(MAX_BACKOFF, every * 2 ** min(failures, 10))
            pause *= random.uniform(0.9, 1.0) if failures else 1.0
            await asyncio.sleep(max(0.0, started + pause - time.monotonic()))


def envelopes(item: Item, recorder: Recorder, seen: str) -> list[dict[str, Any]]:
    """The envelopes that take the recording of this post to what the platform says now."""
    known = recorder.posts.get(item.id)
    if item.id in recorder.deleted:
        return []  # a platform that lists a tombstone again, or reuses an id: kept as it was
    if item.deleted:
        if known is None:
            return []  # created and deleted between two polls: never seen
        return [{"type": "post.deleted", "archive_time": seen, "post": {"id": item.id, "body": ""}}]
    post: dict[str, Any] = {"id": item.id, "body": item.body}
    if item.headline:
        post["headline"] = item.headline
    if item.author:
        post["author"] = item.author
    if item.key_event:
        post["key_event"] = True
    if item.published_at:
        post["published_at"] = item.published_at
    out: list[dict[str, Any]] = []
    if known is None:
        out.append({"type": "post.created", "archive_time": seen, "post": post})
    elif any(post.get(k) != known.get(k) for k in COMPARED):
        out.append({"type": "post.updated", "archive_time": seen, "post": post})
    if item.pinned != (item.id in recorder.pinned):
        kind = "post.pinned" if item.pinned else "post.unpinned"
        out.append({"type": kind, "archive_time": seen, "post": {"id": item.id}})
    return out
