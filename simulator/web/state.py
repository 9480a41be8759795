"""What the app holds, as typed keys, and the one place a stream is made from its config.

A configured stream's replay is made once: ``prebuild`` makes it (and so checks the config)
before the server starts, ``make_stream`` then starts that very replay. Building one is as long
as the archive (seconds for a million posts), so checking and serving must not both build it.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..core import scenario, scenario_config, script
from ..core.errors import InputError
from ..core.model import Feed
from ..core.replay import Options, Replay
from ..core.scenario_config import ScenarioRules
from ..settings import ReplayConfig, Settings, StreamConfig
from .access import Slots
from .hub import Subscriber
from .metrics import Metrics
from .private import PrivateReplays
from .schedule import START_AT, Job, Scheduler, plan
from .stream import Incarnations, Stream, new_replay

if TYPE_CHECKING:
    from .cluster import Node

SETTINGS = web.AppKey("settings", Settings)
FEEDS = web.AppKey("feeds", dict[str, Feed])
FEED_STATS = web.AppKey("feed_stats", dict[str, dict[str, Any]])
"""``stats.summarize`` of each feed, computed once: feeds never change while the app runs."""
STREAMS = web.AppKey("streams", dict[str, Stream])
CONNECTIONS: web.AppKey[weakref.WeakSet[Subscriber]] = web.AppKey("connections")
"""Open SSE and WebSocket responses, closed on shutdown so it does not wait on them."""
PRIVATE_STREAMS = web.AppKey("private_streams", set[Stream])
"""Live private replays (one per connection), for /metrics."""
API_STREAMS = web.AppKey("api_streams", set[str])
"""Ids of the streams made by ``POST /api/streams``: what ``server.max_streams`` bounds."""
OPEN = web.AppKey("open", Slots)
"""Connection slots held by requests in flight (SSE and WebSocket for their whole life)."""
PRIVATE = web.AppKey("private", PrivateReplays)
"""What private replays share: scripts, their count, byte budgets (``private.py``)."""
METRICS = web.AppKey("metrics", Metrics)
SCHEDULER = web.AppKey("scheduler", Scheduler)
INCARNATIONS = web.AppKey("incarnations", Incarnations)
NODE: web.AppKey[Node] = web.AppKey("node")
"""This process as a node of a Redis-shared service (``--redis``); absent when alone."""


@dataclass
class Numbers:
    """The app's sources of automatic names, owned by it so two apps in one process (the
    tests') never share a sequence."""

    streams: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    """``s1``, ``s2``… for ``POST /api/streams`` without an id."""
    private: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    """``private-{feed}-{n}``."""


NUMBERS = web.AppKey("numbers", Numbers)


@dataclass
class Prebuilt:
    """The configured streams' replays, made before the server starts: what ``make_stream``
    starts instead of making them again. By stream id, each with the ``time.monotonic()`` it
    was made at (its clock is restarted when its stream starts)."""

    incarnations: Incarnations = field(default_factory=Incarnations)
    replays: dict[str, tuple[Replay, float]] = field(default_factory=dict)

    def build(self, settings: Settings, feed: Feed, config: StreamConfig) -> None:
        """Make ``config``'s replay as ``make_stream`` would, so ``ValueError`` is the one that
        starting it would raise, naming the place (a scenario, ``start``, a schedule entry)."""
        jobs = plan(config.schedule, config.start_at, datetime.now(UTC))
        options = stream_options(settings, config, jobs)
        script = build_script(feed, config, settings.scenarios)
        now = time.monotonic()
        self.replays[config.id] = (
            new_replay(config.id, script, options, now, self.incarnations),
            now,
        )


PREBUILT = web.AppKey("prebuilt", Prebuilt)


def build_script(
    feed: Feed, config: ReplayConfig, scenarios: Mapping[str, ScenarioRules] | None = None
) -> script.Script:
    """The stream's script under its scenario; a named one is looked up in ``scenarios``.

    ``InputError`` names the place: ``scenario[0].post`` (steps), ``scenario.inject[0].at``
    (inline rules), ``scenario: scenarios.NAME.steps[0].post`` (a named scenario that does not
    fit this feed).
    """
    value, where = scenario_config.resolve(config.scenario, scenarios or {})
    try:
        return scenario.build(feed, value, config.edit_delay, where)
    except InputError as exc:
        if where.startswith("scenarios."):
            raise InputError("scenario", str(exc)) from None
        raise


def stream_options(settings: Settings, config: ReplayConfig, jobs: Sequence[Job] | None) -> Options:
    """A stream's replay options: its config's, the server's log bound, and paused until its
    ``start_at`` when that is one of its ``jobs``."""
    options = replace(config.options(), log_bytes=settings.server.max_log_bytes)
    if any(job.name == START_AT for job in jobs or ()):
        options = replace(options, paused=True)
    return options


def make_stream(
    app: web.Application,
    stream_id: str,
    feed: Feed,
    config: ReplayConfig,
    jobs: Sequence[Job] | None = None,
) -> Stream:
    """A started shared stream; ``InputError`` for a scenario, start position or schedule that
    does not fit. Everything that can fail comes first and the stream starts last, so a refusal
    leaves nothing running. ``jobs``: its schedule, if already planned (the API plans in a
    thread). A private replay is made by ``open_private``.
    """
    settings = app[SETTINGS]
    timed = config if isinstance(config, StreamConfig) else None
    if timed and jobs is None:
        jobs = plan(timed.schedule, timed.start_at, datetime.now(UTC))
    options = stream_options(settings, config, jobs)
    now = asyncio.get_running_loop().time()
    replay = _prebuilt(app, stream_id, options, now)
    if replay is None:
        script = build_script(feed, config, settings.scenarios)
        replay = new_replay(stream_id, script, options, now, app[INCARNATIONS])
    stream = Stream(stream_id, feed, replay, max_pending=settings.server.max_pending)
    if timed and jobs:
        app[SCHEDULER].add(stream_id, jobs)
    _start(app, stream, config)
    return stream


def _prebuilt(app: web.Application, stream_id: str, options: Options, now: float) -> Replay | None:
    """The replay ``prebuild`` made for this stream, its clock restarted at ``now``: it starts
    where it was made, as if made now. None if there is none, or if it was made with other
    options (its ``start_at`` passed while the server started)."""
    prebuilt = app.get(PREBUILT)
    found = prebuilt.replays.pop(stream_id, None) if prebuilt else None
    if found is None or found[0].options != options:
        return None
    replay, made_at = found
    replay.timeline.seek(replay.timeline.position(made_at), now)
    return replay


async def open_private(
    app: web.Application, stream_id: str, feed: Feed, config: ReplayConfig
) -> Stream:
    """A started private replay, made without holding up the loop: its script is the shared one
    (built in a worker thread the first time), and a replay that starts at ``from`` (it applies
    every cue before it) is made in a worker thread too. What it holds counts against the
    private replays' budgets. ``InputError`` as ``make_stream``."""
    server = app[SETTINGS].server
    private = app[PRIVATE]
    options = replace(config.options(), log_bytes=server.max_log_bytes)
    script = await private.script(feed, config)
    make = functools.partial(
        new_replay,
        stream_id,
        script,
        options,
        asyncio.get_running_loop().time(),
        app[INCARNATIONS],
    )
    replay = await asyncio.to_thread(make) if options.start else make()
    replay.share(private.live, private.logs)
    stream = Stream(stream_id, feed, replay, max_pending=server.max_pending, private=True)
    _start(app, stream, config)
    return stream


def _start(app: web.Application, stream: Stream, config: ReplayConfig) -> None:
    stream.on_lateness = app[METRICS].lateness.observe
    stream.faults = config.fault_spec()
    stream.start()


async def stop_stream(app: web.Application, stream: Stream, reason: str) -> None:
    """Stop a stream and keep its counts in /metrics' totals."""
    if not stream.private:
        app[SCHEDULER].remove(stream.id)
    await stream.stop(reason)
    app[METRICS].totals.retire(stream)
