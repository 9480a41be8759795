"""Scenario rules: golden event scripts on a small fixture with a fixed seed, determinism, the
rules together in a replay, hostile settings, ``livesim script``, scenarios on a real server."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from conftest import BUNDLED_ID, Server
from core_helpers import T0, drive, make_newsroom_feed
from hypothesis import given, settings
from hypothesis import strategies as st
from sse import connect, envelope

from simulator import cli
from simulator.core import scenario as S
from simulator.core.model import ArchiveError, Feed
from simulator.core.replay import Options, Replay
from simulator.core.scenario_config import ScenarioRules
from simulator.core.script import Cue, Script, Step, build
from simulator.core.wire import EventType
from simulator.settings import load, validate
from simulator.web.app import create_app, runner_options

ROOT = Path(__file__).resolve().parent.parent
FEED = make_newsroom_feed()
Row = tuple[float, str, str, str]


def rows(scenario: S.Scenario) -> list[Row]:
    return [(c.at, str(c.type), c.post.id, c.note) for c in S.build(FEED, scenario).cues]


def bodies(scenario: S.Scenario, post_id: str) -> list[str]:
    return [c.post.body for c in S.build(FEED, scenario).cues if c.post.id == post_id]


PLAIN: list[Row] = [
    (0.0, "post.created", "n0", ""),
    (600.0, "post.created", "n1", ""),
    (1200.0, "post.created", "n2", ""),
    (1800.0, "post.created", "n3", ""),
    (2400.0, "post.created", "n4", ""),
    (2580.0, "post.updated", "n4", "edited by Editor"),
    (3000.0, "post.created", "n5", ""),
    (3600.0, "post.created", "n6", ""),
    (4200.0, "post.created", "n7", ""),
]


def test_no_rules_is_the_plain_script() -> None:
    assert rows(S.Scenario(seed=99)) == PLAIN
    plain = build(FEED)
    assert [(c.at, c.type, c.post) for c in S.build(FEED, ()).cues] == [
        (c.at, c.type, c.post) for c in plain.cues
    ]


# Golden scripts, one rule at a time (seed 1) -------------------------------------------------


def test_developing() -> None:
    rule = S.Scenario(seed=1, developing=S.Developing(share=1.0, interval=60, max_steps=3))
    assert rows(rule) == [
        (0.0, "post.created", "n0", "developing: paragraph 1 of 3"),
        (60.0, "post.updated", "n0", "developing: 2 of 3 paragraphs"),
        (120.0, "post.updated", "n0", "developing: complete"),
        (600.0, "post.created", "n1", ""),
        (1200.0, "post.created", "n2", "developing: paragraph 1 of 2"),
        (1260.0, "post.updated", "n2", "developing: complete"),
        (1800.0, "post.created", "n3", ""),
        (2400.0, "post.created", "n4", "developing: paragraph 1 of 2"),
        (2460.0, "post.updated", "n4", "developing: complete"),
        (2580.0, "post.updated", "n4", "edited by Editor"),
        (3000.0, "post.created", "n5", ""),
        (3600.0, "post.created", "n6", ""),
        (4200.0, "post.created", "n7", ""),
    ]
    assert bodies(rule, "n0") == [
        "Water reached 1,200 homes.",
        "Water reached 1,200 homes.\n\nRescuers are on their way.",
        FEED.post("n0").body,
    ]


def test_developing_share_and_grouped_steps() -> None:
    """A share of the multi-paragraph posts; a long post grows several paragraphs a step."""
    assert rows(S.Scenario(developing=S.Developing(share=0.0))) == PLAIN
    some = S.build(FEED, S.Scenario(seed=1, developing=S.Developing(share=0.34)))
    assert [c.post.id for c in some.cues if c.note.startswith("developing: paragraph 1")] == ["n0"]
    two = rows(S.Scenario(seed=1, developing=S.Developing(share=1.0, max_steps=2)))
    assert [r for r in two if r[2] == "n0"] == [
        (0.0, "post.created", "n0", "developing: paragraph 1 of 3"),
        (120.0, "post.updated", "n0", "developing: complete"),
    ]


def test_corrections() -> None:
    rule = S.Scenario(seed=1, corrections=S.Corrections(share=0.5, after=300))
    assert rows(rule) == [
        (0.0, "post.created", "n0", ""),
        (600.0, "post.created", "n1", ""),
        (1200.0, "post.created", "n2", ""),
        (1500.0, "post.updated", "n2", "correction: Kairmi -> Karimi"),
        (1800.0, "post.created", "n3", ""),
        (2400.0, "post.created", "n4", ""),
        (2580.0, "post.updated", "n4", "edited by Editor"),
        (2880.0, "post.updated", "n4", "correction: 13 -> 12"),
        (3000.0, "post.created", "n5", ""),
        (3600.0, "post.created", "n6", ""),
        (4200.0, "post.created", "n7", ""),
    ]
    created, corrected = bodies(rule, "n2")
    assert created == "The minister, Ahmed Kairmi, resigned.\n\nHe gave no reason."
    assert corrected == (
        "The minister, Ahmed Karimi, resigned.\n\nHe gave no reason.\n\nCorrection: an earlier "
        'version of this post said "Kairmi" where it should have said "Karimi".'
    )
    assert corrected != created
    # Every version before the correction has the mistake, the archive's edit included.
    assert [b.split(" trucks")[0] for b in bodies(rule, "n4")] == [
        "Reuters reports 13",
        "Reuters reports 13",
        "Reuters reports 12",
    ]


def test_corrections_only_where_there_is_a_figure_or_a_name() -> None:
    every = S.build(FEED, S.Scenario(corrections=S.Corrections(share=1.0)))
    corrected = [c.post.id for c in every.cues if c.note.startswith("correction")]
    assert corrected == ["n0", "n1", "n2", "n4"]  # n3, n5-n7: no figure, no name but a first word


def test_retractions() -> None:
    assert rows(S.Scenario(seed=1, retractions=S.Retractions(share=0.25, after=900))) == [
        (0.0, "post.created", "n0", ""),
        (600.0, "post.created", "n1", ""),
        (900.0, "post.deleted", "n0", "retracted"),
        (1200.0, "post.created", "n2", ""),
        (1800.0, "post.created", "n3", ""),
        (2100.0, "post.deleted", "n2", "retracted"),
        (2400.0, "post.created", "n4", ""),
        (2580.0, "post.updated", "n4", "edited by Editor"),
        (3000.0, "post.created", "n5", ""),
        (3600.0, "post.created", "n6", ""),
        (4200.0, "post.created", "n7", ""),
    ]


def test_key_events_and_pinning_the_latest() -> None:
    rule = S.Scenario(seed=1, key_events=S.KeyEvents(posts=("n3",)), pin_latest_key_event=True)
    assert rows(rule) == [
        (0.0, "post.created", "n0", ""),
        (0.0, "post.pinned", "n0", "latest key event"),
        (600.0, "post.created", "n1", ""),
        (1200.0, "post.created", "n2", ""),
        (1200.0, "post.unpinned", "n0", "replaced by n2"),
        (1200.0, "post.pinned", "n2", "latest key event"),
        (1800.0, "post.created", "n3", ""),
        (1800.0, "post.unpinned", "n2", "replaced by n3"),
        (1800.0, "post.pinned", "n3", "latest key event"),
        (2400.0, "post.created", "n4", ""),
        (2580.0, "post.updated", "n4", "edited by Editor"),
        (3000.0, "post.created", "n5", ""),
        (3000.0, "post.unpinned", "n3", "replaced by n5"),
        (3000.0, "post.pinned", "n5", "latest key event"),
        (3600.0, "post.created", "n6", ""),
        (4200.0, "post.created", "n7", ""),
    ]
    flagged = {c.post.id for c in S.build(FEED, rule).cues if c.post.key_event}
    assert flagged == {"n0", "n2", "n3", "n5"}  # the headlines, and n3 by name
    no_headlines = S.Scenario(key_events=S.KeyEvents(headline=False, posts=("n1",)))
    assert {c.post.id for c in S.build(FEED, no_headlines).cues if c.post.key_event} == {"n1"}


def test_bursts() -> None:
    rule = S.Scenario(seed=1, bursts=S.Bursts(count=1, size=3, within=20))
    assert rows(rule) == [
        (0.0, "post.created", "n0", ""),
        (600.0, "post.created", "n1", "burst of 3 starts"),
        (610.0, "post.created", "n2", "burst (was 2014-06-12T08:20:00Z)"),
        (620.0, "post.created", "n3", "burst (was 2014-06-12T08:30:00Z)"),
        (2400.0, "post.created", "n4", ""),
        (2580.0, "post.updated", "n4", "edited by Editor"),
        (3000.0, "post.created", "n5", ""),
        (3600.0, "post.created", "n6", ""),
        (4200.0, "post.created", "n7", ""),
    ]
    moved = next(c.post for c in S.build(FEED, rule).cues if c.post.id == "n2")
    assert moved.published_at == T0 + timedelta(seconds=610)


def test_bursts_never_delay_a_post_and_keep_order() -> None:
    for seed in range(20):
        rule = S.Scenario(seed=seed, bursts=S.Bursts(count=3, size=4, within=3600))
        created = [r for r in rows(rule) if r[1] == "post.created"]
        assert [r[2] for r in created] == [f"n{i}" for i in range(8)]
        for at, _, post_id, _ in created:
            assert at <= PLAIN[[r[2] for r in PLAIN].index(post_id)][0]


def test_inject() -> None:
    rule = S.Scenario(
        seed=1,
        inject=(
            S.Inject(at="+25m", body="Injected.", headline="Flash", key_event=True),
            S.Inject(at="2014-06-12T09:30:00Z", body="Late.", id="late"),
        ),
    )
    assert rows(rule) == [
        (0.0, "post.created", "n0", ""),
        (600.0, "post.created", "n1", ""),
        (1200.0, "post.created", "n2", ""),
        (1500.0, "post.created", "inject-1", "injected"),
        (1800.0, "post.created", "n3", ""),
        (2400.0, "post.created", "n4", ""),
        (2580.0, "post.updated", "n4", "edited by Editor"),
        (3000.0, "post.created", "n5", ""),
        (3600.0, "post.created", "n6", ""),
        (4200.0, "post.created", "n7", ""),
        (5400.0, "post.created", "late", "injected"),
    ]
    injected = next(c.post for c in S.build(FEED, rule).cues if c.post.id == "inject-1")
    assert (injected.headline, injected.body, injected.key_event) == ("Flash", "Injected.", True)


def test_update_step_with_new_fields() -> None:
    steps = (Step("update", "n1", 60, {"body": "Officials now say 40.", "key_event": True}),)
    script = S.build(FEED, S.Scenario(steps=steps))
    [update] = [c for c in script.cues if c.type is EventType.POST_UPDATED and c.post.id == "n1"]
    assert (update.at, update.note) == (660.0, "changes body, key_event")
    assert update.post.body == "Officials now say 40." and update.post.key_event
    assert update.post.body != FEED.post("n1").body


def test_steps_can_name_injected_posts() -> None:
    rule = S.Scenario(inject=(S.Inject(at="+1m", body="x"),), steps=(Step("pin", "inject-1"),))
    assert (60.0, "post.pinned", "inject-1", "") in rows(rule)


# Determinism ----------------------------------------------------------------------------------

EVERYTHING = S.Scenario(
    seed=7,
    developing=S.Developing(share=0.5),
    corrections=S.Corrections(share=0.5),
    retractions=S.Retractions(share=0.2),
    key_events=S.KeyEvents(),
    pin_latest_key_event=True,
    bursts=S.Bursts(count=2, size=3),
    inject=(S.Inject(at="+15m", body="Injected.", key_event=True),),
    steps=(Step("update", "n7", 60, {"headline": "Goodnight"}),),
)


def test_same_seed_same_script_other_seed_other_choices() -> None:
    first = S.build(FEED, EVERYTHING)
    assert S.build(FEED, EVERYTHING) == first
    others = {tuple(rows(replace(EVERYTHING, seed=seed))) for seed in range(8)}
    assert len(others) > 1


def test_one_rule_does_not_change_anothers_choices() -> None:
    alone = S.Scenario(seed=3, retractions=S.Retractions(share=0.5))
    both = replace(alone, developing=S.Developing(share=1.0))
    deleted = [r[2] for r in rows(alone) if r[1] == "post.deleted"]
    assert deleted == [r[2] for r in rows(both) if r[1] == "post.deleted"]


def test_everything_in_a_replay() -> None:
    """All the rules at once, played to the end: the snapshot is what the rules promise."""
    replay = Replay(
        S.build(FEED, EVERYTHING), stream="s", incarnation="i", now=0.0, options=Options()
    )
    drive(replay)
    snapshot = replay.snapshot(1e6)
    posts = {p["id"]: p for p in snapshot["posts"]}
    script = replay.script
    deleted = {c.post.id for c in script.cues if c.type is EventType.POST_DELETED}
    assert deleted and not deleted & set(posts)
    for cue in script.cues:
        if cue.note.startswith("correction") and cue.post.id in posts:
            assert "Correction: an earlier version" in posts[cue.post.id]["body"]
    for post_id, post in posts.items():
        if post_id in {p.id for p in FEED.posts} and post_id != "n7":
            assert FEED.post(post_id).body in post["body"]  # developing posts are complete
    assert posts["n7"]["headline"] == "Goodnight"
    pinned = [p["id"] for p in snapshot["posts"] if p["pinned"]]
    assert pinned == snapshot["key_events"][:1]  # only the newest key event is pinned


def test_unknown_cue_type_is_an_error() -> None:
    script = build(FEED)
    bad = replace(script, cues=(*script.cues, Cue(5000.0, EventType.STREAM_STATE, FEED.posts[0])))
    replay = Replay(bad, stream="s", incarnation="i", now=0.0)
    with pytest.raises(ValueError, match="not a post event"):
        drive(replay)


# Errors that need the feed ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "message"),
    [
        (
            S.Scenario(key_events=S.KeyEvents(posts=("zz",))),
            "scenario.key_events.posts[0]: no post",
        ),
        (S.Scenario(inject=(S.Inject(at="soon", body="x"),)), "scenario.inject[0].at: 'soon' is"),
        (
            S.Scenario(inject=(S.Inject(at="2014-06-12T07:00:00Z", body="x"),)),
            "scenario.inject[0].at: 2014-06-12T07:00:00Z is before the first post",
        ),
        (S.Scenario(inject=(S.Inject(at="+1e12", body="x"),)), "scenario.inject[0].at: must be"),
        (S.Scenario(inject=(S.Inject(at="+1m", body="x", id="n3"),)), "scenario.inject[0].id:"),
        (
            S.Scenario(
                inject=(S.Inject(at="+1m", body="x"), S.Inject(at="+2m", body="y", id="inject-1"))
            ),
            "scenario.inject[1].id: 'inject-1' is already",
        ),
        (S.Scenario(steps=(Step("pin", "n1", 0, {"body": "x"}),)), "scenario.steps[0].body: only"),
        (S.Scenario(steps=(Step("update", "n1", 0, {"editor": "x"}),)), "scenario.steps[0].editor"),
        (S.Scenario(steps=(Step("star", "n1"),)), "scenario.steps[0].action: 'star' is not"),
    ],
)
def test_errors_name_the_rule(scenario: S.Scenario, message: str) -> None:
    with pytest.raises(ValueError) as info:
        S.build(FEED, scenario)
    assert str(info.value).startswith(message), str(info.value)
    assert len(str(info.value)) < 300


def test_far_future_inject_is_refused_at_build() -> None:
    late = replace(
        FEED,
        posts=tuple(
            replace(p, published_at=p.timed.replace(year=9999, month=12, day=31, hour=23))
            for p in FEED.posts
        ),
    )
    with pytest.raises(ValueError, match=r"^scenario.inject\[0\].at: lands after the year 9999"):
        S.build(late, S.Scenario(inject=(S.Inject(at="+10h", body="x"),)))


# Settings: hostile values, one error naming the key ---------------------------------------------


def settings_error(scenario: Any, named: bool = True) -> str:
    raw = (
        {"scenarios": {"demo": scenario}}
        if named
        else {"streams": [{"id": "s", "feed": "f", "scenario": scenario}]}
    )
    with pytest.raises(ArchiveError) as info:
        validate(raw, "livesim.toml")
    text = str(info.value)
    assert "\n" not in text and len(text) < 300, text
    return text


@pytest.mark.parametrize(
    ("scenario", "start"),
    [
        ({"developing": {"share": 1.5}}, "scenarios.demo.developing.share:"),
        ({"developing": {"share": -0.1}}, "scenarios.demo.developing.share:"),
        ({"corrections": {"share": float("nan")}}, "scenarios.demo.corrections.share:"),
        ({"retractions": {"share": float("inf")}}, "scenarios.demo.retractions.share:"),
        ({"retractions": {"share": True}}, "scenarios.demo.retractions.share:"),
        ({"retractions": {"share": "0.5"}}, "scenarios.demo.retractions.share:"),
        ({"developing": {"max_steps": 10**9}}, "scenarios.demo.developing.max_steps:"),
        ({"developing": {"max_steps": 1}}, "scenarios.demo.developing.max_steps:"),
        ({"developing": {"interval": "-1m"}}, "scenarios.demo.developing.interval:"),
        ({"developing": {"interval": 1e308}}, "scenarios.demo.developing.interval:"),
        ({"bursts": {"count": 2**64}}, "scenarios.demo.bursts.count:"),
        ({"bursts": {"size": 1}}, "scenarios.demo.bursts.size:"),
        ({"bursts": {"size": 10**6}}, "scenarios.demo.bursts.size:"),
        ({"seed": -1}, "scenarios.demo.seed:"),
        ({"seed": 2**64}, "scenarios.demo.seed:"),
        ({"seed": 1.5}, "scenarios.demo.seed:"),
        ({"developin": True}, "scenarios.demo.developin: unknown key"),
        ({"developing": {"shares": 0.5}}, "scenarios.demo.developing.shares: unknown key"),
        ({"inject": [{"at": "+1h", "body": "x" * 70_000}]}, "scenarios.demo.inject[0].body:"),
        (
            {"inject": [{"at": "+1h", "body": "x", "headline": "h" * 10_240}]},
            "scenarios.demo.inject[0].headline:",
        ),
        ({"inject": [{"at": "+1h"}]}, "scenarios.demo.inject[0].body: required key is missing"),
        ({"inject": [{"at": "+1h", "body": "x", "id": "bad id"}]}, "scenarios.demo.inject[0].id:"),
        ({"inject": [{"at": "+1h", "body": "x"}] * 1001}, "scenarios.demo.inject:"),
        (
            {"steps": [{"action": "update", "post": "p", "body": "x" * 70_000}]},
            "scenarios.demo.steps[0].body:",
        ),
        (
            {"steps": [{"action": "update", "post": "p", "colour": "red"}]},
            "scenarios.demo.steps[0].colour: unknown key",
        ),
        ({"key_events": {"posts": "p1"}}, "scenarios.demo.key_events.posts:"),
        ({"pin_latest_key_event": "yes please"}, "scenarios.demo.pin_latest_key_event:"),
    ],
)
def test_hostile_named_scenarios(scenario: Any, start: str) -> None:
    assert settings_error(scenario).startswith(f"livesim.toml: {start}")


@pytest.mark.parametrize(
    ("scenario", "start"),
    [
        (5, "streams[0].scenario: expected a scenario name, an array of steps or a table"),
        ("bad name!", "streams[0].scenario:"),
        ("x" * 10_240, "streams[0].scenario:"),
        ({"developing": {"share": 2}}, "streams[0].scenario.developing.share:"),
        ([{"action": "pin"}], "streams[0].scenario[0].post: required key is missing"),
        ([{"action": "pin", "post": "p", "after": "1e12"}], "streams[0].scenario[0].after:"),
        ([{"action": "pin", "post": "p"}] * 10_001, "streams[0].scenario: 10001 steps, at most"),
    ],
)
def test_hostile_stream_scenarios(scenario: Any, start: str) -> None:
    assert settings_error(scenario, named=False).startswith(f"livesim.toml: {start}")


def test_rule_switches() -> None:
    rules = ScenarioRules.model_validate({"developing": True, "corrections": False})
    core = rules.scenario()
    assert core.developing == S.Developing() and core.corrections is None


def test_newsroom_in_the_shipped_config_turns_every_rule_on() -> None:
    settings = load(ROOT / "config" / "livesim.toml", env={})
    newsroom = settings.scenarios["newsroom"].scenario()
    for name in ("developing", "corrections", "retractions", "key_events", "bursts"):
        assert getattr(newsroom, name) is not None, name
    assert newsroom.pin_latest_key_event and newsroom.inject and newsroom.steps


# livesim script ----------------------------------------------------------------------------------

BUNDLED_TXT = str(ROOT / "simulator" / "data" / "aljazeera-iraq-2014-06.txt")
CONFIG = str(ROOT / "config" / "livesim.toml")


def test_script_command_twice_is_identical(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [BUNDLED_TXT, "--config", CONFIG, "--scenario", "newsroom"]
    assert cli.main(["script", *argv]) == 0
    first = capsys.readouterr().out
    assert cli.main(["script", *argv]) == 0
    assert capsys.readouterr().out == first
    lines = first.splitlines()
    assert lines[0].startswith("# aljazeera-iraq-2014-06: ") and "scenario newsroom" in lines[0]
    assert any("developing: paragraph 1 of" in line for line in lines)
    assert any("correction: " in line for line in lines)
    assert any("post.deleted" in line and "retracted" in line for line in lines)
    assert any("injected" in line for line in lines)
    assert cli.main(["script", *argv, "--seed", "5"]) == 0
    assert capsys.readouterr().out != first


def test_script_command_in_a_process_json() -> None:
    argv = [sys.executable, "-m", "simulator", "script", BUNDLED_TXT, "--json"]
    runs = [subprocess.run(argv, capture_output=True, check=True, cwd=ROOT) for _ in range(2)]
    assert runs[0].stdout == runs[1].stdout
    value = json.loads(runs[0].stdout)
    assert value["scenario"] is None and value["seed"] == 0
    assert len(value["events"]) == 46
    assert value["events"][0] == {
        "archive_time": "2014-06-24T17:52:29Z",
        "type": "post.created",
        "post": "p-66e33032b5",
        "change": None,
    }


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (
            ["--scenario", "newsroom"],
            "livesim: --scenario: no scenario named 'newsroom' (known: none",
        ),
        (
            ["--config", CONFIG, "--scenario", "x" * 10_000],
            "livesim: --scenario: no scenario named",
        ),
        (["--config", "/nonexistent.toml"], "livesim: /nonexistent.toml: no such file"),
    ],
)
def test_script_command_errors(
    argv: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["script", BUNDLED_TXT, *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith(error) and err.count("\n") == 1 and len(err) < 300


@pytest.mark.parametrize("seed", ["-1", "1e3", "18446744073709551616", "x" * 5000])
def test_script_command_bad_seed(seed: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["script", BUNDLED_TXT, "--seed", seed])
    assert info.value.code == 2
    assert "--seed: expected an integer from 0 to 2**63-1" in capsys.readouterr().err


def test_script_command_named_scenario_that_does_not_fit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[scenarios.x]\nsteps = [{action = "pin", post = "nope"}]\n')
    assert cli.main(["script", BUNDLED_TXT, "--config", str(config), "--scenario", "x"]) == 1
    err = capsys.readouterr().err
    assert err == f"livesim: {config}: scenarios.x.steps[0].post: no post with id 'nope'\n"


# On a real server ------------------------------------------------------------------------------

StartWithScenarios = Callable[..., Awaitable[Server]]


@pytest.fixture
async def start_server(bundled: Feed) -> AsyncIterator[StartWithScenarios]:
    """conftest's ``start_server`` with one more setting: ``scenarios`` (named scenarios)."""
    started: list[Server] = []

    async def start(
        streams: list[dict[str, Any]] | None = None, scenarios: dict[str, Any] | None = None
    ) -> Server:
        raw = {
            "server": {"port": 0},
            "streams": streams if streams is not None else [{"id": BUNDLED_ID, "feed": BUNDLED_ID}],
            "scenarios": scenarios or {},
        }
        settings = validate(raw)
        app = create_app(settings, {BUNDLED_ID: bundled})
        runner = web.AppRunner(app, shutdown_timeout=1.0, **runner_options(settings))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        instance = Server(app, runner, f"http://127.0.0.1:{runner.addresses[0][1]}")
        started.append(instance)
        return instance

    yield start
    for instance in started:
        await instance.session.close()
        await instance.runner.cleanup()


async def test_streams_use_named_and_inline_scenarios(start_server: StartWithScenarios) -> None:
    server = await start_server(
        streams=[{"id": "named", "feed": BUNDLED_ID, "scenario": "newsroom", "speed": "max"}],
        scenarios={"newsroom": {"seed": 1, "key_events": True, "pin_latest_key_event": True}},
    )
    status, made = await server.post(
        "/api/streams",
        {"id": "inline", "feed": BUNDLED_ID, "start": "end", "scenario": {"key_events": True}},
    )
    assert status == 201, made
    _, snapshot = await server.get("/api/streams/inline/posts")
    assert len(snapshot["key_events"]) == 16  # the bundled archive's posts with a headline
    status, made = await server.post(
        "/api/streams", {"feed": BUNDLED_ID, "scenario": "newsroom", "start": "end"}
    )
    assert status == 201, made
    _, snapshot = await server.get(f"/api/streams/{made['id']}/posts")
    assert [p["id"] for p in snapshot["posts"] if p["pinned"]] == snapshot["key_events"][:1]
    for body, where in [
        ({"feed": BUNDLED_ID, "scenario": "nope"}, "body.scenario"),
        ({"feed": BUNDLED_ID, "scenario": {"bursts": {"size": 0}}}, "body.scenario.bursts.size"),
        (
            {"feed": BUNDLED_ID, "scenario": {"inject": [{"at": "x", "body": "y"}]}},
            "body.scenario.inject[0].at",
        ),
        (
            {"feed": BUNDLED_ID, "scenario": [{"action": "explode", "post": "x"}]},
            "body.scenario[0].action",
        ),
    ]:
        status, answer = await server.post("/api/streams", body)
        assert status == 400 and answer["where"] == where, answer


async def test_private_replay_with_a_named_scenario(start_server: StartWithScenarios) -> None:
    server = await start_server(
        scenarios={"keys": {"key_events": {"headline": True}, "pin_latest_key_event": True}}
    )
    url = f"{server.base}/feeds/{BUNDLED_ID}/events?speed=max&loop=false&scenario=keys"
    async with connect(server.session, url) as sse:
        types: list[str] = []
        while len(types) < 2 or types[-1] != "stream.state":  # start … ended
            types.append(envelope(await sse.next_event())["type"])
    assert "post.pinned" in types and "post.unpinned" in types
    status, answer = await server.get(f"/feeds/{BUNDLED_ID}/events?scenario=nope")
    assert status == 400 and answer["where"] == "query.scenario", answer
    assert "no scenario named 'nope'" in answer["error"]
    for hostile in ["", "x" * 4000, "%00", "[1,2]", "keys&scenario=other"]:
        status, answer = await server.get(f"/feeds/{BUNDLED_ID}/events?scenario={hostile}")
        assert status == 400 and answer["where"] == "query.scenario", (hostile, answer)
        assert len(answer["error"]) < 300


def test_the_script_module_keeps_cue_notes_optional() -> None:
    assert Cue(0.0, EventType.POST_CREATED, FEED.posts[0]).note == ""
    assert isinstance(build(FEED), Script)


# Properties: any parameters give a script a replay can play ------------------------------------

_share = st.floats(0, 1)
_scenarios = st.builds(
    S.Scenario,
    seed=st.integers(0, 2**63 - 1),
    developing=st.none() | st.builds(S.Developing, _share, st.floats(0, 600), st.integers(2, 50)),
    corrections=st.none() | st.builds(S.Corrections, _share, st.floats(0, 3600)),
    retractions=st.none() | st.builds(S.Retractions, _share, st.floats(0, 3600)),
    key_events=st.none() | st.builds(S.KeyEvents, st.booleans()),
    pin_latest_key_event=st.booleans(),
    bursts=st.none() | st.builds(S.Bursts, st.integers(0, 20), st.integers(2, 10), _share),
)


@settings(max_examples=150, deadline=None)
@given(scenario=_scenarios)
def test_any_scenario_plays(scenario: S.Scenario) -> None:
    script = S.build(FEED, scenario)
    assert S.build(FEED, scenario) == script
    assert [c.at for c in script.cues] == sorted(c.at for c in script.cues)
    created: dict[str, int] = {}
    for number, cue in enumerate(script.cues):
        if cue.type is EventType.POST_CREATED:
            assert cue.post.id not in created
            created[cue.post.id] = number
        else:
            assert created.get(cue.post.id, len(script.cues)) < number, cue
    assert set(created) == {p.id for p in FEED.posts}
    replay = Replay(script, stream="s", incarnation="i", now=0.0, options=Options(speed=60))
    drive(replay)
    deleted = {c.post.id for c in script.cues if c.type is EventType.POST_DELETED}
    shown = {p["id"] for p in replay.snapshot(1e9)["posts"]}
    assert shown == set(created) - deleted


def test_the_list_form_update_may_now_carry_a_body(bundled: Feed) -> None:
    """Today's ``scenario = [...]`` steps, where an update used to refuse a ``body``."""
    from simulator.web.state import build_script

    post_id = bundled.posts[1].id
    raw = {
        "streams": [
            {
                "id": "s",
                "feed": BUNDLED_ID,
                "scenario": [
                    {"action": "update", "post": post_id, "after": "1m", "body": "New text."},
                    {"action": "pin", "post": post_id},
                ],
            }
        ]
    }
    script = build_script(bundled, validate(raw).streams[0])
    [update] = [c for c in script.cues if c.note == "changes body"]
    assert update.type is EventType.POST_UPDATED
    assert update.post.id == post_id and update.post.body == "New text."


@pytest.mark.parametrize(
    ("scenarios", "error"),
    [
        (
            '[scenarios.bad]\nsteps = [{ action = "pin", post = "nope" }]\n',
            "streams[0].scenario: scenarios.bad.steps[0].post: no post with id 'nope'",
        ),
        ("", "streams[0].scenario: no scenario named 'bad' (known: none configured)"),
        ("[scenarios.bad]\nbursts = { size = 0 }\n", "scenarios.bad.bursts.size: Input should"),
    ],
)
def test_serve_refuses_a_named_scenario_that_does_not_fit(
    tmp_path: Path, scenarios: str, error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Checked before the server starts: one line naming the file and the key, exit 1."""
    from simulator.cli import main

    config = tmp_path / "c.toml"
    stream = '[[streams]]\nid = "x"\nfeed = "aljazeera-iraq-2014-06"\nscenario = "bad"\n\n'
    config.write_text(stream + scenarios)
    assert main(["serve", "--config", str(config), "--port", "0"]) == 1
    assert capsys.readouterr().err.startswith(f"livesim: {config}: {error}")


def test_load_puts_the_named_rules_in_the_stream(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[[streams]]\nid = "x"\nfeed = "f"\nscenario = "keys"\n\n'
        "[scenarios.keys]\nkey_events = true\n"
    )
    settings = load(config, env={})
    rules = settings.streams[0].scenario
    assert isinstance(rules, ScenarioRules) and rules.name == "keys"
    assert rules.scenario() == settings.scenarios["keys"].scenario()
    assert settings.scenarios["keys"].name is None
