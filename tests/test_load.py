"""livesim load: the judge on frames we build, the decoders byte by byte, and real runs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import BUNDLED_ID, StartServer
from hostile import Handler, Hostiles, livesim_like, sse, websocket
from hostile import ws_frame as claimed_frame

from clients.frames import SseDecoder, WsDecoder
from clients.judge import Counts, Histogram, Sequence, parse_due, split_id
from clients.load import LoadOptions, prepare, run_share, summary
from clients.target import ClientError, parse_target
from simulator.cli import clients as commands

INC = b"abc"


def ids(*serials: int, incarnation: bytes = INC) -> list[bytes]:
    return [incarnation + b"-%d" % s for s in serials]


def judge(serials: list[int], start: bytes | None = b"abc-0", target: int | None = None) -> Counts:
    sequence = Sequence(start)
    for event_id in ids(*serials):
        sequence.event(event_id)
    return sequence.finish((INC, target) if target is not None else None)


# The judge, on sequences we construct ---------------------------------------------------------


def test_in_order_sequence_is_clean() -> None:
    counts = judge([1, 2, 3, 4, 5], target=5)
    assert counts.as_dict() | {"bytes": 0} == Counts(expected=5, received=5).as_dict()


def test_duplicates_missing_and_out_of_order_are_counted_exactly() -> None:
    # 3 twice (duplicate), 5 skipped then late (out of order), 7 never (missing), 9 twice late
    counts = judge([1, 2, 3, 3, 4, 6, 5, 8, 9, 10, 9], target=10)
    assert (counts.duplicate, counts.out_of_order, counts.missing) == (2, 1, 1)
    assert counts.expected == 10 and counts.received == 11


def test_the_tail_short_of_the_target_is_missing() -> None:
    counts = judge([1, 2, 3], target=7)
    assert counts.missing == 4 and counts.expected == 7


def test_a_swap_is_one_out_of_order_and_nothing_missing() -> None:
    counts = judge([1, 3, 2, 4], target=4)
    assert (counts.out_of_order, counts.missing, counts.duplicate) == (1, 0, 0)


def test_resuming_from_the_cursor_must_continue_at_the_next_serial() -> None:
    sequence = Sequence(b"abc-10")
    assert sequence.cursor == "abc-10"
    for event_id in ids(11, 12):
        sequence.event(event_id)
    assert sequence.cursor == "abc-12"
    for event_id in ids(12, 14):  # a reconnect that repeats 12 and loses 13
        sequence.event(event_id)
    counts = sequence.finish()
    assert (counts.duplicate, counts.missing, counts.expected) == (1, 1, 4)


def test_a_logged_reset_is_in_the_sequence_and_starts_a_new_stretch() -> None:
    sequence = Sequence(b"abc-0")
    for event_id in ids(1, 2):
        sequence.event(event_id)
    sequence.event(b"abc-4", reset_reason=b"loop")  # 3 lost before the loop's reset
    sequence.event(b"abc-5")
    counts = sequence.finish((INC, 5))
    assert (counts.missing, counts.resets, counts.expected) == (1, 1, 5)


def test_a_connection_reset_restarts_at_its_own_id() -> None:
    # shared stream, cursor too old: reset "resume" carries the latest id, live follows
    sequence = Sequence(b"abc-3")
    sequence.event(b"abc-90", reset_reason=b"resume")
    sequence.event(b"abc-91")
    counts = sequence.finish((INC, 91))
    assert (counts.missing, counts.duplicate, counts.expected) == (0, 0, 1)
    # private replay: a reconnect gets a new replay, its reset at ...-0, then 1, 2, ...
    sequence = Sequence(b"")
    for event_id in ids(1, 2, 3):
        sequence.event(event_id)
    sequence.event(b"new-0", reset_reason=b"private")
    for event_id in ids(1, 2, 2, incarnation=b"new"):
        sequence.event(event_id)
    counts = sequence.finish()
    assert (counts.missing, counts.duplicate, counts.foreign, counts.expected) == (0, 1, 0, 5)


def test_any_other_reset_reason_is_a_connection_reset() -> None:
    sequence = Sequence(b"abc-3")
    sequence.event(b"abc-50", reset_reason=b"no_resume")  # the fault: cursor ignored
    sequence.event(b"abc-51")
    counts = sequence.finish((INC, 51))
    assert (counts.missing, counts.duplicate, counts.connection_resets) == (0, 0, 1)


def test_a_private_replay_must_start_at_serial_one() -> None:
    sequence = Sequence(b"")
    for event_id in ids(3, 4, incarnation=b"xyz"):
        sequence.event(event_id)
    assert sequence.finish().missing == 2


def test_another_incarnation_without_a_reset_is_foreign() -> None:
    sequence = Sequence(b"abc-1")
    sequence.event(b"abc-2")
    sequence.event(b"zzz-40")
    sequence.event(b"zzz-41")
    counts = sequence.finish()
    assert counts.foreign == 1 and counts.missing == 0


def test_a_huge_jump_is_counted_without_remembering_every_serial() -> None:
    sequence = Sequence(b"abc-0")
    sequence.event(b"abc-999999999999")
    assert len(sequence.gaps) == 0
    assert sequence.finish().missing == 999999999998


@pytest.mark.parametrize(
    "text", [b"", b"abc", b"-5", b"abc-", b"abc-x1", b"abc-" + b"9" * 19, b"abc-1.5", b"abc--1"]
)
def test_ids_livesim_never_issues_are_malformed(text: bytes) -> None:
    assert split_id(text) is None or split_id(text) == (b"abc-", 1)
    sequence = Sequence(b"abc-0")
    sequence.event(text)
    counts = sequence.finish()
    assert counts.received + counts.malformed == 1


def test_histogram_percentiles_and_exact_merge() -> None:
    one, two, both = Histogram(), Histogram(), Histogram()
    for i in range(100):
        (one if i % 2 else two).add(i / 1000)
        both.add(i / 1000)
    one.merge(two)
    assert one.buckets == both.buckets and one.count == 100
    assert (one.percentile(50), one.percentile(99), one.percentile(100)) == (49.0, 98.0, 99.0)
    assert Histogram().percentile(50) is None
    assert Histogram.from_dict(json.loads(json.dumps(one.as_dict()))).buckets == one.buckets


def test_parse_due() -> None:
    assert parse_due(b"1970-01-01T00:01:02.500Z") == 62.5
    moment = datetime(2026, 11, 25, 9, 46, 10, 232000, tzinfo=UTC).timestamp()
    assert parse_due(b"2026-11-25T09:46:10.232Z") == pytest.approx(moment)
    assert parse_due(b"2026-11-25T09:46:10Z") == pytest.approx(moment - 0.232)  # slow path
    for bad in (b"", b"garbage", b"2026-13-25T09:46:10.232Z", b"2026-11-25T09:46:1x.232Z"):
        assert parse_due(bad) is None


# Decoders --------------------------------------------------------------------------------------


class Collect:
    def __init__(self) -> None:
        self.events: list[tuple[bytes, bytes, float | None, bytes | None]] = []
        self.bad = 0

    def event(
        self, event_id: bytes, type: bytes, due: float | None, reason: bytes | None, now: float
    ) -> None:
        self.events.append((event_id, type, due, reason))

    def malformed(self) -> None:
        self.bad += 1


def envelope(event_id: str, type: str, **extra: Any) -> bytes:
    body = {
        "id": event_id,
        "type": type,
        "stream": "s",
        "archive_time": None,
        "due_at": "1970-01-01T00:01:02.500Z",
        **extra,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def sse_body() -> bytes:
    frames = [
        b"retry: 2000\n\n",
        b"id: a-1\nevent: post.created\ndata: %s\n\n"
        % envelope("a-1", "post.created", post={"body": '"due_at":"2000-01-01T00:00:00.000Z"'}),
        b": ping\n\n",
        b"data: {not json\n\n",  # a garbled frame: no id
        b"id: a-2\nevent: stream.reset\ndata: %s\n\n"
        % envelope("a-2", "stream.reset", data={"reason": "loop"}),
    ]
    return b"".join(b"%x\r\n%s\r\n" % (len(f), f) for f in frames) + b"0\r\n\r\n"


def test_sse_decoder_whatever_the_chunking() -> None:
    body = sse_body()
    for size in (1, 2, 3, 7, 64, len(body)):
        sink = Collect()
        decoder = SseDecoder(sink, chunked=True)
        for at in range(0, len(body), size):
            decoder.feed(body[at : at + size], 0.0)
        assert sink.events == [
            (b"a-1", b"post.created", 62.5, None),
            (b"a-2", b"stream.reset", 62.5, b"loop"),
        ]
        assert sink.bad == 1 and decoder.heartbeats == 1 and decoder.ended


def ws_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    size = len(payload)
    if size < 126:
        return bytes((0x80 | opcode, size)) + payload
    if size < 65536:
        return bytes((0x80 | opcode, 126)) + size.to_bytes(2) + payload
    return bytes((0x80 | opcode, 127)) + size.to_bytes(8) + payload


def test_ws_decoder_whatever_the_chunking() -> None:
    big = envelope("a-2", "post.created", post={"body": "x" * 70000})
    stream = b"".join(
        [
            ws_frame(envelope("a-1", "post.created")),
            ws_frame(b"ping!", 0x9),
            ws_frame(b'{"type":"pong"}'),
            ws_frame(b"not json at all"),
            ws_frame(envelope("a-9", "post.created", post={"body": "cut"})[:30]),  # garbled
            ws_frame(big),
            ws_frame(envelope("a-3", "stream.reset", data={"reason": "private"})),
            ws_frame(b"\x03\xe8", 0x8),
        ]
    )
    for size in (1, 5, 1000, len(stream)):
        sink = Collect()
        decoder = WsDecoder(sink)
        control: list[tuple[int, bytes]] = []
        for at in range(0, len(stream), size):
            control += decoder.feed(stream[at : at + size], 0.0)
        assert [e[0] for e in sink.events] == [b"a-1", b"a-2", b"a-3"]
        assert sink.events[2][3] == b"private"
        assert control == [(0x9, b"ping!"), (0x8, b"\x03\xe8")]
        assert sink.bad == 2 and decoder.messages == 1


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
    assert await asyncio.to_thread(commands.main, argv) == 1


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
        assert await asyncio.to_thread(commands.main, argv) == 1, argv
        err = capsys.readouterr().err
        assert err.startswith("livesim: ") and err.count("\n") == 1, (argv, err)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 100_000:
        argv = ["load", f"{server.base}/streams/fast", "--clients", "100000"]
        assert await asyncio.to_thread(commands.main, argv) == 1
        assert "use --procs" in capsys.readouterr().err
    monkeypatch.setenv("LIVESIM_URL", f"{server.base}/streams/nope")
    assert await asyncio.to_thread(commands.main, ["load", "--duration", "1s"]) == 1
    assert "nope" in capsys.readouterr().err


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
        faults="duplicate:0.3",
    )
    report = await run_share(options, await prepare(options))
    assert report.counts.duplicate > 0
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
    assert any(f.startswith("connections refused: ") for f in failures), failures
    assert report.connections["refused"] > 0
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


@pytest.mark.parametrize(
    "body,error",
    [
        (b"-5\r\nid: x\r\n", "a bad chunk size"),  # was taken as -5: stuck, buffering forever
        (b"zz\r\n", "a bad chunk size"),
        (b"1" * 2000, "a chunk-size line over 1024 bytes"),
        (b"%x\r\n" % 5000 + b"id: x-1\ndata: " + b"x" * 4990, "an SSE frame over 4096 bytes"),
    ],
)
def test_sse_decoder_refuses_what_is_not_a_chunked_event_stream(body: bytes, error: str) -> None:
    sink = Collect()
    decoder = SseDecoder(sink, chunked=True, max_frame=4096)
    for at in range(0, len(body), 100):
        decoder.feed(body[at : at + 100], 0.0)
        assert decoder.held <= 4096 + 1024
    decoder.feed(b"more" * 1000, 0.0)
    assert decoder.error is not None and decoder.error.startswith(error)
    assert decoder.held == 0 and sink.events == []


def test_ws_decoder_refuses_a_frame_over_its_bound_before_it_arrives() -> None:
    sink = Collect()
    decoder = WsDecoder(sink, max_frame=4096)
    assert decoder.feed(ws_frame(b"x" * 4096)[:3000], 0.0) == []
    assert decoder.error is None and decoder.held == 3000
    decoder = WsDecoder(sink, max_frame=4096)
    decoder.feed(bytes((0x81, 127)) + (2**62).to_bytes(8), 0.0)
    assert decoder.error == (
        f"a WebSocket frame of {2**62} bytes, over 4096 bytes (--max-event-bytes)"
    )
    assert decoder.held == 0
    decoder.feed(b"x" * 65536, 0.0)
    assert decoder.held == 0 and sink.events == []
    decoder = WsDecoder(sink)
    decoder.feed(bytes((0x81, 0x85)) + b"\0\0\0\0hello", 0.0)
    assert decoder.error == "a masked frame from the server"


def test_the_decoders_are_linear_in_a_frame_that_arrives_slowly() -> None:
    sink = Collect()
    frame = b"id: x-1\ndata: " + envelope("x-1", "post.created", post={"body": "x" * 900_000})
    sse_decoder = SseDecoder(sink, chunked=False)
    ws_decoder = WsDecoder(sink)
    ws = ws_frame(frame[14:])
    began = time.monotonic()
    for at in range(0, len(frame), 256):
        sse_decoder.feed(frame[at : at + 256], 0.0)
        ws_decoder.feed(ws[at : at + 256], 0.0)
    sse_decoder.feed(b"\n\n" + ws[len(frame) :], 0.0)
    ws_decoder.feed(ws[len(frame) :], 0.0)
    assert time.monotonic() - began < 2.0  # a copy of the whole rest per chunk: minutes
    assert [e[0] for e in sink.events] == [b"x-1", b"x-1"]


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
