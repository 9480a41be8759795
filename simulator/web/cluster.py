"""Nodes sharing their streams through Redis (``--redis``); the design and its failure cases are
in docs/scaling.md.

Each shared stream has an *input log* in Redis, a Redis Stream (``livesim:in:{id}``): every input
its replay takes, "advance to t" or a command at t, on a clock the nodes share, in one order.
Every node holds a replay of the stream made from the same definition and applies every input in
that order, so every node's replay emits the same events with the same ids (a replay is a
deterministic function of its inputs), and resume, snapshots and post lookups are answered
locally, exactly as one node would. The node holding the stream's lease runs its clock: it
appends "advance" when the replay's next deadline comes. Any node appends commands; the node that
sent one answers once its own replay has applied it (``cluster_link.Link``). Only these two
modules import ``redis``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import os
import secrets
import socket
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiohttp import web
from redis.exceptions import RedisError

from ..core.errors import InputError
from ..core.model import Feed
from ..core.replay import Replay
from ..settings import StreamConfig
from .cluster_link import (
    APPEND,
    READ_BLOCK_MS,
    READ_COUNT,
    RETRY,
    Checkpoint,
    Link,
    encode,
    stream_keys,
)
from .schedule import plan
from .state import INCARNATIONS, METRICS, SCHEDULER, SETTINGS, build_script, stream_options
from .stream import Stream, Unavailable

log = logging.getLogger("livesim.cluster")

DEFINITIONS = "livesim:streams"
"""Hash: stream id → its definition (JSON): incarnation, shared-clock birth, wall offset, and
the API body for a stream made through the API (null for a configured one)."""
PROBE_EVERY = 1.0
"""Seconds between round-trip and clock probes while Redis is up."""
CLOSE_TIMEOUT = 1.0
"""Seconds each step of a node's shutdown may take."""
SYNC_EVERY = 0.25
"""Seconds between looks at the shared definitions (API-made streams appear within this)."""

CREATE = """
if redis.call('hsetnx', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('del', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
  return 1
end
return 0
"""
"""A new definition, and nothing left of an earlier stream of that id (a node that had not yet
seen its deletion may have appended to its log)."""
RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
PUT_BACK = """
if redis.call('hsetnx', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('del', KEYS[2])
  redis.call('hset', KEYS[2], unpack(ARGV, 4))
  redis.call('set', KEYS[3], ARGV[3])
  return 1
end
return 0
"""
"""A lost definition back, with this node's checkpoint beside it and the count of inputs where
it stands, as one step: whoever reads the one finds the other, and the next input appended
is numbered right after the checkpoint's."""
RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def fingerprint(config: StreamConfig) -> str:
    """What the nodes must agree on to make the same replay: the stream's settings."""
    dumped = orjson.dumps(
        config.model_dump(mode="json", warnings=False), option=orjson.OPT_SORT_KEYS
    )
    return hashlib.sha256(dumped).hexdigest()[:20]


class Node:
    """This process as one node: its Redis client, the shared clock, and its streams' links."""

    def __init__(self, url: str, lease: float, checkpoint_every: int = 1000) -> None:
        self.id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"
        self.lease = lease
        self.checkpoint_every = checkpoint_every
        """Inputs between two checkpoints of a stream whose clock this node runs; the log is
        trimmed to the one before the last, so that a node joining while one is written still
        finds every input after the one it read."""
        self.redis: aioredis.Redis = aioredis.Redis.from_url(
            url, socket_connect_timeout=1.0, socket_timeout=(READ_BLOCK_MS / 1000) + 2.0
        )
        self.renew = self.redis.register_script(RENEW)
        self._create = self.redis.register_script(CREATE)
        self._put_back = self.redis.register_script(PUT_BACK)
        self.append = self.redis.register_script(APPEND)
        self.release = self.redis.register_script(RELEASE)
        self.base = 0.0
        """Redis ``TIME`` minus the loop's clock when this node met Redis: the shared clock is
        ``loop.time() + base``, monotonic, and the same on every node to within the probe's
        round trip."""
        self.up = False
        self.reason = "redis: not reached yet"
        self.back = asyncio.Event()
        self.rtt = math.nan
        self.offset = math.nan
        """Redis ``TIME`` minus this host's wall clock, at the last probe."""
        self.received = 0
        self.published = 0
        self.takeovers = 0
        self.links: dict[str, Link] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def now(self) -> float:
        return asyncio.get_running_loop().time() + self.base

    def spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def start(self) -> None:
        """Meet Redis (waiting for it if it is down: the streams' state is there), and set
        the shared clock from its ``TIME``."""
        waiting = False
        while True:
            try:
                self.base = await self._clock()
                break
            except (RedisError, OSError) as exc:
                self.lost(exc)
                if not waiting:
                    log.error("%s; waiting for it before serving", self.reason)
                    waiting = True
                await asyncio.sleep(RETRY)
        self._found()
        self.spawn(self._probe(), "redis:probe")
        self.spawn(self._read(), "redis:read")

    async def _read(self) -> None:
        """Read the input logs of all this node's streams with one blocking ``XREAD`` (not one
        per stream: one connection, one waiting client in Redis, however many streams), each
        from the last input applied, and hand each stream what was read for it."""
        while True:
            links = {link.key.encode(): link for link in self.links.values() if not link.held}
            if not links:
                await asyncio.sleep(READ_BLOCK_MS / 1000)
                continue
            positions = {link.key: link.last_id for link in links.values()}
            try:
                reply: Any = await self.redis.xread(
                    positions,  # type: ignore[arg-type]
                    count=READ_COUNT,
                    block=READ_BLOCK_MS,
                )
            except (RedisError, OSError) as exc:
                self.lost(exc)
                await asyncio.sleep(RETRY)
                continue
            for key, entries in reply or ():
                link = links[key]
                if self.links.get(link.stream.id) is link:
                    link.deliver(positions[link.key], entries)
            for link in links.values():
                link.progressed()

    async def _clock(self) -> float:
        loop = asyncio.get_running_loop()
        before = loop.time()
        seconds, micros = await self.redis.time()
        after = loop.time()
        self.rtt = after - before
        server = seconds + micros / 1e6
        self.offset = server - time.time() + self.rtt / 2
        return server - (before + after) / 2

    def lost(self, exc: BaseException) -> None:
        """Redis failed us: say so once, and go unready until it answers again."""
        reason = f"redis: {type(exc).__name__}: {exc}"[:300]
        if self.up:
            log.error("%s; serving what this node holds, unready until it returns", reason)
        self.up = False
        self.reason = reason
        self.back.clear()

    def _found(self) -> None:
        if not self.up:
            log.info("redis reached (node %s)", self.id)
        self.up = True
        self.reason = ""
        self.back.set()

    def check(self) -> None:
        if not self.up:
            raise Unavailable(f"{self.reason} (this node cannot reach Redis)")

    async def _probe(self) -> None:
        """Keep ``up``, the round trip and the clock offset current; recover by itself."""
        while True:
            await asyncio.sleep(PROBE_EVERY if self.up else RETRY)
            try:
                await self._clock()
                if not self.up:
                    await self._reestablish()  # before anyone here reads the definitions
                    self._found()
            except (RedisError, OSError) as exc:
                self.lost(exc)

    async def _reestablish(self) -> None:
        """Put back the definitions a Redis restarted empty has lost, each with a checkpoint
        of this node's replay: the first node back decides, from where its replay is. A new
        ``lost`` mark makes the definition differ from the old one, so every other node sees
        that it must take up the stream from that checkpoint (``Link.resync``)."""
        for link in list(self.links.values()):
            if link.stream.failed:
                continue
            lost = {**orjson.loads(link.definition), "lost": secrets.token_hex(4)}
            definition = orjson.dumps(lost)
            saved = await encode(link.capture())
            keys = [DEFINITIONS, link.checkpoint_key, link.count_key]
            args: list[bytes | str] = [link.stream.id, definition, str(saved.number or 0)]
            for field, value in saved.fields().items():
                args += [field, value]
            if await self._put_back(keys=keys, args=args):
                link.definition = definition
                log.warning(
                    "stream %s: put back into Redis, from this node's replay", link.stream.id
                )

    async def close(self) -> None:
        """Let go of the leases, stop every task, close the connections: each step bounded,
        so that an overloaded loop or a Redis that stopped answering cannot hold up the exit."""
        for link in list(self.links.values()):
            await link.close()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self.redis.aclose()

    def render(self) -> bytes:
        """This node's lines for /metrics."""
        node = self.id.replace("\\", "\\\\").replace('"', '\\"')
        owned = sum(1 for link in self.links.values() if link.owner)
        lines = [
            "# HELP livesim_node_info This node of a Redis-shared service.",
            "# TYPE livesim_node_info gauge",
            f'livesim_node_info{{node="{node}"}} 1',
            "# TYPE livesim_redis_up gauge",
            f"livesim_redis_up {int(self.up)}",
            "# TYPE livesim_redis_round_trip_seconds gauge",
            f"livesim_redis_round_trip_seconds {self.rtt:.6f}",
            "# TYPE livesim_redis_clock_offset_seconds gauge",
            f"livesim_redis_clock_offset_seconds {self.offset:.6f}",
            "# TYPE livesim_redis_inputs_received_total counter",
            f"livesim_redis_inputs_received_total {self.received}",
            "# TYPE livesim_redis_inputs_published_total counter",
            f"livesim_redis_inputs_published_total {self.published}",
            "# TYPE livesim_redis_takeovers_total counter",
            f"livesim_redis_takeovers_total {self.takeovers}",
            "# TYPE livesim_redis_streams_owned gauge",
            f"livesim_redis_streams_owned {owned}",
        ]
        return ("\n".join(lines) + "\n").encode()

    # Streams ------------------------------------------------------------------------------

    async def share(
        self,
        app: web.Application,
        config: StreamConfig,
        feed: Feed,
        body: Mapping[str, Any] | None = None,
        new: bool = False,
    ) -> Stream:
        """The shared stream ``config`` names: its definition is the first node's (this one's
        if none exists), its replay made from it and brought up to the end of its input log.
        ``body``: the API request that made it (other nodes make it from that). ``InputError``
        as ``make_stream``, and at ``body.id`` if ``new`` and another node made it first;
        ``Unavailable`` without Redis."""
        self.check()
        settings = app[SETTINGS]
        jobs = plan(config.schedule, config.start_at, datetime.now(UTC))
        options = stream_options(settings, config, jobs)
        script = build_script(feed, config, settings.scenarios)
        now = self.now()
        mine = orjson.dumps(
            {
                "incarnation": app[INCARNATIONS].next(),
                "created": now,
                "wall_offset": time.time() - now,
                "paused": options.paused,
                "body": body,
                "config": fingerprint(config),
            }
        )
        try:
            keys = [DEFINITIONS, *stream_keys(config.id)]
            made = await self._create(keys=keys, args=[config.id, mine])
            raw: bytes | None = await self.redis.hget(DEFINITIONS, config.id)  # type: ignore[assignment]
        except (RedisError, OSError) as exc:
            self.lost(exc)
            self.check()
            raise
        if new and not made:
            raise InputError("body.id", f"stream {config.id!r} already exists on another node")
        definition: bytes = raw or mine
        found = orjson.loads(definition)
        replay = Replay(
            script,
            stream=config.id,
            incarnation=found["incarnation"],
            now=found["created"],
            options=replace(options, paused=found["paused"]),
            wall_offset=found["wall_offset"],
        )
        stream = Stream(config.id, feed, replay, max_pending=settings.server.max_pending)
        saved = await self.checkpoint_of(config.id)
        if found.get("config") != fingerprint(config):
            stream.failed = (
                "this node's config for the stream differs from the node's that made it "
                "(give every node the same config and flags): it would send other events"
            )
            log.error("stream %s: %s", config.id, stream.failed)
        elif found.get("lost") and saved is None:
            stream.failed = (
                "its input log in Redis lost its start (Redis restarted empty) and no "
                "checkpoint was left: this node cannot rebuild it; delete it and make it again"
            )
            log.error("stream %s: %s", config.id, stream.failed)
        stream.base = self.base
        stream.on_lateness = app[METRICS].lateness.observe
        stream.faults = config.fault_spec()
        link = Link(self, stream, definition, api=body is not None)
        if saved is not None:
            if stream.failed:
                link.last_id, link.last_t, link.last_n = saved.entry, saved.at, saved.number
            else:
                await link.take_up(saved)
        stream.link = link
        self.links[config.id] = link
        if jobs:
            app[SCHEDULER].add(config.id, jobs)
        await link.start()
        return stream

    async def forget(self, stream_id: str) -> None:
        """A stream deleted here: delete it for every node."""
        self.check()
        try:
            await self.redis.hdel(DEFINITIONS, stream_id)
            await self.redis.delete(*stream_keys(stream_id))
        except (RedisError, OSError) as exc:
            self.lost(exc)
            self.check()

    async def checkpoint_of(self, stream_id: str) -> Checkpoint | None:
        """The stream's latest checkpoint."""
        key = stream_keys(stream_id)[3]
        try:
            raw: dict[bytes, bytes] = await self.redis.hgetall(key)  # type: ignore[assignment]
        except (RedisError, OSError) as exc:
            self.lost(exc)
            self.check()
            raise
        if not raw:
            return None
        return Checkpoint.read(raw)

    async def definitions(self) -> dict[str, bytes]:
        raw: dict[bytes, bytes] = await self.redis.hgetall(DEFINITIONS)  # type: ignore[assignment]
        return {key.decode(): value for key, value in raw.items()}


async def sync_definitions(app: web.Application, node: Node) -> None:
    """Make here the API streams made on other nodes, drop those deleted on any: the shared
    definitions, looked at every ``SYNC_EVERY`` seconds while Redis is up (a node puts back
    what a Redis restarted empty lost before it counts as up again, so a lost definition is
    never taken for a deleted stream)."""
    from .state import API_STREAMS, FEEDS, STREAMS, stop_stream

    while True:
        await asyncio.sleep(SYNC_EVERY)
        if not node.up:
            continue
        try:
            found = await node.definitions()
        except (RedisError, OSError) as exc:
            node.lost(exc)
            continue
        streams = app[STREAMS]
        for stream_id, raw in found.items():
            link = node.links.get(stream_id)
            if link is not None and raw != link.definition:
                await link.resync(raw)
            if stream_id in streams or link is not None:
                continue
            body = orjson.loads(raw).get("body")
            if body is None:
                continue
            try:
                config = StreamConfig.model_validate(body)
                feed = app[FEEDS][config.feed]
                stream = await node.share(app, config, feed, body)
            except Exception as exc:  # its definition does not fit this node (another config)
                log.error("stream %s from another node: %s", stream_id, exc)
                continue
            streams[stream_id] = stream
            app[API_STREAMS].add(stream_id)
        for stream_id in [s for s in node.links if s not in found]:
            gone = streams.pop(stream_id, None)
            app[API_STREAMS].discard(stream_id)
            if gone is not None:
                await stop_stream(app, gone, "stream deleted")
