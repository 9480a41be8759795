"""livesim alert: rules and their errors, numbers in text, actions, once per post and rule live."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from conftest import BUNDLED_ID, Server, StartServer
from hostile import (
    SNAPSHOT,
    Hostiles,
    a_post,
    envelope,
    frame,
    in_turn,
    json_answer,
    livesim_like,
    redirect,
    sse,
)
from server_helpers import serve_app

import simulator.cli as commands
from clients.alert import Alerter, CompiledRule, compile_rules, load_rules, number_near, run_alert
from clients.target import ClientError
from simulator.web.state import CONNECTIONS

ROOT = Path(__file__).resolve().parent.parent
CASUALTIES_POST = "p-71f02e8132"  # "at least 1,075 people have been killed in Iraq during June"


# Numbers in text ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,phrase,numbers",
    [
        ("The UN says at least 1,075 people have been killed in Iraq.", "killed", [1075]),
        ("757 civilians were killed and 599 injured.", "killed", [757]),
        ("Iraqi air strikes killed at least 26 people on Tuesday.", "killed", [26]),
        ("Around two thousand Iraqi Christians have entered Erbil.", "christians", [2000]),
        ("1.2 million displaced", "displaced", [1_200_000]),
        ("Sixty people killed. 500 were wounded.", "killed", [60]),  # not across sentences
        ("12 people in a market far from the border were later found killed", "killed", []),
        ("Attacks kill 12 south of Baghdad; 3 killed in Tikrit", "killed", [3]),
        ("Nobody was hurt.", "killed", []),
    ],
)
def test_number_near(text: str, phrase: str, numbers: list[float]) -> None:
    assert number_near(text, [phrase], within=6) == numbers


def test_numbers_for_a_multi_word_phrase() -> None:
    assert number_near("killed 5 people, then 40 people were reported dead", ["reported dead"]) == [
        40
    ]


# Rules ----------------------------------------------------------------------------------------


def rules(*entries: dict[str, Any]) -> list[CompiledRule]:
    return compile_rules({"rules": list(entries)}, "alerts.toml")


def post(**fields: Any) -> dict[str, Any]:
    return {"id": "p-1", "headline": None, "body": "", "source": None, **fields}


def test_conditions_all_hold() -> None:
    (rule,) = rules(
        {
            "name": "r",
            "keywords": ["refinery"],
            "source": "ap",
            "number": {"phrase": "killed", "at_least": 10},
        }
    )
    good = post(body="At the refinery 26 were killed.", source="AP")
    assert rule.match(good, "post.created") == {
        "source": "AP",
        "keywords": ["refinery"],
        "number": 26,
    }
    assert rule.match({**good, "source": "Reuters"}, "post.created") is None
    assert rule.match({**good, "body": "At the refineryX 26 were killed."}, "post.created") is None
    assert rule.match({**good, "body": "At the refinery 2 were killed."}, "post.created") is None
    assert rule.match(good, "post.deleted") is None


def test_types_alone_fire_on_any_post_of_that_type() -> None:
    (rule,) = rules({"name": "deleted", "types": ["post.deleted"]})
    assert rule.match(post(), "post.deleted") == {}
    assert rule.match(post(), "post.created") is None


def test_shipped_rules_load() -> None:
    names = [r.name for r in load_rules(str(ROOT / "config/alerts.toml"))]
    assert {"mass-casualties", "deleted", "wire-agency"} <= set(names)


@pytest.mark.parametrize(
    "text,error",
    [
        ('[[rules]]\nname = "a"\npattern = "("', "rules[0].pattern: not a regular expression"),
        (
            '[[rules]]\nname = "a"\nkeywords=["x"]\n[[rules]]\nname="b"\nkeyword=["x"]',
            "rules[1].keyword: unknown key",
        ),
        ('[[rules]]\nkeywords = ["x"]', "rules[0].name: required key is missing"),
        ('[[rules]]\nname = "a"', "rules[0]: give at least one of"),
        (
            '[[rules]]\nname = "a"\nnumber = {phrase = "killed"}',
            "rules[0].number: give at_least or at_most",
        ),
        (
            '[[rules]]\nname = "a"\nnumber = {phrase = "k", at_least = nan}',
            "rules[0].number.at_least",
        ),
        (
            '[[rules]]\nname = "a"\nnumber = {phrase = "k", at_least = 1, within = 1e308}',
            "rules[0].number.within",
        ),
        ('[[rules]]\nname = "a"\ntypes = ["post.exploded"]', "rules[0].types[0]"),
        (
            '[[rules]]\nname = "a"\ntypes = "post.deleted"\nwebhook = "ftp://x"',
            "rules[0].webhook.url",
        ),
        ('[[rules]]\nname = "a"\ntypes = []', "rules[0].types"),
        ('[[rules]]\nname = "a"\nsource = 5', "rules[0].source"),
        ('[[rules]]\nname = "a"\nsource = "AP"\ncommand = "x \'unclosed"', "rules[0].command"),
        (
            '[[rules]]\nname = "a"\nsource = "AP"\ncommand_timeout = "-1s"',
            "rules[0].command_timeout",
        ),
        (
            '[[rules]]\nname = "a"\nsource = "AP"\n[[rules]]\nname = "a"\nsource = "AP"',
            "rules[1].name: 'a' is already",
        ),
        ("rules = 5", "rules: expected an array"),
        ("rules = []", "rules: List should have at least 1 item"),
        ("[[rules]\n", "invalid TOML"),
        ('[[rules]]\nname = "' + "x" * 10_000 + '"\nsource = "AP"', "rules[0].name"),
        ('[[rules]]\nname = "a"\nkeywords = [' + '"k",' * 300 + "]", "rules[0].keywords"),
    ],
)
def test_rule_errors_are_one_line_naming_the_key(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text(text)
    with pytest.raises(ClientError) as raised:
        load_rules(str(path))
    message = str(raised.value)
    assert message.startswith(f"{path}: ") and error in message, message
    assert "\n" not in message and len(message) < 400


def test_unreadable_rules_files(tmp_path: Path) -> None:
    for path, error in [
        (tmp_path / "missing.toml", "no such file"),
        (tmp_path, "is a directory"),
    ]:
        with pytest.raises(ClientError, match=error):
            load_rules(str(path))
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ClientError, match="not UTF-8"):
        load_rules(str(binary))


# Actions --------------------------------------------------------------------------------------


class Receiver:
    """A webhook receiver on 127.0.0.1: records every POST body, answers ``status``."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status = 200
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        return web.json_response({}, status=self.status)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = Receiver()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    runner, base = await serve_app(app)
    hook.url = f"{base}/hook"
    yield hook
    await runner.cleanup()


ENVELOPE = {
    "id": "x-7",
    "type": "post.created",
    "stream": "s",
    "due_at": "2026-01-01T00:00:00.000Z",
}


async def fire(rule: dict[str, Any], body: str = "a refinery") -> tuple[list[Any], list[str]]:
    lines: list[Any] = []
    errors: list[str] = []
    async with aiohttp.ClientSession() as session:
        alerter = Alerter(rules(rule), emit=lines.append, report=errors.append, session=session)
        alerter.judge(post(body=body), "post.created", ENVELOPE)
        alerter.judge(post(body=body), "post.updated", ENVELOPE)  # same post: not again
        await alerter.drain(within=20)
    return lines, errors


async def test_webhook_gets_the_alert_once(receiver: Receiver) -> None:
    lines, errors = await fire({"name": "r", "keywords": ["refinery"], "webhook": receiver.url})
    assert errors == [] and len(lines) == 1 and lines[0]["event_id"] == "x-7"
    assert lines[0]["lateness_ms"] > 0 and lines[0]["due_at"] == ENVELOPE["due_at"]
    assert [b["alert"] for b in receiver.bodies] == ["r"]
    assert receiver.bodies[0]["post_id"] == "p-1"


async def test_failing_webhook_is_retried_then_reported(receiver: Receiver) -> None:
    receiver.status = 500
    hook = {"url": receiver.url, "retries": 2, "backoff": "10ms", "timeout": "2s"}
    lines, errors = await fire({"name": "r", "keywords": ["refinery"], "webhook": hook})
    assert len(receiver.bodies) == 3  # the first try and two retries
    assert len(errors) == 1 and "HTTP 500 after 3 attempt(s)" in errors[0]
    assert lines[0]["alert"] == "r"
    assert lines[1] == {
        "error": "webhook",
        "target": receiver.url,
        "alert": "r",
        "post_id": "p-1",
        "detail": "HTTP 500 after 3 attempt(s)",
    }


async def test_unreachable_webhook_is_reported() -> None:
    hook = {"url": "http://127.0.0.1:9/hook", "retries": 1, "backoff": "1ms"}
    lines, errors = await fire({"name": "r", "keywords": ["refinery"], "webhook": hook})
    assert len(errors) == 1 and "after 2 attempt(s)" in errors[0] and lines[1]["error"] == "webhook"


async def test_command_gets_the_alert_on_stdin(tmp_path: Path) -> None:
    out = tmp_path / "alert.json"
    script = f"import sys; open({str(out)!r}, 'wb').write(sys.stdin.buffer.read())"
    lines, errors = await fire(
        {"name": "r", "keywords": ["refinery"], "command": [sys.executable, "-c", script]}
    )
    assert errors == []
    assert orjson.loads(out.read_bytes())["alert"] == "r"


@pytest.mark.parametrize(
    "argv,limit,detail",
    [
        (
            [sys.executable, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"],
            5,
            "exit status 3: boom",
        ),
        ([sys.executable, "-c", "import time; time.sleep(30)"], 0.3, "timed out after 0.3s"),
        (["/nonexistent/program"], 5, "No such file"),
    ],
)
async def test_failing_command_is_reported(argv: list[str], limit: float, detail: str) -> None:
    rule = {"name": "r", "keywords": ["refinery"], "command": argv, "command_timeout": limit}
    lines, errors = await fire(rule)
    assert len(errors) == 1 and detail in errors[0], errors
    assert lines[1]["error"] == "command"


# Live, against a real server ------------------------------------------------------------------


def cut_every_connection(server: Server) -> int:
    connections = server.app[CONNECTIONS]
    subscribers = list(connections)
    for subscriber in subscribers:
        subscriber.drop("test fault")
    return len(subscribers)


async def lap(server: Server, stream: str) -> int:
    _, info = await server.get(f"/api/streams/{stream}")
    return int(info["position"]["lap"])


async def until(check: Any, within: float = 30) -> None:
    for _ in range(int(within / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(f"{check.__name__} not within {within:g}s")


@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_fires_once_per_post_across_a_disconnect_and_two_laps(
    start_server: StartServer, receiver: Receiver, transport: str
) -> None:
    stream = {"id": "laps", "feed": BUNDLED_ID, "speed": 60, "max_gap": "1s", "loop": True}
    server = await start_server(streams=[stream])
    compiled = rules(
        {
            "name": "mass-casualties",
            "number": {"phrase": ["killed"], "at_least": 1000},
            "webhook": receiver.url,
        },
        {"name": "baiji", "keywords": ["Baiji"]},
    )
    lines: list[dict[str, Any]] = []
    errors: list[str] = []
    task = asyncio.create_task(
        run_alert(
            f"{server.base}/streams/laps",
            compiled,
            transport=transport,
            emit=lines.append,
            report=errors.append,
        )
    )

    async def alerted() -> bool:
        return len(receiver.bodies) >= 1

    async def subscribed() -> bool:
        _, info = await server.get("/api/streams/laps")
        return bool(info["subscribers"] == 1)

    try:
        await until(alerted)
        first_lap = await lap(server, "laps")
        await until(subscribed)
        assert cut_every_connection(server) == 1  # a disconnect the client did not ask for
        await asyncio.sleep(0.1)
        await until(subscribed)

        async def two_laps_later() -> bool:
            return await lap(server, "laps") >= first_lap + 2

        await until(two_laps_later)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert errors == []
    fired = [(line["alert"], line["post_id"]) for line in lines]
    assert fired.count(("mass-casualties", CASUALTIES_POST)) == 1
    assert [b["post_id"] for b in receiver.bodies] == [CASUALTIES_POST]
    baiji = [post_id for name, post_id in fired if name == "baiji"]
    assert len(baiji) == len(set(baiji)) >= 2  # several posts, each once
    assert len(fired) == len(set(fired))


async def test_alert_cli(
    start_server: StartServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = {"id": "cli", "feed": BUNDLED_ID, "speed": 60, "max_gap": "1s", "loop": True}
    server = await start_server(streams=[stream])
    rules_path = tmp_path / "alerts.toml"
    rules_path.write_text('[[rules]]\nname = "agency"\nsource = ["AP", "Reuters"]\n')
    argv = ["alert", "--url", f"{server.base}/streams/cli", "--rules", str(rules_path)]
    assert await asyncio.to_thread(commands.main, [*argv, "--count", "2", "--backfill"]) == 0
    out = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(out) == 2 and all(line["alert"] == "agency" for line in out)
    assert all(line["source"] in ("AP", "Reuters") for line in out)
    rules_path.write_text('[[rules]]\nname = "agency"\nsource = ["AP"]\npattern = "(("\n')
    assert await asyncio.to_thread(commands.main, argv) == 1
    err = capsys.readouterr().err
    assert err == f"livesim: {rules_path}: rules[0].pattern: " + err.split(": ", 3)[3]
    assert err.count("\n") == 1
    argv[2] = "http://127.0.0.1:9/streams/cli"
    rules_path.write_text('[[rules]]\nname = "agency"\nsource = ["AP"]\n')
    assert await asyncio.to_thread(commands.main, argv) == 1
    assert capsys.readouterr().err.startswith("livesim: cannot connect to 127.0.0.1:9")


@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_fires_once_through_injected_faults(
    start_server: StartServer, transport: str
) -> None:
    stream = {"id": "rough", "feed": BUNDLED_ID, "speed": 60, "max_gap": "1s", "loop": True}
    server = await start_server(streams=[stream])
    faults = "duplicate:1,garble:0.3,disconnect_after:7,seed:3"
    compiled = rules({"name": "baiji", "keywords": ["Baiji"]}, {"name": "agency", "source": "AP"})
    lines: list[dict[str, Any]] = []
    task = asyncio.create_task(
        run_alert(
            f"{server.base}/streams/rough?faults={faults}",
            compiled,
            transport=transport,
            emit=lines.append,
            report=lambda text: None,
        )
    )
    first = await lap(server, "rough")

    async def two_laps_later() -> bool:
        return await lap(server, "rough") >= first + 2

    try:
        await until(two_laps_later)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    fired = [(line["alert"], line["post_id"]) for line in lines]
    assert len(fired) == len(set(fired))
    assert {"baiji", "agency"} <= {name for name, _ in fired}
    _, info = await server.get("/api/streams/rough")
    assert "'duplicate'" in str(info.get("faults"))  # the server did inject them


# Hostile servers (issue #12) --------------------------------------------------------------------


@pytest.fixture
async def hostile() -> AsyncIterator[Hostiles]:
    servers = Hostiles()
    yield servers
    await servers.close()


GOOD = envelope(2, a_post("p-good", "the good refinery"))
REFINERY = rules({"name": "refinery", "keywords": ["refinery"]})


def sse_of(*envelopes: dict[str, Any]) -> Any:
    return sse(b"retry: 1000\n\n" + b"".join(frame(e, str(e.get("id", ""))) for e in envelopes))


@pytest.mark.parametrize(
    "bad,problem",
    [
        ({k: v for k, v in envelope(1).items() if k != "id"}, "no string 'id'"),
        (envelope(1, post="a refinery"), "'post'"),
        (envelope(1, a_post("p-1", "refinery", headline=5)), "'post.headline'"),
        (envelope(1, a_post(7, "refinery")), "'post.id'"),
    ],
)
async def test_alert_reports_and_skips_a_malformed_event(
    hostile: Hostiles, capsys: pytest.CaptureFixture[str], bad: dict[str, Any], problem: str
) -> None:
    url = livesim_like(await hostile(), events=sse_of(bad, GOOD))
    async with asyncio.timeout(10):
        assert await run_alert(url, REFINERY, count=1) == 0
    out, err = capsys.readouterr()
    assert [orjson.loads(line)["post_id"] for line in out.splitlines()] == ["p-good"]
    assert "skipped" in err and problem in err, err


async def test_alert_survives_a_snapshot_list_and_numbers_beyond_64_bits(
    hostile: Hostiles, capsys: pytest.CaptureFixture[str]
) -> None:
    big = envelope(2, a_post("p-big", "a refinery", casualties=2**64, other=-(2**70)))
    snapshot = in_turn(json_answer([]), json_answer(SNAPSHOT))
    url = livesim_like(await hostile(), snapshot=snapshot, events=sse_of(big))
    async with asyncio.timeout(10):
        assert await run_alert(url, REFINERY, count=1) == 0
    out, err = capsys.readouterr()
    (alert,) = [orjson.loads(line) for line in out.splitlines()]
    assert alert["post_id"] == "p-big" and alert["post"]["casualties"] == 2**64
    assert "snapshot" in err and "not a JSON object" in err, err


async def test_ten_posts_sharing_an_event_id_are_one_alert_and_a_warning(
    hostile: Hostiles, capsys: pytest.CaptureFixture[str]
) -> None:
    same = [envelope(1, a_post(f"p-{n}", f"refinery {n}")) for n in range(10)]
    url = livesim_like(await hostile(), events=sse_of(*same))
    lines: list[dict[str, Any]] = []
    async with asyncio.timeout(10):
        assert await run_alert(url, REFINERY, duration=1.0, emit=lines.append) == 0
    assert [line["post_id"] for line in lines] == ["p-0"]
    err = capsys.readouterr().err
    assert "9 events skipped: their id was already seen (9 with other content)" in err, err


async def test_webhook_follows_no_redirect(hostile: Hostiles, receiver: Receiver) -> None:
    server = await hostile()
    server.on("/hook", redirect(receiver.url, 307))
    hook = {"url": f"{server.base}/hook", "retries": 2, "backoff": "1ms"}
    lines, errors = await fire({"name": "r", "keywords": ["refinery"], "webhook": hook})
    assert receiver.bodies == [] and server.hits("/hook") == 1
    assert len(errors) == 1 and "HTTP 307" in errors[0] and "not followed" in errors[0], errors
    assert lines[1]["error"] == "webhook"


def test_number_near_is_linear_in_the_posts_length() -> None:
    text = "1 killed " * 7_281  # a legal 64 KB post
    began = time.monotonic()
    assert number_near(text, ["killed"]) == [1.0] * 7_281
    (rule,) = rules({"name": "r", "number": {"phrase": "killed", "at_least": 1}})
    assert rule.match(post(body=text), "post.created") == {"number": 1.0}
    assert time.monotonic() - began < 2.0  # was 15 s per match
