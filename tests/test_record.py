"""``livesim record``: a real server's stream recorded through faults plays back as it was."""

from __future__ import annotations

import asyncio
import re
import tomllib
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from server_helpers import serve_app

from clients.record import Options, record
from clients.record.journal import Journal
from simulator import settings as settings_module
from simulator.cli import main
from simulator.core import scenario as core_scenario
from simulator.core.model import Feed
from simulator.core.script import Script
from simulator.sources import load_feed
from simulator.web.app import create_app, runner_options

ROOT = Path(__file__).resolve().parent.parent
BUNDLED_ID = "aljazeera-iraq-2014-06"
FAULTS = "disconnect_after:7,duplicate:0.1"


def newsroom() -> dict[str, Any]:
    config = tomllib.loads((ROOT / "config/livesim.toml").read_text())
    return {"newsroom": config["scenarios"]["newsroom"]}


async def start(bundled: Feed, stream: dict[str, Any]) -> tuple[web.AppRunner, str, Any]:
    raw = {
        "server": {"port": 0},
        "scenarios": newsroom(),
        "streams": [{"id": "news", "feed": BUNDLED_ID, **stream}],
    }
    settings = settings_module.validate(raw)
    app = create_app(settings, {BUNDLED_ID: bundled})
    runner, base = await serve_app(app, shutdown_timeout=1.0, **runner_options(settings))
    return runner, base, settings


Row = tuple[float, str, str]


def rows(script: Script) -> list[Row]:
    """What happened, when, to which post: ties (one archive second) in a fixed order."""
    return sorted((round(c.at, 3), str(c.type), c.post.id) for c in script.cues)


def versions(script: Script) -> list[tuple[Any, ...]]:
    """Each version of each post, as created and as each update left it."""
    return sorted(
        (round(c.at, 3), c.post.id, c.post.headline, c.post.body, c.post.author, c.post.editor)
        + (c.post.source, c.post.media, c.post.key_event)
        for c in script.cues
        if c.type in ("post.created", "post.updated")
    )


async def wait_for_subscriber(base: str) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        for _ in range(500):
            async with session.get(f"{base}/api/streams/news") as answer:
                if (await answer.json())["subscribers"] >= 1:
                    return
            await asyncio.sleep(0.01)
    raise AssertionError("the recorder never subscribed")


async def resume_stream(base: str) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base}/api/streams/news/resume") as answer:
            assert answer.status == 200


@pytest.mark.parametrize("transport", ["events", "ws"])
async def test_recording_through_faults_plays_back_the_original(
    transport: str, bundled: Feed, tmp_path: Path
) -> None:
    runner, base, settings = await start(
        bundled, {"speed": "max", "paused": True, "loop": False, "scenario": "newsroom"}
    )
    out = tmp_path / "news.jsonl"
    try:
        options = Options(source=f"{base}/streams/news/{transport}?faults={FAULTS}", output=out)
        task = asyncio.ensure_future(record(options))
        await wait_for_subscriber(base)
        await resume_stream(base)
        outcome = await asyncio.wait_for(task, 60)
    finally:
        await runner.cleanup()
    assert outcome.reason == "ended"
    assert outcome.counts.reconnects >= 5  # disconnect_after:7 struck again and again
    assert outcome.counts.duplicates >= 1  # duplicate:0.1 struck, and nothing was kept twice

    original = core_scenario.build(bundled, settings.scenarios["newsroom"].scenario(), 180.0)
    recorded = core_scenario.build(load_feed(out))
    assert rows(recorded) == rows(original)
    assert versions(recorded) == versions(original)
    kinds = {t for _, t, _ in rows(recorded)}
    assert {"post.created", "post.updated", "post.deleted", "post.pinned"} <= kinds
    header = orjson.loads(out.read_bytes().split(b"\n", 1)[0])
    assert header["version"] == 2 and header["recorded_from"] == options.source


async def test_sigterm_then_a_second_run_carries_on(bundled: Feed, tmp_path: Path) -> None:
    """Stopped by SIGTERM mid-stream, with a torn line as a crash would leave; run again on the
    same archive, the recording resumes from its last event id and ends as one clean pass."""
    runner, base, settings = await start(
        bundled,
        {"speed": 3000, "max_gap": "2m", "paused": True, "loop": False, "scenario": "newsroom"},
    )
    out = tmp_path / "news.jsonl"
    url = f"{base}/streams/news/events"
    command = [str(ROOT / ".venv/bin/livesim"), "record", url, "-o", str(out), "--json"]
    try:
        first = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        await wait_for_subscriber(base)
        await resume_stream(base)
        for _ in range(1000):
            if out.exists() and out.read_bytes().count(b"\n") > 10:
                break
            await asyncio.sleep(0.01)
        first.terminate()
        stdout, stderr = await asyncio.wait_for(first.communicate(), 30)
        assert first.returncode == 0, stderr
        report = orjson.loads(stdout)
        assert report["stopped"] == "signal"
        with out.open("ab") as file:
            file.write(b'{"type":"post","id":"torn","bo')  # what a crash mid-write leaves
        second = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        stdout, stderr = await asyncio.wait_for(second.communicate(), 60)
        assert second.returncode == 0, stderr
    finally:
        await runner.cleanup()
    report = orjson.loads(stdout)
    assert report["stopped"] == "ended"
    assert report["resumed_from"] and report["recovered_bytes"] == 30
    original = core_scenario.build(bundled, settings.scenarios["newsroom"].scenario(), 180.0)
    recorded = core_scenario.build(load_feed(out))
    assert rows(recorded) == rows(original)
    assert versions(recorded) == versions(original)


def test_journal_cuts_a_torn_last_line_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    journal = Journal.open(path, {"type": "feed", "title": "t"})
    journal.write({"type": "post", "id": "a", "body": "x", "published_at": "2020-01-01T00:00:00Z"})
    journal.close()
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"type":"change","act')
    again = Journal.open(path, {"type": "feed", "title": "ignored: the file has one"})
    again.close()
    assert again.recovered == len(b'{"type":"change","act')
    assert [r["type"] for r in again.records] == ["feed", "post"]
    assert path.read_bytes() == whole
    assert not list(tmp_path.glob(".*.tmp"))


def test_journal_refuses_a_broken_line_it_did_not_write(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"type":"feed","title":"t"}\nnot json\n{"id":"a"}\n')
    with pytest.raises(ValueError, match=r"a.jsonl:2: invalid JSON"):
        Journal.open(path, {})
    assert path.read_bytes().endswith(b'{"id":"a"}\n')  # left as it was


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--duration", "0"], "--duration: expected more than 0"),
        (["--duration", "-5s"], "--duration"),
        (["--duration", "400d"], "--duration"),
        (["--duration", "1e400"], "--duration"),
        (["--until", "2026-12-06T18:00:00"], "--until: give a zone"),
        (["--until", "tomorrow"], "--until: expected an ISO-8601 time"),
        (["--max-event-bytes", "0"], "--max-event-bytes: expected an integer from 1024"),
        (["--max-event-bytes", "9" * 40], "--max-event-bytes"),
        (["--id", "../etc"], "--id"),
        (["--poll", "0"], "--poll: expected 100ms to 24h"),
        (["--poll", "25h"], "--poll: expected 100ms to 24h"),
        (["--poll", "nan"], "--poll"),
        (["--type", "rss"], "--type: invalid choice"),
    ],
)
def test_bad_flags_are_usage_errors(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["record", "http://127.0.0.1:9/streams/x/events", "-o", str(tmp_path / "a"), *flags]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("source", ["ftp://x/y", "not a url", "http://", "file:///etc/passwd"])
def test_a_source_that_is_not_http_is_refused(
    source: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["record", source, "-o", str(tmp_path / "a")]) == 2
    assert "SOURCE: expected an http(s) or ws(s) URL" in capsys.readouterr().err


async def test_a_stream_that_does_not_exist_is_one_line_and_exit_1(
    bundled: Feed, tmp_path: Path
) -> None:
    runner, base, _ = await start(bundled, {})
    out = tmp_path / "a.jsonl"
    try:
        process = await asyncio.create_subprocess_exec(
            str(ROOT / ".venv/bin/livesim"),
            *("record", f"{base}/streams/nope/events", "-o", str(out)),
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    finally:
        await runner.cleanup()
    assert process.returncode == 1
    lines = stderr.decode().splitlines()
    assert len(lines) == 1 and "HTTP 404" in lines[0] and "Traceback" not in lines[0]


async def test_a_page_that_is_not_an_event_stream_is_refused(bundled: Feed, tmp_path: Path) -> None:
    runner, base, _ = await start(bundled, {})
    try:
        options = Options(source=f"{base}/api/streams", output=tmp_path / "a.jsonl")
        with pytest.raises(Exception, match="not an event stream"):
            await asyncio.wait_for(record(options), 30)
    finally:
        await runner.cleanup()


HEAD = b'{"type":"feed","version":2,"title":"t"}\n'
POST = b'{"type":"post","id":"a","body":"x","published_at":"2020-01-01T00:00:00Z"}\n'


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            b'{"type":"change","action":"star","post":"a","at":"2020-01-01T00:01:00Z"}',
            "4: $.action",
        ),
        (
            b'{"type":"change","action":"pin","post":"b","at":"2020-01-01T00:01:00Z"}',
            "4: $.post: no",
        ),
        (b'{"type":"change","action":"pin","post":"a","at":"soon"}', "4: $.at: expected an ISO"),
        (
            b'{"type":"change","action":"pin","post":"a","at":"2020-01-01T00:01:00Z","fields":{"body":"y"}}',
            "$.fields: only an update",
        ),
        (
            b'{"type":"change","action":"update","post":"a","at":"2020-01-01T00:01:00Z","fields":{"id":"z"}}',
            "$.fields.id: not a field",
        ),
        (
            b'{"type":"change","action":"update","post":"a","at":"2020-01-01T00:01:00Z","fields":{"body":null}}',
            "$.fields.body: expected a string",
        ),
        (
            b'{"type":"change","action":"update","post":"a","at":"2020-01-01T00:01:00Z","fields":{"media":[1]}}',
            "$.fields.media[0]",
        ),
        (
            b'{"type":"change","action":"update","post":"a","at":"2020-01-01T00:01:00Z","fields":[]}',
            "$.fields: expected an object",
        ),
    ],
)
def test_bad_change_records_name_line_and_path(line: bytes, message: str) -> None:
    from simulator.core import archive

    with pytest.raises(ValueError, match=re.escape(message)):
        archive.loads(HEAD + POST + b"\n" + line + b"\n", "r.jsonl")


def test_a_future_version_is_refused_and_version_1_still_loads() -> None:
    from simulator.core import archive

    with pytest.raises(ValueError, match=r"r.jsonl:1: \$.version: expected 1 or 2"):
        archive.loads(HEAD.replace(b"2", b"3") + POST, "r.jsonl")
    old = archive.loads(HEAD.replace(b"2", b"1") + POST, "r.jsonl")
    assert old.changes == () and archive.dumps(old).startswith(b'{"type":"feed","version":1')


def test_changes_round_trip_and_play() -> None:
    from simulator.core import archive
    from simulator.core.script import build

    changes = (
        b'{"type":"change","action":"update","post":"a","at":"2020-01-01T00:02:00Z",'
        b'"fields":{"body":"y","media":[{"kind":"image","url":"http://x/i.png"}]},"seen_at":"s"}\n'
        b'{"type":"change","action":"pin","post":"a","at":"2020-01-01T00:03:00Z"}\n'
        b'{"type":"change","action":"delete","post":"a","at":"2020-01-01T00:04:00Z"}\n'
    )
    feed = archive.loads(HEAD + POST + changes, "r.jsonl")
    again = archive.loads(archive.dumps(feed), "again.jsonl")
    assert again == feed and feed.changes[0].extra == {"seen_at": "s"}
    cues = build(feed).cues
    assert [(c.at, str(c.type), c.post.body) for c in cues] == [
        (0.0, "post.created", "x"),
        (120.0, "post.updated", "y"),
        (180.0, "post.pinned", "y"),
        (240.0, "post.deleted", "y"),
    ]
    assert cues[1].note == "changes body, media" and cues[1].post.media[0].kind == "image"


def test_change_lines_validate_against_the_schema() -> None:
    import jsonschema  # type: ignore[import-untyped]

    from simulator.core import archive

    schema = orjson.loads((ROOT / "docs/archive.schema.json").read_bytes())
    validator = jsonschema.Draft202012Validator(schema)
    change = (
        b'{"type":"change","action":"update","post":"a","at":"2020-01-01T00:02:00Z",'
        b'"fields":{"body":"y","key_event":true}}\n'
    )
    data = archive.dumps(archive.loads(HEAD + POST + change, "r.jsonl"))
    for line in data.splitlines():
        assert validator.is_valid(orjson.loads(line)), line
    assert not validator.is_valid({"type": "change", "action": "star", "post": "a", "at": "x"})
    bad_field = {"type": "change", "action": "update", "post": "a", "at": "x", "fields": {"id": 1}}
    assert not validator.is_valid(bad_field)


def test_until_in_the_past_stops_at_once_even_with_no_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "a.jsonl"
    argv = ["record", "http://127.0.0.1:9/streams/x/events", "-o", str(out), "--json"]
    assert main([*argv, "--until", "2000-01-01T00:00:00Z"]) == 0
    report = orjson.loads(capsys.readouterr().out)
    assert report["stopped"] == "until" and report["events"] == 0
    assert orjson.loads(out.read_bytes())["type"] == "feed"  # the header, whole


def test_an_output_that_cannot_be_written_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = tmp_path / "export.txt"  # ends without a newline: its last line looks torn
    original = (ROOT / "simulator/data/aljazeera-iraq-2014-06.txt").read_bytes().rstrip(b"\n")
    export.write_bytes(original)
    for output, message in [
        (tmp_path / "no" / "dir.jsonl", "No such file or directory"),
        (tmp_path, "Is a directory"),
        (export, "not a recording"),
    ]:
        argv = ["record", "http://127.0.0.1:9/streams/x/events", "-o", str(output)]
        assert main([*argv, "--duration", "1s"]) == 1
        err = capsys.readouterr().err
        assert message in err and len(err.splitlines()) == 1, err
    assert export.read_bytes() == original  # refused as it was, not cut
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.txt"]  # no lock file left


def test_a_last_line_without_its_newline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "hand.jsonl"
    path.write_bytes(b'{"type":"feed","title":"t"}\n{"id":"a","body":"x"}')
    journal = Journal.open(path, {})
    journal.close()
    assert journal.recovered == 0 and len(journal.records) == 2
    assert path.read_bytes().endswith(b'{"id":"a","body":"x"}\n')


def test_a_second_recorder_on_the_same_archive_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    first = Journal.open(path, {"type": "feed", "title": "t"})
    try:
        with pytest.raises(ValueError, match="another livesim record is writing this archive"):
            Journal.open(path, {"type": "feed", "title": "t"})
    finally:
        first.close()
    Journal.open(path, {}).close()  # free again once the first is done
