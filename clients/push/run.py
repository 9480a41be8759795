"""Push a plan to a target on time: bounded concurrency, retries, a report.

Each event is sent at its due time, measured from one monotonic start (never by adding up
sleeps), so a long push does not drift. A send waits for a free slot (``concurrency``); the time
from due to its first attempt is its *lateness*. A target's ``send`` returns the status it
acknowledged with, or raises ``Retry`` (an HTTP 408, 429 or 5xx, a timeout, a dropped
connection: tried again after ``backoff × 2^n``, at most ``retries`` times) or ``Refused``
(any other answer: the event fails at once). The report is ``livesim load``'s kind: counts,
lateness p50/p99, statuses.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from .plan import Planned


class Retry(Exception):
    """Worth another attempt; ``status`` is what the target answered, if it answered."""

    def __init__(self, reason: str, status: str | None = None) -> None:
        super().__init__(reason)
        self.status = status


class Refused(Retry):
    """An answer another attempt would not change."""


Send = Callable[[Planned], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class Policy:
    concurrency: int = 16
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
    """The first few distinct reasons attempts failed, for the one-line report."""
    faults: dict[str, int] = field(default_factory=dict)
    """Events each ``--faults`` item struck."""

    def percentile(self, share: float) -> float | None:
        """Nearest-rank percentile of lateness, in seconds."""
        if not self.lateness:
            return None
        ordered = sorted(self.lateness)
        return ordered[max(0, math.ceil(share * len(ordered)) - 1)]

    def count(self, status: str | None) -> None:
        if status is not None:
            self.statuses[status] = self.statuses.get(status, 0) + 1

    def note(self, reason: str) -> None:
        if reason not in self.errors and len(self.errors) < 5:
            self.errors.append(reason[:200])


async def push(events: Sequence[Planned], send: Send, policy: Policy, start: float) -> Report:
    """Send every event; ``start`` is the ``time.monotonic()`` its dues count from."""
    report = Report(planned=len(events))
    slots = asyncio.Semaphore(policy.concurrency)
    tasks = []
    for event in events:
        delay = start + event.due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await slots.acquire()
        report.lateness.append(max(0.0, time.monotonic() - start - event.due))
        report.sent += 1
        tasks.append(asyncio.ensure_future(_deliver(send, event, policy, report, slots)))
    await asyncio.gather(*tasks)
    return report


async def _deliver(
    send: Send, event: Planned, policy: Policy, report: Report, slots: asyncio.Semaphore
) -> None:
    try:
        for attempt in range(policy.retries + 1):
            if attempt:
                report.retried += 1
                await asyncio.sleep(policy.backoff * 2 ** (attempt - 1))
            try:
                report.count(await send(event))
            except Refused as exc:
                report.count(exc.status)
                report.note(str(exc))
                break
            except Retry as exc:
                report.count(exc.status)
                report.note(str(exc))
                continue
            report.acknowledged += 1
            return
        report.failed += 1
    finally:
        slots.release()
