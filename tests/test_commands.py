"""The command parser: every command from its JSON, and every bad input as an ``InputError``
naming its place under the caller's prefix. Pure: no server, no replay."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest
from core_helpers import START, make_replay
from pydantic import BaseModel, ValidationError

from simulator.core.commands import (
    MAX_STEP,
    MAX_TARGET,
    CreatePost,
    DeletePost,
    Edge,
    Offset,
    Pause,
    PinPost,
    PostOrTime,
    Restart,
    Resume,
    Seek,
    SetSpeed,
    Step,
    UpdatePost,
    parse_command,
    parse_target,
)
from simulator.core.errors import InputError, from_validation, join, shorten
from simulator.core.live import TooManyPosts, UnknownPost
from simulator.core.replay import TRANSITIONS, Change, Mode, Options
from simulator.core.timeline import MAX_SPEED


@pytest.mark.parametrize(
    ("op", "payload", "command"),
    [
        ("pause", {}, Pause()),
        ("resume", {"ignored": 1}, Resume()),
        ("restart", {}, Restart()),
        ("speed", {"speed": 4}, SetSpeed(4.0)),
        ("speed", {"speed": "max"}, SetSpeed(MAX_SPEED)),
        ("seek", {"to": "end"}, Seek(Edge(True), "end")),
        ("seek", {"to": "+10m"}, Seek(Offset(600.0), "+10m")),
        ("seek", {"to": "p3"}, Seek(PostOrTime("p3", None), "p3")),
        ("post", {"op": "post", "body": "hi"}, CreatePost({"body": "hi"})),
        (
            "post",
            {"body": "", "headline": "H", "pinned": True},
            CreatePost({"body": "", "headline": "H", "pinned": True}),
        ),
        ("update_post", {"post": "p1", "headline": None}, UpdatePost("p1", {"headline": None})),
        ("delete_post", {"post": "p1"}, DeletePost("p1")),
        ("pin_post", {"post": "p1"}, PinPost("p1", True)),
        ("unpin_post", {"post": "p1"}, PinPost("p1", False)),
    ],
)
def test_every_command_parses(op: str, payload: dict[str, Any], command: object) -> None:
    assert parse_command(op, payload, "$") == command


@pytest.mark.parametrize(
    ("op", "payload", "where", "says"),
    [
        ("fly", {}, "body.op", "unknown op 'fly'"),
        ("speed", {}, "body.speed", "expected a positive number"),
        ("speed", {"speed": 0}, "body.speed", "expected a positive number"),
        ("speed", {"speed": True}, "body.speed", "expected a positive number"),
        ("seek", {}, "body.to", "expected a post id, an ISO-8601 time or an offset"),
        ("seek", {"to": "  "}, "body.to", "expected a post id"),
        ("seek", {"to": "x" * (MAX_TARGET + 1)}, "body.to", f"got {MAX_TARGET + 1} characters"),
        ("seek", {"to": "+zz"}, "body.to", "is not a duration"),
        ("post", {}, "body.body", "required"),
        ("post", {"body": " "}, "body.body", "empty, and the post has no headline or media"),
        ("post", {"body": 5}, "body.body", "expected a string, got a number"),
        ("post", {"body": "x", "colour": "red"}, "body.colour", "unknown field"),
        ("post", {"body": "x", "media": [{}]}, "body.media[0].kind", "expected one of"),
        ("post", {"body": "x", "key_event": "yes"}, "body.key_event", "expected true or false"),
        ("update_post", {"post": "p1"}, "body", "no field to change"),
        ("update_post", {"body": "x"}, "body.post", "expected the id of a post"),
        ("delete_post", {"post": ""}, "body.post", "expected the id of a post"),
        ("pin_post", {"post": 7}, "body.post", "expected the id of a post"),
    ],
)
def test_bad_input_names_its_place(op: str, payload: dict[str, Any], where: str, says: str) -> None:
    with pytest.raises(InputError) as info:
        parse_command(op, payload, "body")
    assert info.value.where == where
    assert says in info.value.message
    assert info.value.status == 400
    assert str(info.value) == f"{where}: {info.value.message}"


def test_a_long_unknown_op_is_quoted_short() -> None:
    with pytest.raises(InputError) as info:
        parse_command("x" * 10_000, {}, "$")
    assert info.value.where == "$.op" and len(info.value.message) < 80


def test_a_schedule_entry_names_its_own_place() -> None:
    """No prefix: the place is the payload's own key (the schedule puts it under its entry)."""
    with pytest.raises(InputError) as info:
        parse_command("post", {"body": 1}, "post")
    assert info.value.where == "post.body"
    with pytest.raises(InputError) as info:
        parse_command("seek", {"to": "+1y"}, "")
    assert info.value.where == "to"


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("start", Edge(False)),
        (" end ", Edge(True)),
        ("+90", Offset(90.0)),
        ("-1h30m", Offset(-5400.0)),
        ("p1", PostOrTime("p1", None)),
        (
            "2014-06-12T08:00:00Z",
            PostOrTime("2014-06-12T08:00:00Z", datetime(2014, 6, 12, 8, tzinfo=UTC)),
        ),
    ],
)
def test_seek_targets(text: str, target: object) -> None:
    assert parse_target(text, "to") == target


def test_a_bad_offset_names_the_target() -> None:
    with pytest.raises(InputError, match=r"^from: 'soon' is not a duration"):
        parse_target("+soon", "from")


# InputError ---------------------------------------------------------------------------------


def test_under_puts_the_place_inside_a_prefix() -> None:
    error = InputError("to", "no such post", 404)
    moved = error.under("body")
    assert (moved.where, moved.message, moved.status) == ("body.to", "no such post", 404)
    assert InputError("", "bad").under("query").where == "query"
    assert join("body", "[0]") == "body[0]" and join("", "x") == "x" and join("$", "") == "$"


def test_errors_of_posts_carry_their_status() -> None:
    unknown = UnknownPost("p9")
    assert (unknown.where, unknown.status) == ("post", 404)
    assert str(unknown) == "post: no post 'p9' is visible in this stream"
    full = TooManyPosts("full", "server.max_private_live_bytes")
    assert (full.where, full.message, full.status) == ("server.max_private_live_bytes", "full", 429)


def test_a_validation_error_becomes_one_input_error() -> None:
    class Body(BaseModel):
        items: list[int]

    with pytest.raises(ValidationError) as info:
        Body.model_validate({"items": [1, "x"]})
    error = from_validation(info.value, "body")
    assert error.where == "body.items[1]"
    assert error.message.startswith("Input should be a valid integer")
    renamed = from_validation(info.value, "query", {"items": "list"})
    assert renamed.where == "query.list[1]"


def test_a_place_our_own_validator_names_goes_on_the_path() -> None:
    with pytest.raises(InputError) as info:
        parse_command("post", {"body": "x", "media": [{"kind": "image", "url": 5}]}, "$")
    assert info.value.where == "$.media[0].url"
    assert info.value.message == "expected a string or null, got a number"


def test_shorten_keeps_one_printable_line() -> None:
    assert shorten("a\nb", 10) == "a\\nb"
    assert shorten("x" * 100, 10) == "x" * 9 + "…"


# Replay modes -------------------------------------------------------------------------------


def test_only_a_seek_or_a_restart_leaves_the_end() -> None:
    for mode in (Mode.ENDED, Mode.ENDED_PAUSED):
        leaving = {c for c, to in TRANSITIONS[mode].items() if not to.shown == "ended"}
        assert leaving == {Change.SEEK, Change.RESTART}


def test_a_paused_replay_cannot_end() -> None:
    assert Change.END not in TRANSITIONS[Mode.PAUSED]
    assert all(
        to.shown in ("playing", "paused", "ended") for m in Mode for to in TRANSITIONS[m].values()
    )


def test_max_speed_is_not_a_number_a_client_can_give() -> None:
    with pytest.raises(InputError):
        parse_command("speed", {"speed": math.inf}, "$")


# Targets the replay resolves -----------------------------------------------------------------


def test_a_target_the_script_lacks_is_refused_by_the_replay_at_its_place() -> None:
    replay = make_replay(range(5))
    with pytest.raises(InputError) as info:
        replay.apply(Seek.parse("nope"), START + 1)
    assert (info.value.where, info.value.status) == ("to", 400)
    assert info.value.message.startswith("'nope' is not a post id")
    assert make_replay(range(5), options=Options(start="2014-06-12")).index == 0  # a time: kept in
    with pytest.raises(InputError) as info:
        make_replay(range(5), options=Options(start="+x"))
    assert info.value.where == "start"


def test_a_post_id_that_reads_as_a_time_is_the_post() -> None:
    """Post ids come first: only the script knows them, so the replay decides."""
    target = parse_target("2014-06-12", "to")
    assert isinstance(target, PostOrTime) and target.text == "2014-06-12" and target.moment


def test_paused_after_the_end_a_seek_back_lands_paused() -> None:
    replay = make_replay(range(3))
    replay.advance(START + 100)
    assert replay.state == "ended"
    replay.apply(Pause(), START + 101)
    assert (replay.mode, replay.state) == (Mode.ENDED_PAUSED, "ended")
    replay.apply(Seek.parse("start"), START + 102)
    assert replay.state == "paused" and replay.next_deadline() is None
    replay.apply(Restart(), START + 103)
    assert replay.state == "playing"


# Step ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "command"),
    [
        ({}, Step(events=1)),
        ({"events": 3}, Step(events=3)),
        ({"events": 3.0}, Step(events=3)),
        ({"events": MAX_STEP}, Step(events=MAX_STEP)),
        ({"until": "+5m"}, Step(until=300.0)),
        ({"until": "90s"}, Step(until=90.0)),
        ({"until": 2.5}, Step(until=2.5)),
    ],
)
def test_step_parses(payload: dict[str, Any], command: Step) -> None:
    assert parse_command("step", payload, "body") == command


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ({"events": 0}, "body.events"),
        ({"events": -1}, "body.events"),
        ({"events": 2**64}, "body.events"),
        ({"events": MAX_STEP + 1}, "body.events"),
        ({"events": 1e308}, "body.events"),
        ({"events": 1.5}, "body.events"),
        ({"events": math.nan}, "body.events"),
        ({"events": math.inf}, "body.events"),
        ({"events": "3"}, "body.events"),
        ({"events": True}, "body.events"),
        ({"events": None}, "body.events"),
        ({"events": [1]}, "body.events"),
        ({"until": "-5m"}, "body.until"),
        ({"until": "+0s"}, "body.until"),
        ({"until": 0}, "body.until"),
        ({"until": -1}, "body.until"),
        ({"until": math.nan}, "body.until"),
        ({"until": 1e308}, "body.until"),
        ({"until": 2**64}, "body.until"),
        ({"until": "soon"}, "body.until"),
        ({"until": "+" + "9" * 5000}, "body.until"),
        ({"until": None}, "body.until"),
        ({"until": "+5m", "events": 2}, "body.until"),
    ],
)
def test_step_refuses_extremes(payload: dict[str, Any], where: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_command("step", payload, "body")
    assert caught.value.where == where
    assert len(str(caught.value)) < 200
