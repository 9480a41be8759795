"""``web/metrics.py``: what ``/metrics`` counts after real traffic, counts kept for deleted streams
up to a bound, and slow drops of every kind (issue #12 F13).
"""

from __future__ import annotations

import asyncio
import re

import pytest
import sse
from conftest import BUNDLED_ID, StartServer
from server_helpers import (
    TIMEOUT,
    metrics_text,
)

LOOPING = {"id": "s", "feed": BUNDLED_ID, "speed": 600, "max_gap": "1s", "loop": True}


async def test_metrics_count_what_happened(start_server: StartServer) -> None:
    server = await start_server(streams=[{**LOOPING, "speed": "max", "loop": False}])
    async with (
        asyncio.timeout(TIMEOUT),
        sse.connect(server.session, server.base + "/streams/s/events") as reader,
    ):
        status, text = await metrics_text(server)
        assert 'livesim_subscribers{stream="s",transport="sse"} 1.0' in text
        await server.post("/api/streams/s/resume")
        while sse.envelope(await reader.next_event()).get("data", {}).get("reason") != "ended":
            pass
    async with server.session.get(
        server.base + "/streams/s/events", headers={"Last-Event-ID": "nope-1"}
    ):
        pass
    status, text = await metrics_text(server)
    assert status == 200
    assert 'livesim_events_total{stream="s",type="post.created"} 42.0' in text
    assert 'livesim_deliveries_total{transport="sse"}' in text
    assert 'livesim_resumes_total{result="reset"} 1.0' in text
    assert "livesim_slow_drops_total 0.0" in text
    assert "livesim_emit_lateness_seconds_bucket" in text


async def test_a_deleted_streams_event_counts_stay_in_metrics(start_server: StartServer) -> None:
    """F13: livesim_events_total of a deleted stream is kept, as docs/operations.md says."""
    server = await start_server()
    body = {"id": "gone", "feed": BUNDLED_ID, "speed": 10_000, "max_gap": "1s", "loop": False}
    assert (await server.post("/api/streams", body))[0] == 201
    created = re.compile(r'livesim_events_total\{stream="gone",type="post.created"\} (\d+)')
    async with asyncio.timeout(TIMEOUT):
        while True:
            if found := created.search((await metrics_text(server))[1]):
                break
            await asyncio.sleep(0.05)
    assert (await server.delete("/api/streams/gone"))[0] == 200
    kept = created.search((await metrics_text(server))[1])
    assert kept is not None and int(kept.group(1)) >= int(found.group(1)) > 0


@pytest.mark.parametrize("spec", ["delay:1h", "stall:1h"])
async def test_drops_by_a_delay_or_stall_overflow_are_counted_as_slow(
    start_server: StartServer, spec: str
) -> None:
    """F13: a subscriber dropped because its delay/stall stage held max_pending events is a
    slow drop like any other: in the stream's dropped_slow and livesim_slow_drops_total."""
    server = await start_server(streams=[{**LOOPING, "speed": 10_000}], server={"max_pending": 4})
    async with asyncio.timeout(TIMEOUT):
        async with server.session.get(f"{server.base}/streams/s/events?faults={spec}") as response:
            assert response.status == 200
            await response.read()  # the server ends the response when it drops the subscriber
        while True:
            if (await server.get("/api/streams/s"))[1]["dropped_slow"] == 1:
                break
            await asyncio.sleep(0.05)
    _, metrics = await metrics_text(server)
    assert "livesim_slow_drops_total 1.0" in metrics


def test_deleted_streams_keep_their_label_up_to_a_bound() -> None:
    """F13: creating and deleting streams for ever must not grow /metrics for ever."""
    from collections import Counter
    from types import SimpleNamespace

    from simulator.web.hub import Hub
    from simulator.web.metrics import RETIRED_STREAMS, Metrics, StreamCounts

    metrics = Metrics(list)

    def retire(stream_id: str, created: int) -> None:
        stream = SimpleNamespace(
            id=stream_id,
            private=False,
            hub=Hub(),
            counts=StreamCounts(events=Counter({"post.created": created})),
        )
        metrics.totals.retire(stream)  # type: ignore[arg-type]

    retire("first", 5)
    retire("first", 2)  # the same id again: its counts add up
    for number in range(RETIRED_STREAMS):
        retire(f"s{number}", 1)
    text = metrics.render().decode()
    assert 'stream="first"' not in text
    assert 'livesim_events_total{stream="deleted",type="post.created"} 7.0' in text
    newest = f"s{RETIRED_STREAMS - 1}"
    assert f'livesim_events_total{{stream="{newest}",type="post.created"}} 1.0' in text
    assert text.count("livesim_events_total{") == RETIRED_STREAMS + 1
