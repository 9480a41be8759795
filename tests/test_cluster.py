"""``web/cluster.py``'s pure parts: a command as it goes into the input log reads back as the
same command (every node applies exactly what was sent)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, get_args

import orjson
import pytest
from core_helpers import START, make_feed, make_replay
from redis_nodes import redis_server

from simulator.core import checkpoint
from simulator.core.commands import Command, Pause, command_message, parse_command, parse_logged
from simulator.core.errors import InputError
from simulator.core.replay import Options
from simulator.settings import StreamConfig
from simulator.web import cluster_link
from simulator.web.cluster import Node, fingerprint
from simulator.web.cluster_link import Checkpoint, Link, encode
from simulator.web.stream import Stream, Unavailable

MESSAGES: list[dict[str, Any]] = [
    {"op": "pause"},
    {"op": "resume"},
    {"op": "restart"},
    {"op": "speed", "speed": "max"},
    {"op": "speed", "speed": 2.5},
    {"op": "seek", "to": "+10m"},
    {"op": "seek", "to": " 2014-06-25T06:55:29Z"},
    {"op": "seek", "to": "end"},
    {"op": "post", "body": "b", "headline": "h", "key_event": True, "pinned": True},
    {"op": "post", "body": "", "media": [{"kind": "image", "url": "https://example.org/a.jpg"}]},
    {"op": "update_post", "post": "p-1", "body": "new", "pinned": False},
    {"op": "delete_post", "post": "live-3"},
    {"op": "pin_post", "post": "p-2"},
    {"op": "unpin_post", "post": "p-2"},
    {"op": "step", "events": 3},
    {"op": "step", "until": "+5m"},
    {"op": "faults", "faults": "disconnect_after:2,drop:0.1234567,seed:3"},
    {"op": "faults", "faults": None},
]


def test_every_command_type_has_a_message_here() -> None:
    """A command type added without its input-log form would fail on a cluster (an assert)."""
    logged = {type(parse_logged(m, "$")) for m in MESSAGES}
    assert logged == set(get_args(Command))


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: str(m["op"]))
def test_a_command_reads_back_from_the_log_as_itself(message: dict[str, object]) -> None:
    command: Command = parse_logged(message, "$")
    logged = orjson.loads(orjson.dumps(command_message(command)))
    assert parse_logged(logged, "redis") == command


def test_faults_are_no_client_op() -> None:
    """A client changes a stream's faults with PATCH only, not as a WebSocket op."""
    with pytest.raises(InputError, match="unknown op"):
        parse_command("faults", {"faults": "drop:1"}, "$")


def test_the_fingerprint_tells_settings_apart() -> None:
    one = StreamConfig.model_validate({"id": "s", "feed": "f", "speed": 60})
    same = StreamConfig.model_validate({"feed": "f", "id": "s", "speed": "60"})
    other = StreamConfig.model_validate({"id": "s", "feed": "f", "speed": 61})
    assert fingerprint(one) == fingerprint(same) != fingerprint(other)


async def test_a_checkpoint_is_encoded_off_the_loop_and_reads_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The owner's loop only copies (``capture``); the encoding runs in a worker thread."""
    threads: list[int] = []
    pieces = checkpoint.pieces

    def spied(captured: checkpoint.Captured) -> Iterator[bytes]:
        threads.append(threading.get_ident())
        yield from pieces(captured)

    replay = make_replay([0, 5, 9], options=Options(loop=True))
    replay.advance(START + 6)
    expected = checkpoint.export(replay)
    monkeypatch.setattr(checkpoint, "pieces", spied)
    where = Checkpoint(b"5-1", START + 6, 7, b"", "drop:0.5")
    saved = await encode((where, checkpoint.capture(replay)))
    assert threads and threading.get_ident() not in threads
    read = Checkpoint.read(saved.fields())
    assert read == replace(where, state=saved.state, compressed=True)
    assert await read.json() == expected


async def test_a_command_not_read_back_in_time_is_refused_and_redis_stays_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real Redis that took the command: the read-back, not Redis, was late (the stream was
    being taken up from a checkpoint), so the node must not call Redis lost (and go unready)."""
    with redis_server(tmp_path) as redis:
        node = Node(redis.url, 1.0)
        await node.start()
        try:
            stream = Stream("s", make_feed([0, 5]), make_replay([0, 5]), max_pending=16)
            link = stream.link = node.links["s"] = Link(node, stream, b"{}", api=False)
            link._holds = 1  # the node's reader leaves the stream alone
            monkeypatch.setattr(cluster_link, "COMMAND_TIMEOUT", 0.2)
            with pytest.raises(Unavailable, match="not read back in time"):
                await stream.send(Pause())
            assert node.up, node.reason
        finally:
            await node.close()
