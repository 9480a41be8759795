"""livesim load against real servers and hostile ones (the judge and the decoders it is built
from: test_judge.py, test_frames.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import BUNDLED_ID, StartServer
from hostile import Handler, Hostiles, livesim_like, sse, websocket
from hostile import ws_frame as claimed_frame

import simulator.cli as commands
from clients.load import LoadOptions, prepare, run_share, summary
from clients.target import ClientError, parse_target


def envelope(event_id: str, type: str, **extra: Any) -> bytes:
    body = {"id": event_id, "type": type, "stream": "s", "due_at": None, **extra}
    return json.dumps(body, separators=(",", ":")).encode()


# URLs ------------------------------------------------------------------------------------------


def test_targets() -> None:
    target = parse_target("http://127.0.0.1:8080/feeds/f1/events?speed=600&max_gap=1s")
    assert not isinstance(target, str) and target.private
    assert target.with_faults("duplicate:0.1,seed:7").path("ws", since="x-1") == (
        "/feeds/f1/ws?speed=600&max_gap=1s&faults=duplicate:0.1,seed:7&since=x-1"
    )
    assert parse_target("http://localhost:9") == "http://localhost:9"
    for bad in ("ftp://x/streams/a", "http:///streams/a", "http://h/nope/a", "http://h:99999/"):
        with pytest.raises(ClientError):
            parse_target(bad)


# Real runs -------------------------------------------------------------------------------------

FAST = {"id": "fast", "feed": BUNDLED_ID, "speed": 60, "max_gap": "5s", "loop": True}


async def test_short_run_with_churn_loses_nothing(start_server: StartServer) -> None:
    server = await start_server(streams=[FAST])
    options = LoadOptions(
        url=f"{server.base}/streams/fast",
        clients=50,
        transport="mix",
        ramp=0,
        duration=3.0,
        churn=10,
        drain=5.0,
    )
    target = await prepare(options)
    report = await run_share(options, target)
    data = summary(report)
    assert data["connections"]["opened"] >= 50 and data["connections"]["churned"] >= 10
    assert data["connections"]["failed"] == 0
    events = data["events"]
    assert events["expected"] >= 50 * 4
    assert (events["missing"], events["duplicate"], events["out_of_order"]) == (0, 0, 0)
    assert data["passed"] and data["lateness_ms"]["count"] > 0
    assert {row["transport"] for row in data["per_connection"]} == {"sse", "ws"}
    assert sum(row["expected"] for row in data["per_connection"]) == events["expected"]


async def test_private_replays_with_churn(start_server: StartServer) -> None:
    server = await start_server(streams=[FAST])
    options = LoadOptions(
        url=f"{server.base}/feeds/{BUNDLED_ID}?speed=600&max_gap=1s&loop=false",
        clients=10,
        transport="mix",
        ramp=0,
        duration=2.0,
        churn=5,
    )
    report = await run_share(options, await prepare(options))
    assert not report.failures(), report.failures()
    assert report.counts.resets >= report.connections["churned"] > 0  # a reset per reconnect


async def test_cli_writes_json_and_judges(start_server: StartServer, tmp_path: Path) -> None:
    server = await start_server(streams=[FAST])
    out = tmp_path / "load.json"
    argv = ["load", f"{server.base}/streams/fast", "--clients", "8", "--duration", "2s"]
    argv += ["--transport", "ws", "--json", str(out), "--max-p99", "1h"]
    assert await asyncio.to_thread(commands.main, argv) == 0
    data = json.loads(out.read_text())
    assert data["passed"] and data["events"]["received"] > 0 and len(data["per_connection"]) == 8
    # an impossible threshold fails the run
    argv[-3:] = ["-", "--max-p99", "0.001ms"]
    assert await asyncio.to_thread(commands.main, argv) == 99


async def test_worker_processes_merge_exactly(start_server: StartServer, tmp_path: Path) -> None:
    server = await start_server(streams=[FAST])
    out = tmp_path / "procs.json"
    argv = ["load", f"{server.base}/streams/fast", "--clients", "6", "--procs", "2"]
    argv += ["--duration", "2s", "--transport", "mix", "--churn", "4/s", "--json", str(out)]
    assert await asyncio.to_thread(commands.main, argv) == 0
    data = json.loads(out.read_text())
    rows = data["per_connection"]
    assert [row["client"] for row in rows] == list(range(6))
    for name in ("expected", "received", "missing", "duplicate", "resets"):
        assert sum(row[name] for row in rows) == data["events"][name]
    assert sum(row["opened"] for row in rows) == data["connections"]["opened"] >= 6
    assert data["events"]["expected"] > 0 and data["passed"]
    assert data["lateness_ms"]["count"] > 0


async def test_cli_errors_are_one_line(
    start_server: StartServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await start_server(streams=[FAST])
    monkeypatch.delenv("LIVESIM_URL", raising=False)
    cases = [
        ["load"],
        ["load", f"{server.base}/streams/nope", "--duration", "1s"],
        ["load", f"{server.base}/feeds/{BUNDLED_ID}?speed=fast", "--duration", "1s"],
        ["load", "http://127.0.0.1:9/streams/x", "--duration", "1s"],
        ["load", "gopher://x/streams/y"],
        ["load", f"{server.base}/feeds/{BUNDLED_ID}", "--faults", "bogus:1", "--duration", "1s"],
    ]
    for argv in cases:
        assert await asyncio.to_thread(commands.main, argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("livesim: ") and err.count("\n") == 1, (argv, err)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 100_000:
        argv = ["load", f"{server.base}/streams/fast", "--clients", "100000"]
        assert await asyncio.to_thread(commands.main, argv) == 2
        assert "use --procs" in capsys.readouterr().err
    monkeypatch.setenv("LIVESIM_URL", f"{server.base}/streams/nope")
    assert await asyncio.to_thread(commands.main, ["load", "--duration", "1s"]) == 2
    assert "nope" in capsys.readouterr().err


async def test_warmup_leaves_the_early_lateness_out(
    start_server: StartServer, tmp_path: Path
) -> None:
    """A stall of 1 s early on makes the first events that late; with a warm-up past it they
    are judged (none missing) but their lateness is not counted."""
    server = await start_server(streams=[FAST])
    out = tmp_path / "load.json"
    argv = ["load", f"{server.base}/streams/fast", "--clients", "4", "--duration", "2500ms"]
    argv += ["--faults", "stall_after:1,stall:1s", "--json", str(out)]
    assert await asyncio.to_thread(commands.main, argv) == 0
    cold = json.loads(out.read_text())
    assert await asyncio.to_thread(commands.main, [*argv, "--warmup", "1500ms"]) == 0
    warm = json.loads(out.read_text())
    assert cold["warmup_s"] == 0 and warm["warmup_s"] == 1.5
    assert cold["lateness_ms"]["max"] >= 900
    assert 0 < warm["lateness_ms"]["count"] < cold["lateness_ms"]["count"]
    assert warm["lateness_ms"]["max"] < 900
    assert warm["events"]["missing"] == 0 and warm["events"]["received"] > 0


def test_a_warmup_as_long_as_the_run_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["load", "http://127.0.0.1:9/streams/x", "--duration", "10s", "--warmup", "10s"]
    assert commands.main(argv) == 2
    err = capsys.readouterr().err
    assert err == (
        "livesim: --warmup: 10s leaves no lateness to count in --duration 10s; "
        "expected a shorter warm-up\n"
    )


@pytest.mark.parametrize(
    "flag,value",
    [
        ("--clients", "0"),
        ("--clients", "1e9"),
        ("--clients", "-1"),
        ("--ramp", "-5/s"),
        ("--churn", "nan"),
        ("--churn", "1e308"),
        ("--duration", "0"),
        ("--duration", "-1s"),
        ("--duration", "1e308"),
        ("--max-p99", "soon"),
        ("--warmup", "-1s"),
        ("--warmup", "nan"),
        ("--warmup", "1e308"),
        ("--procs", "0"),
        ("--procs", str(2**64)),
        ("--transport", "carrier-pigeon"),
    ],
)
def test_bad_options_are_usage_errors(
    flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit:
        commands.main(["load", "http://127.0.0.1:9/streams/x", flag, value])
    assert exit.value.code == 2
    assert flag in capsys.readouterr().err


@pytest.mark.parametrize("url", ["/streams/fast", f"/feeds/{BUNDLED_ID}?speed=600&max_gap=1s"])
async def test_injected_duplicates_are_found_and_fail_the_run(
    start_server: StartServer, url: str
) -> None:
    server = await start_server(streams=[FAST])
    options = LoadOptions(
        url=server.base + url,
        clients=6,
        transport="mix",
        ramp=0,
        duration=2.0,
        faults="duplicate:0.3,garble:0.2,delay:1ms",
    )
    report = await run_share(options, await prepare(options))
    assert report.counts.duplicate > 0
    seen = report.faults()
    assert seen["duplicate"]["handled"] == report.counts.duplicate
    assert seen["garble"]["handled"] == report.counts.malformed > 0
    assert seen["delay"]["handled"] == "lateness"
    if not report.target.private:
        assert 0 < report.counts.duplicate <= seen["duplicate"]["injected"]  # type: ignore[operator]
    else:
        assert seen["duplicate"]["injected"] is None
    assert report.counts.missing == 0 and report.counts.out_of_order == 0
    assert any("duplicate" in failure for failure in report.failures())
    assert sum(row["duplicate"] for row in report.rows) == report.counts.duplicate


async def test_the_installed_command(start_server: StartServer, tmp_path: Path) -> None:
    """``livesim load`` as a user runs it: its own process, JSON written, exit status."""
    server = await start_server(streams=[FAST])
    out = tmp_path / "run.json"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulator",
        "load",
        "--url",
        f"{server.base}/streams/fast",
        "--clients",
        "20",
        "--transport",
        "mix",
        "--duration",
        "2s",
        "--churn",
        "5/s",
        "--json",
        str(out),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    assert b"PASS" in stdout and b"missing" in stdout
    data = json.loads(out.read_text())
    assert data["events"]["missing"] == data["events"]["duplicate"] == 0
    assert data["connections"]["churned"] > 0


# Hostile servers and servers that go away (issue #12) -------------------------------------------


@pytest.fixture
async def hostile() -> AsyncIterator[Hostiles]:
    servers = Hostiles()
    yield servers
    await servers.close()


@contextlib.contextmanager
def peak_memory() -> Iterator[list[int]]:
    """``[peak bytes]`` allocated by Python meanwhile (tracemalloc)."""
    peak = [0]
    tracemalloc.start()
    try:
        yield peak
    finally:
        peak[0] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


MiB = 1024 * 1024


async def run_on_time(options: LoadOptions) -> Any:
    """``run_share`` that must end within its duration, drain and 10 s of slack."""
    target = parse_target(options.url or "")
    assert not isinstance(target, str)
    began = time.monotonic()
    async with asyncio.timeout(options.duration + options.drain + 10):
        report = await run_share(options, target)
    return report, time.monotonic() - began


async def test_a_server_that_goes_away_fails_the_run(start_server: StartServer) -> None:
    server = await start_server(streams=[FAST])
    options = LoadOptions(
        url=f"{server.base}/streams/fast", clients=4, ramp=0, duration=2.0, drain=1.0
    )
    run = asyncio.create_task(run_on_time(options))
    await asyncio.sleep(0.7)
    await server.runner.cleanup()  # as on SIGTERM: the connections end, new ones are refused
    report, _ = await run
    failures = report.failures()
    assert any(f.startswith("threshold connect_failures==0: ") for f in failures), failures
    assert report.connections["refused"] > 0 and report.status() in (2, 99)
    assert "PASS" not in report.verdict()


@pytest.mark.parametrize(
    "transport,route",
    [
        ("sse", sse(b"id: x-1\ndata: ", then=b"x" * 65536)),  # no blank line, ever
        ("sse", sse(b"id: x-1\n", then=b"data: xxxxxxxx\n" * 4096)),  # endless data lines
        ("ws", websocket(claimed_frame(b"", claimed=2**62), then=b"x" * 65536)),
        ("ws", websocket(claimed_frame(b'{"id":"x-1"', claimed=2 * MiB), then=b"x" * 65536)),
    ],
)
async def test_an_endless_frame_fails_the_run_on_time_in_bounded_memory(
    hostile: Hostiles, transport: str, route: Handler
) -> None:
    url = livesim_like(await hostile(), **{"events" if transport == "sse" else "ws": route})
    options = LoadOptions(url=url, clients=1, transport=transport, ramp=0, duration=1, drain=1)
    with peak_memory() as peak:
        report, elapsed = await run_on_time(options)
    assert peak[0] < 24 * MiB
    assert report.connections["failed"] > 0
    assert any(f.startswith("connections failed: ") for f in report.failures())
    assert any("over 1048576 bytes" in error for error in report.errors), report.errors


async def test_max_event_bytes_breaks_a_connection_with_a_larger_frame(hostile: Hostiles) -> None:
    body = b"id: x-1\ndata: " + envelope("x-1", "post.created", post={"body": "x" * 2000})
    url = livesim_like(await hostile(), events=sse(body + b"\n\n"))
    for limit, failed in ((1024, True), (4096, False)):
        options = LoadOptions(
            url=url, clients=1, ramp=0, duration=1, drain=0, max_event_bytes=limit
        )
        report, _ = await run_on_time(options)
        assert bool(report.connections["failed"]) is failed, limit
        assert report.counts.received == (0 if failed else 1)


@pytest.mark.parametrize(
    "value", ["0", "-1", "1023", "2GiB", "1e308", str(2**64), "nan", "1.5MiB", "x" * 10_000]
)
def test_bad_max_event_bytes_are_usage_errors(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in ("load", "tail"):
        with pytest.raises(SystemExit) as exit:
            commands.main([command, "http://127.0.0.1:9/streams/x", "--max-event-bytes", value])
        assert exit.value.code == 2
        err = capsys.readouterr().err
        assert "--max-event-bytes" in err and "expected a size" in err and len(err) < 600


# Every client accounted for, k6's exit statuses, thresholds (issue #15) -------------------------


async def test_clients_that_never_opened_fail_the_run_as_refusals(
    start_server: StartServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A server that takes 3 connections: 10 asked, 3 opened is not a pass, and the 7 refused
    (503) are refusals, not events lost. (Private replays: a full server refuses the API too, so
    a shared stream's end-of-run cursor could not be read.)"""
    server = await start_server(streams=[FAST], server={"max_connections": 3})
    out = tmp_path / "refused.json"
    url = f"{server.base}/feeds/{BUNDLED_ID}?speed=600&max_gap=1s"
    argv = ["load", url, "--clients", "10", "--duration", "1.5s"]
    argv += ["--ramp", "0", "--drain", "1s", "--json", str(out)]
    assert await asyncio.to_thread(commands.main, argv) == 99
    data = json.loads(out.read_text())
    assert data["clients"] == 10 and len(data["per_connection"]) == 10
    assert data["clients_opened"] == 3
    assert data["connections"]["refused"] >= 7 and data["connections"]["connect_failed"] == 0
    assert data["events"]["missing"] == 0
    assert "opened 3 of 10 clients" in data["failures"]
    assert data["exit"] == 99 and not data["passed"]
    printed = capsys.readouterr().out
    assert "opened 3 of 10 clients" in printed and "3 / 10" in printed


async def test_thresholds_are_shown_with_value_and_verdict(
    start_server: StartServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = await start_server(streams=[FAST])
    out = tmp_path / "t.json"
    toml = tmp_path / "t.toml"
    toml.write_text('[thresholds]\nresets = "<1000"\np99 = ["<1h", ">=0ms"]\n')
    argv = ["load", f"{server.base}/streams/fast", "--clients", "4", "--duration", "1.5s"]
    argv += ["--threshold", "p95<1h", "--threshold", "connect_failures<1%"]
    argv += ["--thresholds", str(toml), "--json", str(out)]
    assert await asyncio.to_thread(commands.main, argv) == 0
    data = json.loads(out.read_text())
    shown = {t["threshold"]: t for t in data["thresholds"]}
    assert set(shown) == {"p95<1h", "connect_failures<1%", "resets<1000", "p99<1h", "p99>=0ms"}
    assert all(t["passed"] for t in shown.values())
    assert shown["connect_failures<1%"]["value"] == 0.0
    assert shown["p95<1h"]["unit"] == "ms" and shown["p95<1h"]["value"] is not None
    assert "threshold p95<1h" in capsys.readouterr().out
    argv += ["--threshold", "resets>5"]  # no reset in 1.5 s at speed 60: fails, exit 99
    assert await asyncio.to_thread(commands.main, argv) == 99
    data = json.loads(out.read_text())
    assert [t["threshold"] for t in data["thresholds"] if not t["passed"]] == ["resets>5"]
    assert data["failures"] == ["threshold resets>5: 0 FAILED"]


async def test_wrong_events_are_exit_1_over_thresholds(start_server: StartServer) -> None:
    server = await start_server(streams=[FAST])
    argv = ["load", f"{server.base}/streams/fast", "--clients", "3", "--duration", "1.5s"]
    argv += ["--faults", "duplicate:0.5", "--threshold", "p99<0ms"]
    assert await asyncio.to_thread(commands.main, argv) == 1


@pytest.mark.parametrize(
    "text",
    [
        "p95",
        "p95<",
        "p95<200x",
        "p95<200%",
        "p101<1s",
        "p95<-1ms",
        "p95<nan",
        "p95<inf",
        "p95<1e9",
        "resets<10ms",
        "resets<1.5",
        "connect_failures<101%",
        "bogus<1",
        "p95=<200ms",
        "p95<200ms; rm -rf /",
        "x" * 5000,
        "",
    ],
)
def test_bad_thresholds_are_one_line_usage_errors(
    text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit:
        commands.main(["load", "http://127.0.0.1:9/streams/x", "--threshold", text])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert "--threshold" in err and "threshold" in err.splitlines()[-1] and len(err) < 1500


@pytest.mark.parametrize(
    "content,named",
    [
        ("thresholds = 3", "expected 'thresholds'"),
        ('thresholds = ["p95<1s", "bogus<1"]', "thresholds[1]"),
        ("[thresholds]\np95 = 200", "thresholds.p95"),
        ('[thresholds]\nresets = ["<1", "<1ms"]', "thresholds.resets[1]"),
        ("limits = []", "unknown key 'limits'"),
        ("thresholds = [", "t.toml"),
        (b"\xff\xfe", "t.toml"),
    ],
)
def test_bad_threshold_files_are_one_line_usage_errors(
    content: str | bytes, named: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "t.toml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    argv = ["load", "http://127.0.0.1:9/streams/x", "--thresholds", str(path)]
    assert commands.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("livesim: --thresholds ") and named in err and err.count("\n") == 1
    assert commands.main([*argv[:-1], str(tmp_path / "absent.toml")]) == 2
    assert "absent.toml" in capsys.readouterr().err


async def test_a_ramp_too_slow_for_the_duration_fails_the_run(start_server: StartServer) -> None:
    server = await start_server(streams=[FAST])
    options = LoadOptions(
        url=f"{server.base}/streams/fast", clients=20, ramp=4, duration=1.0, drain=0.5
    )
    report = await run_share(options, await prepare(options))
    assert report.clients == 20 and len(report.rows) == 20
    assert report.status() == 99
    opened = report.connections["clients_opened"]
    assert 0 < opened < 20
    assert f"opened {opened} of 20 clients (--ramp 4/s starts 4 in --duration 1s)" in (
        report.failures()
    )
