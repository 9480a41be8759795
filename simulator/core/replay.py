"""The replay state machine: a script played against a timeline, producing numbered events.

Sans-I/O in the manner of h11 and aioquic: the caller passes ``now`` (monotonic seconds) into
``advance`` and ``apply`` and gets events back, and asks ``next_deadline()`` when to call again.

Ids and resume. Every event gets the next serial of this replay; its id is
``{incarnation}-{serial}``, where the incarnation names this replay instance so cursors from
another server run or another stream are recognised as foreign. An *epoch* is a stretch in which
events only go forward: a seek backwards, a loop's restart or a restart begins a new one with a
``stream.reset`` event. The replay keeps the current epoch's events (bounded); a cursor inside it
resumes exactly, with every later event once and in order. Any other cursor cannot be served
exactly, and ``since`` says so with None: the caller must send ``stream.reset`` and the client
reloads the snapshot.

Three parts have homes of their own: what is visible (``projection.Projection``), the events kept
for resume (``eventlog.EventLog``) and the posts added while it runs (``live.LivePosts``). Those
live posts are not part of the script: a reset puts the archive back at a position and then the
live posts, as they are now (edited, pinned, minus deleted ones), on top of it.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any

import orjson

from . import wire
from .archive import post_record
from .commands import (
    Command,
    CreatePost,
    DeletePost,
    Edge,
    Offset,
    Pause,
    PinPost,
    PostCommand,
    ReplayCommand,
    Restart,
    Resume,
    Seek,
    SeekTarget,
    SetSpeed,
    Step,
    UpdatePost,
    parse_target,
)
from .errors import InputError
from .eventlog import EventLog, LogPool
from .live import LiveBudget, LivePosts, UnknownPost, restore_live
from .model import Media, Post, TimeSource, format_time
from .prepared import PreparedScript
from .projection import Projection
from .script import Script
from .snapshot import DEFAULT_MAX_BYTES, Page
from .timeline import Timeline, format_speed
from .wire import Event, EventType

DEFAULT_LOG_LIMIT = 100_000
DEFAULT_LOG_BYTES = 16 * 1024 * 1024
DEFAULT_LOOP_PAUSE = 60.0
"""Archive seconds of quiet between the last event of a lap and the first of the next."""

MIN_LAP = 1.0
"""Play seconds a lap lasts at the least, so a loop of simultaneous events cannot spin."""

MAX_BATCH = 64
"""Events one ``advance`` emits at the most, so the caller can let subscribers drain.

At speed ``max`` every call emits a full batch. At a numeric speed so high that more than a batch
falls due between two calls, the replay is *behind*: it emits a batch, lets its clock slip back to
what it emitted, and paces like ``max`` (``next_deadline`` is -inf) until it has caught up. A speed
can therefore never make a replay produce events faster than its subscribers take them.
"""

MAX_CURSOR_DIGITS = 18
"""A serial longer than this was never issued (and ``int`` of 5 000 digits raises)."""
RESET_SUFFIX = ".reset"
"""Ends the id of a ``stream.reset`` made for one subscriber at the replay's latest event
(``{incarnation}-{serial}.reset``): an id of its own, never a real event's, and still a cursor,
meaning what ``{incarnation}-{serial}`` means (right after that event)."""


class Mode(StrEnum):
    """What a replay does with its clock; ``shown`` is the ``state`` the API reports.

    ``ENDED_PAUSED`` shows as ``ended`` too, but remembers the pause: a seek back lands paused.
    """

    PLAYING = "playing"
    PAUSED = "paused"
    ENDED = "ended"
    ENDED_PAUSED = "ended (paused)"

    @property
    def shown(self) -> str:
        return "ended" if self is Mode.ENDED_PAUSED else self.value


class Change(Enum):
    PAUSE = "pause"
    RESUME = "resume"
    SEEK = "seek"
    RESTART = "restart"
    END = "end"


TRANSITIONS: dict[Mode, dict[Change, Mode]] = {
    Mode.PLAYING: {
        Change.PAUSE: Mode.PAUSED,
        Change.RESUME: Mode.PLAYING,
        Change.SEEK: Mode.PLAYING,
        Change.RESTART: Mode.PLAYING,
        Change.END: Mode.ENDED,
    },
    Mode.PAUSED: {
        Change.PAUSE: Mode.PAUSED,
        Change.RESUME: Mode.PLAYING,
        Change.SEEK: Mode.PAUSED,
        Change.RESTART: Mode.PLAYING,
    },
    Mode.ENDED: {
        Change.PAUSE: Mode.ENDED_PAUSED,
        Change.RESUME: Mode.ENDED,
        Change.SEEK: Mode.PLAYING,
        Change.RESTART: Mode.PLAYING,
    },
    Mode.ENDED_PAUSED: {
        Change.PAUSE: Mode.ENDED_PAUSED,
        Change.RESUME: Mode.ENDED,
        Change.SEEK: Mode.PAUSED,
        Change.RESTART: Mode.PLAYING,
    },
}
"""Every change of mode there is (h11's ``_state.py`` style); a paused replay cannot end (its
clock stands still), and nothing but a seek or a restart leaves the end."""


@dataclass(frozen=True, slots=True)
class Options:
    speed: float = 1.0
    max_gap: float | None = None
    loop: bool = False
    start: str | None = None
    paused: bool = False
    loop_pause: float = DEFAULT_LOOP_PAUSE
    log_limit: int = DEFAULT_LOG_LIMIT
    log_bytes: int = DEFAULT_LOG_BYTES
    """The event log's size bound (encoded bytes), besides ``log_limit`` events."""
    timestamps: str = "archive"
    """``"archive"``: posts keep their archive times. ``"now"``: every post time is the wall-clock
    instant its event was due (``Replay.wall_offset`` + the injected ``now``), so a UI that shows
    "3 min ago" or groups by day works against an old archive."""


class Replay:
    def __init__(
        self,
        script: Script | PreparedScript,
        *,
        stream: str,
        incarnation: str,
        now: float,
        options: Options = Options(),
        wall_offset: float = 0.0,
    ):
        """``script`` may come prepared (``prepared.PreparedScript``): replays of one script
        then share what they only read, and making one costs nothing in the script's length
        (but starting at a later position applies every cue before it)."""
        prepared = script if isinstance(script, PreparedScript) else PreparedScript(script)
        self.prepared = prepared
        self.script = prepared.script
        self.stream = stream
        self.incarnation = incarnation
        self.options = options
        self.wall_offset = wall_offset
        self.now_times = options.timestamps == "now"
        timing = prepared.timing(options.max_gap)
        self.clamp = timing.clamp
        self.plays = timing.plays
        self._records = prepared.records
        self.period = max(self.plays[-1] + self._loop_pause_play(), self.plays[0] + MIN_LAP)
        self.serial = 0
        self.lap = 0
        self.index = 0
        self.mode = Mode.PAUSED if options.paused else Mode.PLAYING
        self.behind = False
        """More fell due than one batch: paced like ``max`` until caught up (see MAX_BATCH)."""
        self.log = EventLog(options.log_limit, options.log_bytes)
        self.view = Projection()
        self.live = LivePosts(prepared.post_ids)
        self.timeline = Timeline(now, speed=options.speed, paused=options.paused)
        start = self.plays[0]
        if options.start:
            start = self._target(parse_target(options.start, "start"), now, "start", options.start)
        self._start = start  # a relative ``start`` counts from the beginning, also on restart
        self._jump(start, now)
        self._emit_state("start", now)

    def share(self, live_budget: LiveBudget, log_pool: LogPool) -> None:
        """Count what this replay holds, from now on, in budgets a group of replays (the private
        ones) shares: its live posts' bytes and its event log's. ``close`` gives it back."""
        self.live.share(live_budget)
        self.log.share(log_pool)

    def close(self) -> None:
        """Hold nothing more and give back what the shared budgets counted for this replay."""
        self.log.close()
        self.live.close()
        self.view.clear()

    # Reading ------------------------------------------------------------------------------

    @property
    def cursor(self) -> str:
        return f"{self.incarnation}-{self.serial}"

    @property
    def origin(self) -> str:
        """The cursor before this replay's first event."""
        return f"{self.incarnation}-0"

    @property
    def state(self) -> str:
        return self.mode.shown

    @property
    def ended(self) -> bool:
        return self.mode is Mode.ENDED or self.mode is Mode.ENDED_PAUSED

    def _change(self, change: Change, now: float) -> None:
        """Take one transition (``TRANSITIONS``) and stop or start the clock to match."""
        mode = TRANSITIONS[self.mode][change]
        if change is not Change.END:  # the clock of an ended replay runs on, unseen (clamped)
            if mode is Mode.PAUSED or mode is Mode.ENDED_PAUSED:
                self.timeline.pause(now)
            else:
                self.timeline.resume(now)
        self.mode = mode

    def archive_position(self, now: float) -> datetime:
        play = self.timeline.position(now)
        return self.script.archive_time(self.clamp.to_archive(min(play, self.plays[-1])))

    def describe(self, now: float) -> dict[str, Any]:
        return {
            "state": self.state,
            "speed": format_speed(self.timeline.speed),
            "loop": self.options.loop,
            "max_gap": self.options.max_gap,
            "position": {
                "archive_time": format_time(self.archive_position(now)),
                "index": self.index,
                "total": len(self.script.cues),
                "lap": self.lap,
            },
            "cursor": self.cursor,
            "timestamps": self.options.timestamps,
        }

    def snapshot_parts(self, now: float, max_bytes: int) -> tuple[bytes, bytes]:
        """The snapshot as two pieces of one JSON object: the head (the stream's state now and the
        cursor to subscribe from, a few hundred bytes, encoded per call) and the posts visible now,
        newest first (the same ``bytes`` for every call until they change). Together at most
        ``max_bytes`` (see ``snapshot.py`` for what is left out over it); taken at one moment, so
        the posts are exactly those of the events up to the cursor."""
        head = orjson.dumps({"stream": self.stream, "cursor": self.cursor, **self.describe(now)})
        return head[:-1] + b",", self.view.encoded(max_bytes).body

    def page_parts(self, now: float, max_bytes: int, page: Page) -> tuple[bytes, bytes]:
        """``snapshot_parts`` for one page of the posts (``Projection.page``); ``InputError`` at
        ``before`` for a post not visible now."""
        head = orjson.dumps({"stream": self.stream, "cursor": self.cursor, **self.describe(now)})
        return head[:-1] + b",", self.view.page(page, max_bytes).body

    def snapshot(self, now: float, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, Any]:
        """``snapshot_parts`` decoded (for tests and tools; the server sends the bytes)."""
        value: dict[str, Any] = orjson.loads(b"".join(self.snapshot_parts(now, max_bytes)))
        return value

    def since(self, cursor: str) -> list[Event] | None:
        """Events after ``cursor`` in this epoch, or None when that cannot be served exactly."""
        serial = self._serial_of(cursor)
        return None if serial is None else self.log.since(serial, self.serial)

    def _serial_of(self, cursor: str) -> int | None:
        incarnation, _, number = cursor.rpartition("-")
        number = number.removesuffix(RESET_SUFFIX)
        if incarnation != self.incarnation or not (number.isascii() and number.isdigit()):
            return None
        return int(number) if len(number) <= MAX_CURSOR_DIGITS else None

    def next_deadline(self) -> float | None:
        """When ``advance`` next has something to do: None while paused or ended, -inf at once."""
        if self.mode is not Mode.PLAYING:
            return None
        if self.timeline.flat_out or self.behind:
            return -math.inf
        if self.index < len(self.plays):
            return self.timeline.when(self.plays[self.index])
        if self.options.loop:
            return self.timeline.when(self.period)
        return self.timeline.when(self.plays[-1])  # past: ``advance`` emits ``ended`` at once

    # Driving ------------------------------------------------------------------------------

    def advance(self, now: float) -> list[Event]:
        """Emit every event due at ``now``, in order."""
        out: list[Event] = []
        if self.mode is not Mode.PLAYING:
            return out
        if self.timeline.flat_out:
            return self._advance_max(now)
        while True:
            if len(out) >= MAX_BATCH:
                self._slip(now)
                return out
            if self.index < len(self.plays):
                due = self._due(self.plays[self.index], now)
                if due is None:
                    break
                out.append(self._emit_cue(due))
            elif not self.options.loop:
                out.append(self._finish(now))
                break
            else:
                due = self._due(self.period, now)
                if due is None:
                    break
                self.timeline.shift(-self.period)
                out.extend(self._new_lap(due))
        self.behind = False
        return out

    def _slip(self, now: float) -> None:
        """Fall behind on purpose: the clock goes back to the next pending event (due now)."""
        self.behind = True
        next_play = self.plays[self.index] if self.index < len(self.plays) else self.period
        self.timeline.seek(min(next_play, self.timeline.position(now)), now)

    def _due(self, play: float, now: float) -> float | None:
        """The deadline of ``play`` if it has passed at ``now``, else None.

        Due when ``play <= position(now)`` or when ``now`` has reached ``when(play)``: the latter is
        ``next_deadline``'s own arithmetic, so ``advance(next_deadline())`` always makes progress
        even where rounding puts ``position(when(play))`` a hair below ``play``.
        """
        due = self.timeline.when(play)
        if due is None:
            return None
        return due if due <= now or play <= self.timeline.position(now) else None

    def _advance_max(self, now: float) -> list[Event]:
        out: list[Event] = []
        while len(out) < MAX_BATCH:
            if self.index < len(self.plays):
                self.timeline.seek(self.plays[self.index], now)
                out.append(self._emit_cue(now))
            elif self.options.loop:
                out.extend(self._new_lap(now))
            else:
                out.append(self._finish(now))
                break
        return out

    def _finish(self, now: float) -> Event:
        self._change(Change.END, now)
        return self._emit_state("ended", now)

    def apply(self, command: ReplayCommand, now: float) -> list[Event]:
        """Carry out a control command; events due before it are emitted first, so none is lost.

        At speed ``max`` nothing is due (the caller paces), so a command emits no extra batch.
        Raises ``InputError`` for a command that does not fit this replay (a seek to no post or
        time; ``live.UnknownPost`` for a post that is not visible, ``live.TooManyPosts``).
        """
        if isinstance(command, Seek):
            self._seek_target(command, now)  # raise before anything happens
        elif isinstance(command, Step) and self.mode is Mode.PLAYING:
            raise InputError("", "the stream is playing: pause it before stepping", 409)
        elif isinstance(command, PostCommand):
            self._check_post_command(command)
        out = [] if self.timeline.flat_out else self.advance(now)
        if isinstance(command, PostCommand):
            out.extend(self._post_command(command, now))
        elif isinstance(command, Pause):
            self._change(Change.PAUSE, now)
            out.append(self._emit_state("pause", now))
        elif isinstance(command, Resume):
            self._change(Change.RESUME, now)
            out.append(self._emit_state("resume", now))
        elif isinstance(command, SetSpeed):
            self.timeline.set_speed(command.speed, now)
            out.append(self._emit_state("speed", now))
        elif isinstance(command, Seek):
            # Measured after ``advance``: a loop's wrap moves the position a relative target uses.
            out.extend(self._seek(self._seek_target(command, now), now))
        elif isinstance(command, Step):
            out.extend(self._step(command, now))
        elif isinstance(command, Restart):
            self.lap = 0
            self._change(Change.RESTART, now)
            out.append(self._reset("restart", now))
            self._jump(self._start, now)
            out.append(self._emit_state("restart", now))
        return out

    # Live posts -----------------------------------------------------------------------------

    def _check_post_command(self, command: PostCommand) -> None:
        """Refuse before anything is emitted. A post visible now that a cue due now deletes still
        gets its event (as a scripted edit of a deleted post does): nothing due is lost."""
        if isinstance(command, CreatePost):
            self.live.check_room(command.fields, new=True)
            return
        if command.post not in self.view:
            raise UnknownPost(command.post)
        if isinstance(command, UpdatePost) and set(command.fields) - {"pinned"}:
            self.live.check_room(command.fields, new=False)  # an archive post's edit counts too

    def _post_command(self, command: PostCommand, now: float) -> list[Event]:
        at = self.archive_position(now)
        if isinstance(command, CreatePost):
            record = _live_record(self.live.new_id(), command.fields, at)
            if self.now_times:
                record["published_at"] = self._wall(now)
            post_id = record["id"]
            self.live.put(post_id, record)
            out = [self._emit_post(EventType.POST_CREATED, post_id, record, now, at)]
            if command.fields.get("pinned"):
                out.append(self._pin(post_id, record, True, now, at))
            return out
        post_id = command.post
        visible = self.view.get(post_id)
        record = dict(visible.post) if visible else {"id": post_id}
        if isinstance(command, UpdatePost):
            out = []
            if set(command.fields) - {"pinned"}:  # only ``pinned``: a pin, no edit
                record = _merged(record, command.fields)
                if self.now_times:
                    record["updated_at"] = self._wall(now)
                if post_id in self.live:
                    self.live.put(post_id, record)
                else:
                    self.live.edited(post_id, record)
                out.append(self._emit_post(EventType.POST_UPDATED, post_id, record, now, at))
            if "pinned" in command.fields:
                out.append(self._pin(post_id, record, bool(command.fields["pinned"]), now, at))
            return out
        if isinstance(command, DeletePost):
            self.live.remove(post_id)
            return [self._emit_post(EventType.POST_DELETED, post_id, record, now, at)]
        return [self._pin(post_id, record, command.pinned, now, at)]

    def _pin(
        self, post_id: str, record: Mapping[str, Any], pinned: bool, now: float, at: datetime
    ) -> Event:
        self.live.pin(post_id, pinned)
        type = EventType.POST_PINNED if pinned else EventType.POST_UNPINNED
        return self._emit_post(type, post_id, record, now, at)

    def _emit_post(
        self, type: EventType, post_id: str, record: Mapping[str, Any], now: float, at: datetime
    ) -> Event:
        self.view.apply(type, post_id, record)
        return self._emit(type, now, at, post=record)

    def load_live(self, saved: Any, where: str) -> None:
        """Live posts an earlier run saved (``live.export_live``), put on top of the archive as a
        reset puts them, without an event: a new replay's subscribers get them in the snapshot.
        ``InputError`` names the place under ``where``."""
        restore_live(self.live, saved, where)
        self._restore_live()

    def _restore_live(self) -> None:
        for post_id, live in self.live:
            self.view.apply(EventType.POST_CREATED, post_id, live.record)
            if live.pinned:
                self.view.apply(EventType.POST_PINNED, post_id, live.record)

    def _step(self, command: Step, now: float) -> list[Event]:
        """On a paused (or ended) replay: the next ``events`` cues at ``now`` (a loop's lap
        boundary, its ``stream.reset``, counts as one), or every cue up to ``until`` archive
        seconds ahead (not past the lap's end); the clock stays stopped at the last of them."""
        out: list[Event] = []
        if command.until is not None:
            here = self.timeline.position(now)
            archive = self.clamp.to_archive(min(here, self.plays[-1])) + command.until
            target = max(here, min(self.clamp.to_play(archive), self._end))
            end = bisect_right(self.plays, target)
            while self.index < end:
                out.append(self._emit_cue(now))
            self.timeline.seek(target, now)
        else:
            for _ in range(command.events or 0):
                if self.index < len(self.plays):
                    self.timeline.seek(self.plays[self.index], now)
                    out.append(self._emit_cue(now))
                elif self.options.loop:
                    out.extend(self._new_lap(now))
                    self.timeline.seek(self.plays[0], now)
                else:
                    break
        out.append(self._emit_state("step", now))
        return out

    def _seek(self, target: float, now: float) -> list[Event]:
        """Forward: the skipped events go out at once. Backward: a new epoch, and a reset."""
        index = bisect_left(self.plays, target)
        out: list[Event] = []
        if index >= self.index:
            while self.index < index:
                out.append(self._emit_cue(now))
        else:
            out.append(self._reset("seek", now))
            self._jump(target, now)
        self.timeline.seek(target, now)
        self._change(Change.SEEK, now)
        out.append(self._emit_state("seek", now))
        return out

    def _new_lap(self, due: float) -> list[Event]:
        self.lap += 1
        reset = self._reset("loop", due)
        self._jump(self.plays[0], due, keep_timeline=True)
        return [reset]

    def _jump(self, target: float, now: float, keep_timeline: bool = False) -> None:
        """Put the replay at ``target`` with every earlier cue applied silently, then the live
        posts on top."""
        self.view.clear()
        self.live.forget_edits()
        self.index = 0
        end = bisect_left(self.plays, target)
        here = self.clamp.to_archive(min(target, self.plays[-1]))
        for index in range(end):
            # Never shown as emitted: with ``now`` times, as long ago as in the archive.
            ago = max(0.0, here - self.script.cues[index].at)
            self._apply_cue(index, self._wall(now - ago) if self.now_times else None)
        self._restore_live()
        self.index = end
        if not keep_timeline:
            self.timeline.seek(target, now)

    # Targets ------------------------------------------------------------------------------

    def _seek_target(self, command: Seek, now: float) -> float:
        return self._target(command.to, now, "to", command.text)

    def _target(self, target: SeekTarget, now: float, where: str, text: str) -> float:
        """A seek or start target as a play position, kept between the start and the end."""
        return min(max(self._unbounded_target(target, now, where, text), self.plays[0]), self._end)

    @property
    def _end(self) -> float:
        """Just after the last cue: every event applied, none pending."""
        return self.plays[-1] + 1e-9

    def _unbounded_target(self, target: SeekTarget, now: float, where: str, text: str) -> float:
        if isinstance(target, Edge):
            return self._end if target.end else self.plays[0]
        if isinstance(target, Offset):
            here = self.clamp.to_archive(self.timeline.position(now))
            return self.clamp.to_play(here + target.seconds)
        try:
            return self.plays[self.script.created_index(target.text)]
        except KeyError:
            pass
        if target.moment is None:
            raise InputError(
                where,
                f"{text or target.text!r} is not a post id, an ISO-8601 time, 'start', 'end' "
                "or an offset such as '+10m'",
            )
        return self.clamp.to_play(self.script.seconds(target.moment))

    def _loop_pause_play(self) -> float:
        pause = self.options.loop_pause
        return pause if self.options.max_gap is None else min(pause, self.options.max_gap)

    # Emitting -----------------------------------------------------------------------------

    def _emit_cue(self, due: float) -> Event:
        index = self.index
        cue = self.script.cues[index]
        self.index += 1
        record = self._apply_cue(index, self._wall(due) if self.now_times else None)
        archive_time = self.script.archive_time(cue.at)
        return self._emit(cue.type, due, archive_time, post=record)

    def _apply_cue(self, index: int, moment: str | None = None) -> Mapping[str, Any]:
        """A cue's effect on the projection, and its post record as shown: the script's, or with
        ``moment`` (``now`` times) as its time. A cue that is not a post event raises."""
        cue = self.script.cues[index]
        record: Mapping[str, Any] = self._records[index]
        if moment is not None:
            record = self._stamped(cue.type, cue.post.id, record, moment)
        self.view.apply(cue.type, cue.post.id, record)
        if cue.type is EventType.POST_UPDATED or cue.type is EventType.POST_DELETED:
            self.live.forget_edit(cue.post.id)  # the script's version replaced an API edit
        return record

    def _wall(self, now: float) -> str:
        return wire.wall_time(now + self.wall_offset)

    def _stamped(
        self, type: EventType, post_id: str, record: Mapping[str, Any], moment: str
    ) -> Mapping[str, Any]:
        """``record`` with ``now`` times: created at ``moment``; an edit keeps the time its post
        was shown with and is ``updated_at`` ``moment``; a pin or delete changes no time."""
        if type is EventType.POST_CREATED:
            return {**record, "published_at": moment}
        visible = self.view.get(post_id)
        shown = dict(visible.post) if visible else {}
        times = {"published_at": shown.get("published_at", moment)}
        if type is EventType.POST_UPDATED:
            times["updated_at"] = moment
        elif "updated_at" in shown:
            times["updated_at"] = shown["updated_at"]
        return {**record, **times}

    def _emit_state(self, reason: str, now: float) -> Event:
        """The state after this event, so its ``cursor`` is the event's own id."""
        next_id = f"{self.incarnation}-{self.serial + 1}"
        data = {"reason": reason, **self.describe(now), "cursor": next_id}
        return self._emit(EventType.STREAM_STATE, now, self.archive_position(now), data=data)

    def _reset(self, reason: str, now: float) -> Event:
        self.log.clear()
        return self._emit(EventType.STREAM_RESET, now, None, data={"reason": reason})

    def _emit(
        self,
        type: EventType,
        due: float,
        archive_time: datetime | None,
        *,
        post: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> Event:
        self.serial += 1
        event = self._encode(self.serial, type, due, archive_time, post=post, data=data)
        self.log.append(event)
        return event

    def _encode(
        self,
        serial: int,
        type: EventType,
        due: float,
        archive_time: datetime | None,
        *,
        post: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        event_id: str | None = None,
    ) -> Event:
        event_id = event_id or f"{self.incarnation}-{serial}"
        envelope: dict[str, Any] = {
            "id": event_id,
            "type": str(type),
            "stream": self.stream,
            "archive_time": format_time(archive_time) if archive_time else None,
            "due_at": wire.wall_time(due + self.wall_offset),
        }
        if post is not None:
            envelope["post"] = post
        if data is not None:
            envelope["data"] = data
        return wire.encode(serial, event_id, type, envelope)

    def reset_for(self, reason: str, now: float, at_origin: bool = False) -> Event:
        """A ``stream.reset`` for one subscriber whose cursor cannot be served; not logged.

        Its id is where that subscriber goes on from: right after the latest event (it follows
        live), as ``…-{serial}.reset`` so that no real event shares it, or with ``at_origin``
        the origin ``…-0``, before the first event (it is sent the whole replay next).
        """
        serial = 0 if at_origin else self.serial
        event_id = f"{self.incarnation}-{serial}" + ("" if at_origin else RESET_SUFFIX)
        data = {"reason": reason}
        return self._encode(serial, EventType.STREAM_RESET, now, None, data=data, event_id=event_id)


def _live_record(post_id: str, fields: Mapping[str, Any], at: datetime) -> dict[str, Any]:
    """A live post as the wire's post record, published at the replay's archive position."""
    post = Post(
        id=post_id,
        body=fields.get("body") or "",
        published_at=at,
        time_source=TimeSource.EXPLICIT,
        headline=fields.get("headline"),
        author=fields.get("author"),
        source=fields.get("source"),
        media=tuple(Media(**m) for m in fields.get("media") or ()),
        key_event=bool(fields.get("key_event")),
    )
    return post_record(post)


def _merged(record: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` with ``fields`` changed (``pinned`` is not a field of the record)."""
    out = {**record, **{k: v for k, v in fields.items() if k != "pinned"}}
    if out.get("key_event") is not True:
        out.pop("key_event", None)  # written only when true, as in post_record
    return out


__all__ = [
    "Command",
    "CreatePost",
    "DeletePost",
    "Event",
    "Mode",
    "PinPost",
    "PostCommand",
    "ReplayCommand",
    "UpdatePost",
    "Options",
    "Pause",
    "Replay",
    "Restart",
    "Resume",
    "Seek",
    "SetSpeed",
]
