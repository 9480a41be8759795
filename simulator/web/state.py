"""What the app holds, as typed keys, and the one place a stream is made from its config."""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ..core import scenario, scenario_config, script
from ..core.errors import InputError
from ..core.model import Feed
from ..core.replay import Replay
from ..core.scenario_config import ScenarioRules
from ..settings import ReplayConfig, Settings, StreamConfig
from .access import Slots
from .hub import Subscriber
from .metrics import Metrics
from .private import PrivateReplays
from .schedule import START_AT, Job, Scheduler, plan
from .stream import Stream, new_replay

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


def check_stream(
    feed: Feed, config: ReplayConfig, scenarios: Mapping[str, ScenarioRules] | None = None
) -> None:
    """Raise the ``InputError`` that starting this stream would, without starting it.

    Without ``scenarios`` a named scenario is not checked here (``settings.load`` checked the
    name; the stream checks the rest when it starts).
    """
    if scenarios is None and isinstance(config.scenario, str):
        return
    Replay(
        build_script(feed, config, scenarios),
        stream="check",
        incarnation="check",
        now=0.0,
        options=config.options(),
    )


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
    server = app[SETTINGS].server
    options = replace(config.options(), log_bytes=server.max_log_bytes)
    timed = config if isinstance(config, StreamConfig) else None
    if timed and jobs is None:
        jobs = plan(timed.schedule, timed.start_at, datetime.now(UTC))
    if any(job.name == START_AT for job in jobs or ()):
        options = replace(options, paused=True)  # until start_at
    script = build_script(feed, config, app[SETTINGS].scenarios)
    replay = new_replay(stream_id, script, options, asyncio.get_running_loop().time())
    stream = Stream(stream_id, feed, replay, max_pending=server.max_pending)
    if timed and jobs:
        app[SCHEDULER].add(stream_id, jobs)
    _start(app, stream, config)
    return stream


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
        new_replay, stream_id, script, options, asyncio.get_running_loop().time()
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
