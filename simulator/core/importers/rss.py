"""RSS 2.0 and Atom live-blog feeds, read with feedparser and turned into plain-text posts.

feedparser copes with the many dialects and broken feeds in the wild; this module only decides what
of each item becomes a post. The text is handed over as bytes so feedparser never mistakes it for a
URL or a file name to open.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

import feedparser

from ..model import ArchiveError, Feed, Media, Post, TimeSource, post_oversize, shown
from .credits import is_agency, normalise_source, split_credit

if TYPE_CHECKING:
    from . import ImportOptions

_XML_HEADERS = {"content-type": "application/xml; charset=utf-8"}
_BLOCK_TAGS = frozenset(
    "address article aside blockquote dd div dl dt figcaption figure footer h1 h2 h3 h4 h5 h6 "
    "header hr li ol p pre section table tr ul".split()
)
_HIDDEN_TAGS = frozenset({"script", "style", "template"})
_HTML_SPACE = re.compile(r"[ \t\r\n\f]+")
_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif")
_VIDEO_EXTENSIONS = (".mp4", ".m4v", ".webm", ".mov", ".m3u8")
_ELLIPSES = ("...", "\u2026")
_WEB = ("http://", "https://")
_FEED_START = re.compile("[\ufeff \t\r\n]*<")
"""A document that starts with markup (matched, not stripped: stripping copies the text)."""


def sniff(text: str) -> bool:
    """An XML document whose root looks like an RSS, RDF or Atom feed."""
    return _FEED_START.match(text) is not None and any(
        root in text for root in ("<rss", "<feed", "<rdf:RDF")
    )


def parse(text: str, options: ImportOptions) -> Feed:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"feedparser\b")
        parsed = _feedparser(text)
        channel: Mapping[str, Any] = parsed.get("feed") or {}
        entries: list[Mapping[str, Any]] = list(parsed.get("entries") or [])
        posts = [
            _checked(post, number)
            for number, entry in enumerate(entries, 1)
            if (post := _post(entry)) is not None
        ]
        if parsed.get("bozo") and not posts:
            raise _malformed(parsed.get("bozo_exception"), text)
        title = _text(channel, "title") or _fallback_title(options.source)
        description = _text(channel, "subtitle") or None
        link = _link(channel)
    return options.feed(title, posts, description, {"link": link} if link else None)


def _feedparser(text: str) -> Any:
    document = text.lstrip("\ufeff \t\r\n")
    return feedparser.parse(io.BytesIO(document.encode("utf-8")), response_headers=_XML_HEADERS)


def _malformed(problem: object, text: str) -> ArchiveError:
    """The parser's complaint, at the line of the original text it concerns.

    feedparser prepends an XML declaration when there is none, so its line numbers run one ahead.
    """
    get_message = getattr(problem, "getMessage", None)
    message = str(get_message() if callable(get_message) else problem or "unreadable feed")
    get_line = getattr(problem, "getLineNumber", None)
    line = get_line() if callable(get_line) else None
    if not isinstance(line, int) or line < 1:
        return ArchiveError(f"not a readable feed: {message}")
    document = text.lstrip("\ufeff \t\r\n")
    skipped = text[: len(text) - len(document)].count("\n")
    declared = document.startswith("<?xml")
    return ArchiveError(f"not a readable feed: {message}", line=line + skipped - (not declared))


def _checked(post: Post, number: int) -> Post:
    """The post, or an error naming its item (feedparser does not say which line it was on)."""
    for problem in post_oversize(post):
        name = shown(post.headline or post.id or post.body[:60], 40)
        raise ArchiveError(f"item {number} ({name}): {problem}")
    return post


def _post(entry: Mapping[str, Any]) -> Post | None:
    headline = _text(entry, "title") or None
    text, images = _body(entry)
    body, source = split_credit(text)
    media = _media(entry, images)
    if headline and _repeats(headline, body):
        headline = None
    if headline and not body:
        body, headline = headline, None
    if not body and not media:
        return None
    link = _link(entry)
    published = _published(entry)
    return Post(
        id=_string(entry.get("id")).strip(),
        body=body,
        published_at=published,
        time_source=TimeSource.EXPLICIT if published else None,
        headline=headline,
        author=_author(entry),
        source=source or _item_source(entry),
        media=media,
        extra={"link": link} if link else {},
    )


def _body(entry: Mapping[str, Any]) -> tuple[str, list[Media]]:
    """The item's fullest text, ``content`` (Atom, ``content:encoded``) before the summary, and
    the pictures in it; plain text is never read as markup."""
    details = _mappings(entry.get("content"))
    summary = entry.get("summary_detail")
    if isinstance(summary, Mapping):
        details.append(summary)
    for detail in details:
        value = _string(detail.get("value"))
        if value.strip():
            return _read_html(value) if _is_html(detail) else (_tidy(value), [])
    return "", []


def _text(item: Mapping[str, Any], key: str) -> str:
    """A field as plain text, decoding markup only when feedparser says it is markup."""
    value = _string(item.get(key))
    detail = item.get(f"{key}_detail")
    if isinstance(detail, Mapping) and _is_html(detail):
        return _read_html(value)[0]
    return _tidy(value)


def _is_html(detail: Mapping[str, Any]) -> bool:
    return "html" in _string(detail.get("type"))


def _read_html(html: str) -> tuple[str, list[Media]]:
    """Readable text from an HTML fragment (entities decoded, a blank line between blocks), and
    the pictures in it."""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    return _tidy("".join(extractor.parts)), extractor.images


class _TextExtractor(HTMLParser):
    """Collects text as a browser would lay it out, and the pictures it would show."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.images: list[Media] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")
        elif tag == "img":
            found = dict(attrs)
            if found.get("src"):
                caption = _tidy(found.get("alt") or "") or None
                self.images.append(Media(kind="image", url=found["src"], caption=caption))

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(_HTML_SPACE.sub(" ", data))


def _tidy(text: str) -> str:
    """Paragraphs separated by one blank line, single spaces, line breaks kept within them."""
    paragraphs = []
    for block in re.split(r"\n[ \t\r\f\u00a0]*\n", text.replace("\r\n", "\n")):
        lines = [" ".join(line.split()) for line in block.split("\n")]
        paragraph = "\n".join(line for line in lines if line)
        if paragraph:
            paragraphs.append(paragraph)
    return "\n\n".join(paragraphs)


def _repeats(headline: str, body: str) -> bool:
    """Feeds without real titles often use the body's opening words, sometimes cut short."""
    stem = headline
    for ellipsis in _ELLIPSES:
        stem = stem.removesuffix(ellipsis)
    stem = stem.rstrip()
    return bool(stem) and " ".join(body.split()).startswith(" ".join(stem.split()))


def _media(entry: Mapping[str, Any], images: list[Media]) -> tuple[Media, ...]:
    """Enclosures and Media RSS content, then pictures inline in the HTML; thumbnails only alone.

    A ``media:thumbnail`` is usually a still of the video beside it, not a picture of its own.
    """
    found: list[Media] = []
    for enclosure in _mappings(entry.get("enclosures")):
        url = _string(enclosure.get("href") or enclosure.get("url"))
        found.append(Media(kind=_kind(_string(enclosure.get("type")), url), url=url or None))
    for content in _mappings(entry.get("media_content")):
        url = _string(content.get("url"))
        hint = _string(content.get("medium") or content.get("type"))
        found.append(Media(kind=_kind(hint, url), url=url or None))
    found.extend(images)
    if not found:
        for thumbnail in _mappings(entry.get("media_thumbnail")):
            url = _string(thumbnail.get("url"))
            found.append(Media(kind="image", url=url or None))
    return tuple(_unique(m for m in found if m.url))


def _kind(hint: str, url: str) -> str:
    hint, path = hint.lower(), url.lower().split("?")[0]
    if "youtube.com/" in path or "youtu.be/" in path:
        return "youtube"
    if hint.startswith("image") or path.endswith(_IMAGE_EXTENSIONS):
        return "image"
    if hint.startswith("video") or path.endswith(_VIDEO_EXTENSIONS):
        return "video"
    return "link"


def _unique(media: Iterable[Media]) -> list[Media]:
    """One entry per URL, keeping the first (which carries the most specific kind)."""
    seen: set[str | None] = set()
    out = []
    for item in media:
        if item.url not in seen:
            seen.add(item.url)
            out.append(item)
    return out


def _published(entry: Mapping[str, Any]) -> datetime | None:
    """When the item says it was published, else last updated; feedparser has made it UTC."""
    for key in ("published_parsed", "updated_parsed"):
        stamp = entry.get(key)
        if stamp is None:
            continue
        try:
            year, month, day, hour, minute, second = (int(part) for part in stamp[:6])
            return datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC)
        except (TypeError, ValueError):
            continue
    return None


def _author(entry: Mapping[str, Any]) -> str | None:
    detail = entry.get("author_detail")
    name = _string(detail.get("name")) if isinstance(detail, Mapping) else ""
    return _tidy(name or _string(entry.get("author"))) or None


def _item_source(entry: Mapping[str, Any]) -> str | None:
    """An RSS ``<source>`` naming a wire service; other feeds it names are not a credit."""
    origin = entry.get("source")
    name = _string(origin.get("title")) if isinstance(origin, Mapping) else ""
    return normalise_source(name) if name and is_agency(name) else None


def _link(item: Mapping[str, Any]) -> str | None:
    """The web page of a feed or item; feedparser falls back to ids like ``tag:``, which are not."""
    for candidate in _mappings(item.get("links")):
        href = _string(candidate.get("href"))
        if candidate.get("rel", "alternate") == "alternate" and href.startswith(_WEB):
            return href
    href = _string(item.get("link"))
    return href if href.startswith(_WEB) else None


def _fallback_title(source: str) -> str:
    """The file's name stands in for a missing title; standard input has none worth using."""
    stem = PurePath(source).stem
    return stem if stem and not source.startswith("<") else "Live blog"


def _mappings(value: object) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def _string(value: object) -> str:
    return value if isinstance(value, str) else ""
