"""``--map``: read a foreign stream's JSON as livesim's envelope, by JSON paths.

A map is a JSON object naming where each part is in the source's event: ``id`` (event id, for
resume and duplicates), ``type``, ``post`` (the post's id), ``headline``, ``body``, ``author``,
``time`` (ISO-8601, or epoch seconds or milliseconds), each a path like ``$.entry.title`` or
``$.items[0].id``; and ``types``, the source's type names for livesim's
(``{"new": "post.created", "edit": "post.updated", "remove": "post.deleted"}``). Only ``post``
and ``body`` are required. An event without a type is a ``post.created`` (or, for a post already
recorded, ``post.updated``). What a path does not find is null.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from simulator.core.model import format_time, shown

PARTS = ("id", "type", "post", "headline", "body", "author", "time")
REQUIRED = ("post", "body")
TYPES = frozenset({"post.created", "post.updated", "post.deleted", "post.pinned", "post.unpinned"})
_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d{1,6})\]|\[\"([^\"]*)\"\]")
MAX_STEPS = 32


class MapError(ValueError):
    """A map that cannot be used, naming its key (``--map.body``)."""


@dataclass(frozen=True, slots=True)
class FieldMap:
    paths: Mapping[str, tuple[str | int, ...]]
    types: Mapping[str, str]

    def envelope(self, value: Any, event_id: str) -> tuple[dict[str, Any] | None, str]:
        """livesim's envelope for a source event (None if it names no post), and its id."""
        got = {name: _find(value, path) for name, path in self.paths.items()}
        post_id = got.get("post")
        if isinstance(post_id, int | float) and not isinstance(post_id, bool):
            post_id = str(post_id)
        if not isinstance(post_id, str) or not post_id:
            return None, event_id
        mapped_id = got.get("id")
        if isinstance(mapped_id, str | int) and not isinstance(mapped_id, bool):
            event_id = str(mapped_id)
        kind = got.get("type")
        kind = self.types.get(kind, kind) if isinstance(kind, str) else None
        body = got.get("body")
        post = {
            "id": post_id,
            "headline": _text(got.get("headline")),
            "body": body if isinstance(body, str) else "",
            "author": _text(got.get("author")),
        }
        envelope: dict[str, Any] = {"type": kind if kind in TYPES else None, "post": post}
        if (moment := _time(got.get("time"))) is not None:
            envelope["archive_time"] = moment
        return envelope, event_id


def parse_map(text: str) -> FieldMap:
    import orjson

    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise MapError(f"--map: not JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise MapError("--map: expected a JSON object of JSON paths")
    paths: dict[str, tuple[str | int, ...]] = {}
    for name, path in value.items():
        if name == "types":
            continue
        if name not in PARTS:
            raise MapError(f"--map.{shown(name, 30)}: not one of {', '.join(PARTS)}, types")
        if not isinstance(path, str):
            raise MapError(f"--map.{name}: expected a JSON path like '$.entry.title'")
        paths[name] = _path(path, name)
    for name in REQUIRED:
        if name not in paths:
            raise MapError(f"--map.{name}: required")
    types = value.get("types", {})
    if not isinstance(types, dict) or not all(
        isinstance(k, str) and v in TYPES for k, v in types.items()
    ):
        raise MapError(f'--map.types: expected {{"theirs": one of {", ".join(sorted(TYPES))}}}')
    return FieldMap(paths, types)


def _path(text: str, name: str) -> tuple[str | int, ...]:
    if not text.startswith("$"):
        raise MapError(f"--map.{name}: a JSON path starts with '$', got {shown(text)}")
    steps: list[str | int] = []
    position = 1
    while position < len(text):
        match = _STEP.match(text, position)
        if match is None or len(steps) >= MAX_STEPS:
            raise MapError(f"--map.{name}: cannot read {shown(text)} at character {position}")
        key, index, quoted = match.groups()
        steps.append(int(index) if index is not None else (key if key is not None else quoted))
        position = match.end()
    return tuple(steps)


def _find(value: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        if isinstance(step, int):
            value = value[step] if isinstance(value, list) and step < len(value) else None
        else:
            value = value.get(step) if isinstance(value, dict) else None
        if value is None:
            return None
    return value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _time(value: Any) -> str | None:
    """ISO-8601 in UTC, from an ISO string or epoch seconds (milliseconds past 10^11)."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = value / 1000 if value > 1e11 else value
            return format_time(datetime.fromtimestamp(seconds, UTC))
        if isinstance(value, str):
            return format_time(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except (ValueError, OverflowError, OSError):
        return None
    return None
