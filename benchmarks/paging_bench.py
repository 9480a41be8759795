"""Snapshot paging: what a page of a big stream costs against the whole snapshot (#15).

A projection of ``--posts`` visible posts (~500 bytes each, as a live blog's) is built in memory,
then timed, best of ``--runs``:

- ``snapshot``: the whole snapshot's first encoding after a change (``Projection.encoded``);
- ``first page``: ``?limit=50`` after a change (encoded), then again (shared: the same bytes);
- ``deep page``: ``?limit=50&before=POST`` at 90% of the way down (walks to the post, encodes 50).

    .venv/bin/python benchmarks/paging_bench.py                 # 10 000 posts, best of 5
    .venv/bin/python benchmarks/paging_bench.py --posts 100000
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from simulator.core.projection import Projection
from simulator.core.snapshot import DEFAULT_MAX_BYTES, Page, Posts
from simulator.core.wire import EventType


def build(posts: int) -> Projection:
    view = Projection()
    for number in range(posts):
        record: dict[str, object] = {
            "id": f"p{number}",
            "headline": None,
            "body": "Reports from the city: " + "x" * 400,
            "author": "Reporter",
            "published_at": "2014-06-24T17:52:29Z",
            "media": [],
        }
        view.apply(EventType.POST_CREATED, f"p{number}", record)
    return view


def best(runs: int, work: Callable[[], Posts], change: Callable[[], None]) -> float:
    times = []
    for _ in range(runs):
        change()
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description="Snapshot paging against the whole snapshot")
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    view = build(args.posts)
    edited = {"id": "p0", "body": "edited"}

    def change() -> None:
        view.apply(EventType.POST_UPDATED, "p0", edited)  # drops every encoding

    deep = f"p{args.posts // 10}"
    rows: list[tuple[str, Callable[[], Posts], Callable[[], None]]] = [
        ("snapshot", lambda: view.encoded(DEFAULT_MAX_BYTES), change),
        ("first page (encoded)", lambda: view.page(Page(50), DEFAULT_MAX_BYTES), change),
        ("first page (shared)", lambda: view.page(Page(50), DEFAULT_MAX_BYTES), lambda: None),
        ("deep page", lambda: view.page(Page(50, deep), DEFAULT_MAX_BYTES), change),
    ]
    print(f"{args.posts} posts, best of {args.runs}")
    for name, work, before in rows:
        seconds = best(args.runs, work, before)
        size = len(work().body)
        print(f"  {name:<22} {seconds * 1000:9.3f} ms  {size:>10} bytes")


if __name__ == "__main__":
    main()
