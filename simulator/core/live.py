"""Posts added while a replay runs (``POST /api/streams/{id}/posts``, the WebSocket ``post`` op).

Their fields are checked here, once for both transports, with bounded sizes. A replay keeps its
live posts apart from the archive's (``LivePosts``): a seek back, a loop or a restart replays the
archive from a position, and the live posts are put back on top of it, as they are now.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from .archive import MEDIA_FIELDS, json_kind, post_record
from .errors import InputError, from_validation, join, shorten
from .model import Media, Post, TimeSource, oversize, shown, utc

MAX_BODY = 64 * 1024
"""Bytes (UTF-8) of a live or injected post's body."""
MAX_TEXT = 1024
"""Bytes of a headline, author, source, media title, caption or credit."""
MAX_URL = 2048
MAX_MEDIA = 20
MAX_COUNT = 10_000
"""A gallery's picture count."""
MAX_LIVE_POSTS = 10_000
"""Live posts a replay holds at once (deleted ones do not count)."""
MAX_LIVE_BYTES = 32 * 1024 * 1024
"""Encoded bytes of the live posts a replay holds at once."""

TEXT_FIELDS = ("headline", "author", "source")
POST_FIELDS = ("headline", "body", "author", "source", "media", "key_event", "pinned")
MEDIA_KINDS = ("image", "gallery", "youtube", "instagram", "twitter", "video", "link")


class UnknownPost(InputError):
    """An operation named a post that is not visible in the stream."""

    def __init__(self, post: str) -> None:
        super().__init__("post", f"no post {shown(post, 100)} is visible in this stream", 404)
        self.post = post


class TooManyPosts(InputError):
    """The stream holds as many live posts (or bytes of them) as it may; ``where`` names the
    bound (``$``: the stream's own; else the setting that bounds a group of streams)."""

    def __init__(self, message: str, where: str = "$") -> None:
        super().__init__(where, message, 429)


class LiveBudget:
    """Bytes of live posts that a group of replays (the private ones) may hold together.

    Each replay's ``LivePosts`` adds what it holds and gives it back when the replay closes.
    """

    def __init__(self, limit: int, name: str) -> None:
        self.limit = limit
        self.name = name
        """The setting that sets ``limit``, for the refusal (``server.max_private_live_bytes``)."""
        self.used = 0


def _body(value: object) -> str:
    return _text(value, "", MAX_BODY, nullable=False) or ""


def _short_text(value: object) -> str | None:
    return _text(value, "", MAX_TEXT, nullable=True)


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise InputError("", f"expected true or false, got {json_kind(value)}")
    return value


def _media_list(value: object) -> list[dict[str, Any]]:
    return _media(value, "")


Body = Annotated[str, BeforeValidator(_body)]
"""A post's body: a string of at most ``MAX_BODY`` bytes, no NUL."""
Text = Annotated[str | None, BeforeValidator(_short_text)]
"""A headline, author or source: a string of at most ``MAX_TEXT`` bytes, or null."""
Flag = Annotated[bool, BeforeValidator(_flag)]
"""``true`` or ``false``, nothing that pydantic would read as one."""
MediaList = Annotated[list[dict[str, Any]], BeforeValidator(_media_list)]


class PostFields(BaseModel):
    """A post's fields as a client gives them: live posts (REST and WebSocket), scheduled
    injects and saved live posts read them with these types, so the same limits hold with the
    same messages (scenario injects use the same ``Body``, ``Text`` and ``Flag``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    headline: Text = None
    body: Annotated[str | None, BeforeValidator(_body)] = None
    author: Text = None
    source: Text = None
    media: Annotated[list[dict[str, Any]] | None, BeforeValidator(_media_list)] = None
    key_event: Annotated[bool | None, BeforeValidator(_flag)] = None
    pinned: Annotated[bool | None, BeforeValidator(_flag)] = None


def parse_fields(
    value: Mapping[str, Any],
    where: str,
    *,
    create: bool,
    ignore: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The post fields of a JSON object, checked (``PostFields``): ``InputError`` at
    ``where.field``; only the fields given, in the model's order.

    ``create``: a new post needs a ``body`` (``""`` is allowed with a headline or media). Without
    it (an update) every field is optional and at least one is needed. ``ignore`` lists keys that
    belong to the message around the fields (``op``, ``post``).
    """
    given = {name: item for name, item in value.items() if name not in ignore}
    for name in given:
        if name not in POST_FIELDS:  # named first, with the fields there are
            known = ", ".join(POST_FIELDS)
            raise InputError(join(where, _short(name)), f"unknown field (known: {known})")
    try:
        out = PostFields.model_validate(given).model_dump(exclude_unset=True)
    except ValidationError as exc:
        raise from_validation(exc, where, inner=True) from None
    if create:
        if "body" not in out:
            raise InputError(
                join(where, "body"), 'required (a string; "" with a headline or media)'
            )
        if not out["body"].strip() and not out.get("headline") and not out.get("media"):
            raise InputError(join(where, "body"), "empty, and the post has no headline or media")
    elif not out:
        raise InputError(where, f"no field to change (fields: {', '.join(POST_FIELDS)})")
    return out


def _text(value: object, path: str, limit: int, *, nullable: bool) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        expected = "a string or null" if nullable else "a string"
        raise InputError(path, f"expected {expected}, got {json_kind(value)}")
    too_long = oversize(value, limit)  # as an archive's check words it
    if too_long:
        raise InputError(path, too_long)
    if "\x00" in value:
        raise InputError(path, "contains a NUL character")
    return value


def _media(value: object, path: str) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise InputError(path, f"expected an array, got {json_kind(value)}")
    if len(value) > MAX_MEDIA:
        raise InputError(path, f"{len(value)} items, at most {MAX_MEDIA}")
    out = []
    for i, item in enumerate(value):
        here = join(path, f"[{i}]")
        if not isinstance(item, dict):
            raise InputError(here, f"expected an object, got {json_kind(item)}")
        record: dict[str, Any] = {}
        for name, field in item.items():
            if name not in MEDIA_FIELDS:
                known = ", ".join(MEDIA_FIELDS)
                raise InputError(join(here, _short(name)), f"unknown field (known: {known})")
            if name == "count":
                if field is not None and (type(field) is not int or not 0 <= field <= MAX_COUNT):
                    raise InputError(f"{here}.count", f"expected an integer 0-{MAX_COUNT} or null")
            else:
                limit = MAX_URL if name == "url" else MAX_TEXT
                field = _text(field, f"{here}.{name}", limit, nullable=name != "kind")
            if field is not None:
                record[name] = field
        kind = record.get("kind")
        if kind not in MEDIA_KINDS:
            raise InputError(f"{here}.kind", f"expected one of {', '.join(MEDIA_KINDS)}")
        out.append(record)
    return out


def _short(name: object) -> str:
    """A key as an error's path quotes it: a client's 10 KB key is cut."""
    return shorten(str(name), 40)


@dataclass(slots=True)
class LivePost:
    record: dict[str, Any]
    pinned: bool = False
    size: int = 0


class LivePosts:
    """A replay's live posts by id, in creation order, and the next free ``live-N`` id.

    Besides them it counts the edits of archive posts (their new records stay in the replay's
    projection): the bounds are on both, so that neither posting nor editing grows without end.
    """

    def __init__(self, reserved: frozenset[str] = frozenset()) -> None:
        self._reserved = reserved
        self._posts: dict[str, LivePost] = {}
        self._edits: dict[str, int] = {}
        """Archive posts edited: the size of each one's latest record."""
        self._number = 0
        self._bytes = 0
        self._budget: LiveBudget | None = None
        self.last_id: str | None = None
        """The id ``new_id`` gave last: the post a ``CreatePost`` just made."""

    def __contains__(self, post_id: object) -> bool:
        return post_id in self._posts

    def __len__(self) -> int:
        return len(self._posts)

    def __iter__(self) -> Iterator[tuple[str, LivePost]]:
        return iter(self._posts.items())

    def new_id(self) -> str:
        """``live-1``, ``live-2`` …, never an archive's id nor one used before in this replay."""
        while True:
            self._number += 1
            candidate = f"live-{self._number}"
            if candidate not in self._reserved:
                self.last_id = candidate
                return candidate

    def check_room(self, fields: Mapping[str, Any], *, new: bool) -> None:
        """Refuse a post (``new``) or an edit that would pass the bounds; the fields' own size
        stands for what they add, so this can be asked before the record exists."""
        if new and len(self._posts) >= MAX_LIVE_POSTS:
            raise TooManyPosts(
                f"this stream holds {MAX_LIVE_POSTS} live posts, the most it keeps; delete some"
            )
        adds = _size(fields)
        if self._bytes + adds > MAX_LIVE_BYTES:
            raise TooManyPosts(
                f"this stream's live posts would exceed {MAX_LIVE_BYTES} bytes; delete some"
            )
        budget = self._budget
        if budget is not None and budget.used + adds > budget.limit:
            raise TooManyPosts(
                f"the live posts of all private replays would exceed "
                f"{budget.name} ({budget.limit}) bytes; delete some, or retry later",
                budget.name,
            )

    def put(self, post_id: str, record: dict[str, Any]) -> None:
        old = self._posts.get(post_id)
        size = _size(record)
        if old:
            self._charge(size - old.size)
            old.record, old.size = record, size
        else:
            self._posts[post_id] = LivePost(record, False, size)
            self._charge(size)

    def edited(self, post_id: str, record: Mapping[str, Any]) -> None:
        """An archive post was edited: its new record is held (instead of its last edit's)."""
        size = _size(record)
        self._charge(size - self._edits.get(post_id, 0))
        self._edits[post_id] = size

    def pin(self, post_id: str, pinned: bool) -> None:
        if post_id in self._posts:
            self._posts[post_id].pinned = pinned

    def remove(self, post_id: str) -> None:
        """A post was deleted: a live post, or an archive post whose edit is no longer held."""
        old = self._posts.pop(post_id, None)
        if old:
            self._charge(-old.size)
        self._charge(-self._edits.pop(post_id, 0))

    def share(self, budget: LiveBudget) -> None:
        """Count what is held in ``budget`` from now on (with the other replays sharing it)."""
        budget.used += self._bytes
        self._budget = budget

    def close(self) -> None:
        """The replay is over: hold nothing, and give the budget back what it counted."""
        self._charge(-self._bytes)
        self._posts.clear()
        self._edits.clear()
        self._budget = None

    def _charge(self, delta: int) -> None:
        self._bytes += delta
        if self._budget is not None:
            self._budget.used += delta

    def edited_ids(self) -> list[str]:
        """The archive posts whose edits are held (their records are the projection's)."""
        return list(self._edits)

    def forget_edit(self, post_id: str) -> None:
        """An edited archive post is gone, or the script has put it back as it was."""
        self._charge(-self._edits.pop(post_id, 0))

    def forget_edits(self) -> None:
        """The replay went back to a position: every archive post is as the script has it."""
        self._charge(-sum(self._edits.values()))
        self._edits.clear()


def _size(record: Mapping[str, Any]) -> int:
    return len(orjson.dumps(record))


# Saving and restoring (the state file, ``simulator/web/persist.py``) ----------------------------

RECORD_FIELDS = (
    "id",
    "headline",
    "body",
    "author",
    "editor",
    "published_at",
    "time_source",
    "source",
    "media",
    "key_event",
)
"""The keys of a live post's record (``archive.post_record`` of a live post)."""
MAX_SAVED_ID = 200
"""Characters of a saved live post's id: ours are ``live-N``."""
MAX_SAVED_NUMBER = 2**53
SAVED_SLACK = MAX_BODY
"""Bytes saved live posts may take beyond ``MAX_LIVE_BYTES``: ``check_room`` weighs a new post's
fields, and its record (id, time, nulls) weighs a little more, so a full stream can be a few
hundred bytes over; its own file must not be refused for that."""
_LIVE_ID = re.compile(r"live-([0-9]{1,16})")


def export_live(posts: LivePosts) -> dict[str, Any]:
    """``posts`` as plain data for the state file, which ``restore_live`` reads back: each
    record as the wire has it with its pin, in creation order, and the counter behind
    ``new_id``, so an id a deleted post had is never given again."""
    return {
        "next": posts._number,
        "posts": [{"post": live.record, "pinned": live.pinned} for live in posts._posts.values()],
    }


def restore_live(posts: LivePosts, value: Any, where: str) -> None:
    """Put what ``export_live`` gave into an empty ``posts``, checked as strictly as the API
    checks a post (the file may have been edited by hand): ``InputError`` naming the place,
    ``where.posts[3].post.body: …``. The bounds hold as for posts made live (the bytes with
    ``SAVED_SLACK``)."""
    if not isinstance(value, Mapping):
        raise InputError(where, f"expected an object, got {json_kind(value)}")
    for name in value:
        if name not in ("next", "posts"):
            raise InputError(f"{where}.{_short(name)}", "unknown key (known: next, posts)")
    number = value.get("next", 0)
    if type(number) is not int or not 0 <= number <= MAX_SAVED_NUMBER:
        raise InputError(f"{where}.next", f"expected an integer 0-{MAX_SAVED_NUMBER}")
    items = value.get("posts", [])
    if not isinstance(items, list):
        raise InputError(f"{where}.posts", f"expected an array, got {json_kind(items)}")
    if len(items) > MAX_LIVE_POSTS:
        raise InputError(f"{where}.posts", f"{len(items)} posts, at most {MAX_LIVE_POSTS}")
    total = 0
    for index, item in enumerate(items):
        here = f"{where}.posts[{index}]"
        record, pinned = _saved_post(item, here)
        post_id = record["id"]
        if post_id in posts._reserved:
            raise InputError(f"{here}.post.id", f"{post_id!r} is a post of the stream's archive")
        if post_id in posts:
            raise InputError(f"{here}.post.id", f"{post_id!r} is saved twice")
        total += _size(record)
        if total > MAX_LIVE_BYTES + SAVED_SLACK:
            raise InputError(
                here,
                f"the live posts so far take {total} bytes, more than the "
                f"{MAX_LIVE_BYTES} a stream keeps",
            )
        posts.put(post_id, record)
        posts.pin(post_id, pinned)
        found = _LIVE_ID.fullmatch(post_id)
        if found:
            number = max(number, int(found.group(1)))
    posts._number = number


def _saved_post(item: Any, where: str) -> tuple[dict[str, Any], bool]:
    if not isinstance(item, Mapping):
        raise InputError(where, f"expected an object, got {json_kind(item)}")
    for name in item:
        if name not in ("post", "pinned"):
            raise InputError(f"{where}.{_short(name)}", "unknown key (known: post, pinned)")
    pinned = item.get("pinned", False)
    if not isinstance(pinned, bool):
        raise InputError(f"{where}.pinned", f"expected true or false, got {json_kind(pinned)}")
    return _saved_record(item.get("post"), f"{where}.post"), pinned


def _saved_record(value: Any, where: str) -> dict[str, Any]:
    """A saved record, checked and rebuilt as ``post_record`` writes one."""
    if not isinstance(value, Mapping):
        raise InputError(where, f"expected an object, got {json_kind(value)}")
    for name in value:
        if name not in RECORD_FIELDS:
            known = ", ".join(RECORD_FIELDS)
            raise InputError(f"{where}.{_short(name)}", f"unknown field (known: {known})")
    post_id = value.get("id")
    if not isinstance(post_id, str) or not post_id or len(post_id) > MAX_SAVED_ID:
        raise InputError(
            f"{where}.id", f"expected a post id, a string of 1-{MAX_SAVED_ID} characters"
        )
    if "body" not in value:
        raise InputError(f"{where}.body", "required")
    fields = parse_fields(
        {name: item for name, item in value.items() if name in POST_FIELDS}, where, create=False
    )
    if value.get("time_source", "explicit") != "explicit":
        raise InputError(f"{where}.time_source", "expected 'explicit', as a live post has")
    editor = _text(value.get("editor"), f"{where}.editor", MAX_TEXT, nullable=True)
    stamp = value.get("published_at")
    try:
        if not isinstance(stamp, str) or len(stamp) > 40:
            raise ValueError
        at = utc(datetime.fromisoformat(stamp.replace("Z", "+00:00")))
    except ValueError:
        raise InputError(
            f"{where}.published_at", f"expected an ISO-8601 time, got {shown(stamp)}"
        ) from None
    post = Post(
        id=post_id,
        body=fields["body"],
        published_at=at,
        time_source=TimeSource.EXPLICIT,
        headline=fields.get("headline"),
        author=fields.get("author"),
        editor=editor,
        source=fields.get("source"),
        media=tuple(Media(**m) for m in fields.get("media") or ()),
        key_event=bool(fields.get("key_event")),
    )
    return post_record(post)
