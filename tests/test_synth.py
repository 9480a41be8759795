"""``synth``: synthetic archives with the bundled archive's cadence and words; ``livesim synth``."""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from simulator.cli import synth as synth_command
from simulator.core import archive, script, synth
from simulator.core.importers import ImportOptions, import_bytes
from simulator.core.model import ArchiveError, Feed, Post, TimeSource
from simulator.sources import bundled_feed


@pytest.fixture(scope="module")
def source() -> Feed:
    return bundled_feed()


@pytest.fixture(scope="module")
def big(source: Feed) -> Feed:
    return synth.synthesize(source, 5000, seed=11)


def _gaps(feed: Feed) -> list[float]:
    times = [p.timed for p in feed.posts]
    return [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]


# The generator


def test_same_seed_same_bytes_other_seed_other_bytes(source: Feed) -> None:
    one = archive.dumps(synth.synthesize(source, 300, seed=5))
    assert one == archive.dumps(synth.synthesize(source, 300, seed=5))
    assert one != archive.dumps(synth.synthesize(source, 300, seed=6))


def test_a_longer_archive_starts_with_the_shorter_one(source: Feed) -> None:
    short = synth.synthesize(source, 50, seed=2).posts
    assert synth.synthesize(source, 80, seed=2).posts[:50] == short


def test_golden_head_of_seed_1(source: Feed) -> None:
    """Pins the sequence: a change to the generator shows up here, not in a load test's numbers."""
    feed = synth.synthesize(source, 6, seed=1)
    assert feed.id == "synth-1-6"
    assert feed.title == "Iraq Blog (synthetic, 6 posts, seed 1)"
    assert feed.extra == {"synth": {"source": "aljazeera-iraq-2014-06", "posts": 6, "seed": 1}}
    assert [p.id for p in feed.posts] == [f"p-000000000{i}" for i in range(6)]
    assert all(p.time_source is TimeSource.EXPLICIT for p in feed.posts)
    stamps = [
        "06-24T17:52:29",
        "06-24T19:32:40",
        "06-24T21:06:53",
        "06-24T22:31:10",
        "06-25T00:50:24",
        "06-25T00:50:53",
    ]  # the last gap: a burst begins
    assert [p.timed for p in feed.posts] == [
        datetime.fromisoformat(f"2014-{s}+00:00") for s in stamps
    ]
    assert [p.headline for p in feed.posts] == [
        None,
        "Iraqi Kurdish President visits disputed Kirkuk",
        None,
        None,
        None,
        "US accuses Syria of launching airstrikes in Iraq",
    ]
    assert [p.editor for p in feed.posts][4] == "Graeme Baker"
    assert [[m.kind for m in p.media] for p in feed.posts][:4] == [
        ["gallery", "gallery"],
        [],
        [],
        ["gallery"],
    ]


def test_posts_are_the_archives_words_recombined(source: Feed, big: Feed) -> None:
    text = "\n".join(p.body for p in source.posts)
    headlines = {p.headline for p in source.posts}
    media = {p.media for p in source.posts}
    for post in big.posts:
        for paragraph in filter(None, post.body.split("\n\n")):
            assert paragraph in text
        assert post.headline in headlines
        assert post.media in media
        assert post.author in {p.author for p in source.posts}
        assert post.source in {p.source for p in source.posts}
    bodies = {p.body for p in big.posts}
    assert len(bodies) > 2000  # recombined, not 42 posts copied over and over


def test_shapes_follow_the_archive(source: Feed, big: Feed) -> None:
    def share(feed: Feed, has: str) -> float:
        return sum(1 for p in feed.posts if getattr(p, has)) / len(feed.posts)

    for field in ("headline", "media", "editor", "source"):
        assert abs(share(big, field) - share(source, field)) < 0.05, field
    assert any(re.search("[\u0600-\u06ff]", m.title or "") for p in big.posts for m in p.media)
    assert max(p.body.count("\n\n") for p in big.posts) == 2  # at most 3 paragraphs


def test_cadence_follows_the_archives_gaps_with_bursts(source: Feed, big: Feed) -> None:
    gaps = _gaps(big)
    assert all(g > 0 and g == int(g) for g in gaps)  # strictly later, whole seconds
    bursts = [g for g in gaps if g <= synth.BURST_GAP_SECONDS[1]]
    calm = [g for g in gaps if g > synth.BURST_GAP_SECONDS[1]]
    assert 0.08 < len(bursts) / len(gaps) < 0.30
    lowest, highest = min(_gaps(source)), max(_gaps(source))
    assert min(calm) >= round(lowest * synth.JITTER[0])
    assert max(calm) <= round(highest * synth.JITTER[1])
    median = statistics.median(_gaps(source))
    assert 0.85 * median < statistics.median(calm) < 1.15 * median
    # Bursts come as runs of several posts, not as isolated short gaps.
    runs = re.findall(r"s+", "".join("s" if g <= 60 else "." for g in gaps))
    assert statistics.mean(len(r) for r in runs) > 2.5


def test_replays_and_round_trips(big: Feed) -> None:
    data = archive.dumps(big)
    assert archive.loads(data.decode()) == big
    imported = import_bytes(data, ImportOptions(source="synth.jsonl"))
    assert imported.posts == big.posts
    cues = script.build(big).cues
    edited = sum(1 for p in big.posts if p.editor)
    assert len(cues) == len(big.posts) + edited  # an edited post is created, then updated


@pytest.mark.parametrize(
    ("posts", "seed", "where"),
    [
        (0, 0, "posts"),
        (-1, 0, "posts"),
        (synth.MAX_POSTS + 1, 0, "posts"),
        (2**64, 0, "posts"),
        (True, 0, "posts"),
        (1.0, 0, "posts"),
        (1, -1, "seed"),
        (1, 2**32, "seed"),
        (1, 2**64, "seed"),
        (1, False, "seed"),
    ],
)
def test_bounds(source: Feed, posts: int, seed: int, where: str) -> None:
    with pytest.raises(ValueError, match=f"^{where}: expected a whole number"):
        synth.synthesize(source, posts, seed)


def test_extremes_of_the_bounds_are_accepted(source: Feed) -> None:
    assert len(synth.synthesize(source, 1, seed=synth.MAX_SEED).posts) == 1
    synth.check(synth.MAX_POSTS, 0)


def test_a_cadence_past_the_year_9999_is_an_error_not_a_crash() -> None:
    def post(day: datetime) -> Post:
        return Post(id=str(day), body="x.", published_at=day, time_source=TimeSource.EXPLICIT)

    far = Feed(
        id="far",
        title="Far",
        posts=(post(datetime(2000, 1, 1, tzinfo=UTC)), post(datetime(5000, 1, 1, tzinfo=UTC))),
    )
    with pytest.raises(ValueError, match="past the year 9999"):
        synth.synthesize(far, 10, seed=0)


def test_a_one_post_source_still_works() -> None:
    lone = Feed(
        id="lone",
        title="Lone",
        posts=(Post(id="a", body="", published_at=datetime(2020, 1, 1, tzinfo=UTC)),),
    )
    feed = synth.synthesize(lone, 3, seed=0)
    assert [p.body for p in feed.posts] == ["", "", ""]
    assert feed.posts[2].timed - feed.posts[0].timed >= timedelta(seconds=10)


# The command


def run(argv: Sequence[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``livesim synth`` as ``cli.main`` runs a command: exit status and stderr."""
    parser = argparse.ArgumentParser(prog="livesim")
    synth_command.add_synth_command(parser.add_subparsers())
    args = parser.parse_args(["synth", *argv])
    try:
        status = args.handler(args)
    except ArchiveError as exc:
        print(f"livesim: {exc}", file=sys.stderr)
        status = 1
    return status, capsys.readouterr().err


def test_command_writes_exactly_the_canonical_archive(
    source: Feed,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(synth_command, "BATCH", 7)  # several batches, one of them short
    out = tmp_path / "s.jsonl"
    status, err = run(["--posts", "30", "--seed", "9", "-o", str(out)], capsys)
    assert status == 0
    data = out.read_bytes()
    assert data == archive.dumps(synth.synthesize(source, 30, seed=9))
    assert err == f"{out}: 30 posts, seed 9, {len(data):,} bytes\n"
    assert run(["--posts", "30", "--seed", "9", "-o", str(out)], capsys)[0] == 0
    assert out.read_bytes() == data


def test_command_to_stdout(source: Feed, capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    parser = argparse.ArgumentParser(prog="livesim")
    synth_command.add_synth_command(parser.add_subparsers())
    args = parser.parse_args(["synth", "--posts", "12"])
    assert args.handler(args) == 0
    assert capfdbinary.readouterr().out == archive.dumps(synth.synthesize(source, 12, seed=0))


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--posts", "0"),
        ("--posts", "-1"),
        ("--posts", "10000001"),
        ("--posts", "1e6"),
        ("--posts", "1e308"),
        ("--posts", "NaN"),
        ("--posts", "0x10"),
        ("--posts", "2**64"),
        ("--posts", "18446744073709551616"),
        ("--posts", "9" * 5000),
        ("--posts", "ten"),
        ("--posts", ""),
        ("--posts", "٣"),  # an Arabic-Indic digit: isdigit() but not ASCII
        ("--seed", "-1"),
        ("--seed", "4294967296"),
        ("--seed", "1.5"),
        ("--seed", "x" * 10_000),
    ],
)
def test_command_bad_numbers_are_one_line(
    flag: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "never.jsonl"
    good = {"--posts": "5", "--seed": "1", flag: value}
    status, err = run(
        ["--posts", good["--posts"], "--seed", good["--seed"], "-o", str(out)], capsys
    )
    assert status == 1
    assert err.count("\n") == 1 and len(err) < 200
    assert err.startswith(f"livesim: {flag}: expected a whole number from ")
    assert not out.exists()


def test_command_accepts_spaces_and_underscores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "s.jsonl"
    assert run(["--posts", " 1_0 ", "--seed", "007", "-o", str(out)], capsys)[0] == 0
    assert out.read_bytes().count(b"\n") == 11  # the header and 10 posts


@pytest.mark.parametrize("target", ["dir", "missing/s.jsonl"])
def test_command_unwritable_output_is_one_line(
    target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "dir").mkdir()
    path = tmp_path / target
    status, err = run(["--posts", "3", "-o", str(path)], capsys)
    assert status == 1
    assert err.startswith(f"livesim: {path}: ") and err.count("\n") == 1


def test_livesim_main_runs_synth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from simulator import cli

    actions = cli.build_parser()._actions
    commands = [a for a in actions if isinstance(a, argparse._SubParsersAction)][0]
    assert "synth" in commands.choices, "livesim has no synth command"
    out = tmp_path / "s.jsonl"
    assert cli.main(["synth", "--posts", "3", "-o", str(out)]) == 0
    assert cli.main(["synth", "--posts", "0"]) == 1
    assert "livesim: --posts: expected a whole number" in capsys.readouterr().err
