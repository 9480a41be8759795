"""``web/cluster.py``'s pure parts: a command as it goes into the input log reads back as the
same command (every node applies exactly what was sent)."""

from __future__ import annotations

from typing import Any, get_args

import orjson
import pytest

from simulator.core.commands import Command, command_message, parse_command
from simulator.settings import StreamConfig
from simulator.web.cluster import fingerprint

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
]


def test_every_command_type_has_a_message_here() -> None:
    """A command type added without its input-log form would fail on a cluster (an assert)."""
    logged = {type(parse_command(str(m["op"]), m, "$")) for m in MESSAGES}
    assert logged == set(get_args(Command))


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: str(m["op"]))
def test_a_command_reads_back_from_the_log_as_itself(message: dict[str, object]) -> None:
    command: Command = parse_command(str(message["op"]), message, "$")
    logged = orjson.loads(orjson.dumps(command_message(command)))
    assert parse_command(logged["op"], logged, "redis") == command


def test_the_fingerprint_tells_settings_apart() -> None:
    one = StreamConfig.model_validate({"id": "s", "feed": "f", "speed": 60})
    same = StreamConfig.model_validate({"feed": "f", "id": "s", "speed": "60"})
    other = StreamConfig.model_validate({"id": "s", "feed": "f", "speed": 61})
    assert fingerprint(one) == fingerprint(same) != fingerprint(other)
