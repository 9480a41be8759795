"""A replay restored from its checkpoint is the same replay: same reads, same events after."""

from __future__ import annotations

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
