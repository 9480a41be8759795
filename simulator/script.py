"""The event script: a feed (and an optional scenario) as the ordered list of things that happen.

A post is created at its ``published_at``. A post the archive says was edited (it names an editor)
is created without the editor and updated ``edit_delay`` archive seconds later. A scenario adds
pins, unpins, deletions and further edits at times relative to a post's creation. Times are archive
seconds from the script's origin, the first post's time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from .model import Feed, Post

DEFAULT_EDIT_DELAY = 180.0


class EventType(StrEnum):
    POST_CREATED = "post.created"
    POST_UPDATED = "post.updated"
    POST_DELETED = "post.deleted"
    POST_PINNED = "post.pinned"
    POST_UNPINNED = "post.unpinned"
    STREAM_STATE = "stream.state"
    STREAM_RESET = "stream.reset"


ACTIONS = {
    "pin": EventType.POST_PINNED,
    "unpin": EventType.POST_UNPINNED,
    "delete": EventType.POST_DELETED,
    "update": EventType.POST_UPDATED,
}


@dataclass(frozen=True, slots=True)
class Step:
    """A scenario step: do ``action`` to ``post`` ``after`` archive seconds past its creation."""

    action: str
    post: str
    after: float = 0.0


@dataclass(frozen=True, slots=True)
class Cue:
    at: float
    type: EventType
    post: Post


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
    """The feed's events in time order (ties keep feed order, then scenario order)."""
    if not feed.posts:
        raise ValueError("a feed with no posts has nothing to replay")
    origin = feed.posts[0].timed
    cues = list(_post_cues(feed.posts, origin, edit_delay))
    by_id = {post.id: post for post in feed.posts}
    for number, step in enumerate(scenario):
        if step.action not in ACTIONS:
            raise ValueError(
                f"scenario[{number}].action: {step.action!r} is not one of {', '.join(ACTIONS)}"
            )
        if step.post not in by_id:
            raise ValueError(f"scenario[{number}].post: no post with id {step.post!r}")
        post = by_id[step.post]
        at = (post.timed - origin).total_seconds() + step.after
        _check_time(origin, at, f"scenario[{number}].after")
        cues.append(Cue(at, ACTIONS[step.action], post))
    cues.sort(key=lambda cue: cue.at)
    _check_time(origin, cues[-1].at, "edit_delay")
    return Script(feed=feed, origin=origin, cues=tuple(cues))


def _check_time(origin: datetime, at: float, where: str) -> None:
    """Every cue must have a representable archive time, or replaying it would crash later."""
    try:
        origin + timedelta(seconds=at)
    except OverflowError:
        raise ValueError(f"{where}: lands after the year 9999") from None


def _post_cues(posts: Iterable[Post], origin: datetime, edit_delay: float) -> Iterable[Cue]:
    for post in posts:
        at = (post.timed - origin).total_seconds()
        if post.editor:
            yield Cue(at, EventType.POST_CREATED, replace(post, editor=None))
            yield Cue(at + edit_delay, EventType.POST_UPDATED, post)
        else:
            yield Cue(at, EventType.POST_CREATED, post)
