"""livesim judge: someone else's client judged from its log, against a real stream's event log
or ``livesim script`` output (issue #15)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest
from conftest import BUNDLED_ID, StartServer

import simulator.cli as commands
from clients.logjudge import RESET, judge
from clients.sse import SSEReader

FAST = {"id": "fast", "feed": BUNDLED_ID, "speed": 60, "max_gap": "5s", "loop": True}
ARCHIVE = str(Path(commands.__file__).parent.parent / "data" / f"{BUNDLED_ID}.txt")


def test_judging_places_each_key() -> None:
    reference = ["a-1", "a-2", "a-3", "a-4", "a-5", "a-6"]
    assert judge(reference, ["a-2", "a-3", "a-4"]).counts.wrong == 0
    verdict = judge(reference, ["a-1", "a-3", "a-3", "x-9", "a-5", "a-4"])
    counts = verdict.counts
    assert (counts.missing, counts.duplicate, counts.foreign, counts.out_of_order) == (1, 1, 1, 1)
    assert verdict.examples == {
        "duplicate": ["a-3"],
        "foreign": ["x-9"],
        "out_of_order": ["a-4"],
        "missing": ["a-2"],
    }
    assert judge(reference, ["a-1", "a-2"], to_end=True).counts.missing == 4
    # a per-connection reset excuses what was skipped up to it
    excused = judge(reference, ["a-1", (RESET, "a-4"), "a-5", "a-6"])
    assert excused.counts.wrong == 0 and excused.counts.connection_resets == 1
    # keys repeat in a script: the k-th received is the k-th of the reference
    script = [("post.created", "p1"), ("post.updated", "p1"), ("post.updated", "p1")]
    assert judge(script, script).counts.wrong == 0
    assert judge(script, [script[0], script[1]], to_end=True).counts.missing == 1
    assert judge(script, [*script, script[1]]).counts.duplicate == 1


async def record(base: str, count: int) -> list[str]:
    """What a well-behaved client received: ``count`` events from the stream's cursor."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/api/streams/fast") as response:
            cursor = (await response.json())["cursor"]
        async with session.get(f"{base}/streams/fast/events?since={cursor}") as response:
            reader = SSEReader(response)
            events = await asyncio.wait_for(reader.events(count), 30)
    return [event.data for event in events]


async def test_a_client_log_judged_against_the_stream(
    start_server: StartServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = await start_server(streams=[FAST])
    received = await record(server.base, 8)
    ids = [json.loads(data)["id"] for data in received]
    log = tmp_path / "client.jsonl"
    log.write_text("\n".join(received) + "\n")
    url = f"{server.base}/streams/fast"
    out = tmp_path / "verdict.json"
    argv = ["judge", "--stream", url, str(log), "--json", str(out)]
    assert await asyncio.to_thread(commands.main, argv) == 0
    data = json.loads(out.read_text())
    assert data["passed"] and data["received"] == data["expected"] == 8 and data["exit"] == 0
    assert "PASS" in capsys.readouterr().out
    # one id per line, with a loss, a duplicate, a swap and an id the stream never sent
    wrong = [ids[0], ids[1], ids[1], ids[3], ids[5], ids[4], ids[6], "nope-3", ids[7]]
    log.write_text("# client 7\n" + "\n".join(wrong) + "\n")
    assert await asyncio.to_thread(commands.main, argv) == 1
    data = json.loads(out.read_text())
    assert (data["missing"], data["duplicate"], data["out_of_order"], data["foreign"]) == (
        1,
        1,
        1,
        1,
    )
    assert data["examples"]["missing"] == [ids[2]]
    printed = capsys.readouterr().out
    assert "FAIL: 1 missing, 1 duplicate, 1 out-of-order, 1 foreign" in printed
    # --until: a client that stopped early missed the rest
    log.write_text("\n".join(ids[:3]) + "\n")
    argv += ["--until", ids[7]]
    assert await asyncio.to_thread(commands.main, argv) == 1
    assert json.loads(out.read_text())["missing"] == 5


async def test_a_client_log_judged_against_a_script(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "script.json"
    assert commands.main(["script", ARCHIVE, "--json"]) == 0
    script.write_text(capsys.readouterr().out)
    events = json.loads(script.read_text())["events"]
    lines = [json.dumps({"type": e["type"], "post": {"id": e["post"]}}) for e in events]
    lines.insert(3, json.dumps({"id": "x-1", "type": "stream.state", "post": None}))
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(lines) + "\n")
    assert commands.main(["judge", "--script", str(script), str(log), "--whole"]) == 0
    del lines[10]
    log.write_text("\n".join(lines) + "\n")
    assert commands.main(["judge", "--script", str(script), str(log), "--whole"]) == 1
    assert "FAIL: 1 missing" in capsys.readouterr().out
    text = tmp_path / "script.txt"
    assert commands.main(["script", ARCHIVE]) == 0
    text.write_text(capsys.readouterr().out)
    assert commands.main(["judge", "--script", str(text), str(log)]) == 1


@pytest.mark.parametrize(
    "content,named",
    [
        ("a-1\n{not json\n", "log:2: not JSON"),
        ("a-1\n[1]\n", "log:2: expected a JSON object"),
        ('{"id": 5}\n', "log:1: $.id: expected a string"),
        ('{"type": "post.created"}\n', "log:1: $.id: missing"),
        ("a 1\n", "log:1: expected an event id"),
        (b"\xff\n", "log:1: not UTF-8"),
    ],
)
def test_bad_logs_are_one_line_errors(
    content: str | bytes, named: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "log"
    log.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert commands.main(["judge", "--stream", "http://127.0.0.1:9/streams/x", str(log)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("livesim: ") and named in err and err.count("\n") == 1, err


async def test_a_stream_that_is_not_there_is_exit_2(
    start_server: StartServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = await start_server(streams=[FAST])
    log = tmp_path / "log"
    log.write_text("a-1\n")
    for url in (f"{server.base}/streams/nope", "http://127.0.0.1:9/streams/x"):
        assert await asyncio.to_thread(commands.main, ["judge", "--stream", url, str(log)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("livesim: ") and err.count("\n") == 1
    url = f"{server.base}/streams/fast"
    assert await asyncio.to_thread(commands.main, ["judge", "--stream", url, str(log)]) == 2
    assert "incarnation" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit:
        commands.main(["judge", str(log)])
    assert exit.value.code == 2
