"""The WebSocket message budget: exact arithmetic with an injected clock."""

from __future__ import annotations

import orjson
import pytest
from conftest import BUNDLED_ID, StartServer
from server_helpers import metrics_text
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from simulator.web.ratelimit import TokenBucket


def test_burst_then_rate() -> None:
    bucket = TokenBucket(rate=10, burst=20, now=0.0)
    assert [bucket.take(0.0) for _ in range(21)] == [True] * 20 + [False]
    assert bucket.take(0.05) is False  # half a token
    assert bucket.take(0.1) is True
    assert bucket.take(0.1) is False


def test_idle_time_refills_only_up_to_the_burst() -> None:
    bucket = TokenBucket(rate=1, burst=3, now=0.0)
    assert all(bucket.take(0.0) for _ in range(3))
    assert sum(bucket.take(1e9) for _ in range(10)) == 3


# The budget on a real WebSocket (issue #6) -----------------------------------------------------


async def test_ws_messages_over_the_rate_get_one_error_then_a_close(
    start_server: StartServer,
) -> None:
    server = await start_server(server={"ws_control_rate": 5})
    async with ws_connect(f"{server.ws_base}/streams/{BUNDLED_ID}/ws") as ws:
        for _ in range(10):  # the burst: twice the rate
            await ws.send('{"op": "ping"}')
        for _ in range(1200):
            await ws.send('{"op": "ping"}')
        replies = []
        with pytest.raises(ConnectionClosed) as info:
            while True:
                replies.append(orjson.loads(await ws.recv()))
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008
    errors = [r for r in replies if r["type"] == "error"]
    assert len(errors) == 1 and "ws_control_rate" in errors[0]["error"]
    assert sum(r["type"] == "pong" for r in replies) >= 10
    status, text = await metrics_text(server)
    assert 'livesim_connections_refused_total{reason="ws_rate"} 1.0' in text
