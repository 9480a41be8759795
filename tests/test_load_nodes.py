"""``livesim load URL [URL…]`` across nodes (#14): clients spread over the nodes of one stream,
``--switch-nodes`` moving every reconnect to the next node, judged exactly across the switch.
Two real nodes on one real redis-server (``redis_nodes``); one run against a single process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import BUNDLED_ID, StartServer
from redis_nodes import STREAM, Node, nodes, redis_server

import simulator.cli as commands
from clients.load import LoadOptions, prepare_nodes, run_share, summary


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Node]]:
    workdir = tmp_path_factory.mktemp("load-nodes")
    with redis_server(workdir) as redis, nodes(redis.url, workdir, 2) as started:
        yield started


async def test_switching_nodes_through_churn_and_faults_loses_nothing(
    pair: list[Node], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = (f"{node.url}/streams/{STREAM}" for node in pair)
    out = tmp_path / "load.json"
    argv = ["load", a, b, "--switch-nodes", "--clients", "20", "--transport", "mix"]
    argv += ["--ramp", "0", "--duration", "4s", "--churn", "5/s", "--drain", "5s"]
    argv += ["--faults", "disconnect_after:4,seed:7", "--json", str(out)]
    status = await asyncio.to_thread(commands.main, argv)
    shown, err = capsys.readouterr()
    assert out.exists(), (status, err)
    data = json.loads(out.read_text())
    assert status == 0, (shown, data["failures"])
    events = data["events"]
    assert (events["missing"], events["duplicate"], events["out_of_order"]) == (0, 0, 0)
    assert events["expected"] >= 20 * 10
    faults = "?faults=disconnect_after:4,seed:7"
    assert data["urls"] == [a + faults, b + faults] and data["switch_nodes"]
    assert data["connections"]["churned"] >= 5
    assert data["faults_seen"]["disconnect_after"]["handled"] > 0
    per_node = {node["url"].removesuffix(faults): node for node in data["nodes"]}
    assert [per_node[a]["clients"], per_node[b]["clients"]] == [10, 10]
    assert all(node["opened"] > 10 and node["refused"] == 0 for node in per_node.values())
    assert sum(n["opened"] for n in per_node.values()) == data["connections"]["opened"]
    rows = data["per_connection"]
    assert all(row["node"] == row["client"] % 2 for row in rows)
    switches = sum(row["switches"] for row in rows)  # a client stopped may not reconnect
    assert data["connections"]["reconnects"] - 20 <= switches <= data["connections"]["reconnects"]
    assert all(f"on node {node.url.removeprefix('http://')}" in shown for node in pair)
    assert "PASS" in shown


async def test_without_switching_each_client_stays_on_its_node(pair: list[Node]) -> None:
    urls = [f"{node.url}/streams/{STREAM}" for node in pair]
    options = LoadOptions(
        url=urls[0], nodes=(urls[1],), clients=6, ramp=0, duration=2.0, churn=4, drain=5.0
    )
    report = await run_share(options, await prepare_nodes(options))
    data = summary(report)
    assert data["passed"], data["failures"]
    assert data["connections"]["churned"] > 0
    assert all(row["switches"] == 0 for row in data["per_connection"])
    assert [node["clients"] for node in data["nodes"]] == [3, 3]


def test_urls_naming_other_streams_are_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused before any request (nothing listens on port 9): one line, exit 2."""
    monkeypatch.delenv("LIVESIM_URL", raising=False)
    one = "http://127.0.0.1:9/streams/one"
    cases = [
        (["load", one, "http://127.0.0.1:9/streams/two"], "streams/two, not streams/one"),
        (["load", one, "http://127.0.0.1:9/feeds/one"], "feeds/one, not streams/one"),
        (["load", f"{one}?x=1", "http://127.0.0.1:9/streams/one?x=2"], "one?x=2, not"),
        (["load", one, "--switch-nodes"], "--switch-nodes needs two URLs"),
        (["load", one, one, "--url", one], "not both"),
    ]
    for argv, said in cases:
        assert commands.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("livesim: ") and err.count("\n") == 1, (argv, err)
        assert said in err, (argv, err)


FAST = {"id": "fast", "feed": BUNDLED_ID, "speed": 60, "max_gap": "5s", "loop": True}


async def test_two_urls_of_one_single_process_server(start_server: StartServer) -> None:
    server = await start_server(streams=[FAST])
    url = f"{server.base}/streams/fast"
    options = LoadOptions(
        url=url,
        nodes=(f"{server.base}/api/streams/fast",),
        switch_nodes=True,
        clients=10,
        transport="mix",
        ramp=0,
        duration=2.0,
        churn=8,
        drain=5.0,
    )
    report = await run_share(options, await prepare_nodes(options))
    data = summary(report)
    assert data["passed"], data["failures"]
    assert (data["events"]["missing"], data["events"]["duplicate"]) == (0, 0)
    assert data["urls"] == [url, url]
    assert [node["clients"] for node in data["nodes"]] == [5, 5]
    assert all(node["opened"] >= 5 for node in data["nodes"])
    assert sum(row["switches"] for row in data["per_connection"]) >= 1
