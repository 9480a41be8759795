"""The event script: a feed (and an optional scenario) as the ordered list of things that happen.

A post is created at its ``published_at``. A post the archive says was edited (it names an editor)
is created without the editor and updated ``edit_delay`` archive seconds later. A scenario adds
pins, unpins, deletions and further edits at times relative to a post's creation. Times are archive
seconds from the script's origin, the first post's time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from .errors import InputError, shown
from .model import Change, Feed, Post
from .wire import EventType

DEFAULT_EDIT_DELAY = 180.0


ACTIONS = {
    "pin": EventType.POST_PINNED,
    "unpin": EventType.POST_UNPINNED,
    "delete": EventType.POST_DELETED,
    "update": EventType.POST_UPDATED,
}


@dataclass(frozen=True, slots=True)
class Step:
    """A scenario step: do ``action`` to ``post`` ``after`` archive seconds past its creation.

    ``fields``: an ``update``'s new values (``headline``, ``body``, ``author``, ``source``,
    ``key_event``) over the post as it is by then; without them the post is sent again unchanged.
    """

    action: str
    post: str
    after: float = 0.0
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Cue:
    at: float
    type: EventType
    post: Post
    note: str = ""
    """What this cue changes, for people (``livesim script``): "first paragraph of 3" …"""


@dataclass(frozen=True, slots=True)
class Script:
    feed: Feed
    origin: datetime
    cues: tuple[Cue, ...]

    def archive_time(self, at: float) -> datetime:
        return self.origin + timedelta(seconds=at)

    def seconds(self, moment: datetime) -> float:
        return (moment - self.origin).total_seconds()

    def created_index(self, post_id: str) -> int:
        for i, cue in enumerate(self.cues):
            if cue.type is EventType.POST_CREATED and cue.post.id == post_id:
                return i
        raise KeyError(post_id)


def build(
    feed: Feed, scenario: Sequence[Step] = (), edit_delay: float = DEFAULT_EDIT_DELAY
) -> Script:
    """The feed's events in time order (ties keep feed order, then scenario order).

    A scenario of rules (developing stories, corrections, bursts …) is ``scenario.build``'s.
    """
    origin = origin_of(feed)
    cues = list(post_cues(feed.posts, origin, edit_delay))
    by_id = {post.id: post for post in feed.posts}
    cues += step_cues(scenario, by_id, origin, "scenario")
    cues += change_cues(feed.changes, by_id, origin)
    return finish(feed, origin, cues)


def origin_of(feed: Feed) -> datetime:
    if not feed.posts:
        raise ValueError("a feed with no posts has nothing to replay")
    return feed.posts[0].timed


def finish(feed: Feed, origin: datetime, cues: list[Cue]) -> Script:
    """The cues in time order (stable: ties keep the order they were made in) as a script."""
    cues.sort(key=lambda cue: cue.at)
    _check_time(origin, cues[-1].at, "edit_delay")
    return Script(feed=feed, origin=origin, cues=tuple(cues))


UPDATE_FIELDS = ("headline", "body", "author", "source", "key_event")
"""What an ``update`` step may change."""


def step_cues(
    steps: Sequence[Step], by_id: Mapping[str, Post], origin: datetime, where: str
) -> list[Cue]:
    """The explicit steps' cues; errors name ``{where}[n].field``."""
    out = []
    for number, step in enumerate(steps):
        here = f"{where}[{number}]"
        if step.action not in ACTIONS:
            raise InputError(
                f"{here}.action", f"{step.action!r} is not one of {', '.join(ACTIONS)}"
            )
        if step.post not in by_id:
            raise InputError(f"{here}.post", f"no post with id {shown(step.post, 100)}")
        post = by_id[step.post]
        for name in step.fields:
            if step.action != "update":
                raise InputError(f"{here}.{name}", "only an update step carries new field values")
            if name not in UPDATE_FIELDS:
                raise InputError(f"{here}.{name}", "not a field an update can change")
        note = ""
        if step.fields:
            post = replace(post, **step.fields)
            note = "changes " + ", ".join(step.fields)
        at = (by_id[step.post].timed - origin).total_seconds() + step.after
        _check_time(origin, at, f"{here}.after")
        out.append(Cue(at, ACTIONS[step.action], post, note))
    return out


def change_cues(
    changes: Sequence[Change], by_id: Mapping[str, Post], origin: datetime
) -> list[Cue]:
    """A recorded archive's changes as cues, each update applied over the post as it was then,
    so a recording plays back the edits, deletions and pins it saw."""
    current = dict(by_id)
    out = []
    for change in changes:
        post = current[change.post]
        note = ""
        if change.action == "update":
            post = replace(post, **change.fields)
            current[change.post] = post
            note = "changes " + ", ".join(change.fields) if change.fields else ""
        at = (change.at - origin).total_seconds()
        _check_time(origin, at, f"change of {change.post}")
        out.append(Cue(at, ACTIONS[change.action], post, note))
    return out


def _check_time(origin: datetime, at: float, where: str) -> None:
    """Every cue must have a representable archive time, or replaying it would crash later."""
    try:
        origin + timedelta(seconds=at)
    except OverflowError:
        raise InputError(where, "lands after the year 9999") from None


def post_cues(posts: Iterable[Post], origin: datetime, edit_delay: float) -> Iterable[Cue]:
    """Each post's ``post.created``, and its ``post.updated`` when the archive names an editor."""
    for post in posts:
        at = (post.timed - origin).total_seconds()
        if post.editor:
            yield Cue(at, EventType.POST_CREATED, replace(post, editor=None))
            yield Cue(at + edit_delay, EventType.POST_UPDATED, post, f"edited by {post.editor}")
        else:
            yield Cue(at, EventType.POST_CREATED, post)
