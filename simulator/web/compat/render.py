"""A post record as the HTML and plain text the platforms' APIs carry (ours holds plain text)."""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import datetime
from typing import Any


def paragraphs(record: Mapping[str, Any]) -> list[str]:
    body = record.get("body") or ""
    return [part.strip() for part in str(body).split("\n\n") if part.strip()]


def body_html(record: Mapping[str, Any]) -> str:
    """The body's paragraphs as ``<p>`` elements, escaped, and its media as links or images."""
    out = [f"<p>{html.escape(part)}</p>" for part in paragraphs(record)]
    for media in record.get("media") or ():
        url = media.get("url")
        label = html.escape(media.get("title") or media.get("caption") or media.get("kind", ""))
        if url and media.get("kind") == "image":
            out.append(f'<img src="{html.escape(url)}" alt="{label}">')
        elif url:
            out.append(f'<p><a href="{html.escape(url)}">{label or html.escape(url)}</a></p>')
    return "".join(out)


def full_html(record: Mapping[str, Any]) -> str:
    """The headline (as ``<h2>``) and the body: what a platform that has no title field shows."""
    headline = record.get("headline")
    head = f"<h2>{html.escape(headline)}</h2>" if headline else ""
    return head + body_html(record)


def text(record: Mapping[str, Any]) -> str:
    return "\n\n".join(paragraphs(record))


def published_ms(record: Mapping[str, Any], default: int) -> int:
    """The post's archive time in ms since the epoch; ``default`` if it has none."""
    value = record.get("published_at")
    if not value:
        return default
    try:
        return int(datetime.fromisoformat(str(value)).timestamp() * 1000)
    except ValueError:
        return default
