"""Scenario rules: what a newsroom does to a live blog besides publishing it.

``build(feed, scenario)`` turns a feed and a ``Scenario`` into the event script (``script.build``
is the same without rules). Every rule is off unless set; each is a small step over the posts or
the cues, in this order:

1. ``bursts`` retime posts: after a burst's first post, the next ``size - 1`` posts land within
   ``within`` seconds of it (never later than they were), as when news breaks.
2. ``inject`` adds posts that are not in the archive, at given archive times.
3. ``key_events`` flag posts ``key_event: true`` (by default those with a headline, injected
   ones included).
4. Each post becomes its cues: ``post.created`` (and the archive's editor ``post.updated``).
   ``developing`` posts are created with their first paragraph and grow by ``post.updated``
   every ``interval`` until complete.
5. ``corrections``: a share of posts appear with a wrong figure (or a misspelt name) and are
   updated ``after`` their last cue with the right text and a "Correction:" note.
6. ``retractions``: a share of posts are deleted ``after`` their last cue.
7. ``pin_latest_key_event``: each key event is pinned when it appears, the previous one unpinned.
8. Explicit ``steps`` (pin / unpin / delete / update with new field values).

Deterministic: choices come from ``random.Random`` seeded with the scenario's ``seed`` and the
rule's name, so the same feed, scenario and seed always give the same script, and turning one rule
on does not change the choices of another. A share picks ``round(share × candidates)`` posts.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from .errors import InputError, shorten, shown
from .model import Feed, Post, TimeSource, format_time, utc
from .script import (
    Cue,
    Script,
    Step,
    change_cues,
    finish,
    origin_of,
    post_cues,
    step_cues,
)
from .timeline import parse_duration
from .wire import EventType


@dataclass(frozen=True, slots=True)
class Developing:
    share: float = 0.3
    """Of the posts with at least two paragraphs."""
    interval: float = 120.0
    """Archive seconds between one version and the next."""
    max_steps: int = 4
    """Versions at the most, the first included: longer posts grow several paragraphs at a time."""


@dataclass(frozen=True, slots=True)
class Corrections:
    share: float = 0.1
    """Of the posts with a figure or a name in their body."""
    after: float = 600.0
    """Archive seconds after the post's last other cue."""


@dataclass(frozen=True, slots=True)
class Retractions:
    share: float = 0.05
    """Of the posts that are neither key events nor corrected."""
    after: float = 1800.0


@dataclass(frozen=True, slots=True)
class KeyEvents:
    headline: bool = True
    """Every post with a headline is a key event."""
    posts: tuple[str, ...] = ()
    """These posts too."""


@dataclass(frozen=True, slots=True)
class Bursts:
    count: int = 1
    """Bursts in the archive, their first posts chosen at random."""
    size: int = 5
    """Posts in a burst, the first included."""
    within: float = 30.0
    """Archive seconds from a burst's first post to its last."""


@dataclass(frozen=True, slots=True)
class Inject:
    """A post the archive does not have, at ``at``: an ISO-8601 archive time or an offset from
    the first post (``+2h``)."""

    at: str
    body: str
    headline: str | None = None
    author: str | None = None
    source: str | None = None
    key_event: bool = False
    id: str | None = None
    """Default ``inject-N`` (N from 1, in list order)."""


@dataclass(frozen=True, slots=True)
class Scenario:
    seed: int = 0
    developing: Developing | None = None
    corrections: Corrections | None = None
    retractions: Retractions | None = None
    key_events: KeyEvents | None = None
    pin_latest_key_event: bool = False
    bursts: Bursts | None = None
    inject: tuple[Inject, ...] = ()
    steps: tuple[Step, ...] = ()


def build(
    feed: Feed,
    scenario: Scenario | Sequence[Step] = (),
    edit_delay: float = 180.0,
    where: str = "scenario",
) -> Script:
    """The feed under ``scenario`` as a script; ``ValueError`` naming ``where.rule.field``.

    A plain list of steps is today's form: errors name ``where[n]``.
    """
    if not isinstance(scenario, Scenario):
        steps: Sequence[Step] = scenario
        scenario, steps_where = Scenario(steps=tuple(steps)), where
    else:
        steps_where = f"{where}.steps"
    origin = origin_of(feed)
    posts = list(feed.posts)
    notes: dict[str, list[str]] = {}
    if scenario.bursts:
        posts = _bursts(posts, scenario.bursts, _rng(scenario, "bursts"), notes)
    posts += _injected(scenario.inject, feed, origin, f"{where}.inject", notes)
    if scenario.key_events:
        posts = _key_events(posts, scenario.key_events, f"{where}.key_events")
    developing = set()
    if scenario.developing:
        grown = [p for p in posts if len(_paragraphs(p.body)) >= 2]
        developing = _choose(_rng(scenario, "developing"), grown, scenario.developing.share)
    cues = _cues(posts, origin, edit_delay, scenario.developing, developing, notes)
    corrected: set[str] = set()
    if scenario.corrections:
        cues, corrected = _corrections(
            cues, posts, origin, scenario.corrections, _rng(scenario, "corrections")
        )
    if scenario.retractions:
        candidates = [p for p in posts if not p.key_event and p.id not in corrected]
        chosen = _choose(_rng(scenario, "retractions"), candidates, scenario.retractions.share)
        last = _last_cue(cues)
        for post in candidates:
            if post.id in chosen:
                at = last[post.id].at + scenario.retractions.after
                cues.append(Cue(at, EventType.POST_DELETED, last[post.id].post, "retracted"))
    if scenario.pin_latest_key_event:
        cues += _pin_latest(cues)
    by_id = {post.id: post for post in posts}
    cues += step_cues(scenario.steps, by_id, origin, steps_where)
    cues += change_cues(feed.changes, by_id, origin)
    return finish(feed, origin, cues)


def _cues(
    posts: Sequence[Post],
    origin: datetime,
    edit_delay: float,
    rule: Developing | None,
    developing: set[str],
    notes: Mapping[str, list[str]],
) -> list[Cue]:
    """Each post's cues, developing or not, its first one noted with what the rules did."""
    if not developing and not notes:
        return list(post_cues(posts, origin, edit_delay))
    cues: list[Cue] = []
    for post in posts:
        if rule is not None and post.id in developing:
            made = _developing(post, origin, rule, edit_delay)
        else:
            made = list(post_cues([post], origin, edit_delay))
        note = "; ".join(notes.get(post.id, ()))
        if note:
            made[0] = replace(made[0], note="; ".join(filter(None, (made[0].note, note))))
        cues += made
    return cues


def _rng(scenario: Scenario, rule: str) -> random.Random:
    return random.Random(f"{scenario.seed}/{rule}")


def _choose(rng: random.Random, candidates: Sequence[Post], share: float) -> set[str]:
    count = min(len(candidates), round(share * len(candidates)))
    return {post.id for post in rng.sample(list(candidates), count)}


def _paragraphs(body: str) -> list[str]:
    return [part for part in body.split("\n\n") if part.strip()]


# 1. Bursts -----------------------------------------------------------------------------------


def _bursts(
    posts: list[Post], rule: Bursts, rng: random.Random, notes: dict[str, list[str]]
) -> list[Post]:
    order = sorted(range(len(posts)), key=lambda i: posts[i].timed)
    positions = rng.sample(range(max(0, len(order) - 1)), min(rule.count, max(0, len(order) - 1)))
    out = list(posts)
    taken: set[int] = set()
    for position in sorted(positions):
        first = order[position]
        if first in taken:
            continue
        members = order[position : position + rule.size]
        base = out[first].timed
        step = rule.within / max(1, len(members) - 1)
        for k, index in enumerate(members):
            taken.add(index)
            if k == 0:
                notes.setdefault(out[index].id, []).append(f"burst of {len(members)} starts")
                continue
            moved = min(out[index].timed, base + timedelta(seconds=k * step))
            if moved != out[index].timed:
                was = format_time(out[index].timed)
                notes.setdefault(out[index].id, []).append(f"burst (was {was})")
                out[index] = replace(out[index], published_at=moved)
    return out


# 2. Key events -------------------------------------------------------------------------------


def _key_events(posts: list[Post], rule: KeyEvents, where: str) -> list[Post]:
    ids = {post.id for post in posts}
    for number, post_id in enumerate(rule.posts):
        if post_id not in ids:
            raise InputError(f"{where}.posts[{number}]", f"no post with id {shown(post_id, 100)}")
    flagged = set(rule.posts)
    return [
        replace(p, key_event=True)
        if p.id in flagged or (rule.headline and p.headline and p.headline.strip())
        else p
        for p in posts
    ]


# 3. Injected posts ---------------------------------------------------------------------------


def _injected(
    items: Iterable[Inject],
    feed: Feed,
    origin: datetime,
    where: str,
    notes: dict[str, list[str]],
) -> list[Post]:
    taken = {post.id for post in feed.posts}
    out = []
    for number, item in enumerate(items, 1):
        here = f"{where}[{number - 1}]"
        post_id = item.id or f"inject-{number}"
        if post_id in taken:
            raise InputError(f"{here}.id", f"{shown(post_id, 100)} is already a post's id")
        taken.add(post_id)
        at = _inject_time(item.at, origin, f"{here}.at")
        out.append(
            Post(
                id=post_id,
                body=item.body,
                published_at=at,
                time_source=TimeSource.EXPLICIT,
                headline=item.headline,
                author=item.author,
                source=item.source,
                key_event=item.key_event,
            )
        )
        notes.setdefault(post_id, []).append("injected")
    return out


_OFFSET = re.compile(r"\+\s*(.+)")


def _inject_time(text: str, origin: datetime, where: str) -> datetime:
    value = text.strip()
    found = _OFFSET.fullmatch(value)
    if found:
        seconds = parse_duration(found.group(1), where)
    else:
        try:
            moment = utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            raise InputError(
                where,
                f"{shown(text)} is not an ISO-8601 time or an offset from the first post "
                "such as '+2h'",
            ) from None
        seconds = (moment - origin).total_seconds()
        if seconds < 0:
            raise InputError(where, f"{shorten(value, 60)} is before the first post")
    try:
        return origin + timedelta(seconds=seconds)
    except OverflowError:
        raise InputError(where, "lands after the year 9999") from None


# 4. Developing stories -----------------------------------------------------------------------


def _developing(post: Post, origin: datetime, rule: Developing, edit_delay: float) -> list[Cue]:
    """First paragraph, then ``post.updated`` every ``interval`` until the whole body is out."""
    parts = _paragraphs(post.body)
    created = (post.timed - origin).total_seconds()
    base = replace(post, editor=None)
    versions = max(2, min(rule.max_steps, len(parts)))
    out = [
        Cue(
            created,
            EventType.POST_CREATED,
            replace(base, body=parts[0]),
            f"developing: paragraph 1 of {len(parts)}",
        )
    ]
    for step in range(1, versions):
        shown = 1 + math.ceil(step * (len(parts) - 1) / (versions - 1))
        body = post.body if shown == len(parts) else "\n\n".join(parts[:shown])
        note = "complete" if shown == len(parts) else f"{shown} of {len(parts)} paragraphs"
        at = created + step * rule.interval
        out.append(Cue(at, EventType.POST_UPDATED, replace(base, body=body), f"developing: {note}"))
    if post.editor:
        at = max(created + edit_delay, out[-1].at + rule.interval)
        out.append(Cue(at, EventType.POST_UPDATED, post, f"edited by {post.editor}"))
    return out


# 5. Corrections ------------------------------------------------------------------------------

_FIGURE = re.compile(r"(?<![\w.,])\d{1,3}(?:,\d{3})+(?![\w,]\d)|(?<![\w.,])\d+(?![\w]|[.,]\d)")
_NAME = re.compile(r"(?<=\s)[A-Z][a-z]{4,}\b")


def _correctable(body: str) -> bool:
    """Whether ``_mistake`` finds something in ``body``."""
    return any(not _year(m.group()) for m in _FIGURE.finditer(body)) or any(
        _misspelt(m.group()) != m.group() for m in _NAME.finditer(body)
    )


def _misspelt(name: str) -> str:
    """Two letters in the middle swapped: ``Karimi`` → ``Kairmi``."""
    middle = len(name) // 2
    return name[: middle - 1] + name[middle] + name[middle - 1] + name[middle + 1 :]


def _mistake(body: str, rng: random.Random) -> tuple[str, str] | None:
    """A figure or a name in ``body`` and a wrong version of it, or None when it has neither."""
    figures = [f for f in dict.fromkeys(m.group() for m in _FIGURE.finditer(body)) if not _year(f)]
    if figures:
        right = rng.choice(figures)
        number = int(right.replace(",", ""))
        wrong_number = number + max(1, round(number * 0.1))
        return right, f"{wrong_number:,}" if "," in right else str(wrong_number)
    names = [n for n in dict.fromkeys(m.group() for m in _NAME.finditer(body)) if _misspelt(n) != n]
    if names:
        right = rng.choice(names)
        return right, _misspelt(right)
    return None


def _year(figure: str) -> bool:
    """A year is not a figure a reporter gets wrong (and a wrong one looks like a typo)."""
    return len(figure) == 4 and 1800 <= int(figure) <= 2100


def _corrections(
    cues: list[Cue],
    posts: Sequence[Post],
    origin: datetime,
    rule: Corrections,
    rng: random.Random,
) -> tuple[list[Cue], set[str]]:
    """The chosen posts say the wrong thing until their correction."""
    candidates = [p for p in posts if _correctable(p.body)]
    chosen = _choose(rng, candidates, rule.share)
    mistakes = {p.id: _mistake(p.body, rng) for p in candidates if p.id in chosen}
    last = _last_cue(cues)
    out = []
    for cue in cues:
        mistake = mistakes.get(cue.post.id)
        if mistake and cue.type in (EventType.POST_CREATED, EventType.POST_UPDATED):
            right, wrong = mistake
            cue = replace(cue, post=replace(cue.post, body=cue.post.body.replace(right, wrong, 1)))
        out.append(cue)
    for post in candidates:
        found = mistakes.get(post.id)
        if found is None:
            continue
        right, wrong = found
        final = last[post.id].post
        note = (
            f'Correction: an earlier version of this post said "{wrong}" where it should have '
            f'said "{right}".'
        )
        corrected = replace(final, body=f"{final.body}\n\n{note}".lstrip())
        at = last[post.id].at + rule.after
        out.append(Cue(at, EventType.POST_UPDATED, corrected, f"correction: {wrong} -> {right}"))
    return out, set(mistakes)


def _last_cue(cues: Iterable[Cue]) -> Mapping[str, Cue]:
    """Each post's latest cue (with its final text)."""
    last: dict[str, Cue] = {}
    for cue in cues:
        if cue.post.id not in last or cue.at >= last[cue.post.id].at:
            last[cue.post.id] = cue
    return last


# 7. Pin the latest key event -----------------------------------------------------------------


def _pin_latest(cues: Sequence[Cue]) -> list[Cue]:
    created = sorted(
        (c for c in cues if c.type is EventType.POST_CREATED and c.post.key_event),
        key=lambda c: c.at,
    )
    out: list[Cue] = []
    previous: Cue | None = None
    for cue in created:
        if previous is not None:
            note = f"replaced by {cue.post.id}"
            out.append(Cue(cue.at, EventType.POST_UNPINNED, previous.post, note))
        out.append(Cue(cue.at, EventType.POST_PINNED, cue.post, "latest key event"))
        previous = cue
    return out
