"""An RSS or Atom feed as a source: polled with conditional GET, each change recorded once.

Every ``poll`` seconds the feed is fetched with ``If-None-Match`` / ``If-Modified-Since`` from the
last answer; a 304 costs nothing. An answer is read by livesim's own RSS/Atom importer, and each
item compared with the recording so far (``Recorder.posts``, resumed from the archive):

- an item not seen before is a post, at its stated time (``pubDate`` / ``published``), else at
  the time it was first seen;
- an item whose headline, body, author, source or media changed is an edit, at the time seen;
- an item that was in the previous answer of this run and is gone is a deletion. (A feed that
  lists only its newest items drops old ones the same way: such a feed records them as deleted.)

Each is turned into the envelope livesim itself would send, so ``Recorder`` alone decides what
goes into the archive.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp

from clients import reads
from clients.target import ClientError
from simulator.core.archive import post_record
from simulator.core.importers import ImportOptions, import_bytes
from simulator.core.model import CHANGE_FIELDS, ArchiveError, TimeSource, format_time, shown
from simulator.core.wire import wall_time

from .recorder import Recorder

MAX_FEED_BYTES = 16 << 20
MAX_BACKOFF = 300.0
FEED_TYPES = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/xml",
        "text/xml",
        "application/rdf+xml",
    }
)


async def poll(
    url: str,
    every: float,
    recorder: Recorder,
    on_failure: Callable[[str], None],
) -> AsyncIterator[list[tuple[dict[str, Any], str]]]:
    """Each poll's envelopes (with the wall time they were seen), oldest item first."""
    validators: dict[str, str] = {}
    previous: set[str] | None = None
    failures = 0
    deadlines = aiohttp.ClientTimeout(total=max(30.0, every))
    async with reads.session() as session:
        while True:
            started = time.monotonic()
            headers = {"Accept": ", ".join(sorted(FEED_TYPES))}
            if "etag" in validators:
                headers["If-None-Match"] = validators["etag"]
            if "modified" in validators:
                headers["If-Modified-Since"] = validators["modified"]
            body: bytes | None = None
            try:
                async with reads.get(session, url, deadlines=deadlines, headers=headers) as answer:
                    if answer.status == 200:
                        body = await reads.read_body(answer, MAX_FEED_BYTES, "the feed")
                        for header, key in (("ETag", "etag"), ("Last-Modified", "modified")):
                            if value := answer.headers.get(header):
                                validators[key] = value
                    elif 400 <= answer.status < 500 and answer.status not in (408, 429):
                        quote = await reads.read_quote(answer)
                        raise ClientError(f"{url}: HTTP {answer.status}: {quote}")
                    elif answer.status != 304:
                        raise ConnectionError(f"HTTP {answer.status}")
                failures = 0
            except (aiohttp.ClientError, TimeoutError, ConnectionError, reads.ReadError) as exc:
                failures += 1
                on_failure(str(exc) or type(exc).__name__)
            if body is not None:
                seen = wall_time(time.time())
                try:
                    feed = import_bytes(body, ImportOptions(source=url), "rss")
                except ArchiveError as exc:
                    failures += 1
                    on_failure(str(exc))
                else:
                    envelopes, previous = changes(feed.posts, recorder, previous, seen)
                    yield [(envelope, seen) for envelope in envelopes]
            pause = every if not failures else min(MAX_BACKOFF, every * 2 ** min(failures, 10))
            pause *= random.uniform(0.9, 1.0) if failures else 1.0
            await asyncio.sleep(max(0.0, started + pause - time.monotonic()))


def changes(
    posts: Any, recorder: Recorder, previous: set[str] | None, seen: str
) -> tuple[list[dict[str, Any]], set[str]]:
    """The envelopes that take the recording from what it holds to what the feed says now."""
    out: list[dict[str, Any]] = []
    current = set()
    for post in posts:
        current.add(post.id)
        record = post_record(post)
        known = recorder.posts.get(post.id)
        if known is None:
            stated = post.time_source is TimeSource.EXPLICIT and post.published_at is not None
            at = format_time(post.published_at) if stated else seen
            out.append({"type": "post.created", "archive_time": at, "post": record})
        elif post.id not in recorder.deleted and _differs(record, known):
            out.append({"type": "post.updated", "archive_time": seen, "post": record})
    for gone in sorted((previous or set()) - current):
        if gone in recorder.posts and gone not in recorder.deleted:
            out.append(
                {"type": "post.deleted", "archive_time": seen, "post": {"id": gone, "body": ""}}
            )
    return out, current


def _differs(record: dict[str, Any], known: dict[str, Any]) -> bool:
    return any(
        record.get(k) != known.get(k) for k in CHANGE_FIELDS if k not in ("editor", "key_event")
    )


async def probe(url: str) -> str:
    """``sse`` or ``feed``, as the source's answer says (its Content-Type)."""
    deadlines = aiohttp.ClientTimeout(total=30.0)
    headers = {"Accept": "text/event-stream, " + ", ".join(sorted(FEED_TYPES))}
    try:
        async with reads.session() as session:
            async with reads.get(session, url, deadlines=deadlines, headers=headers) as answer:
                kind = answer.headers.get("Content-Type", "").split(";")[0].strip().lower()
                if answer.status >= 400:
                    quote = await reads.read_quote(answer)
                    raise ClientError(f"{url}: HTTP {answer.status}: {quote}")
    except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
        raise ClientError(f"{url}: cannot connect: {exc or type(exc).__name__}") from None
    if kind == "text/event-stream":
        return "sse"
    if kind in FEED_TYPES:
        return "feed"
    raise ClientError(
        f"{url}: not an event stream or an RSS/Atom feed (Content-Type {shown(kind)}); "
        "give --type sse or --type feed"
    )
