"""Import throughput: a synthetic N-post archive in each input format, against a parsing floor.

Every archive is generated in memory (nothing is read from or written to disk) and imported the
way ``livesim import`` does it, format auto-detected:

- ``scribblelive``: ScribbleLive-style text export; bullet-delimited posts, hard-wrapped lines,
  agency credits, a byline with the only stated time on about every 10th post (so ~90% of the
  times are interpolated by ``simulator.core.timing``).
- ``timestamped``: ``0915 GMT: ...`` entries under one date line per day, every time stated.
- ``jsonl``: the canonical JSON Lines archive, read twice: by ``simulator.core.archive.loads`` (what
  ``livesim validate`` and the server use) and through ``import_bytes`` (adds detection, id
  assignment and timing inference).

Each row reports the best of ``--runs`` runs and, beside it, a floor that does no real work: for
text formats ``str.splitlines`` of the decoded text, for JSON Lines ``orjson.loads`` of every
line. ``ratio`` is import time over floor time.

Before the full-size runs, each importer is timed once at N/10 and N/5; the table's ``exp`` is
``k`` in time ~ posts**k from N/5 to N (1 = linear, 2 = quadratic), and rows at or above 1.3 are
flagged. A row whose projected full-size run exceeds ``--max-seconds`` is skipped *with a
message*, never measured at a smaller size behind your back; ``--max-seconds 0`` forces it.

    .venv/bin/python benchmarks/import_bench.py                 # 100 000 posts, best of 3
    .venv/bin/python benchmarks/import_bench.py --posts 20000 --runs 5
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from simulator.core import archive
from simulator.core.importers import ImportOptions, decode, detect, import_bytes
from simulator.core.model import Feed, Post, TimeSource

ORIGIN = datetime(2014, 6, 9, 6, 0, tzinfo=UTC)
STEP = timedelta(seconds=90)
"""Archive time between consecutive synthetic posts."""

SUPERLINEAR = 1.3
"""A scaling exponent from posts/5 to posts at or above this is flagged in the table."""

BYLINE_EVERY = 10
AGENCIES = ("[AP]", "[Reuters]", "(AFP)")
AUTHORS = ("Shafik.Mandhai", "Tamila Varshalomidze", "Graeme Baker", "Faisal Edroos")
WORDS = (
    "officials said the convoy reached the northern checkpoint before dawn while residents "
    "reported heavy shelling near the refinery and aid agencies appealed for safe passage "
    "as the government promised an inquiry into the attack on the market"
).split()


# Synthetic archives -------------------------------------------------------------------------


def _sentence(i: int, words: int) -> str:
    start = (i * 7) % len(WORDS)
    picked = [WORDS[(start + k) % len(WORDS)] for k in range(words)]
    return f"Update {i}: " + " ".join(picked) + "."


def _wrap(text: str, width: int = 72) -> list[str]:
    """Hard-wrap like the exports do, so importers have continuation lines to join."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(line)
    return lines


def _moment(i: int) -> datetime:
    return ORIGIN + STEP * i


def _us_stamp(moment: datetime) -> str:
    hour = moment.hour % 12 or 12
    half = "AM" if moment.hour < 12 else "PM"
    return f"{moment.month}/{moment.day}/{moment.year} {hour}:{moment:%M:%S} {half}"


def scribblelive_text(posts: int) -> str:
    """ScribbleLive export: header, ``  • `` bullets, indented continuation lines, footer."""
    out = [
        "Bench Blog - Live Blogs - Example News",
        "",
        "Bench Blog",
        "",
        "A synthetic live blog for measuring import throughput.",
        "",
    ]
    for i in range(posts):
        first, *rest = _wrap(_sentence(i, 18 + i % 9))
        out.append(f"  • {first}")
        out.extend(f"    {line}" for line in rest)
        out.append("")
        second = _wrap(_sentence(i + 1, 12 + i % 5) + " " + AGENCIES[i % len(AGENCIES)])
        out.extend(f"    {line}" for line in second)
        if i % BYLINE_EVERY == 0:
            author = AUTHORS[i % len(AUTHORS)]
            editor = f" edited by {AUTHORS[(i + 1) % len(AUTHORS)]}" if i % 20 == 0 else ""
            out.append(f"    by {author}{editor} {_us_stamp(_moment(i))}")
        out.append("")
    out += ["", "Powered by ScribbleLive Content Management System"]
    return "\n".join(out) + "\n"


def timestamped_text(posts: int) -> str:
    """``0915 GMT: ...`` entries, oldest first, a date line whenever the day changes."""
    out = ["Bench blog: timestamped", "", "All times GMT.", ""]
    day = None
    for i in range(posts):
        moment = _moment(i)
        if moment.date() != day:
            day = moment.date()
            out += [f"{moment:%A}, {moment.day} {moment:%B %Y}", ""]
        if i % 7 == 0:
            out += [f"{moment:%H%M} GMT: Headline number {i} for the day", ""]
            body = _sentence(i, 20 + i % 11)
        else:
            body = f"{moment:%H%M} GMT: " + _sentence(i, 20 + i % 11)
        if i % 5 == 0:
            body += " " + AGENCIES[i % len(AGENCIES)]
        out += [*_wrap(body), ""]
    return "\n".join(out)


def jsonl_text(posts: int) -> str:
    """The canonical archive of the same kind of posts, via ``archive.dumps``."""
    feed = Feed(
        id="bench",
        title="Bench blog",
        description="A synthetic live blog.",
        posts=tuple(
            Post(
                id=f"p-{i:06d}",
                headline=f"Headline number {i}" if i % 7 == 0 else None,
                body=_sentence(i, 20 + i % 11) + "\n\n" + _sentence(i + 1, 12),
                author=AUTHORS[i % len(AUTHORS)] if i % BYLINE_EVERY == 0 else None,
                editor=AUTHORS[(i + 1) % len(AUTHORS)] if i % 20 == 0 else None,
                published_at=_moment(i),
                time_source=TimeSource.EXPLICIT,
                source="AP" if i % 5 == 0 else None,
            )
            for i in range(posts)
        ),
    )
    return archive.dumps(feed).decode()


# Measuring ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Input:
    """An archive both as text and as the UTF-8 bytes a file would hold, made before timing."""

    text: str
    data: bytes

    @classmethod
    def of(cls, text: str) -> Input:
        return cls(text, text.encode())


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    make: Callable[[int], str]
    run: Callable[[Input], Feed]
    floor: Callable[[Input], object]
    floor_name: str
    expect: str | None = None
    """The format ``detect`` must pick, so the row measures the importer it names."""


@dataclass(slots=True)
class Row:
    case: Case
    posts: int
    runs: int = 0
    best: float = math.nan
    floor: float = math.nan
    exponent: float = math.nan
    note: str = ""


def _import(archive_input: Input) -> Feed:
    return import_bytes(archive_input.data, ImportOptions(source="<bench>"))


def _archive_loads(archive_input: Input) -> Feed:
    return archive.loads(archive_input.text, "<bench>")


def _orjson_lines(archive_input: Input) -> object:
    loads = orjson.loads
    return [loads(line) for line in archive_input.text.splitlines()]


def _splitlines(archive_input: Input) -> object:
    return archive_input.text.splitlines()


CASES = (
    Case("scribblelive", scribblelive_text, _import, _splitlines, "splitlines", "scribblelive"),
    Case("timestamped", timestamped_text, _import, _splitlines, "splitlines", "timestamped"),
    Case("jsonl (archive.loads)", jsonl_text, _archive_loads, _orjson_lines, "orjson/line"),
    Case("jsonl (import_bytes)", jsonl_text, _import, _orjson_lines, "orjson/line", "json"),
)


def _timed(function: Callable[[Input], object], archive_input: Input) -> float:
    gc.collect()
    start = time.perf_counter()
    function(archive_input)
    return time.perf_counter() - start


def _best(function: Callable[[Input], object], archive_input: Input, runs: int) -> float:
    return min(_timed(function, archive_input) for _ in range(runs))


def _exponent(t_small: float, small: int, t_large: float, large: int) -> float:
    """``k`` in time ~ posts**k between two measurements."""
    if t_small <= 0 or t_large <= 0 or large <= small:
        return math.nan
    return math.log(t_large / t_small) / math.log(large / small)


def _probe(case: Case, posts: int) -> tuple[int, float, float]:
    """One run each at posts/10 and posts/5: the larger size, its time, and the exponent."""
    small, large = posts // 10, posts // 5
    t_small = _timed(case.run, Input.of(case.make(small)))
    t_large = _timed(case.run, Input.of(case.make(large)))
    return large, t_large, _exponent(t_small, small, t_large, large)


def measure(case: Case, posts: int, runs: int, max_seconds: float) -> Row:
    row = Row(case, posts)
    text = Input.of(case.make(posts))
    if case.expect is not None:
        found = detect(decode(text.data, "<bench>"))
        if found != case.expect:
            row.note = f"detected as {found!r}, not {case.expect!r}: not measured"
            return row
    try:
        probe_posts, t_probe, probe_exponent = _probe(case, posts)
    except Exception as exc:  # an importer still being written: report the row, keep going
        row.note = f"failed: {type(exc).__name__}: {exc}"
        return row
    # Project with at least the measured exponent (small sizes understate a quadratic term).
    projected = t_probe * (posts / probe_posts) ** max(
        probe_exponent if math.isfinite(probe_exponent) else 1.0, 1.0
    )
    if max_seconds and projected > max_seconds:
        row.exponent = probe_exponent
        row.note = (
            f"SKIPPED: projected {projected:.1f} s per run at {posts:,} posts (exponent "
            f"{probe_exponent:.2f} from {probe_posts // 2:,} -> {probe_posts:,}) "
            f"> --max-seconds {max_seconds:g}; rerun with --max-seconds 0 to force"
        )
        return row
    spent = 0.0
    times: list[float] = []
    try:
        for _ in range(runs):
            times.append(_timed(case.run, text))
            spent += times[-1]
            if max_seconds and spent > max_seconds and len(times) < runs:
                row.note = f"stopped after {len(times)} of {runs} runs: over --max-seconds"
                break
    except Exception as exc:
        row.note = f"failed: {type(exc).__name__}: {exc}"
        return row
    row.runs = len(times)
    row.best = min(times)
    row.exponent = _exponent(t_probe, probe_posts, row.best, posts)
    row.floor = _best(case.floor, text, max(runs, 3))
    if math.isfinite(row.exponent) and row.exponent >= SUPERLINEAR and not row.note:
        row.note = (
            f"superlinear: {posts // probe_posts}x the posts took {row.best / t_probe:.0f}x as long"
        )
    return row


# Reporting ----------------------------------------------------------------------------------


def _fmt(value: float, spec: str) -> str:
    return format(value, spec) if math.isfinite(value) else "-"


def render(rows: list[Row]) -> str:
    header = (
        "format",
        "posts",
        "runs",
        "best s",
        "posts/s",
        "floor",
        "floor s",
        "ratio",
        "exp",
        "note",
    )
    table = [header]
    for row in rows:
        rate = row.posts / row.best if math.isfinite(row.best) and row.best > 0 else math.nan
        ratio = row.best / row.floor if math.isfinite(row.best) and row.floor > 0 else math.nan
        table.append(
            (
                row.case.name,
                f"{row.posts:,}",
                str(row.runs) if row.runs else "-",
                _fmt(row.best, ".3f"),
                _fmt(rate, ",.0f"),
                row.case.floor_name,
                _fmt(row.floor, ".4f"),
                _fmt(ratio, ",.0f") + ("x" if math.isfinite(ratio) else ""),
                _fmt(row.exponent, ".2f"),
                row.note,
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    numeric = {1, 2, 3, 4, 6, 7, 8}
    out = []
    for number, line in enumerate(table):
        cells = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(line)
        ]
        out.append("  ".join(cells).rstrip())
        if number == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("--posts", type=int, default=100_000, help="posts per archive")
    parser.add_argument("--runs", type=int, default=3, help="runs per format; the best counts")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=60.0,
        help="per-format time budget: skip a format projected to take longer per run, stop its "
        "runs once they exceed it (0: no limit)",
    )
    args = parser.parse_args(argv)
    if args.posts < 1000 or args.runs < 1:
        parser.error("--posts must be at least 1000 and --runs at least 1")
    print(
        f"livesim import benchmark: {args.posts:,} posts, best of {args.runs}; "
        f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs",
        flush=True,
    )
    rows = []
    started = time.perf_counter()
    for case in CASES:
        row = measure(case, args.posts, args.runs, args.max_seconds)
        rows.append(row)
        timing = f"{row.best:.3f} s " if math.isfinite(row.best) else ""
        print(f"  {case.name}: {timing}{row.note}".rstrip(), flush=True)
    print()
    print(render(rows))
    print()
    print(
        "floor: the least any importer must do (split the text into lines, or orjson.loads each "
        "JSON line); ratio = best / floor.\nexp: k in time ~ posts**k, from one run at posts/5 "
        "to the best at posts (1 linear, 2 quadratic)."
    )
    print(f"total {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
