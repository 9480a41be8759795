"""The canonical archive format: JSON Lines, a feed header then one post per line.

Also reads the same records as one JSON document (``{"feed": {...}, "posts": [...]}``) or a plain
JSON array of posts. Every problem is reported with its line and JSON path; ``problems()`` collects
them all for ``livesim validate``, ``loads()`` raises the first.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from .model import ArchiveError, Feed, Media, Post, TimeSource, format_time, slug, utc

FORMAT_VERSION = 1
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
        "version": FORMAT_VERSION,
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
    lines = [orjson.dumps(feed_header(feed))]
    lines += [orjson.dumps({"type": "post", **post_record(p)}) for p in feed.posts]
    return b"\n".join(lines) + b"\n"


@dataclass(frozen=True, slots=True)
class _Record:
    line: int
    path: str
    value: Any


def loads(text: str, source: str = "<archive>") -> Feed:
    """Read an archive in the canonical format; raise the first problem found."""
    records = _records(text, source)
    for problem in _record_problems(records, source):
        raise problem
    return _build(records, source)


def check(text: str, source: str = "<archive>") -> tuple[Feed | None, list[ArchiveError]]:
    """Every problem, and the feed when there are none, from one parse (``livesim validate``)."""
    try:
        records = _records(text, source)
    except ArchiveError as exc:
        return None, [exc]
    found = list(_record_problems(records, source))
    return (None if found else _build(records, source)), found


def problems(text: str, source: str = "<archive>") -> Iterator[ArchiveError]:
    """Every problem in an archive, in file order."""
    try:
        records = _records(text, source)
    except ArchiveError as exc:
        yield exc
        return
    yield from _record_problems(records, source)


def _record_problems(records: list[_Record], source: str) -> Iterator[ArchiveError]:
    header, posts = _split(records, source)
    if header is not None:
        yield from _check_object(header, FEED_FIELDS, source, required=("title",))
    if not posts:
        yield ArchiveError("no posts", source=source, line=header.line if header else 1)
    seen: dict[str, int] = {}
    for rec in posts:
        yield from _check_post(rec, source)
        post_id = rec.value.get("id") if isinstance(rec.value, dict) else None
        if isinstance(post_id, str):
            if post_id in seen:
                yield ArchiveError(
                    f"{rec.path}.id: duplicate id {post_id!r} (first on line {seen[post_id]})",
                    source=source,
                    line=rec.line,
                )
            seen.setdefault(post_id, rec.line)


def _records(text: str, source: str) -> list[_Record]:
    stripped = text.lstrip()
    if not stripped:
        raise ArchiveError("empty file", source=source, line=1)
    if stripped[0] == "[" or (stripped[0] == "{" and _is_single_document(stripped)):
        return _document_records(text, source)
    out = []
    # Only "\n" ends a record: str.splitlines() would also split at U+2028, U+0085 …, which
    # JSON strings may hold unescaped.
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ArchiveError(f"invalid JSON: {exc.msg}", source=source, line=number) from None
        out.append(_Record(number, "$", value))
    return out


def _is_single_document(text: str) -> bool:
    """A JSON document spanning lines, rather than JSON Lines (whose first line parses alone)."""
    first = text.split("\n", 1)[0]
    try:
        value = orjson.loads(first)
    except orjson.JSONDecodeError:
        return True
    if "\n" in text.strip():
        return False
    # One line: a {feed, posts} document, or a lone JSON Lines record (a header, or one post).
    return not isinstance(value, dict) or "posts" in value or "feed" in value


def _document_records(text: str, source: str) -> list[_Record]:
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ArchiveError(f"invalid JSON: {exc.msg}", source=source, line=exc.lineno) from None
    if isinstance(doc, list):
        return [_Record(1, f"$[{i}]", {"type": "post", **_obj(v)}) for i, v in enumerate(doc)]
    if not isinstance(doc, dict) or not isinstance(doc.get("posts"), list):
        raise ArchiveError("$: expected an array of posts or {feed, posts}", source=source, line=1)
    feed = doc.get("feed", {})
    records = [_Record(1, "$.feed", {"type": "feed", **_obj(feed)})] if feed else []
    records += [
        _Record(1, f"$.posts[{i}]", {"type": "post", **_obj(v)}) for i, v in enumerate(doc["posts"])
    ]
    return records


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {"__not_an_object__": value}


def _split(records: list[_Record], source: str) -> tuple[_Record | None, list[_Record]]:
    header = None
    if records and isinstance(records[0].value, dict) and records[0].value.get("type") == "feed":
        header = records[0]
        records = records[1:]
    return header, records


def _check_object(
    rec: _Record, fields: tuple[str, ...], source: str, required: tuple[str, ...] = ()
) -> Iterator[ArchiveError]:
    value = rec.value
    if not isinstance(value, dict) or "__not_an_object__" in value:
        yield ArchiveError(f"{rec.path}: expected a JSON object", source=source, line=rec.line)
        return
    for name in required:
        current = value.get(name)
        if current is None or (isinstance(current, str) and not current.strip()):
            yield _err(rec, name, "required string is missing or empty", source)
    for name in fields:
        if name in value and value[name] is not None and not isinstance(value[name], str):
            if name not in ("media", "published_at", "key_event"):
                yield _err(rec, name, f"expected a string, got {json_kind(value[name])}", source)


def _check_post(rec: _Record, source: str) -> Iterator[ArchiveError]:
    value = rec.value
    yield from _check_object(rec, POST_FIELDS, source, required=("id",))
    if not isinstance(value, dict) or "__not_an_object__" in value:
        return
    if value.get("type", "post") != "post":
        yield _err(rec, "type", f"expected 'post', got {value.get('type')!r}", source)
    if value.get("body") is None:  # a body of another type is reported by _check_object
        yield _err(rec, "body", "required string is missing", source)
    stamp = value.get("published_at")
    if stamp is None:
        yield _err(rec, "published_at", "required time is missing", source)
    elif not isinstance(stamp, str) or _parse_time(stamp) is None:
        yield _err(rec, "published_at", f"not an ISO-8601 time: {stamp!r}", source)
    ts = value.get("time_source")
    if ts is not None and ts not in TimeSource.__members__.values():
        yield _err(
            rec,
            "time_source",
            f"expected one of explicit, interpolated, extrapolated, got {ts!r}",
            source,
        )
    key_event = value.get("key_event")
    if key_event is not None and not isinstance(key_event, bool):
        yield _err(rec, "key_event", f"expected true or false, got {json_kind(key_event)}", source)
    media = value.get("media", [])
    if not isinstance(media, list):
        yield _err(rec, "media", f"expected an array, got {json_kind(media)}", source)
        return
    for i, item in enumerate(media):
        path = f"{rec.path}.media[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("kind"), str):
            yield ArchiveError(
                f"{path}: expected an object with a 'kind'", source=source, line=rec.line
            )
        elif item.get("count") is not None and type(item["count"]) is not int:
            yield ArchiveError(f"{path}.count: expected an integer", source=source, line=rec.line)


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


def _build(records: list[_Record], source: str) -> Feed:
    header, posts = _split(records, source)
    head: Mapping[str, Any] = header.value if header else {}
    title = head.get("title") or source
    return Feed(
        id=head.get("id") or slug(title),
        title=title,
        description=head.get("description"),
        timezone=head.get("timezone") or "UTC",
        posts=tuple(post_from_record(r.value) for r in posts),
        extra={k: v for k, v in head.items() if k not in (*FEED_FIELDS, "type", "version")},
    )


def post_from_record(value: Mapping[str, Any]) -> Post:
    """A post from its canonical JSON object (already checked by ``problems``)."""
    stamp = value.get("published_at")
    ts = value.get("time_source")
    return Post(
        id=value["id"],
        headline=value.get("headline"),
        body=value["body"],
        author=value.get("author"),
        editor=value.get("editor"),
        published_at=_parse_time(stamp) if isinstance(stamp, str) else None,
        time_source=TimeSource(ts) if ts else TimeSource.EXPLICIT,
        source=value.get("source"),
        media=tuple(
            Media(**{k: m[k] for k in MEDIA_FIELDS if k in m}) for m in value.get("media") or ()
        ),
        key_event=value.get("key_event") is True,
        extra={k: v for k, v in value.items() if k not in (*POST_FIELDS, "type")},
    )
