"""The canonical archive format: JSON Lines, a feed header then one post per line.

Also reads the same records as one JSON document (``{"feed": {...}, "posts": [...]}``) or a plain
JSON array of posts. Every problem is reported with its line and JSON path; ``check()`` collects
them (up to ``MAX_PROBLEMS``) for ``livesim validate``, ``loads()`` raises the first: one reader,
the same bounds (``model.MAX_*``, docs/archive-format.md "Bounds") for both. It reads the file's
bytes in one pass, a line's length checked before the line is parsed, each post built as its line
is read: the lines and their parsed objects are never all held at once.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from .model import (
    CHANGE_ACTIONS,
    CHANGE_FIELDS,
    MAX_BODY_BYTES,
    MAX_DESCRIPTION_BYTES,
    MAX_DOCUMENT_BYTES,
    MAX_EXTRA_DEPTH,
    MAX_LINE_BYTES,
    MAX_MEDIA,
    MAX_MEDIA_COUNT,
    MAX_TEXT_BYTES,
    MEDIA_TEXT_BOUNDS,
    NO_EXTRA,
    ArchiveError,
    Change,
    Feed,
    Media,
    Post,
    TimeSource,
    depth,
    format_time,
    oversize,
    shown,
    slug,
    utc,
)

FORMAT_VERSION = 2
"""Version 2 added ``change`` records (recorded edits, deletions, pins); an archive without them
is still written as version 1, so every reader of version 1 reads it."""
VERSIONS = (1, 2)
POST_FIELDS = (
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
FEED_FIELDS = ("id", "title", "description", "timezone")
MEDIA_FIELDS = ("kind", "title", "caption", "credit", "url", "count")


def feed_header(feed: Feed) -> dict[str, Any]:
    return {
        "type": "feed",
        "version": FORMAT_VERSION if feed.changes else 1,
        "id": feed.id,
        "title": feed.title,
        "description": feed.description,
        "timezone": feed.timezone,
        **feed.extra,
    }


def post_record(post: Post) -> dict[str, Any]:
    """A post as the JSON object the archive, the API and the wire all use.

    ``key_event`` is written only when true, so the many posts that are not stay as they were.
    """
    return {
        "id": post.id,
        "headline": post.headline,
        "body": post.body,
        "author": post.author,
        "editor": post.editor,
        "published_at": format_time(post.published_at) if post.published_at else None,
        "time_source": str(post.time_source) if post.time_source else None,
        "source": post.source,
        "media": [media_record(m) for m in post.media],
        **({"key_event": True} if post.key_event else {}),
        **post.extra,
    }


def media_record(media: Media) -> dict[str, Any]:
    record = {name: getattr(media, name) for name in MEDIA_FIELDS}
    return {k: v for k, v in record.items() if v is not None}


def dumps(feed: Feed) -> bytes:
    out = io.BytesIO()
    for line in lines(feed):
        out.write(line)
    return out.getvalue()


def lines(feed: Feed) -> Iterator[bytes]:
    """The archive's lines, each ended by ``\\n``, one at a time.

    orjson returns each result in a buffer of at least 4 KB: a list of a feed's encoded posts
    would hold 50 times the archive's size, so every line is copied out at its own size.
    """
    yield orjson.dumps(feed_header(feed)) + b"\n"
    for post in feed.posts:
        yield orjson.dumps({"type": "post", **post_record(post)}) + b"\n"
    for change in feed.changes:
        yield orjson.dumps(change_record(change)) + b"\n"


def change_record(change: Change) -> dict[str, Any]:
    """A change as its archive line: ``fields`` only on an ``update``."""
    record: dict[str, Any] = {
        "type": "change",
        "action": change.action,
        "post": change.post,
        "at": format_time(change.at),
    }
    if change.action == "update":
        record["fields"] = {
            name: [media_record(m) for m in value] if name == "media" else value
            for name, value in change.fields.items()
        }
    return {**record, **change.extra}


MAX_PROBLEMS = 1000
"""``validate`` lists this many problems at most: a file of bad lines would list millions."""


@dataclass(frozen=True, slots=True)
class _Record:
    line: int
    path: str
    value: Any
    header: bool | None = None
    """A document says which record is its header; in JSON Lines, a first ``"type": "feed"``."""


def loads(data: str | bytes, source: str = "<archive>") -> Feed:
    """Read an archive in the canonical format; raise the first problem found."""
    feed, found = _read(data, source, 1)
    if feed is None:
        raise found[0]
    return feed


def check(data: str | bytes, source: str = "<archive>") -> tuple[Feed | None, list[ArchiveError]]:
    """Every problem (up to ``MAX_PROBLEMS``), and the feed when there are none
    (``livesim validate``): the same reading, with the same bounds, as ``loads``."""
    return _read(data, source, MAX_PROBLEMS)


def _read(data: str | bytes, source: str, most: int) -> tuple[Feed | None, list[ArchiveError]]:
    """One pass over the records: each post is checked and built as it is read, and its record
    dropped, so no more than one record is held beside the posts."""
    reader = _Reader(source)
    found: list[ArchiveError] = []
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    for item in _records(raw, source):
        found += reader.add(item)
        if found:
            reader.failed()
            if len(found) >= most:
                if most > 1:
                    found = found[:most]
                    found.append(ArchiveError(f"stopped after {most} problems", source=source))
                return None, found
    if not found:
        found = reader.finish()
    return (None if found else reader.feed()), found


class _Reader:
    """Checks records in file order and builds the posts of those that pass."""

    def __init__(self, source: str):
        self.source = source
        self.first = True
        self.head: Mapping[str, Any] = {}
        self.header_line: int | None = None
        self.posts: list[Post] = []
        self.changes: list[tuple[int, Change]] = []
        self.seen: dict[str, int] = {}
        self.records = 0
        self.building = True

    def add(self, rec: _Record | ArchiveError) -> list[ArchiveError]:
        first, self.first = self.first, False
        if isinstance(rec, ArchiveError):  # a line that could not be read
            return [rec]
        found: list[ArchiveError] = []
        if rec.header or (rec.header is None and first and _is_header(rec.value)):
            self.header_line = rec.line
            _check_header(rec, self.source, found)
            if not found:
                self.head = rec.value
            return found
        if isinstance(rec.value, dict) and rec.value.get("type") == "change":
            change = _check_change(rec, self.source, found)
            if self.building and change is not None and not found:
                self.changes.append((rec.line, change))
            return found
        self.records += 1
        published = _check_post(rec, self.source, found)
        post_id = rec.value.get("id") if isinstance(rec.value, dict) else None
        if isinstance(post_id, str):
            if post_id in self.seen:
                found.append(_duplicate(rec, post_id, self.seen[post_id], self.source))
            else:
                self.seen[post_id] = rec.line
        if self.building and not found:
            self.posts.append(post_from_record(rec.value, published))
        return found

    def failed(self) -> None:
        """A problem was found: no feed will come of this file, so its posts can go."""
        self.building = False
        self.posts = []
        self.changes = []

    def finish(self) -> list[ArchiveError]:
        if not self.records:
            return [ArchiveError("no posts", source=self.source, line=self.header_line or 1)]
        return [
            ArchiveError(f"$.post: no post with id {shown(c.post)}", source=self.source, line=line)
            for line, c in self.changes
            if c.post not in self.seen
        ][:MAX_PROBLEMS]

    def feed(self) -> Feed:
        head = self.head
        title = head.get("title") or self.source
        posts, self.posts = tuple(self.posts), []
        return Feed(
            id=head.get("id") or slug(title),
            title=title,
            description=head.get("description"),
            timezone=head.get("timezone") or "UTC",
            posts=posts,
            extra=_extra(head, _FEED_KNOWN),
            changes=tuple(change for _, change in self.changes),
        )


def _is_header(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "feed"


def _duplicate(rec: _Record, post_id: str, first_line: int, source: str) -> ArchiveError:
    return ArchiveError(
        f"{rec.path}.id: duplicate id {shown(post_id)} (first on line {first_line})",
        source=source,
        line=rec.line,
    )


_CONTENT = re.compile(rb"[^ \t\r\n\x0b\x0c]")
"""The first byte that is not ASCII white space."""


def _records(data: bytes, source: str) -> Iterator[_Record | ArchiveError]:
    """The file's records one at a time, or for a line that can't be read, its problem."""
    start = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    content = _CONTENT.search(data, start)
    if content is None:
        yield ArchiveError("empty file", source=source, line=1)
        return
    first = content.start()
    if data[first] == ord("[") or (data[first] == ord("{") and _is_single_document(data, first)):
        yield from _document_records(data, start, source)
    else:
        yield from _line_records(data, start, source)


def _line_records(data: bytes, start: int, source: str) -> Iterator[_Record | ArchiveError]:
    """JSON Lines. Only ``\\n`` ends a record: JSON strings may hold U+2028, U+0085 … unescaped.
    A line's length is checked before it is parsed."""
    number, position, size = 0, start, len(data)
    blank = True
    while position < size:
        end = data.find(b"\n", position)
        if end < 0:
            end = size
        number += 1
        length = end - position
        if length > MAX_LINE_BYTES:
            blank = False
            yield ArchiveError(
                f"line is {length} bytes long, at most {MAX_LINE_BYTES} (1 MiB): "
                "a line holds one post",
                source=source,
                line=number,
            )
        elif length:
            line = data[position:end]
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                if line.decode("utf-8", "replace").strip():  # else a line of Unicode spaces
                    blank = False
                    yield ArchiveError(f"invalid JSON: {exc.msg}", source=source, line=number)
            else:
                blank = False
                yield _Record(number, "$", value)
        position = end + 1
    if blank:
        yield ArchiveError("empty file", source=source, line=1)


def _is_single_document(data: bytes, first: int) -> bool:
    """A JSON document spanning lines, rather than JSON Lines (whose first line parses alone)."""
    end = data.find(b"\n", first)
    if end < 0:
        end = len(data)
    if end - first > MAX_DOCUMENT_BYTES:
        return False  # too long for either: read as a line, which is refused unparsed
    try:
        value = orjson.loads(data[first:end])
    except orjson.JSONDecodeError:
        return True
    if _CONTENT.search(data, end) is not None:
        return False
    # One line: a {feed, posts} document, or a lone JSON Lines record (a header, or one post).
    return not isinstance(value, dict) or "posts" in value or "feed" in value


def _document_records(data: bytes, start: int, source: str) -> Iterator[_Record | ArchiveError]:
    """A whole JSON document, within its bound; each post's record is let go once read."""
    size = len(data) - start
    if size > MAX_DOCUMENT_BYTES:
        yield ArchiveError(
            f"a JSON document of {size} bytes, at most {MAX_DOCUMENT_BYTES} (64 MiB): "
            "write a larger archive as JSON Lines, one post a line",
            source=source,
            line=1,
        )
        return
    try:
        doc = orjson.loads(memoryview(data)[start:])
    except orjson.JSONDecodeError as exc:
        yield ArchiveError(f"invalid JSON: {exc.msg}", source=source, line=exc.lineno)
        return
    if isinstance(doc, list):
        items, prefix = doc, "$"
    elif isinstance(doc, dict) and isinstance(doc.get("posts"), list):
        items, prefix = doc["posts"], "$.posts"
        feed = doc.get("feed", {})
        if feed:
            yield _Record(1, "$.feed", feed, header=True)
    else:
        yield ArchiveError("$: expected an array of posts or {feed, posts}", source=source, line=1)
        return
    del doc
    for i in range(len(items)):
        value, items[i] = items[i], None
        yield _Record(1, f"{prefix}[{i}]", value, header=False)


# The checks add what they find to ``found``: they run once per post, and most find nothing.


def _check_header(rec: _Record, source: str, found: list[ArchiveError]) -> None:
    _check_object(rec, FEED_FIELDS, source, ("title",), found)
    if isinstance(rec.value, dict):
        _check_extra(rec, _FEED_KNOWN, source, found)
        version = rec.value.get("version")
        if version is not None and (type(version) is not int or version not in VERSIONS):
            message = f"expected 1 or 2 (this livesim reads up to {FORMAT_VERSION}), got "
            found.append(_err(rec, "version", message + shown(version), source))


def _check_object(
    rec: _Record,
    fields: tuple[str, ...],
    source: str,
    required: tuple[str, ...],
    found: list[ArchiveError],
) -> None:
    value = rec.value
    if not isinstance(value, dict):
        found.append(
            ArchiveError(f"{rec.path}: expected a JSON object", source=source, line=rec.line)
        )
        return
    for name in required:
        current = value.get(name)
        if current is None or (isinstance(current, str) and not current.strip()):
            found.append(_err(rec, name, "required string is missing or empty", source))
    for name in fields:
        current = value.get(name)
        if current is None or name in _NOT_TEXT:
            continue
        if type(current) is not str:
            found.append(_err(rec, name, f"expected a string, got {json_kind(current)}", source))
            continue
        limit = _TEXT_BOUNDS.get(name, MAX_TEXT_BYTES)
        if len(current) * 4 > limit and (problem := oversize(current, limit)):
            found.append(_err(rec, name, problem, source))


_NOT_TEXT = frozenset({"media", "published_at", "key_event"})
_TEXT_BOUNDS = {"body": MAX_BODY_BYTES, "description": MAX_DESCRIPTION_BYTES}
"""Every other text field of a post or a header: ``MAX_TEXT_BYTES``."""
_FEED_KNOWN = frozenset({*FEED_FIELDS, "type", "version"})
_POST_KNOWN = frozenset({*POST_FIELDS, "type"})
_TIME_SOURCES = frozenset(str(source) for source in TimeSource)


def _check_extra(
    rec: _Record, known: frozenset[str], source: str, found: list[ArchiveError]
) -> None:
    if rec.value.keys() <= known:
        return
    for name, value in rec.value.items():
        if name not in known and isinstance(value, dict | list):
            levels = depth(value)
            if levels > MAX_EXTRA_DEPTH:
                message = f"nested {levels} deep, at most {MAX_EXTRA_DEPTH}"
                found.append(_err(rec, name, message, source))


def _check_post(rec: _Record, source: str, found: list[ArchiveError]) -> datetime | None:
    """Add the post's problems to ``found``; its time, when that could be read."""
    value = rec.value
    _check_object(rec, POST_FIELDS, source, ("id",), found)
    if not isinstance(value, dict):
        return None
    if value.get("type", "post") != "post":
        found.append(_err(rec, "type", f"expected 'post', got {shown(value.get('type'))}", source))
    if value.get("body") is None:  # a body of another type is reported by _check_object
        found.append(_err(rec, "body", "required string is missing", source))
    stamp = value.get("published_at")
    published = _parse_time(stamp) if isinstance(stamp, str) else None
    if stamp is None:
        found.append(_err(rec, "published_at", "required time is missing", source))
    elif published is None:
        message = f"not an ISO-8601 time: {shown(stamp)}"
        found.append(_err(rec, "published_at", message, source))
    ts = value.get("time_source")
    if ts is not None and (type(ts) is not str or ts not in _TIME_SOURCES):
        message = f"expected one of explicit, interpolated, extrapolated, got {shown(ts)}"
        found.append(_err(rec, "time_source", message, source))
    key_event = value.get("key_event")
    if key_event is not None and not isinstance(key_event, bool):
        message = f"expected true or false, got {json_kind(key_event)}"
        found.append(_err(rec, "key_event", message, source))
    media = value.get("media")
    if media:
        _check_media(rec, media, source, found)
    elif media is not None and not isinstance(media, list):
        found.append(_err(rec, "media", f"expected an array, got {json_kind(media)}", source))
    _check_extra(rec, _POST_KNOWN, source, found)
    return published


_CHANGE_KNOWN = frozenset({"type", "action", "post", "at", "fields"})


def check_record(value: Any, source: str = "<record>", line: int | None = None) -> list[str]:
    """The problems of one post or change record, as ``load`` would find them in a file (but
    not those only the whole file shows: duplicate ids, changes to posts it lacks). A recorder
    checks each line before it appends it, so a hostile source cannot make its archive
    unreadable."""
    rec = _Record(line or 1, "$", value)
    found: list[ArchiveError] = []
    if isinstance(value, dict) and value.get("type") == "change":
        _check_change(rec, source, found)
    else:
        _check_post(rec, source, found)
    return [problem.message for problem in found]


def _check_change(rec: _Record, source: str, found: list[ArchiveError]) -> Change | None:
    """Add a change record's problems to ``found``; the change, when it has none."""
    value, before = rec.value, len(found)
    action = value.get("action")
    if type(action) is not str or action not in CHANGE_ACTIONS:
        message = f"expected one of {', '.join(CHANGE_ACTIONS)}, got {shown(action)}"
        found.append(_err(rec, "action", message, source))
    post = value.get("post")
    if type(post) is not str or not post.strip():
        found.append(_err(rec, "post", "required post id is missing or not a string", source))
    elif problem := oversize(post, MAX_TEXT_BYTES):
        found.append(_err(rec, "post", problem, source))
    stamp = value.get("at")
    at = _parse_time(stamp) if isinstance(stamp, str) else None
    if at is None:
        found.append(_err(rec, "at", f"expected an ISO-8601 time, got {shown(stamp)}", source))
    fields = value.get("fields")
    if fields is not None:
        if not isinstance(fields, dict):
            found.append(
                _err(rec, "fields", f"expected an object, got {json_kind(fields)}", source)
            )
        elif action != "update" and fields:
            found.append(_err(rec, "fields", "only an update carries new field values", source))
        else:
            _check_fields(rec, fields, source, found)
    _check_extra(rec, _CHANGE_KNOWN, source, found)
    if len(found) > before or at is None:
        return None
    new = dict(fields or {})
    if "media" in new:
        new["media"] = tuple(
            Media(**{k: m[k] for k in MEDIA_FIELDS if k in m}) for m in new["media"] or ()
        )
    return Change(action, post, at, new or NO_EXTRA, _extra(value, _CHANGE_KNOWN))


def _check_fields(
    rec: _Record, fields: dict[str, Any], source: str, found: list[ArchiveError]
) -> None:
    sub = _Record(rec.line, f"{rec.path}.fields", fields)
    for name, current in fields.items():
        if name not in CHANGE_FIELDS:
            message = f"not a field an update can change (one of {', '.join(CHANGE_FIELDS)})"
            found.append(_err(sub, name[:64], message, source))
        elif name == "key_event":
            if not isinstance(current, bool):
                message = f"expected true or false, got {json_kind(current)}"
                found.append(_err(sub, name, message, source))
        elif name == "media":
            if current is not None:
                _check_media(sub, current, source, found)
        elif name == "body" and type(current) is not str:
            found.append(_err(sub, name, f"expected a string, got {json_kind(current)}", source))
    _check_object(sub, tuple(n for n in CHANGE_FIELDS if n in fields), source, (), found)


def _check_media(rec: _Record, media: Any, source: str, found: list[ArchiveError]) -> None:
    if not isinstance(media, list):
        found.append(_err(rec, "media", f"expected an array, got {json_kind(media)}", source))
        return
    if len(media) > MAX_MEDIA:
        found.append(_err(rec, "media", f"{len(media)} items, at most {MAX_MEDIA}", source))
        return
    for i, item in enumerate(media):
        path = f"{rec.path}.media[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("kind"), str):
            message = f"{path}: expected an object with a 'kind'"
            found.append(ArchiveError(message, source=source, line=rec.line))
            continue
        for name, limit in MEDIA_TEXT_BOUNDS:
            text = item.get(name)
            if text is None:
                continue
            if not isinstance(text, str):
                problem: str | None = f"expected a string, got {json_kind(text)}"
            else:
                problem = oversize(text, limit)
            if problem:
                message = f"{path}.{name}: {problem}"
                found.append(ArchiveError(message, source=source, line=rec.line))
        count = item.get("count")
        if count is not None and (type(count) is not int or not 0 <= count <= MAX_MEDIA_COUNT):
            message = f"{path}.count: expected an integer from 0 to {MAX_MEDIA_COUNT}"
            found.append(ArchiveError(message, source=source, line=rec.line))


def _err(rec: _Record, name: str, message: str, source: str) -> ArchiveError:
    return ArchiveError(f"{rec.path}.{name}: {message}", source=source, line=rec.line)


def json_kind(value: Any) -> str:
    """What a decoded JSON value is, in words, for error messages."""
    return {
        dict: "an object",
        list: "an array",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
    }.get(type(value), "null")


def _parse_time(text: str) -> datetime | None:
    try:
        return utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except (ValueError, OverflowError):
        return None


def post_from_record(value: Mapping[str, Any], published: datetime | None = None) -> Post:
    """A post from its canonical JSON object (already checked by ``check``, which read its
    time: ``published``)."""
    if published is None:
        stamp = value.get("published_at")
        published = _parse_time(stamp) if isinstance(stamp, str) else None
    ts = value.get("time_source")
    return Post(
        id=value["id"],
        headline=value.get("headline"),
        body=value["body"],
        author=value.get("author"),
        editor=value.get("editor"),
        published_at=published,
        time_source=TimeSource(ts) if ts else TimeSource.EXPLICIT,
        source=value.get("source"),
        media=tuple(
            Media(**{k: m[k] for k in MEDIA_FIELDS if k in m}) for m in value.get("media") or ()
        ),
        key_event=value.get("key_event") is True,
        extra=_extra(value, _POST_KNOWN),
    )


def _extra(value: Mapping[str, Any], known: frozenset[str]) -> Mapping[str, Any]:
    """The fields the format does not know, kept as they were (most records have none)."""
    if value.keys() <= known:
        return NO_EXTRA
    return {k: v for k, v in value.items() if k not in known}
