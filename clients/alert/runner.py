"""Follow a stream and fire the rules: once per post and rule, with its lateness."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import aiohttp

from .. import reads
from ..sse import MAX_EVENT_BYTES
from ..tail import Envelope, Follower, follow_until, print_fault
from ..target import find_stream
from .actions import Actions, print_error, print_line
from .matching import CompiledRule


def _due(text: object) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class Alerter:
    """Judges posts against the rules; fires each (rule, post) once; runs the actions.

    ``emit`` gets each JSON line (alerts and action errors); ``report`` each error line for
    stderr."""

    def __init__(
        self,
        rules: list[CompiledRule],
        *,
        emit: Callable[[dict[str, Any]], None],
        report: Callable[[str], None],
        session: aiohttp.ClientSession,
    ) -> None:
        self.rules = rules
        self.emit = emit
        self.actions = Actions(session, emit, report)
        self.fired: set[tuple[str, str]] = set()
        self.alerts = 0
        self.on_alert: Callable[[dict[str, Any]], None] = lambda alert: None
        self.limit: int | None = None
        """Alerts to fire at most (``--count``)."""

    def on_event(self, envelope: Envelope) -> None:
        post = envelope.get("post")
        if isinstance(post, dict):
            self.judge(post, str(envelope.get("type")), envelope)

    def on_snapshot(self, snapshot: dict[str, Any]) -> None:
        """Posts in a (re)loaded snapshot: those created while the client was reloading are
        only there, never sent as events; the once-per-post key keeps the rest quiet."""
        for post in reversed(snapshot.get("posts") or []):
            if isinstance(post, dict):
                self.judge(post, "post.created", None)

    def judge(self, post: dict[str, Any], type: str, envelope: Envelope | None) -> None:
        post_id = post.get("id")
        if not isinstance(post_id, str):
            return
        for rule in self.rules:
            if self.limit is not None and self.alerts >= self.limit:
                return
            key = (rule.name, post_id)
            if key in self.fired:
                continue
            matched = rule.match(post, type)
            if matched is None:
                continue
            self.fired.add(key)
            self._fire(rule, post, type, envelope, matched)

    def _fire(
        self,
        rule: CompiledRule,
        post: dict[str, Any],
        type: str,
        envelope: Envelope | None,
        matched: dict[str, Any],
    ) -> None:
        now = time.time()
        due_at = envelope.get("due_at") if envelope else None
        due = _due(due_at)
        text = post.get("headline") or post.get("body") or ""
        alert = {
            "alert": rule.name,
            "post_id": post["id"],
            "type": type,
            "event_id": envelope.get("id") if envelope else None,
            "stream": envelope.get("stream") if envelope else None,
            "from": "event" if envelope else "snapshot",
            "due_at": due_at,
            "fired_at": datetime.fromtimestamp(now).astimezone().isoformat(timespec="milliseconds"),
            "lateness_ms": round((now - due) * 1000, 3) if due is not None else None,
            "matched": matched,
            "headline": post.get("headline"),
            "excerpt": str(text).split("\n", 1)[0][:200],
            "source": post.get("source"),
            "post": post,
        }
        self.alerts += 1
        self.emit(alert)
        self.on_alert(alert)
        self.actions.run(rule.rule, alert)

    async def drain(self, within: float = 30.0) -> None:
        """Let the actions in flight finish (webhook retries included), up to ``within`` s."""
        await self.actions.drain(within)


async def run_alert(
    url: str | None,
    rules: list[CompiledRule],
    *,
    transport: str = "sse",
    backfill: bool = False,
    count: int | None = None,
    duration: float | None = None,
    emit: Callable[[dict[str, Any]], None] = print_line,
    report: Callable[[str], None] = print_error,
    max_event_bytes: int = MAX_EVENT_BYTES,
    max_snapshot_bytes: int = reads.MAX_BODY_BYTES,
) -> int:
    """Follow the stream at ``url`` until ``count`` alerts, ``duration`` or Ctrl+C."""
    async with reads.session() as session:
        target = await find_stream(url, session, "alert")
        alerter = Alerter(rules, emit=emit, report=report, session=session)
        done = asyncio.Event()
        if count:
            alerter.limit = count
            alerter.on_alert = lambda alert: done.set() if alerter.alerts >= count else None
        first = True

        def on_snapshot(snapshot: dict[str, Any]) -> None:
            nonlocal first
            if backfill or not first:  # the first snapshot is history: judged on request only
                alerter.on_snapshot(snapshot)
            first = False

        follower = Follower(
            target.base,
            target.id,
            alerter.on_event,
            transport=transport,
            on_fault=print_fault,
            on_snapshot=on_snapshot,
            params=target.query,
            max_event_bytes=max_event_bytes,
            max_snapshot_bytes=max_snapshot_bytes,
        )
        try:
            await follow_until(follower, done, duration)
        finally:
            await alerter.drain()
    return 0
