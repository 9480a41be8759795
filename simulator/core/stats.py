"""Figures about a feed for ``livesim inspect``: span, how times were known, gaps, rate."""

from __future__ import annotations

from collections import Counter
from typing import Any

from .model import Feed, TimeSource, format_time


def summarize(feed: Feed) -> dict[str, Any]:
    times = [p.timed for p in feed.posts]
    gaps = sorted((b - a).total_seconds() for a, b in zip(times, times[1:], strict=False))
    span = (times[-1] - times[0]).total_seconds() if times else 0.0
    sources = Counter(str(p.time_source) for p in feed.posts)
    return {
        "feed": feed.id,
        "title": feed.title,
        "posts": len(feed.posts),
        "first": format_time(times[0]) if times else None,
        "last": format_time(times[-1]) if times else None,
        "span_seconds": span,
        "times": {str(s): sources.get(str(s), 0) for s in TimeSource},
        "gap_seconds": {
            "median": _quantile(gaps, 0.5),
            "p90": _quantile(gaps, 0.9),
            "max": gaps[-1] if gaps else None,
        },
        "posts_per_hour": round(len(times) / (span / 3600), 2) if span else None,
    }


def _quantile(values: list[float], q: float) -> float | None:
    """Nearest-rank quantile of sorted values: always a gap that really occurred."""
    if not values:
        return None
    rank = max(1, round(q * len(values) + 0.5 - 1e-9))
    return values[min(rank, len(values)) - 1]


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def render(summary: dict[str, Any]) -> str:
    gaps = summary["gap_seconds"]
    times = summary["times"]
    return "\n".join(
        [
            f"feed      {summary['feed']}  ({summary['title']})",
            f"posts     {summary['posts']}",
            f"span      {summary['first']} .. {summary['last']}"
            f"  ({duration(summary['span_seconds'])})",
            f"times     {times['explicit']} explicit, {times['interpolated']} interpolated, "
            f"{times['extrapolated']} extrapolated",
            f"gaps      median {duration(gaps['median'])}, p90 {duration(gaps['p90'])}, "
            f"max {duration(gaps['max'])}",
            f"rate      {summary['posts_per_hour']} posts/hour",
        ]
    )
