"""``livesim serve``: load settings and archives, then run the server until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .. import logs
from .. import settings as settings_module
from ..core.model import ArchiveError, Feed
from ..core.timeline import format_speed, parse_speed
from ..settings import FeedConfig, Override, ServerConfig, Settings, StreamConfig
from ..sources import BUNDLED, ID_PATTERN, ID_RULE, bundled_feed, load_feed
from .options import checked, optional_duration, port

# The server (aiohttp.web, simulator.web) is imported by the functions that use it: `livesim
# tail` and `livesim inspect` import this module too, and start without loading it.
if TYPE_CHECKING:
    from aiohttp import web

    from ..web.state import Prebuilt

SHUTDOWN_TIMEOUT = 2.0
"""Seconds open connections get to finish after SIGINT/SIGTERM before they are cut."""

SERVER_FLAGS = {
    "host": "--host",
    "port": "--port",
    "log_format": "--log-format",
    "event_loop": "--event-loop",
    "state_file": "--state-file",
    "redis": "--redis",
}
"""``[server]`` keys with a flag; each key is also the flag's ``argparse`` destination."""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "serve",
        help="serve archives as live streams over SSE, WebSocket and REST (the default command)",
        description="Serve archives as live streams. With no ARCHIVE and no --config, serves the "
        "bundled Al Jazeera Iraq live blog as a looping stream at speed 60 with gaps clamped "
        "to 2 minutes, so a demo shows a post every few seconds. Flags win over LIVESIM_* "
        "environment variables (LIVESIM_HOST, LIVESIM_PORT, LIVESIM_TOKEN, LIVESIM_LOG_FORMAT, "
        "LIVESIM_STATE_FILE, and LIVESIM_SERVER__KEY for any [server] key), which win over "
        "the config file; --speed, --max-gap and --no-loop apply to every stream. SIGINT or "
        "SIGTERM stops it cleanly (exit status 0).",
    )
    parser.add_argument("archives", nargs="*", metavar="ARCHIVE", help="archive files to stream")
    parser.add_argument("--config", metavar="FILE", help="TOML settings (see config/livesim.toml)")
    parser.add_argument(
        "--host",
        help="address to listen on (default 127.0.0.1); several on one port: 127.0.0.1,::1",
    )
    parser.add_argument(
        "--port", type=port, help="port to bind, 0-65535 (default 8080; 0 picks a free one)"
    )
    parser.add_argument(
        "--speed",
        type=checked(parse_speed),
        help="replay speed: 1 = original timing, 60, up to 1000000, or max",
    )
    parser.add_argument(
        "--max-gap",
        type=checked(optional_duration),
        metavar="DURATION",
        help="clamp quiet stretches to this much archive time (default 2m; none: no clamping)",
    )
    parser.add_argument("--no-loop", action="store_true", help="stop at the end instead of looping")
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="a line of text (default) or JSON per log record",
    )
    parser.add_argument(
        "--event-loop",
        choices=("asyncio", "uvloop"),
        help="asyncio's event loop (the default) or uvloop's",
    )
    parser.add_argument(
        "--state-file",
        metavar="FILE",
        help="save live posts and API-made streams here, and restore them at start (default: off)",
    )
    parser.add_argument(
        "--redis",
        metavar="URL",
        help="redis://HOST:PORT/DB: be one node of a service sharing its streams through this "
        "Redis (docs/scaling.md; default: alone)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="start N worker processes on one port (SO_REUSEPORT), each a node (needs --redis)",
    )
    parser.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    parser.set_defaults(handler=run)


def flag_overrides(args: argparse.Namespace) -> list[Override]:
    """What the command line sets, as overrides of the config file and the environment.

    ``--speed``, ``--max-gap`` and ``--no-loop`` apply to every stream: the configured ones here,
    the ones made for archives named on the command line in ``resolve``.
    """
    flags = [
        Override(flag, ("server", key), getattr(args, key, None))
        for key, flag in SERVER_FLAGS.items()
    ]
    flags += [
        Override(flag, ("streams", "*", key), value)
        for key, (flag, value) in _replay_flags(args).items()
    ]
    return [flag for flag in flags if flag.value is not None]


def _replay_flags(args: argparse.Namespace) -> dict[str, tuple[str, object]]:
    flags: dict[str, tuple[str, object]] = {}
    if getattr(args, "speed", None) is not None:
        flags["speed"] = ("--speed", args.speed)
    if getattr(args, "max_gap", None) is not None:
        flags["max_gap"] = ("--max-gap", args.max_gap)
    if getattr(args, "no_loop", False):
        flags["loop"] = ("--no-loop", False)
    return flags


def resolve(
    args: argparse.Namespace, env: Mapping[str, str] | None = None
) -> tuple[Settings, dict[str, Feed]]:
    """Settings and feeds by precedence: flags > ``LIVESIM_*`` in ``env`` (default: the process
    environment) > the config file > defaults. Errors name their place; two feeds or two streams
    with one id are refused, naming both sources."""
    settings, feeds, _ = configure(args, env)
    return settings, feeds


def configure(
    args: argparse.Namespace, env: Mapping[str, str] | None = None
) -> tuple[Settings, dict[str, Feed], Prebuilt]:
    """``resolve``'s settings and feeds, and every stream's replay: made once here, which
    checks it, and handed to ``create_app``, which starts it."""
    from ..web.state import Prebuilt

    config = args.config
    base = settings_module.load(config, env, flag_overrides(args))
    feeds = _Feeds()
    if base.server.bundled:
        feeds.add(bundled_feed(), f"the bundled archive ({BUNDLED})")
    for number, feed_config in enumerate(base.feeds):
        feed = _load_configured(feed_config, base)
        feeds.add(feed, f"{config} feeds[{number}] ({feed_config.path})")
    named: dict[str, str] = {}
    for path in args.archives:
        feed = load_feed(path)
        feeds.add(feed, path)
        named[feed.id] = path
    streams = list(base.streams)
    origins = [f"{config} streams[{number}]" for number in range(len(streams))]
    if named or not streams:
        defaults = named or {feed_id: feeds.origin[feed_id] for feed_id in list(feeds.feeds)[:1]}
        replay = {key: value for key, (_, value) in _replay_flags(args).items()}
        for feed_id, origin in defaults.items():
            _check_stream_id(feed_id, origin, streams, origins)
            streams.append(StreamConfig.model_validate({"id": feed_id, "feed": feed_id, **replay}))
            origins.append(origin)
    settings = base.model_copy(update={"streams": tuple(streams)})
    prebuilt = Prebuilt()
    for number, stream in enumerate(streams):
        if stream.feed not in feeds.feeds:
            raise ArchiveError(
                f"streams[{number}].feed: unknown feed {stream.feed!r} "
                f"(known: {', '.join(feeds.feeds) or 'none'})",
                source=config,
            )
        try:
            prebuilt.build(settings, feeds.feeds[stream.feed], stream)
        except ValueError as exc:
            if number < len(base.streams):
                raise ArchiveError(f"streams[{number}].{exc}", source=config) from None
            raise ArchiveError(f"stream {stream.id!r}: {exc}", source=origins[number]) from None
    return settings, feeds.feeds, prebuilt


class _Feeds:
    """Feeds by id, each with where it came from, so a duplicate can name both sources."""

    def __init__(self) -> None:
        self.feeds: dict[str, Feed] = {}
        self.origin: dict[str, str] = {}

    def add(self, feed: Feed, origin: str) -> None:
        if feed.id in self.feeds:
            hint = "livesim import --id NAME, or id = … in [[feeds]]"
            if self.origin[feed.id].startswith("the bundled"):
                hint += ", or bundled = false in [server]"
            raise ArchiveError(
                f"feed id {feed.id!r} comes from both {self.origin[feed.id]} and {origin}; "
                f"give one another id ({hint})"
            )
        self.feeds[feed.id] = feed
        self.origin[feed.id] = origin


def _check_stream_id(
    stream_id: str, origin: str, streams: list[StreamConfig], origins: list[str]
) -> None:
    """A stream made for an archive takes the feed's id: it must be a valid, unused stream id."""
    if not re.match(ID_PATTERN, stream_id):
        raise ArchiveError(
            f"feed id {stream_id!r} cannot be a stream id ({ID_RULE}); "
            "give it another (livesim import --id NAME)",
            source=origin,
        )
    for number, stream in enumerate(streams):
        if stream.id == stream_id:
            raise ArchiveError(
                f"stream id {stream_id!r} comes from both {origins[number]} and {origin}; "
                "give one another id (livesim import --id NAME, or id = … in [[streams]])"
            )


def _load_configured(config: FeedConfig, base: Settings) -> Feed:
    path = base.base_dir / config.path
    feed = load_feed(path, format=config.format, timezone=config.timezone, day=config.date)
    return feed if config.id is None else replace(feed, id=config.id)


def check_exposure(server: ServerConfig) -> None:
    """Bound beyond loopback, anyone who can reach the port could steer the streams: refuse to
    start unless a token guards control."""
    from ..web.access import is_loopback

    exposed = [address for address in server.addresses if not is_loopback(address)]
    if server.token is None and exposed:
        raise ArchiveError(
            f"host {exposed[0]} is reachable from other machines, so control needs a token: "
            "set LIVESIM_TOKEN (at least 16 characters, e.g. LIVESIM_TOKEN=$(openssl rand -hex 16))"
            ' or token = "…" in [server] of the config file'
        )


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """``None`` for asyncio's default loop, else uvloop's."""
    if name == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        raise ArchiveError(
            "--event-loop uvloop: uvloop is not installed here (pip install uvloop)"
        ) from None
    return uvloop.new_event_loop


GC_THRESHOLD = (50_000, 20, 100)
"""Python's default (2000, 10, 10) runs a collection every few thousand allocations; with 10 000
connections each event allocates that many objects, and full collections over their heap cost
~40% of the server's CPU (benchmarks/README.md, fanout_bench)."""


LISTEN_BACKLOG = 4096
"""Connections the kernel queues before accept: a resume storm of 2 000 clients overflows the
default 128 (clients then retry after a second: docs/performance.md, resume storm)."""


def tune_gc() -> None:
    """Move what start-up built (archives, scripts, the app) out of the collector's sight, and
    collect less often: connection churn makes few reference cycles. Start-up itself runs with
    the collector off (``serve``): parsing and building replays make no cycles, and at a million
    posts the collector's passes over the growing heap cost 47 % of import and 73 % of replay
    start-up (benchmarks/README.md, synth_bench)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
    gc.enable()


def raise_open_file_limit() -> str | None:
    """Each connection is a file descriptor and the usual soft limit (1024) is far below
    ``max_connections``: raise it to the hard limit. A line saying so when it changed."""
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == hard:
            return None
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        return None
    shown = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
    return f"livesim: open-file limit raised from {soft} to {shown} (the hard limit)"


FILES_BESIDES_CONNECTIONS = 64
"""Descriptors the server needs besides its connections: the listening socket, the event loop's
selector, log and archive files, and a margin."""


def open_file_shortfall(max_connections: int) -> str | None:
    """A warning when the open-file limit cannot hold ``max_connections``: past it, accepting
    fails (EMFILE) and new clients time out instead of getting a 503 they can act on."""
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= max_connections + FILES_BESIDES_CONNECTIONS:
        return None
    return (
        f"livesim: warning: the open-file limit ({soft}) is below server.max_connections "
        f"({max_connections}) + {FILES_BESIDES_CONNECTIONS}: past it new connections fail "
        "instead of getting 503; lower max_connections or raise the limit (ulimit -n)"
    )


def run(args: argparse.Namespace) -> int:
    from ..web import persist
    from ..web.app import create_app

    gc.disable()  # until tune_gc, once the streams are built
    settings, feeds, prebuilt = configure(args)
    server = settings.server
    check_exposure(server)
    if getattr(args, "workers", None) is not None:
        return workers(args, settings)
    factory = loop_factory(server.event_loop)
    logs.configure(server.log_format)
    app = create_app(settings, feeds, prebuilt)
    persist.preload(app)  # a bad state file stops here, with one line
    raised = raise_open_file_limit()
    if raised:
        print(raised, flush=True)
    shortfall = open_file_shortfall(server.max_connections)
    if shortfall:
        print(shortfall, file=sys.stderr, flush=True)
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(_run(app, settings, reuse_port=getattr(args, "reuse_port", False)))


def workers(args: argparse.Namespace, settings: Settings) -> int:
    """``--workers N``: N copies of this command, each a node of the service Redis ties
    together, all listening on one port (``SO_REUSEPORT``: the kernel spreads connections over
    them). Without Redis each would run its own streams, with their own ids: refused."""
    import subprocess

    count = args.workers
    if not settings.server.redis:
        print(
            "livesim: --workers needs --redis (or [server] redis, LIVESIM_REDIS): without it "
            "each worker would run streams of its own, with other ids and other timing",
            file=sys.stderr,
        )
        return 2
    if not 1 <= count <= 256:
        print(f"livesim: --workers: expected 1 to 256, got {count}", file=sys.stderr)
        return 2
    with _reserved_port(settings.server.addresses, settings.server.port) as bound:
        command = [sys.executable, "-m", "simulator", *_worker_argv(sys.argv[1:], bound)]
        children = [subprocess.Popen(command) for _ in range(count)]
        started = [time.monotonic()] * count
        stop = _forward_signals(children)
        while not stop.wait(WORKER_POLL):
            for index, child in enumerate(children):
                if child.poll() is None:
                    continue
                if time.monotonic() - started[index] < WORKER_MIN_LIFE:  # it cannot start
                    stop.set()
                    for other in children:
                        if other.poll() is None:
                            other.send_signal(signal.SIGTERM)
                    break
                print(
                    f"livesim: worker {child.pid} exited with status {child.returncode}; "
                    "starting another",
                    file=sys.stderr,
                    flush=True,
                )
                children[index] = subprocess.Popen(command)
                started[index] = time.monotonic()
        statuses = [child.wait() for child in children]
    return max(statuses) if any(status > 0 for status in statuses) else 0


WORKER_POLL = 0.5
WORKER_MIN_LIFE = 2.0
"""Seconds a worker must have run for its exit to be a crash to recover from (a new worker
starts and rejoins in step), not a failure to start (the pool stops with its status)."""


def _worker_argv(argv: list[str], port: int) -> list[str]:
    """This command line for one worker: without ``--workers``, on the reserved port."""
    out: list[str] = []
    skip = False
    for item in argv:
        if skip:
            skip = False
            continue
        if item in ("--workers", "--port"):
            skip = True
            continue
        if item.startswith(("--workers=", "--port=")):
            continue
        out.append(item)
    if "serve" not in out:
        out.insert(0, "serve")
    return [*out, "--port", str(port), "--reuse-port"]


@contextlib.contextmanager
def _reserved_port(addresses: tuple[str, ...], port: int) -> Iterator[int]:
    """The port the workers share, held on every address (bound, not listening) until they are
    gone, so that ``--port 0`` names one port for all and nobody else takes it meanwhile."""
    import socket

    with contextlib.ExitStack() as held:
        for address in addresses:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            holder = held.enter_context(socket.socket(family, socket.SOCK_STREAM))
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            holder.bind((address, port))
            port = holder.getsockname()[1]
        yield port


def _forward_signals(children: list[Any]) -> threading.Event:
    """SIGINT and SIGTERM to the parent stop every worker (each shuts down cleanly)."""
    stopped = threading.Event()

    def forward(number: int, _frame: Any) -> None:
        stopped.set()
        for child in children:
            if child.poll() is None:
                child.send_signal(number)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    return stopped


async def _run(app: web.Application, settings: Settings, reuse_port: bool = False) -> int:
    """Serve until SIGINT or SIGTERM, then shut down cleanly: exit status 0."""
    from aiohttp import web

    from ..web.accept_errors import AcceptErrors
    from ..web.app import runner_options

    asyncio.get_running_loop().set_exception_handler(AcceptErrors())  # out of descriptors
    port = settings.server.port
    options = runner_options(settings)  # header timeout (slowloris), no access log
    runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_TIMEOUT, **options)
    await runner.setup()  # starts the configured streams
    tune_gc()
    try:
        for host in settings.server.addresses:  # one port on all: the first picks it
            site = web.TCPSite(
                runner, host, port, backlog=LISTEN_BACKLOG, reuse_port=reuse_port or None
            )
            try:
                await site.start()
            except (OSError, UnicodeError) as exc:  # UnicodeError: a name IDNA cannot encode
                print(f"livesim: cannot listen on {host}:{port}: {_reason(exc)}", file=sys.stderr)
                return 1
            port = runner.addresses[0][1]
        announce(settings, port)
        await _signalled()
    finally:
        await runner.cleanup()
    return 0


def _reason(exc: Exception) -> str:
    """``Address already in use``, not asyncio's sentence around it that repeats the address."""
    if isinstance(exc, OSError) and exc.errno and exc.errno > 0:
        return os.strerror(exc.errno)
    return getattr(exc, "strerror", None) or str(exc)


async def _signalled() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    try:
        for number in signals:
            loop.add_signal_handler(number, stop.set)
    except NotImplementedError:  # Windows: Ctrl+C arrives as KeyboardInterrupt instead
        pass
    try:
        await stop.wait()
    finally:
        for number in signals:
            try:
                loop.remove_signal_handler(number)
            except NotImplementedError:
                pass


def announce(settings: Settings, port: int) -> None:
    """Where to point a browser and curl: the port actually bound (``--port 0`` picks one)."""
    url, *others = [
        f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        for host in settings.server.addresses
    ]
    also = f" (also {', '.join(others)})" if others else ""
    print(f"livesim: serving on {url}{also}  (open it in a browser; Ctrl+C stops)", flush=True)
    for stream in settings.streams:
        speed = format_speed(stream.speed)
        print(
            f"  stream {stream.id}: feed {stream.feed}, speed {speed}, loop {stream.loop}"
            f"  ->  curl -N {url}/streams/{stream.id}/events",
            flush=True,
        )
