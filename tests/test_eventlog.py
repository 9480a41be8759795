"""``core/eventlog.py``: the current epoch's events, bounded in count and bytes, for resume."""

from __future__ import annotations

import asyncio

from conftest import BUNDLED_ID, StartServer
from websockets.asyncio.client import connect as ws_connect

from simulator.core.eventlog import WS_HEADER, EventLog, LogPool, event_size
from simulator.core.wire import Event, EventType, encode
from simulator.web.state import STREAMS

TIMEOUT = 10


def event(serial: int, body: str = "") -> Event:
    event_id = f"inc-{serial}"
    envelope = {"id": event_id, "type": "post.created", "post": {"body": body}}
    return encode(serial, event_id, EventType.POST_CREATED, envelope)


def log_of(serials: range, limit: int = 1000, max_bytes: int = 1 << 20) -> EventLog:
    log = EventLog(limit, max_bytes)
    for serial in serials:
        log.append(event(serial))
    return log


def test_since_gives_exactly_the_later_events_for_every_held_cursor() -> None:
    log = log_of(range(1, 11))
    for cursor in range(11):
        assert [e.serial for e in log.since(cursor, 10) or []] == list(range(cursor + 1, 11))
    assert log.since(10, 10) == []


def test_since_is_none_for_a_cursor_ahead_or_no_longer_held() -> None:
    log = log_of(range(1, 11), limit=4)
    assert [e.serial for e in log] == [7, 8, 9, 10]
    assert log.since(5, 10) is None  # event 6 was dropped
    assert [e.serial for e in log.since(6, 10) or []] == [7, 8, 9, 10]
    assert log.since(11, 10) is None


def test_clear_starts_an_epoch_and_the_cursor_before_its_reset_still_resumes() -> None:
    log = log_of(range(1, 6))
    log.clear()
    assert len(log) == 0 and log.size == 0
    log.append(event(6))  # the epoch's stream.reset
    log.append(event(7))
    assert [e.serial for e in log.since(5, 7) or []] == [6, 7]
    assert log.since(4, 7) is None


def test_the_byte_bound_holds_and_counts_every_encoding() -> None:
    one = event(1, "x" * 100)
    assert event_size(one) == 2 * len(one.json) + WS_HEADER + len(one.sse)
    one.ws_frame  # noqa: B018 - built or not, the bound counted it already
    assert event_size(one) == 2 * len(one.json) + WS_HEADER + len(one.sse)
    bound = 5 * event_size(one)
    log = EventLog(1000, bound)
    for serial in range(1, 50):
        log.append(event(serial, "x" * 100))
        assert log.size <= bound
    assert 4 <= len(log) <= 5  # ids grow a digit on the way


def test_logs_sharing_a_pool_stay_within_it_and_give_back_on_close() -> None:
    size = event_size(event(1, "x" * 100))
    pool = LogPool(6 * size)
    first, second = EventLog(1000, 1 << 20), EventLog(1000, 1 << 20)
    first.share(pool)
    second.share(pool)
    for serial in range(1, 20):
        first.append(event(serial, "x" * 100))
        second.append(event(serial, "x" * 100))
        assert pool.used <= pool.limit
    assert pool.used == first.size + second.size
    first.close()
    assert pool.used == second.size and len(pool) == 1


async def test_event_log_memory_is_bounded(start_server: StartServer) -> None:
    """Through a real server: a WebSocket client's commands fill the log past its byte bound.
    The client reads what it is sent, up to the pong after its commands, so that it can close
    at once (a client that never reads waits out its close timeout)."""
    server = await start_server(server={"max_log_bytes": 65536, "ws_control_rate": 100_000})
    async with (
        asyncio.timeout(TIMEOUT),
        ws_connect(f"{server.ws_base}/streams/{BUNDLED_ID}/ws") as ws,
    ):
        for _ in range(400):
            await ws.send('{"op": "pause"}')
        await ws.send('{"op": "ping"}')
        async for message in ws:
            if '"type":"pong"' in str(message):
                break
    replay = server.app[STREAMS][BUNDLED_ID].replay
    assert replay.serial > 400
    assert sum(len(e.json) + len(e.sse) + len(e.ws_frame) for e in replay.log) <= 65536
