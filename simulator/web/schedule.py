"""Wall-clock automation of streams: ``start_at`` and ``schedule`` entries, run by APScheduler.

A stream's replay runs on its own monotonic clock; a schedule says when, in real wall-clock time,
somebody would press a button — start at 09:00, restart every weekday morning, inject a post every
half hour. Each entry becomes one APScheduler job (never one per post) whose only effect is a
control command through the same path as ``POST /api/streams/{id}/…``, so a scheduled action and
a person's click are indistinguishable to subscribers.

Nothing here may stall the event loop. APScheduler 3 finds a cron's next time by searching the
calendar, up to the year 9999 for a cron that never fires (1 s of CPU each): so an entry whose
day and month never meet is refused when it is read, and the search for each entry's first time
(``plan``) stops at ``HORIZON_YEARS``. Jobs run as coroutines, on the loop that owns the streams.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    model_validator,
)

from ..core.commands import Command, Resume, SetSpeed, parse_command
from ..core.errors import InputError
from ..core.model import shown
from ..core.timeline import parse_duration, parse_speed
from ..logs import RepeatedWarnings
from ..sources import zone

log = logging.getLogger("livesim.schedule")

Action = Literal["start", "pause", "resume", "restart", "speed", "seek", "inject"]
MIN_INTERVAL = 1.0
"""Seconds: a schedule is for what a person would do, not a second clock beside the replay."""
HORIZON_YEARS = 50
"""How far ahead an entry's first time is searched for. A cron whose day and month can meet
fires within 40 years (29 February on a given weekday, across 2100, which is no leap year)."""
MISFIRE_GRACE = 60
"""Seconds late a job may still run (the event loop was busy); an ``at`` further in the past is
not registered at all, rather than logged by APScheduler as missed."""
WARNING_INTERVAL = 10.0
"""Seconds: a scheduled action that keeps failing the same way is logged once per interval."""
START_AT = "start_at"
"""The name of the job that ``start_at`` makes (the others are ``schedule[N]``)."""
_LEAP_YEAR = datetime(2000, 1, 1, tzinfo=UTC)
_LAST = datetime.max.replace(tzinfo=UTC)


def _zone(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError(f"expected an IANA zone name such as 'Europe/London', got {shown(value)}")
    zone(value)
    return value


def in_utc_range(moment: datetime) -> datetime:
    """``moment`` if it has a UTC time: 9999-12-31T23:59-01:00 has none, and every comparison
    and timestamp of it would raise ``OverflowError``."""
    try:
        moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            f"{moment.isoformat()} is out of range: in UTC it falls outside the years 1-9999"
        ) from None
    return moment


Moment = Annotated[AwareDatetime, AfterValidator(in_utc_range)]
"""A wall-clock time with its zone, which has a UTC time (``start_at``)."""


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
    _command: Command = PrivateAttr(default_factory=Resume)

    @model_validator(mode="after")
    def _check(self) -> ScheduleEntry:
        given = [name for name in ("cron", "interval", "at") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of cron, interval or at")
        if self.action == "speed" and self.speed is None:
            raise ValueError("action 'speed' needs speed")
        if self.action == "seek" and self.to is None:
            raise ValueError("action 'seek' needs to")
        if self.action == "inject" and self.post is None:
            raise ValueError("action 'inject' needs post")
        self._command = self._parse_command()  # refused now, not when it fires
        if self.at is not None:
            try:
                in_utc_range(_aware(self.at, ZoneInfo(self.timezone)))
            except ValueError as exc:
                raise ValueError(f"at: {exc}") from None
        self.trigger()  # a bad cron expression fails here, with the place named by the caller
        if self.cron is not None and not _day_and_month_meet(self.cron):
            day, month = self.cron.split()[2:4]
            raise ValueError(
                f"cron {self.cron!r} never fires: no month {month!r} has a day {day!r}"
            )
        return self

    def trigger(self, until: datetime | None = None) -> BaseTrigger:
        """The APScheduler trigger; a cron's ``until`` ends its search for a next time there."""
        zone = ZoneInfo(self.timezone)
        if self.cron is not None:
            fields = self.cron.split()
            if len(fields) != 5:
                raise ValueError(
                    f"cron {self.cron!r}: Wrong number of fields; got {len(fields)}, expected 5"
                )
            minute, hour, day, month, day_of_week = fields  # as CronTrigger.from_crontab does
            try:
                return CronTrigger(
                    minute=minute,
                    hour=hour,
                    day=day,
                    month=month,
                    day_of_week=day_of_week,
                    timezone=zone,
                    end_date=until,
                )
            except ValueError as exc:
                raise ValueError(f"cron {self.cron!r}: {exc}") from None
        if self.interval is not None:
            return IntervalTrigger(seconds=self.interval, timezone=zone)
        assert self.at is not None
        return DateTrigger(run_date=_aware(self.at, zone), timezone=zone)

    def command(self) -> Command:
        """The command this entry sends, read once with the entry, as the REST API reads it."""
        return self._command

    def _parse_command(self) -> Command:
        if self.action == "start":
            return Resume()
        if self.action == "speed":
            assert self.speed is not None
            return SetSpeed(self.speed)
        if self.action == "seek":
            return parse_command("seek", {"to": self.to}, "")
        if self.action == "inject":
            return parse_command("post", self.post or {}, "post")
        return parse_command(self.action, {}, "")


def _aware(moment: datetime, zone: tzinfo) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def _day_and_month_meet(cron: str) -> bool:
    """Whether the cron's day-of-month and month fields name a real date, 29 February included.

    Asked of APScheduler's own field parsing, over one leap year: a dozen steps, where its
    search for the next time of ``31 2,4,6,9,11`` runs to the year 9999. Any real date falls on
    every weekday within 40 years, so a cron that passes this fires (``plan`` checks).
    """
    day, month = cron.split()[2:4]
    end = _LEAP_YEAR.replace(month=12, day=31)
    probe = CronTrigger(month=month, day=day, hour=0, minute=0, timezone=UTC, end_date=end)
    return probe.get_next_fire_time(None, _LEAP_YEAR) is not None


@dataclass(frozen=True)
class Job:
    """One entry made ready to register: its trigger and when it first fires, found in advance."""

    name: str
    """``start_at`` or ``schedule[N]``: the job's place in the stream's config."""
    action: Action
    trigger: BaseTrigger
    first: datetime
    command: Command


def plan(
    entries: Iterable[ScheduleEntry], start_at: datetime | None, now: datetime
) -> tuple[Job, ...]:
    """The jobs a stream's schedule makes: ``start_at`` (if still ahead), then each entry (an
    ``at`` long past makes none).

    Each entry's calendar search is bounded by ``HORIZON_YEARS`` (a few milliseconds at worst);
    a hundred of them are not, so the API plans in a worker thread. ``InputError`` names the
    entry (``schedule[3]: …``) whose cron does not fire within the horizon.
    """
    jobs = [_job(f"schedule[{number}]", entry, now) for number, entry in enumerate(entries)]
    if start_at is not None and _aware(start_at, UTC) > now:
        jobs.insert(0, _job(START_AT, ScheduleEntry(action="start", at=start_at), now))
    too_late = now - timedelta(seconds=MISFIRE_GRACE)
    return tuple(job for job in jobs if job.first >= too_late)


def _job(name: str, entry: ScheduleEntry, now: datetime) -> Job:
    trigger = entry.trigger()
    if isinstance(trigger, CronTrigger):
        horizon = min(timedelta(days=366 * HORIZON_YEARS), _LAST - now)
        probe = entry.trigger(until=now + horizon)
        first = probe.get_next_fire_time(None, now)
        if first is None:
            raise InputError(
                name, f"cron {entry.cron!r} does not fire in the next {HORIZON_YEARS} years"
            )
    else:
        first = trigger.get_next_fire_time(None, now)
    return Job(name, entry.action, trigger, first, entry.command())


Fire = Callable[[str, Command], None]
"""``fire(stream_id, command)``: carry out one scheduled control command."""


class Scheduler:
    """The app's one APScheduler, on the server's event loop; jobs are named by their stream."""

    def __init__(self, fire: Fire, clock: Callable[[], float] = time.monotonic) -> None:
        self._fire = fire
        self._failures = RepeatedWarnings(log, WARNING_INTERVAL, clock)
        self._scheduler = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": MISFIRE_GRACE,
            },
        )

    def start(self) -> None:
        self._scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def add(self, stream_id: str, jobs: Iterable[Job]) -> None:
        """Register a stream's planned jobs: all of them, or (if one fails) none."""
        try:
            for job in jobs:
                self._scheduler.add_job(
                    self._run,
                    job.trigger,
                    args=(stream_id, job.name, job.action, job.command),
                    id=f"{stream_id}:{job.name}",
                    name=job.action,
                    replace_existing=True,
                    next_run_time=job.first,  # found by ``plan``: APScheduler need not search
                )
        except Exception:
            self.remove(stream_id)
            raise

    async def _run(self, stream_id: str, name: str, action: str, command: Command) -> None:
        """A coroutine, so APScheduler runs it on the event loop (a plain function would run in
        a worker thread, beside the stream's own task)."""
        try:
            self._fire(stream_id, command)
        except Exception as exc:  # one stream's bad moment must not stop the scheduler
            self._failures.warning(
                (stream_id, action, str(exc)),
                "stream %s: %s (%s) failed: %s",
                stream_id,
                name,
                action,
                exc,
            )

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
