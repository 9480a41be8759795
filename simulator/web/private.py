"""What all private replays share: their scripts, their number, and two byte budgets.

A private replay (``/feeds/{feed}/events|ws``) is made for one connection, by anyone who can
connect. So that neither a crowd nor one client can take the server down:

- **scripts** are built once per (feed, scenario, edit delay) and shared: a script never changes,
  and building one is as long as the archive (seconds for 100 000 posts). The first build and each
  new ``max_gap``'s play times are computed in a worker thread, so the event loop keeps serving
  meanwhile; connections that ask for the same script at once wait for the one build.
- **their number** is bounded (``server.max_private_replays``);
- **their live posts' bytes** together (``server.max_private_live_bytes``): a post past it is
  refused;
- **their event logs' bytes** together (``server.max_private_log_bytes``): past it, logs keep
  less (``eventlog.LogPool``).

Each replay gives back what it counted when it stops (``Replay.close``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from ..core.eventlog import LogPool
from ..core.live import LiveBudget
from ..core.model import Feed
from ..core.prepared import PreparedScript, Timing
from ..core.scenario_config import ScenarioRules, ScenarioValue, resolve
from ..core.script import Script
from ..settings import ReplayConfig, ServerConfig

ScriptKey = tuple[str, ScenarioValue, float]
"""Feed id, scenario (as given: a name, for a private replay), edit delay."""


class PrivateReplays:
    def __init__(
        self,
        server: ServerConfig,
        scenarios: Mapping[str, ScenarioRules],
        build: Callable[[Feed, ReplayConfig, Mapping[str, ScenarioRules]], Script],
    ) -> None:
        """``build`` makes a stream's script (``state.build_script``)."""
        self.limit = server.max_private_replays
        self.open = 0
        """Private replays open or being opened: what ``limit`` bounds."""
        self.live = LiveBudget(server.max_private_live_bytes, "server.max_private_live_bytes")
        self.logs = LogPool(server.max_private_log_bytes)
        self._scenarios = scenarios
        self._build = build
        self._scripts: dict[ScriptKey, asyncio.Future[PreparedScript]] = {}
        self._timings: dict[tuple[ScriptKey, float | None], asyncio.Future[Timing]] = {}

    async def script(self, feed: Feed, config: ReplayConfig) -> PreparedScript:
        """The prepared script ``config`` plays on ``feed``, with play times for its
        ``max_gap``; ``InputError`` as ``state.build_script`` raises it.

        The cache is bounded by the configuration: an unknown scenario name is refused here
        before anything is built or kept, and a known one that does not fit the feed is kept
        as its error (it would fail the same way each time).
        """
        resolve(config.scenario, self._scenarios)  # an unknown name: at once, nothing kept
        key: ScriptKey = (feed.id, config.scenario, config.edit_delay)
        built = self._scripts.get(key)
        if built is None:
            built = asyncio.ensure_future(asyncio.to_thread(self._prepare, feed, config))
            self._scripts[key] = built
        prepared = await asyncio.shield(built)
        max_gap = config.max_gap
        if not prepared.has_timing(max_gap):
            timed = self._timings.get((key, max_gap))
            if timed is None:
                timed = asyncio.ensure_future(asyncio.to_thread(Timing.of, prepared.times, max_gap))
                self._timings[key, max_gap] = timed
                timed.add_done_callback(lambda _: self._timings.pop((key, max_gap), None))
            timing = await asyncio.shield(timed)
            prepared.remember(max_gap, timing)
        return prepared

    def _prepare(self, feed: Feed, config: ReplayConfig) -> PreparedScript:
        return PreparedScript(self._build(feed, config, self._scenarios))
