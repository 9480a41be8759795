"""How long does a shared stream's checkpoint stall the event loop?

The node running a shared stream's clock saves a checkpoint of its replay every
``redis_checkpoint_every`` inputs (docs/scaling.md). This builds the replay of a synthetic
archive (``livesim synth``, default 100 000 posts) played to its end, so every post is visible
and the event log holds what its default bound (16 MiB) keeps: the largest checkpoint such a
stream makes. Then it saves the checkpoint while a probe task on the same loop wakes every
millisecond and records how late it woke: the worst lateness is the loop's stall, what every
other stream and connection of the node waits meanwhile.

Two ways, each ``--runs`` times:

- ``before``: ``checkpoint.export`` on the loop, the JSON stored as it is (what the owner did
  before the encoding left the loop, with today's encoder);
- ``now``: what the owner does (``web/cluster_link.py``): ``Link.capture``'s copy on the loop,
  the encoding and zlib compression in a worker thread (``cluster_link.encode``).

With ``--redis URL`` each way also stores its bytes with ``HSET`` (in a scratch key, deleted at
the end), as the owner does: the copy into the connection's buffer is on the loop too.

    .venv/bin/python benchmarks/checkpoint_bench.py
    .venv/bin/python benchmarks/checkpoint_bench.py --redis redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import zlib
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from simulator.core import checkpoint, scenario, synth
from simulator.core.commands import SetSpeed
from simulator.core.replay import Replay
from simulator.core.timeline import MAX_SPEED
from simulator.sources import bundled_feed
from simulator.web.cluster_link import Checkpoint, encode

PROBE_EVERY = 0.001
SCRATCH = "livesim:bench:checkpoint"


def build(posts: int) -> Replay:
    feed = synth.synthesize(bundled_feed(), posts, seed=0)
    replay = Replay(scenario.build(feed), stream="s", incarnation="i", now=0.0)
    replay.apply(SetSpeed(MAX_SPEED), 0.0)
    while replay.advance(0.0):  # the whole archive, a batch at a time
        pass
    return replay


async def stall(work: Callable[[], Awaitable[bytes]]) -> tuple[float, float, bytes]:
    """Wall seconds of ``work``, the loop's worst lateness meanwhile, and what it gave."""
    loop = asyncio.get_running_loop()
    worst = 0.0
    done = False

    async def probe() -> None:
        nonlocal worst
        while not done:
            due = loop.time() + PROBE_EVERY
            await asyncio.sleep(PROBE_EVERY)
            worst = max(worst, loop.time() - due)

    task = asyncio.create_task(probe())
    await asyncio.sleep(0.05)
    worst = 0.0
    started = time.perf_counter()
    data = await work()
    took = time.perf_counter() - started
    await asyncio.sleep(0.01)
    done = True
    await task
    return took, worst, data


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--redis", help="also HSET each checkpoint into this Redis")
    args = parser.parse_args()
    started = time.perf_counter()
    replay = build(args.posts)
    print(
        f"{args.posts} posts: {len(replay.view)} visible, {len(replay.log)} events in the log "
        f"(built in {time.perf_counter() - started:.1f} s)"
    )
    redis = aioredis.Redis.from_url(args.redis) if args.redis else None

    async def store(state: bytes) -> None:
        if redis is not None:
            await redis.hset(SCRATCH, mapping={b"id": b"1-0", b"state": state})

    async def before() -> bytes:
        state = checkpoint.export(replay)
        await store(state)
        return state

    async def now() -> bytes:
        where = Checkpoint(b"1-0", 0.0, 1, b"", "")
        saved = await encode((where, checkpoint.capture(replay)))
        await store(saved.state)
        return saved.state

    reference = checkpoint.export(replay)
    print(f"checkpoint: {len(reference) / 1e6:.1f} MB of JSON")
    try:
        for name, work in (("before", before), ("now", now)):
            took: list[float] = []
            stalls: list[float] = []
            for _ in range(args.runs):
                seconds, worst, data = await stall(work)
                if work is now:
                    data = zlib.decompress(data)
                assert data == reference, "the two ways gave other checkpoints"
                took.append(seconds)
                stalls.append(worst)
            print(
                f"{name:7} save {statistics.median(took) * 1000:6.0f} ms "
                f"(median of {args.runs}{', HSET included' if redis else ''}), loop stall "
                f"median {statistics.median(stalls) * 1000:6.1f} ms, "
                f"worst {max(stalls) * 1000:6.1f} ms"
            )
    finally:
        if redis is not None:
            await redis.delete(SCRATCH)
            await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
