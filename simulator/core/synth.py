"""Synthetic archives for load tests: a real archive's rhythm and words, at any length.

A synthetic post copies the *shape* of a random post of the source archive (whether it has a
headline, how many paragraphs, its media, whether it names an author, an editor and an agency)
and fills it with text drawn from the whole archive: a random headline, one random sentence per
paragraph, a random author. So the mix of embed-only posts, edited posts (which replay as
``post.created`` then ``post.updated``), headlines and Arabic titles is the archive's own.

Cadence: each gap is a gap of the source archive drawn at random, scaled by a factor in
[0.75, 1.25) and rounded to the second, so the gap distribution follows the archive's without
repeating its few distinct values. Now and then (``BURST_CHANCE`` per post) news breaks: the next
3 to 10 posts land 5 to 60 seconds apart.

Deterministic: only ``random.Random(seed).random()`` is drawn from, whose sequence Python
guarantees across versions, so the same source, count and seed always give the same posts.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from .model import Feed, Post, TimeSource

MIN_POSTS = 1
MAX_POSTS = 10_000_000
"""The largest archive made: about 5 GB of JSON Lines, 1 550 years of the bundled cadence
(a million posts run from 2014 to 2169), well inside the calendar."""
MAX_SEED = 2**32 - 1

BURST_CHANCE = 0.03
BURST_POSTS = (3, 10)
BURST_GAP_SECONDS = (5, 60)
JITTER = (0.75, 1.25)

_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"”']))\s+(?=[A-Z\"“])")


@dataclass(frozen=True, slots=True)
class _Pools:
    """What a synthetic post is made of, drawn once from the source archive."""

    templates: tuple[Post, ...]
    headlines: tuple[str, ...]
    sentences: tuple[str, ...]
    authors: tuple[str, ...]
    editors: tuple[str, ...]
    sources: tuple[str, ...]
    gaps: tuple[float, ...]


def check(posts: int, seed: int) -> None:
    """Raise ``ValueError`` (``posts: …`` or ``seed: …``) for a count or seed out of range."""
    if isinstance(posts, bool) or not isinstance(posts, int) or not MIN_POSTS <= posts <= MAX_POSTS:
        raise ValueError(f"posts: expected a whole number from {MIN_POSTS} to {MAX_POSTS}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed: expected a whole number from 0 to {MAX_SEED}")


def synthesize(source: Feed, posts: int, seed: int = 0) -> Feed:
    """A feed of ``posts`` synthetic posts made from ``source`` (see the module's docstring)."""
    return header(source, posts, seed).with_posts(generate(source, posts, seed))


def header(source: Feed, posts: int, seed: int) -> Feed:
    """The synthetic feed without its posts: what ``synthesize`` returns, minus ``posts``."""
    check(posts, seed)
    return Feed(
        id=f"synth-{seed}-{posts}",
        title=f"{source.title} (synthetic, {posts:,} posts, seed {seed})",
        description=f"Made by livesim synth from {source.id}: its cadence and its words, "
        "recombined.",
        timezone="UTC",
        posts=(),
        extra={"synth": {"source": source.id, "posts": posts, "seed": seed}},
    )


def generate(source: Feed, posts: int, seed: int = 0) -> Iterator[Post]:
    """The synthetic posts one by one, oldest first, so a writer needs not hold them all."""
    check(posts, seed)
    pools = _pools(source)
    rng = random.Random(seed)
    draw = rng.random

    def pick(items: tuple[str, ...]) -> str:
        return items[int(draw() * len(items))]

    moment = source.posts[0].timed.replace(microsecond=0)
    burst = 0
    for number in range(posts):
        if number:
            if burst:
                burst -= 1
                low, high = BURST_GAP_SECONDS
                gap = low + int(draw() * (high - low + 1))
            else:
                if draw() < BURST_CHANCE:
                    low, high = BURST_POSTS
                    burst = low + int(draw() * (high - low + 1))
                scale = JITTER[0] + draw() * (JITTER[1] - JITTER[0])
                gap = round(pools.gaps[int(draw() * len(pools.gaps))] * scale)
            moment = _later(moment, gap, posts)
        shape = pools.templates[int(draw() * len(pools.templates))]
        paragraphs = _paragraphs(shape)
        yield Post(
            id=f"p-{number:010x}",
            headline=pick(pools.headlines) if shape.headline and pools.headlines else None,
            body="\n\n".join(pick(pools.sentences) for _ in range(paragraphs)),
            author=pick(pools.authors) if shape.author and pools.authors else None,
            editor=pick(pools.editors) if shape.editor and pools.editors else None,
            published_at=moment,
            time_source=TimeSource.EXPLICIT,
            source=pick(pools.sources) if shape.source and pools.sources else None,
            media=shape.media,
        )


def _paragraphs(shape: Post) -> int:
    """The template's paragraph count, at most 3: long posts would only make the file bigger."""
    if not shape.body:
        return 0
    return min(3, shape.body.count("\n\n") + 1)


def _later(moment: datetime, gap: int, posts: int) -> datetime:
    try:
        return moment + timedelta(seconds=gap)
    except OverflowError:
        raise ValueError(
            f"posts: {posts} posts at this archive's cadence run past the year 9999"
        ) from None


def _pools(source: Feed) -> _Pools:
    if not source.posts:
        raise ValueError("source: the archive has no posts to learn from")
    sentences = [
        sentence
        for post in source.posts
        for paragraph in post.body.split("\n\n")
        for sentence in _sentences(paragraph)
    ]
    times = [post.timed for post in source.posts]
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
    return _Pools(
        templates=source.posts,
        headlines=_unique(post.headline for post in source.posts),
        sentences=tuple(sentences) or ("Update.",),
        authors=_unique(post.author for post in source.posts),
        editors=_unique(post.editor for post in source.posts),
        sources=_unique(post.source for post in source.posts),
        gaps=tuple(gaps) or (60.0,),
    )


def _sentences(paragraph: str) -> Iterator[str]:
    """A paragraph's sentences; a quotation that spans sentences stays in one piece."""
    pending = ""
    for piece in _SENTENCE_END.split(paragraph.strip()):
        pending = f"{pending} {piece}" if pending else piece
        if pending.count('"') % 2 == 0 and pending.count("“") == pending.count("”"):
            yield pending
            pending = ""
    if pending:
        yield pending


def _unique(values: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))
