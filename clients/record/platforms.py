"""Each platform's cursor and answer, as livesim serves them under ``/compat/`` (docs/compat.md).

Pure: a platform is built from the URL the user gave, names the URL of its next poll for a given
``now``, and reads an answer (``take``) into ``Item``\\ s, moving its cursor only when the whole
answer was read. A field of the wrong shape is a ``Shape`` error naming its JSON path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

from simulator.core.wire import wall_time


class Shape(ValueError):
    """An answer that is not what the platform sends."""


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    deleted: bool = False
    headline: str | None = None
    body: str = ""
    author: str | None = None
    pinned: bool = False
    key_event: bool = False
    published_at: str | None = None


class Platform(Protocol):
    kind: str
    title: str

    def url(self, now: float) -> str: ...

    def take(self, answer: Any) -> tuple[list[Item], bool]:
        """The answer's items, oldest change first, and whether to poll again at once."""
        ...


def _field(value: Any, key: str, kind: type | tuple[type, ...], path: str) -> Any:
    if not isinstance(value, dict):
        raise Shape(f"{path}: expected an object")
    found = value.get(key)
    if not isinstance(found, kind) or (isinstance(found, bool) and kind in (int, float)):
        raise Shape(f"{path}.{key}: missing or not the expected type")
    return found


def _list(value: Any, key: str, path: str) -> list[Any]:
    found: list[Any] = _field(value, key, list, path)
    return found


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


class _Text(HTMLParser):
    """Paragraphs of an HTML body as plain text (``\\n\\n`` between them); a heading before any
    text is the headline."""

    BLOCKS = frozenset(
        {"p", "div", "li", "ul", "ol", "blockquote", "section", "article", "figure", "table", "tr"}
    )
    HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = [""]
        self.headline: str | None = None
        self.in_heading = False

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "br":
            self.parts[-1] += "\n"
        elif tag in self.HEADINGS and self.headline is None and not "".join(self.parts).strip():
            self.in_heading = True
            self.headline = ""
        elif tag in self.BLOCKS or tag in self.HEADINGS:
            self.parts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HEADINGS and self.in_heading:
            self.in_heading = False
        elif tag in self.BLOCKS or tag in self.HEADINGS:
            self.parts.append("")

    def handle_data(self, data: str) -> None:
        if self.in_heading:
            self.headline = (self.headline or "") + data
        else:
            self.parts[-1] += data


def from_html(markup: str, headline: bool = False) -> tuple[str | None, str]:
    """(headline, body) of an HTML post; the headline taken from a leading heading if asked."""
    reader = _Text()
    reader.feed(markup)
    reader.close()
    body = "\n\n".join(part.strip() for part in reader.parts if part.strip())
    if not headline:
        title = _text(reader.headline)
        return None, (f"{title}\n\n{body}" if title and body else title or body)
    return _text(reader.headline), body


def _base(url: str, pattern: str, drop: set[str]) -> tuple[str, list[tuple[str, str]], str]:
    """The path up to the platform's own part, the query kept (a ``Token``, an ``api-key``), and
    the stream's name."""
    parts = urlsplit(url)
    found = re.search(pattern, parts.path)
    if found is None:
        raise Shape(f"{url}: not a URL of this platform")
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in drop]
    base = urlunsplit((parts.scheme, parts.netloc, found.group("base"), "", ""))
    return base, kept, found.group("name")


def _with(base: str, query: list[tuple[str, str]]) -> str:
    return f"{base}?{urlencode(query)}" if query else base


SL_DATE = re.compile(r"/Date\((-?\d{1,16})\)/")


def _sl_ms(value: Any, path: str) -> int:
    found = SL_DATE.fullmatch(value) if isinstance(value, str) else None
    if found is None:
        raise Shape(f"{path}: expected /Date(ms)/")
    return int(found[1])


class ScribbleLive:
    """``event/{id}/all?Since=``: ``Since`` is the answer's ``LastModified`` to the second (what
    the recent-posts widget sends); the same second comes back and is told apart by content."""

    kind = "scribblelive"
    title = "ScribbleLive"
    PATTERN = r"^(?P<base>.*/event/(?P<name>[^/]+))(?:/(?:all|page/\w+))?/?$"

    def __init__(self, url: str) -> None:
        drop = {"Since", "Order", "format", "callback", "Max"}
        self.base, self.query, self.name = _base(url, self.PATTERN, drop)
        self.since: int | None = None

    def url(self, now: float) -> str:
        query = [*self.query, ("Order", "asc"), ("format", "json")]
        if self.since is not None:
            t = datetime.fromtimestamp(self.since / 1000, UTC)
            query.append(("Since", f"{t.year}/{t.month}/{t.day} {t.hour}:{t.minute}:{t.second}"))
        return _with(self.base + "/all/", query)

    def take(self, answer: Any) -> tuple[list[Item], bool]:
        last = _sl_ms(_field(answer, "LastModified", str, "$"), "$.LastModified")
        items = []
        for key in ("Posts", "Edits"):
            for number, post in enumerate(_list(answer, key, "$")):
                items.append(self._post(post, f"$.{key}[{number}]"))
        for number, gone in enumerate(_list(answer, "Deletes", "$")):
            post_id = _field(gone, "Id", int, f"$.Deletes[{number}]")
            items.append(Item(str(post_id), deleted=True))
        self.since = last
        return items, False

    def _post(self, post: Any, path: str) -> Item:
        headline, body = from_html(_field(post, "Content", str, path), headline=True)
        creator = post.get("Creator")
        created = post.get("Created")
        stuck = post.get("IsStuck")
        return Item(
            str(_field(post, "Id", int, path)),
            deleted=bool(post.get("IsDeleted")),
            headline=headline,
            body=body,
            author=_text(creator.get("Name")) if isinstance(creator, dict) else None,
            pinned=stuck in (1, True),
            published_at=(
                wall_time(_sl_ms(created, f"{path}.Created") / 1000) if created else None
            ),
        )


class WordPressLiveblog:
    """``entries/{newest + 1}/{now}/``: entries of whole seconds, the front end's cursor."""

    kind = "wp-liveblog"
    title = "WordPress Liveblog"
    PATTERN = r"^(?P<base>.*/(?P<name>[^/]+)/entries)(?:/\d*/\d*)?/*$"

    def __init__(self, url: str) -> None:
        self.base, self.query, self.name = _base(url, self.PATTERN, set())
        self.newest: int | None = None

    def url(self, now: float) -> str:
        start = self.newest + 1 if self.newest is not None else 0
        return _with(f"{self.base}/{start}/{int(now)}/", self.query)

    def take(self, answer: Any) -> tuple[list[Item], bool]:
        items = []
        for number, entry in enumerate(_list(answer, "entries", "$")):
            path = f"$.entries[{number}]"
            entry_id = str(_field(entry, "id", int, path))
            if _field(entry, "type", str, path) == "delete":
                items.append(Item(entry_id, deleted=True))
                continue
            headline, body = from_html(_field(entry, "render", str, path), headline=True)
            authors = entry.get("authors")
            first = authors[0] if isinstance(authors, list) and authors else None
            classes = str(entry.get("css_classes") or "").split()
            items.append(
                Item(
                    entry_id,
                    headline=_text(entry.get("headline")) or headline,
                    body=body,
                    author=_text(first.get("name")) if isinstance(first, dict) else None,
                    pinned="liveblog-entry-sticky" in classes,
                    key_event=entry.get("key_event") is True or "type-key-event" in classes,
                )
            )
        latest = answer.get("latest_timestamp")
        if latest is not None and (not isinstance(latest, int) or isinstance(latest, bool)):
            raise Shape("$.latest_timestamp: expected an integer or null")
        if latest is not None:
            self.newest = max(latest, self.newest or 0)
        return items, False


class Guardian:
    """The Content API's ``show-blocks=body:published-since:MS``, ``MS`` the newest
    ``lastModifiedDate`` seen (inclusive: it comes back, and is told apart by content)."""

    kind = "guardian"
    title = "Guardian"
    PATTERN = r"^(?P<base>.*/(?P<name>[^/]+?))(?:\.json)?/?$"

    def __init__(self, url: str) -> None:
        drop = {"show-blocks", "lastUpdate", "isLivePage"}
        self.base, self.query, self.name = _base(url, self.PATTERN, drop)
        self.since = 0

    def url(self, now: float) -> str:
        return _with(
            self.base, [*self.query, ("show-blocks", f"body:published-since:{self.since}")]
        )

    def take(self, answer: Any) -> tuple[list[Item], bool]:
        response = _field(answer, "response", dict, "$")
        if response.get("status") == "error":
            raise Shape(f"error: {str(response.get('message'))[:200]}")
        content = _field(response, "content", dict, "$.response")
        blocks = _field(content, "blocks", dict, "$.response.content")
        requested = _field(blocks, "requestedBodyBlocks", dict, "$.response.content.blocks")
        items, since = [], self.since
        for key, listed in requested.items():
            if not isinstance(listed, list):
                raise Shape(f"$.response.content.blocks.requestedBodyBlocks.{key}: not a list")
            for number, block in reversed(list(enumerate(listed))):  # oldest first
                path = f"$.response.content.blocks.requestedBodyBlocks.{key}[{number}]"
                since = max(since, _iso_ms(_field(block, "lastModifiedDate", str, path), path))
                items.append(self._block(block, path))
        self.since = since
        return items, False

    def _block(self, block: Any, path: str) -> Item:
        block_id = _field(block, "id", str, path)
        if block.get("published") is False:
            return Item(block_id, deleted=True)
        _, body = from_html(_field(block, "bodyHtml", str, path))
        attributes = block.get("attributes") if isinstance(block.get("attributes"), dict) else {}
        contributors = block.get("contributors")
        author = contributors[0] if isinstance(contributors, list) and contributors else None
        first = block.get("firstPublishedDate")
        return Item(
            block_id,
            headline=_text(block.get("title")),
            body=body,
            author=_text(author),
            pinned=attributes.get("pinned") is True,
            key_event=attributes.get("keyEvent") is True,
            published_at=wall_time(_iso_ms(first, path) / 1000) if isinstance(first, str) else None,
        )


def _iso_ms(value: str, path: str) -> int:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Shape(f"{path}: expected an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


class Liveblog:
    """``client_blogs/{blog}/posts`` with livebridge's ``_updated`` greater than its newest, to
    the second; a full page is followed at once by the next (unless the cursor did not move: a
    server that ignores the filter is polled at the interval, not hammered)."""

    kind = "liveblog"
    title = "Liveblog"
    PATTERN = r"^(?P<base>.*/client_blogs/(?P<name>[^/]+)/posts)/?$"
    PAGE = 100

    def __init__(self, url: str) -> None:
        drop = {"source", "page", "max_results"}
        self.base, self.query, self.name = _base(url, self.PATTERN, drop)
        self.updated = "1970-01-01T00:00:00+00:00"

    def url(self, now: float) -> str:
        source = {
            "query": {
                "filtered": {"filter": {"and": [{"range": {"_updated": {"gt": self.updated}}}]}}
            },
            "sort": [{"_updated": {"order": "asc"}}],
        }
        query = [
            ("max_results", str(self.PAGE)),
            ("page", "1"),
            ("source", orjson.dumps(source).decode()),
        ]
        return _with(self.base, [*self.query, *query])

    def take(self, answer: Any) -> tuple[list[Item], bool]:
        listed = _list(answer, "_items", "$")
        items, updated = [], self.updated
        for number, post in enumerate(listed):
            path = f"$._items[{number}]"
            updated = _field(post, "_updated", str, path)
            _iso_ms(updated, f"{path}._updated")
            items.append(self._post(post, path))
        moved = updated != self.updated
        self.updated = updated
        return items, moved and len(listed) >= self.PAGE

    def _post(self, post: Any, path: str) -> Item:
        post_id = _field(post, "_id", str, path)
        published, unpublished = post.get("published_date"), post.get("unpublished_date")
        later = isinstance(unpublished, str) and isinstance(published, str)
        if post.get("deleted") is True or (later and unpublished > published):
            return Item(post_id, deleted=True)
        headline, texts = None, []
        for group in post.get("groups") or ():
            for ref in group.get("refs") or () if isinstance(group, dict) else ():
                item = ref.get("item") if isinstance(ref, dict) else None
                if isinstance(item, dict) and isinstance(item.get("text"), str):
                    headline = headline or _text(item.get("headline"))
                    texts.append(from_html(item["text"])[1])
        return Item(
            post_id,
            headline=headline,
            body="\n\n".join(t for t in texts if t),
            pinned=post.get("sticky") is True,
            key_event=post.get("lb_highlight") is True,
            published_at=(
                wall_time(_iso_ms(published, path) / 1000) if isinstance(published, str) else None
            ),
        )


PLATFORMS: dict[str, type[ScribbleLive | WordPressLiveblog | Guardian | Liveblog]] = {
    "scribblelive": ScribbleLive,
    "wp-liveblog": WordPressLiveblog,
    "guardian": Guardian,
    "liveblog": Liveblog,
}


def platform_for(url: str, kind: str = "auto") -> Platform | None:
    """The platform ``kind`` names, or (``auto``) the one the URL's shape says; None for none."""
    if kind in PLATFORMS:
        try:
            return PLATFORMS[kind](url)
        except Shape:
            raise Shape(f"{url}: not a {PLATFORMS[kind].title} URL (see docs/compat.md)") from None
    if kind != "auto":
        return None
    parts = urlsplit(url)
    path = parts.path
    if "/scribblelive/event/" in path or re.search(r"/event/[^/]+/(all|page/)", path):
        return ScribbleLive(url)
    if re.search(r"/entries(/\d*/\d*)?/*$", path):
        return WordPressLiveblog(url)
    if "show-blocks=" in parts.query or "/compat/guardian/" in path:
        return Guardian(url)
    if re.search(r"/client_blogs/[^/]+/posts/?$", path):
        return Liveblog(url)
    return None
