"""What the app holds, as typed keys, and the one place a stream is made from its config."""

from __future__ import annotations

import weakref
from typing import Any

from aiohttp import web

from .. import script
from ..hub import Subscriber
from ..model import Feed
from ..replay import Replay
from ..settings import ReplayConfig, Settings
from ..stream import Stream

SETTINGS = web.AppKey("settings", Settings)
FEEDS = web.AppKey("feeds", dict[str, Feed])
FEED_STATS = web.AppKey("feed_stats", dict[str, dict[str, Any]])
"""``stats.summarize`` of each feed, computed once: feeds never change while the app runs."""
STREAMS = web.AppKey("streams", dict[str, Stream])
CONNECTIONS: web.AppKey[weakref.WeakSet[Subscriber]] = web.AppKey("connections")
"""Open SSE and WebSocket responses, closed on shutdown so it does not wait on them."""


def build_script(feed: Feed, config: ReplayConfig) -> script.Script:
    return script.build(feed, [step.step() for step in config.scenario], config.edit_delay)


def check_stream(feed: Feed, config: ReplayConfig) -> None:
    """Raise the ``ValueError`` that starting this stream would, without starting it."""
    Replay(
        build_script(feed, config),
        stream="check",
        incarnation="check",
        now=0.0,
        options=config.options(),
    )


def make_stream(
    app: web.Application, stream_id: str, feed: Feed, config: ReplayConfig, private: bool = False
) -> Stream:
    """A started stream; ``ValueError`` for a scenario or start position that does not fit."""
    stream = Stream(
        stream_id,
        feed,
        build_script(feed, config),
        config.options(),
        max_pending=app[SETTINGS].server.max_pending,
        private=private,
    )
    stream.start()
    return stream
