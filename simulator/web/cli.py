"""``livesim serve``: load settings and archives, then run the server until interrupted."""

from __future__ import annotations

import argparse
import gc
import sys
from dataclasses import replace

from aiohttp import web

from .. import settings as settings_module
from ..model import ArchiveError, Feed
from ..settings import FeedConfig, Settings, StreamConfig
from ..sources import bundled_feed, load_feed
from ..timeline import format_speed
from .app import create_app
from .state import check_stream


def resolve(args: argparse.Namespace) -> tuple[Settings, dict[str, Feed]]:
    """Settings and feeds from the config file and the command line; errors name their place."""
    base = settings_module.load(args.config)
    server = base.server.model_copy(
        update={k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    )
    feeds: dict[str, Feed] = {}
    if server.bundled:
        bundled = bundled_feed()
        feeds[bundled.id] = bundled
    for config in base.feeds:
        feed = _load_configured(config, base)
        feeds[feed.id] = feed
    named = []
    for path in args.archives:
        feed = load_feed(path)
        feeds[feed.id] = feed
        named.append(feed.id)
    streams = list(base.streams)
    overrides = {
        k: v for k, v in (("speed", args.speed), ("max_gap", args.max_gap)) if v is not None
    }
    if args.no_loop:
        overrides["loop"] = False
    if named or not streams:
        ids = named or list(feeds)[:1]
        streams = [StreamConfig.model_validate({"id": i, "feed": i, **overrides}) for i in ids] + [
            s for s in streams if s.id not in ids
        ]
    for number, stream in enumerate(streams):
        if stream.feed not in feeds:
            raise ArchiveError(
                f"streams[{number}].feed: unknown feed {stream.feed!r} "
                f"(known: {', '.join(feeds) or 'none'})",
                source=args.config,
            )
        try:
            check_stream(feeds[stream.feed], stream)
        except ValueError as exc:
            raise ArchiveError(f"streams[{number}].{exc}", source=args.config) from None
    return base.model_copy(update={"server": server, "streams": tuple(streams)}), feeds


def _load_configured(config: FeedConfig, base: Settings) -> Feed:
    path = base.base_dir / config.path
    feed = load_feed(path, format=config.format, timezone=config.timezone, day=config.date)
    return feed if config.id is None else replace(feed, id=config.id)


GC_THRESHOLD = (50_000, 20, 100)
"""Python's default (2000, 10, 10) runs a collection every few thousand allocations; with 10 000
connections each event allocates that many objects, and full collections over their heap cost
~40% of the server's CPU (benchmarks/README.md, fanout_bench)."""


def tune_gc() -> None:
    """Move what start-up built (archives, scripts, the app) out of the collector's sight, and
    collect less often: connection churn makes few reference cycles."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


def serve(args: argparse.Namespace) -> int:
    settings, feeds = resolve(args)
    app = create_app(settings, feeds)
    tune_gc()
    host, port = settings.server.host, settings.server.port

    def announce(_: str) -> None:
        url = f"http://{host}:{port}"
        print(f"livesim: serving on {url}  (open it in a browser; Ctrl+C stops)", flush=True)
        for stream in settings.streams:
            speed = format_speed(stream.speed)
            print(
                f"  stream {stream.id}: feed {stream.feed}, speed {speed}, loop {stream.loop}"
                f"  ->  curl -N {url}/streams/{stream.id}/events",
                flush=True,
            )

    try:
        web.run_app(
            app, host=host, port=port, print=announce, access_log=None, shutdown_timeout=2.0
        )
    except OSError as exc:
        print(f"livesim: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0
