"""Push a plan to an HTTP(S) endpoint on time: signed POSTs, bounded concurrency, retries.

Each event is sent at its due time, measured from one monotonic start (never by adding up
sleeps), so a long push does not drift. A request waits for a free slot (``concurrency``); the
time from due to its first attempt is its *lateness*. A 2xx acknowledges; a 408, 429, 5xx, a
timeout or a dropped connection is retried after ``backoff × 2^n`` (at most ``retries`` times);
any other answer fails the event at once. The report is ``clients.load``'s kind: counts, lateness
p50/p99, and an exit status like k6's.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp

from .plan import Planned
from .signing import headers

RETRY_STATUSES = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class HttpOptions:
    url: str
    key: bytes
    concurrency: int = 16
    timeout: float = 10.0
    retries: int = 3
    backoff: float = 0.2


@dataclass
class Report:
    planned: int = 0
    sent: int = 0
    """Events whose first attempt went out."""
    acknowledged: int = 0
    retried: int = 0
    """Attempts after the first, over all events."""
    failed: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    lateness: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """The first few distinct reasons events failed, for the one-line report."""

    def percentile(self, share: float) -> float | None:
        """Nearest-rank percentile of lateness, in seconds."""
        if not self.lateness:
            return None
        ordered = sorted(self.lateness)
        return ordered[max(0, math.ceil(share * len(ordered)) - 1)]

    def note(self, reason: str) -> None:
        if reason not in self.errors and len(self.errors) < 5:
            self.errors.append(reason)


async def push_http(events: Sequence[Planned], options: HttpOptions, start: float) -> Report:
    """Send every event; ``start`` is the ``time.monotonic()`` its dues count from."""
    report = Report(planned=len(events))
    slots = asyncio.Semaphore(options.concurrency)
    deadlines = aiohttp.ClientTimeout(total=options.timeout)
    connector = aiohttp.TCPConnector(limit=options.concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=deadlines) as session:
        tasks = []
        for event in events:
            delay = start + event.due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await slots.acquire()
            report.lateness.append(max(0.0, time.monotonic() - start - event.due))
            report.sent += 1
            tasks.append(asyncio.ensure_future(_deliver(session, event, options, report, slots)))
        await asyncio.gather(*tasks)
    return report


async def _deliver(
    session: aiohttp.ClientSession,
    event: Planned,
    options: HttpOptions,
    report: Report,
    slots: asyncio.Semaphore,
) -> None:
    try:
        for attempt in range(options.retries + 1):
            if attempt:
                report.retried += 1
                await asyncio.sleep(options.backoff * 2 ** (attempt - 1))
            signed = headers(options.key, event.id, int(time.time()), event.body)
            try:
                async with session.post(
                    options.url,
                    data=event.body,
                    headers={"Content-Type": "application/json", **signed},
                    allow_redirects=False,
                ) as answer:
                    status = answer.status
                    await answer.read()
            except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
                reason = type(exc).__name__ if isinstance(exc, TimeoutError) else str(exc)
                report.note(reason[:200] or type(exc).__name__)
                continue
            key = str(status)
            report.statuses[key] = report.statuses.get(key, 0) + 1
            if 200 <= status < 300:
                report.acknowledged += 1
                return
            report.note(f"HTTP {status}")
            if status < 500 and status not in RETRY_STATUSES:
                break
        report.failed += 1
    finally:
        slots.release()
