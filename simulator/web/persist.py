"""The state file (``[server] state_file``): what a restart would otherwise lose.

Saved: the streams made through ``POST /api/streams`` (their config as it was given) and every
shared stream's live posts as they are now (created through the API, a WebSocket op or a
scheduled inject; edited, pinned, deleted), with the counter behind their ``live-N`` ids. Not
saved: where each stream was (after a restart it starts where its config says), private replays,
subscribers, and edits, pins and deletes of archive posts (a replay forgets those at its next
seek back, loop or restart anyway).

The file is one JSON document with a version. It is written atomically (a temporary file beside
it, fsync, ``os.replace``) at most once a second while things change, so a burst of posts is one
write, and on clean shutdown; the bytes are made on the loop and written in a thread. At start a
missing file is an empty state; a bad one stops the server with one line naming the file and the
JSON path. A saved stream whose id the configuration now uses is refused the same way: which of
the two is meant is for a person to say.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError

from ..core.archive import json_kind
from ..core.errors import from_validation, shorten
from ..core.live import MAX_LIVE_BYTES, export_live
from ..core.model import ArchiveError, Feed, shown
from ..core.replay import Command, PostCommand, Replay
from ..settings import Settings, StreamConfig
from ..sources import read_regular_file
from .state import API_STREAMS, FEEDS, SETTINGS, STREAMS, build_script, make_stream
from .stream import Stream

VERSION = 1
SAVE_DELAY = 1.0
"""Seconds between a change and its write: the changes of that second are one write."""
TEMPORARY = ".tmp"
"""Suffix of the file a write goes to before it replaces the state file."""
MAX_CONFIG_BYTES = 1024 * 1024
"""Bytes a saved stream's config may take (a request body is at most 1 MiB)."""
MAX_ERROR = 300
KEYS = ("version", "saved_at", "streams", "live")
log = logging.getLogger("livesim.state")


@dataclass(frozen=True, slots=True)
class Saved:
    """A state file, checked: the API-made streams to make again and the live posts to put back."""

    streams: tuple[tuple[StreamConfig, dict[str, Any]], ...] = ()
    """Each stream's config and the JSON it was made from."""
    live: tuple[tuple[str, Any, str], ...] = ()
    """Stream id, its saved live posts (``live.export_live``) and their JSON path."""


class StateFile:
    """One app's state file: the configs of its API-made streams and the debounced writes."""

    def __init__(self, path: Path, streams: Mapping[str, Stream]):
        self.path = path
        self.delay = SAVE_DELAY
        self.writes = 0
        """Writes that succeeded (the debounce is tested by it)."""
        self.configs: dict[str, dict[str, Any]] = {}
        """API-made streams' JSON as given, by id, in the order they were made."""
        self.preloaded: Saved | None = None
        self._streams = streams
        self._encoded: dict[str, bytes] = {}
        """Each stream's part of ``live``, encoded when it last changed: a save encodes only the
        streams whose posts changed since (a full stream is 32 MiB, ~0.1 s of orjson)."""
        self._dirty = False
        self._failing = False
        self._task: asyncio.Task[None] | None = None
        self._writing: asyncio.Future[None] | None = None

    def watch(self, stream: Stream) -> None:
        """Save when ``stream``'s live posts change (a post command, from any transport)."""
        self._encoded.pop(stream.id, None)
        stream_id = stream.id

        def on_command(command: Command) -> None:
            if isinstance(command, PostCommand):
                self._encoded.pop(stream_id, None)
                self.changed()

        stream.on_command = on_command

    def forget(self, stream_id: str) -> None:
        """A stream was deleted: it and its live posts are saved no more."""
        self.configs.pop(stream_id, None)
        self._encoded.pop(stream_id, None)
        self.changed()

    def changed(self) -> None:
        """Save soon: within ``delay``, together with whatever else changes until then."""
        self._dirty = True
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._save_soon())

    async def _save_soon(self) -> None:
        while self._dirty:
            await asyncio.sleep(self.delay)
            await self.save()

    async def save(self) -> bool:
        """Write the state now; a failure is logged (once until it works again) and retried
        with the next change or a ``delay`` later."""
        self._dirty = False
        data = self.encode()
        self._writing = asyncio.ensure_future(asyncio.to_thread(write_atomic, self.path, data))
        try:
            await asyncio.shield(self._writing)
        except OSError as exc:
            self._dirty = True
            if not self._failing:
                log.error("cannot write the state file %s: %s", self.path, _reason(exc))
            self._failing = True
            return False
        self.writes += 1
        if self._failing:
            log.warning("state file %s written again", self.path)
        self._failing = False
        return True

    async def close(self) -> None:
        """The last write, on shutdown: after any write under way, never beside it."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._writing is not None:
            with contextlib.suppress(OSError):
                await self._writing
        await self.save()

    def encode(self) -> list[bytes]:
        """The document, in pieces that the writer writes one after another (joining them would
        copy every stream's posts on the loop): ``{"version", "saved_at", "streams": [config…],
        "live": [{"stream", "next", "posts"}…]}``, a stream in ``live`` once it had a live post."""
        now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        streams = list(self.configs.values())
        head = orjson.dumps({"version": VERSION, "saved_at": now, "streams": streams})
        pieces = [head[:-1], b',"live":[']
        for part in map(self._live_part, self._streams.values()):
            if part:
                pieces += [b",", part] if len(pieces) > 2 else [part]
        pieces.append(b"]}")
        return pieces

    def _live_part(self, stream: Stream) -> bytes:
        part = self._encoded.get(stream.id)
        if part is None:
            saved = export_live(stream.replay.live)
            empty = not saved["posts"] and not saved["next"]
            part = b"" if empty else orjson.dumps({"stream": stream.id, **saved})
            self._encoded[stream.id] = part
        return part


STATE = web.AppKey("state_file", StateFile)


def write_atomic(path: Path, data: bytes | Sequence[bytes]) -> None:
    """``data`` (or its pieces, one after another) as the whole of ``path`` or nothing: a crash
    leaves the old file (and perhaps a partial ``path.tmp``, which nothing reads and the next
    write replaces)."""
    pieces = [data] if isinstance(data, bytes) else data
    path = _target(path)
    temporary = _temporary(path)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        with open(fd, "wb", closefd=True) as file:
            file.writelines(pieces)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    with contextlib.suppress(OSError):  # the rename itself survives a power cut once this is done
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


# Wiring ---------------------------------------------------------------------------------------


def attach(app: web.Application) -> None:
    """Give the app its state file, if ``server.state_file`` names one."""
    name = app[SETTINGS].server.state_file
    if name is not None:
        streams: dict[str, Stream] = app[STREAMS]
        app[STATE] = StateFile(Path(name), streams)


def preload(app: web.Application) -> None:
    """Read and check the state file before the server starts, and make sure it can be written:
    ``ArchiveError`` with one line naming the file (the command's exit status 1)."""
    state_file = app.get(STATE)
    if state_file is None:
        return
    feeds: dict[str, Feed] = app[FEEDS]
    saved = read(state_file.path, app[SETTINGS], feeds)
    temporary = _temporary(_target(state_file.path))
    try:
        os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
        os.unlink(temporary)
    except OSError as exc:
        raise ArchiveError(f"cannot write: {_reason(exc)}", source=str(state_file.path)) from None
    state_file.preloaded = saved


async def restore(app: web.Application) -> None:
    """Make the saved streams again, put the live posts back, and save from now on (at start,
    after the configured streams are made)."""
    state_file = app.get(STATE)
    if state_file is None:
        return
    feeds: dict[str, Feed] = app[FEEDS]
    saved = state_file.preloaded or read(state_file.path, app[SETTINGS], feeds)
    state_file.preloaded = None
    streams = app[STREAMS]
    for config, raw in saved.streams:
        streams[config.id] = make_stream(app, config.id, feeds[config.feed], config)
        app[API_STREAMS].add(config.id)
        state_file.configs[config.id] = raw
    posts = 0
    for stream_id, live, where in saved.live:
        streams[stream_id].replay.load_live(live, where)
        posts += len(streams[stream_id].replay.live)
    for stream in streams.values():
        state_file.watch(stream)
    if not await state_file.save():
        raise ArchiveError("cannot write (see the log line above)", source=str(state_file.path))
    log.info(
        "state file %s: %d stream(s) made through the API, %d live post(s) restored",
        state_file.path,
        len(saved.streams),
        posts,
    )


def stream_created(app: web.Application, stream: Stream, config: dict[str, Any]) -> None:
    """``POST /api/streams`` made ``stream`` from ``config`` (its JSON body, with the id)."""
    state_file = app.get(STATE)
    if state_file is not None:
        state_file.configs[stream.id] = config
        state_file.watch(stream)
        state_file.changed()


def faults_changed(app: web.Application, stream_id: str, faults: str | None) -> None:
    """``PATCH`` changed the faults of a stream made through the API: its saved config follows
    (a stream of the config file gets its file's faults back on a restart)."""
    state_file = app.get(STATE)
    if state_file is not None and stream_id in state_file.configs:
        config = state_file.configs[stream_id]
        if faults:
            config["faults"] = faults
        else:
            config.pop("faults", None)
        state_file.changed()


def stream_deleted(app: web.Application, stream_id: str) -> None:
    state_file = app.get(STATE)
    if state_file is not None:
        state_file.forget(stream_id)


async def close(app: web.Application) -> None:
    """The last write, once the streams and the scheduler stopped."""
    state_file = app.get(STATE)
    if state_file is not None:
        await state_file.close()


def _target(path: Path) -> Path:
    """The file a write replaces: a symlink's target, so that the symlink stays one."""
    return Path(os.path.realpath(path))


def _temporary(path: Path) -> Path:
    return path.with_name(path.name + TEMPORARY)


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


# Reading --------------------------------------------------------------------------------------


def read(path: Path, settings: Settings, feeds: Mapping[str, Feed]) -> Saved:
    """The state file checked against the settings and feeds it is loaded with; a missing file
    is an empty state. ``ArchiveError``: one line, ``state.json: streams[2].feed: no feed 'x'``."""
    source = str(path)
    try:
        path.stat()
    except FileNotFoundError:
        return Saved()
    except OSError:
        pass  # read_regular_file names the problem
    data = read_regular_file(path, _limit(settings), "a state file")
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ArchiveError(f"not JSON ({exc.msg})", source=source, line=exc.lineno) from None
    try:
        return _check(document, settings, feeds)
    except ValueError as exc:
        raise ArchiveError(shorten(str(exc), MAX_ERROR), source=source) from None


def _limit(settings: Settings) -> int:
    """The largest state file the bounds allow: every stream's live posts in full, and every
    API-made stream's config."""
    streams = len(settings.streams) + settings.server.max_streams + 1
    return streams * (2 * MAX_LIVE_BYTES + MAX_CONFIG_BYTES)


def _check(document: Any, settings: Settings, feeds: Mapping[str, Feed]) -> Saved:
    if not isinstance(document, dict):
        raise ValueError(f"$: expected an object, got {json_kind(document)}")
    for key in document:
        if key not in KEYS:
            raise ValueError(f"{shown(key, 40)}: unknown key (known: {', '.join(KEYS)})")
    version = document.get("version")
    if type(version) is not int or version != VERSION:
        raise ValueError(
            f"version: expected {VERSION} (a file this livesim writes), got {shown(version)}"
        )
    saved_at = document.get("saved_at")
    if saved_at is not None and not isinstance(saved_at, str):
        raise ValueError(f"saved_at: expected a time as a string, got {json_kind(saved_at)}")
    known = {
        config.id: Known(config, f"configured (streams[{number}])")
        for number, config in enumerate(settings.streams)
    }
    streams = _streams(document.get("streams", []), settings, feeds, known)
    live = _live(document.get("live", []), settings, feeds, known)
    return Saved(tuple(streams), tuple(live))


@dataclass(slots=True)
class Known:
    """A stream the saved live posts may belong to; ``replay`` once one was made to check."""

    config: StreamConfig
    where: str
    replay: Replay | None = None

    def trial(self, feeds: Mapping[str, Feed], settings: Settings, where: str) -> Replay:
        if self.replay is None:
            self.replay = _replay(feeds[self.config.feed], self.config, settings, where)
        return self.replay


def _streams(
    value: Any,
    settings: Settings,
    feeds: Mapping[str, Feed],
    known: dict[str, Known],
) -> list[tuple[StreamConfig, dict[str, Any]]]:
    """The API-made streams, each checked as ``POST /api/streams`` checks one; added to
    ``known`` by id."""
    if not isinstance(value, list):
        raise ValueError(f"streams: expected an array, got {json_kind(value)}")
    limit = settings.server.max_streams
    if len(value) > limit:
        raise ValueError(
            f"streams: {len(value)} streams made through the API, more than "
            f"server.max_streams ({limit}); raise it to start with them"
        )
    out = []
    for number, raw in enumerate(value):
        here = f"streams[{number}]"
        if not isinstance(raw, dict):
            raise ValueError(f"{here}: expected an object, got {json_kind(raw)}")
        try:
            config = StreamConfig.model_validate(raw)
        except ValidationError as exc:
            raise from_validation(exc, here) from None
        if config.id in known:
            other = known[config.id].where
            raise ValueError(
                f"{here}.id: stream {config.id!r} is also {other}; rename or remove one of them"
            )
        if config.feed not in feeds:
            raise ValueError(f"{here}.feed: no feed {config.feed!r}")
        known[config.id] = Known(config, here)
        known[config.id].trial(feeds, settings, here)  # a scenario or start that no longer fits
        out.append((config, raw))
    return out


def _live(
    value: Any,
    settings: Settings,
    feeds: Mapping[str, Feed],
    known: Mapping[str, Known],
) -> list[tuple[str, Any, str]]:
    """Each stream's live posts, put into a replay of that stream as the server will."""
    if not isinstance(value, list):
        raise ValueError(f"live: expected an array, got {json_kind(value)}")
    out = []
    seen: dict[str, int] = {}
    for number, item in enumerate(value):
        here = f"live[{number}]"
        if not isinstance(item, dict):
            raise ValueError(f"{here}: expected an object, got {json_kind(item)}")
        stream_id = item.get("stream")
        if not isinstance(stream_id, str):
            raise ValueError(f"{here}.stream: expected a stream id, got {json_kind(stream_id)}")
        if stream_id not in known:
            raise ValueError(
                f"{here}.stream: no stream {shown(stream_id)} in the configuration or in streams "
                "(configure it again, or remove its live posts from the file)"
            )
        if stream_id in seen:
            raise ValueError(f"{here}.stream: {stream_id!r} already has live[{seen[stream_id]}]")
        seen[stream_id] = number
        posts = {key: part for key, part in item.items() if key != "stream"}
        known[stream_id].trial(feeds, settings, here).load_live(posts, here)
        out.append((stream_id, posts, here))
    return out


def _replay(feed: Feed, config: StreamConfig, settings: Settings, where: str) -> Replay:
    """A replay of the stream as the server would make it, to try things on."""
    try:
        return Replay(
            build_script(feed, config, settings.scenarios),
            stream=config.id,
            incarnation="check",
            now=0.0,
            options=config.options(),
        )
    except ValueError as exc:
        raise ValueError(f"{where}.{exc}") from None
