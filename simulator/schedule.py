"""Wall-clock automation of streams: ``start_at`` and ``schedule`` entries, run by APScheduler.

A stream's replay runs on its own monotonic clock; a schedule says when, in real wall-clock time,
somebody would press a button — start at 09:00, restart every weekday morning, inject a post every
half hour. Each entry becomes one APScheduler job (never one per post) whose only effect is a
control command through the same path as ``POST /api/streams/{id}/…``, so a scheduled action and
a person's click are indistinguishable to subscribers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from .live import parse_fields
from .model import shown
from .sources import zone
from .timeline import parse_duration, parse_speed

log = logging.getLogger("livesim.schedule")

Action = Literal["start", "pause", "resume", "restart", "speed", "seek", "inject"]
MIN_INTERVAL = 1.0
"""Seconds: a schedule is for what a person would do, not a second clock beside the replay."""


def _zone(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError(f"expected an IANA zone name such as 'Europe/London', got {shown(value)}")
    zone(value)
    return value


def _interval(value: object) -> float:
    seconds = parse_duration(value)
    if seconds < MIN_INTERVAL:
        raise ValueError(f"must be at least 1s, got {value!r}")
    return seconds


class ScheduleEntry(BaseModel):
    """One job: exactly one of ``cron`` / ``interval`` / ``at``, and what to do then."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Action
    cron: str | None = Field(default=None, max_length=200)
    """Five crontab fields; use day names (``mon-fri``): APScheduler 3 numbers Monday as 0."""
    interval: Annotated[float | None, BeforeValidator(_interval)] = None
    at: datetime | None = None
    timezone: Annotated[str, BeforeValidator(_zone)] = "UTC"
    speed: Annotated[float | None, BeforeValidator(parse_speed)] = None
    to: str | None = Field(default=None, min_length=1, max_length=200)
    post: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _check(self) -> ScheduleEntry:
        given = [name for name in ("cron", "interval", "at") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of cron, interval or at")
        if self.action == "speed" and self.speed is None:
            raise ValueError("action 'speed' needs speed")
        if self.action == "seek" and self.to is None:
            raise ValueError("action 'seek' needs to")
        if self.action == "inject":
            if self.post is None:
                raise ValueError("action 'inject' needs post")
            parse_fields(self.post, "post", create=True)  # refused now, not when it fires
        self.trigger()  # a bad cron expression fails here, with the place named by the caller
        return self

    def trigger(self) -> BaseTrigger:
        zone = ZoneInfo(self.timezone)
        if self.cron is not None:
            try:
                return CronTrigger.from_crontab(self.cron, timezone=zone)
            except ValueError as exc:
                raise ValueError(f"cron {self.cron!r}: {exc}") from None
        if self.interval is not None:
            return IntervalTrigger(seconds=self.interval, timezone=zone)
        assert self.at is not None
        return DateTrigger(run_date=_aware(self.at, zone), timezone=zone)

    def command(self) -> tuple[str, dict[str, Any]]:
        """The control op and body this entry sends, as ``POST /api/streams/{id}/{op}`` would."""
        if self.action == "start":
            return "resume", {}
        if self.action == "speed":
            return "speed", {"speed": self.speed}
        if self.action == "seek":
            return "seek", {"to": self.to}
        if self.action == "inject":
            return "post", dict(self.post or {})
        return self.action, {}


def _aware(moment: datetime, zone: tzinfo) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


Fire = Callable[[str, str, dict[str, Any]], None]
"""``fire(stream_id, op, body)``: carry out one scheduled control command."""


class Scheduler:
    """The app's one APScheduler, on the server's event loop; jobs are named by their stream."""

    def __init__(self, fire: Fire) -> None:
        self._fire = fire
        self._scheduler = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
        )

    def start(self) -> None:
        self._scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def add(
        self,
        stream_id: str,
        entries: tuple[ScheduleEntry, ...],
        start_at: datetime | None,
        now: datetime | None = None,
    ) -> None:
        """Register a stream's jobs: ``start_at`` (if still ahead) and each schedule entry."""
        now = now or datetime.now(UTC)
        if start_at is not None and _aware(start_at, UTC) > now:
            entry = ScheduleEntry(action="start", at=start_at)
            self._add(stream_id, "start_at", entry)
        for number, entry in enumerate(entries):
            self._add(stream_id, f"schedule[{number}]", entry)

    def _add(self, stream_id: str, name: str, entry: ScheduleEntry) -> None:
        op, body = entry.command()
        self._scheduler.add_job(
            self._run,
            entry.trigger(),
            args=(stream_id, name, op, body),
            id=f"{stream_id}:{name}",
            name=entry.action,
            replace_existing=True,
        )

    async def _run(self, stream_id: str, name: str, op: str, body: dict[str, Any]) -> None:
        """A coroutine, so APScheduler's asyncio executor runs it on the loop: a plain function
        it would run in a worker thread, beside the loop that owns the streams."""
        try:
            self._fire(stream_id, op, body)
        except Exception as exc:  # one stream's bad moment must not stop the scheduler
            log.warning("stream %s: %s (%s) failed: %s", stream_id, name, op, exc)

    def remove(self, stream_id: str) -> None:
        for job in self._jobs(stream_id):
            job.remove()

    def next_actions(self, stream_id: str) -> list[dict[str, str]]:
        """What this stream's schedule does next, soonest first."""
        actions = []
        for job in self._jobs(stream_id):
            when = job.next_run_time
            if when is not None:
                at = when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
                actions.append({"action": job.name, "at": at})
        return sorted(actions, key=lambda action: action["at"])

    def _jobs(self, stream_id: str) -> list[Any]:
        prefix = f"{stream_id}:"
        return [job for job in self._scheduler.get_jobs() if job.id.startswith(prefix)]
