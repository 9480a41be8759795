"""Do import and replay start-up stay linear up to a million posts? ``livesim synth`` archives.

For each size N (default 10 000, 100 000, 1 000 000) it makes the archive ``livesim synth
--posts N --seed S`` writes (in memory, the same bytes), then times:

- ``import``: ``importers.import_bytes`` of those bytes, what ``livesim import`` and ``livesim
  serve`` do with a file once it is read (decode, format detection, ``archive.loads``, id
  assignment, timing inference);
- ``script``: ``web.state.build_script``, the feed as the ordered list of cues;
- ``replay``: ``Replay(...)`` with the options of the default stream (speed 60, max_gap 2m,
  loop), as ``web.state.make_stream`` builds it; ``start-up`` is script + replay.

Each figure is the process's CPU time (not wall time: this runs on shared 2-core machines), the
best of ``--runs`` runs (1 run at sizes above 100 000), with the garbage collector on, as in the
server (``--gc off`` disables it, to show what it costs). ``x prev`` is
the time over the previous size's time: 10.0 for a tenfold size is linear; ``us/post`` should
then stay flat.

    .venv/bin/python benchmarks/synth_bench.py                       # 10k, 100k, 1M: ~3 min
    .venv/bin/python benchmarks/synth_bench.py --sizes 1000,10000,100000 --runs 5
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from simulator.cli.synth import encode
from simulator.core import synth
from simulator.core.importers import ImportOptions, import_bytes
from simulator.core.model import Feed
from simulator.core.replay import Replay
from simulator.settings import ReplayConfig
from simulator.sources import MAX_ARCHIVE_BYTES, bundled_feed
from simulator.web.state import build_script

T = TypeVar("T")
STAGES = ("synth", "import", "script", "replay", "start-up")


@dataclass
class Row:
    posts: int
    runs: int
    size: int
    seconds: dict[str, float]
    rss_mb: float


def best(runs: int, work: Callable[[], T]) -> tuple[float, T]:
    fastest = float("inf")
    result: T | None = None
    for _ in range(runs):
        gc.collect()  # also when disabled: each run starts from the same heap
        started = time.process_time()
        result = work()
        fastest = min(fastest, time.process_time() - started)
    assert result is not None
    return fastest, result


def measure(source: Feed, posts: int, seed: int, runs: int) -> Row:
    config = ReplayConfig.model_validate({"speed": 60, "max_gap": "2m", "loop": True})
    make, data = best(
        runs,
        lambda: b"".join(
            encode(synth.header(source, posts, seed), synth.generate(source, posts, seed))
        ),
    )
    imported, feed = best(runs, lambda: import_bytes(data, ImportOptions(source="synth.jsonl")))
    assert len(feed.posts) == posts
    scripted, script = best(runs, lambda: build_script(feed, config))

    def replay() -> Replay:
        return Replay(
            script, stream="bench", incarnation="bench", now=0.0, options=config.options()
        )

    played, _ = best(runs, replay)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    size = len(b"".join(encode(synth.header(source, posts, seed), iter(feed.posts))))
    return Row(
        posts,
        runs,
        size,
        {
            "synth": make,
            "import": imported,
            "script": scripted,
            "replay": played,
            "start-up": scripted + played,
        },
        rss,
    )


def render(rows: list[Row]) -> str:
    header = (
        f"{'posts':>9}  {'runs':>4}  {'MB':>6}  "
        + "  ".join(f"{s + ' s':>10}  {'us/post':>7}  {'x prev':>6}" for s in STAGES)
        + f"  {'peak RSS MB':>11}"
    )
    lines = [header, "-" * len(header)]
    previous: Row | None = None
    for row in rows:
        cells = []
        for stage in STAGES:
            seconds = row.seconds[stage]
            ratio = f"{seconds / previous.seconds[stage]:.1f}" if previous else "-"
            cells.append(f"{seconds:>10.3f}  {seconds / row.posts * 1e6:>7.2f}  {ratio:>6}")
        lines.append(
            f"{row.posts:>9,}  {row.runs:>4}  {row.size / 1e6:>6.1f}  "
            + "  ".join(cells)
            + f"  {row.rss_mb:>11,.0f}"
        )
        previous = row
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3, help="best of, at sizes up to 100 000")
    parser.add_argument(
        "--gc",
        choices=("on", "off"),
        default="on",
        help="off: the garbage collector disabled while timing, to see what it costs",
    )
    args = parser.parse_args()
    if args.gc == "off":
        gc.disable()
    sizes = [int(s) for s in args.sizes.split(",")]
    source = bundled_feed()
    print(
        f"livesim synth benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; Python "
        f"{platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs; seed "
        f"{args.seed}; gc {args.gc}; CPU seconds"
    )
    rows = []
    started = time.perf_counter()
    for posts in sizes:
        rows.append(measure(source, posts, args.seed, args.runs if posts <= 100_000 else 1))
        row = rows[-1]
        print(
            f"  {posts:,} posts ({row.size / 1e6:.1f} MB): "
            + ", ".join(f"{s} {row.seconds[s]:.3f} s" for s in STAGES),
            flush=True,
        )
    print()
    print(render(rows))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    too_big = [r.posts for r in rows if r.size > MAX_ARCHIVE_BYTES]
    if too_big:
        print(
            f"note: the archives of {', '.join(f'{n:,}' for n in too_big)} posts are larger than "
            f"the {MAX_ARCHIVE_BYTES // 2**20} MiB that livesim import and serve read from a file"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
