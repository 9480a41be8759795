"""A replay restored from its checkpoint is the same replay: same reads, same events after."""

from __future__ import annotations

import orjson
import pytest
from core_helpers import START, make_replay

from simulator.core import checkpoint
from simulator.core.commands import CreatePost, Pause, PinPost, Resume, Seek, SetSpeed, UpdatePost
from simulator.core.replay import Options, Replay
from simulator.core.wire import Event

OFFSETS = [0, 5, 9, 20, 21, 40, 41, 42, 60, 75]


def _made() -> Replay:
    return make_replay(OFFSETS, options=Options(loop=True, loop_pause=5))


def _inputs(replay: Replay, start: float) -> list[Event]:
    """A mixture of clock and commands from ``start`` on; everything emitted."""
    out: list[Event] = []
    out += replay.advance(start + 12)
    out += replay.apply(CreatePost({"body": "live one"}), start + 13)
    out += replay.apply(PinPost("live-1"), start + 13.5)
    out += replay.apply(SetSpeed(3.0), start + 14)
    out += replay.advance(start + 20)
    out += replay.apply(Pause(), start + 21)
    out += replay.apply(Resume(), start + 25)
    out += replay.advance(start + 60)
    return out


def test_a_restored_replay_reads_and_goes_on_exactly_as_the_original() -> None:
    original = _made()
    _inputs(original, START)
    visible = next(iter(original.view.newest_first()))[0]
    original.apply(UpdatePost(visible, {"body": "edited"}), START + 61)
    original.apply(Seek.parse("+3s"), START + 62)
    saved = checkpoint.export(original)

    restored = _made()
    checkpoint.restore(restored, saved)
    assert checkpoint.export(restored) == saved
    now = START + 63
    assert restored.describe(now) == original.describe(now)
    assert restored.snapshot(now) == original.snapshot(now)
    assert restored.since(restored.origin) == original.since(original.origin)
    assert [e.sse for e in restored.log] == [e.sse for e in original.log]
    after = START + 63
    assert _inputs(restored, after) == _inputs(original, after)
    assert restored.apply(CreatePost({"body": "next"}), after + 70) == original.apply(
        CreatePost({"body": "next"}), after + 70
    )  # the live post counter came along: the same id


def test_a_capture_encodes_as_the_replay_was_when_taken_whatever_it_did_since() -> None:
    """The owner captures on the loop and encodes in a thread while the replay goes on: edits,
    pins, new posts and events after the capture must not leak into it."""
    replay = _made()
    _inputs(replay, START)
    archive_post = next(iter(replay.view.newest_first()))[0]
    expected = checkpoint.export(replay)
    captured = checkpoint.capture(replay)
    replay.apply(UpdatePost(archive_post, {"body": "edited later"}), START + 61)
    replay.apply(PinPost(archive_post), START + 62)
    replay.apply(PinPost("live-1", pinned=False), START + 62.5)
    replay.apply(CreatePost({"body": "later"}), START + 63)
    replay.advance(START + 90)
    assert checkpoint.encode(captured) == expected != checkpoint.export(replay)


def test_a_checkpoint_of_the_older_form_still_restores() -> None:
    """Checkpoints written before posts were encoded in chunks listed them as arrays."""
    original = _made()
    _inputs(original, START)
    state = orjson.loads(checkpoint.export(original))
    state["visible"] = [[i, v["post"], v["pinned"]] for i, v in state["visible"].items()]
    restored = _made()
    checkpoint.restore(restored, orjson.dumps(state))
    assert checkpoint.export(restored) == checkpoint.export(original)


def test_a_large_checkpoint_is_encoded_in_chunks_to_the_same_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    replay = _made()
    _inputs(replay, START)
    whole = orjson.loads(checkpoint.export(replay))
    monkeypatch.setattr(checkpoint, "CHUNK", 2)
    assert orjson.loads(checkpoint.export(replay)) == whole
