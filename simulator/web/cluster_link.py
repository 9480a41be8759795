"""One shared stream's tie to Redis (``cluster.py`` has the node, and docs/scaling.md the
design): what applies the inputs the node's one reader reads for the stream (``Node._read``)
to this node's replay, the commands this node appends, the lease, and, while this node holds
it, the clock that appends "advance" and saves the checkpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import zlib
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import orjson
from redis.exceptions import RedisError

from ..core import checkpoint
from ..core.commands import Command, SetFaults, command_message, parse_logged
from ..core.errors import InputError
from .stream import Stream, StreamFailed, Unavailable

if TYPE_CHECKING:
    from .cluster import Node

log = logging.getLogger("livesim.cluster")

COMMAND_TIMEOUT = 5.0
READ_BLOCK_MS = 50
"""How long the node's one read waits for new inputs (``Node._read``): a stream this node takes
up meanwhile, which that read does not name, is read from within this."""
READ_COUNT = 512
CURSOR_WAIT = 1.0
"""Seconds a subscription with a cursor ahead of this node's replay waits for it."""
RETRY = 0.25
"""Seconds between attempts to reach Redis while it is down."""
RELEASE_TIMEOUT = 1.0
"""Seconds a stopping node gives Redis to take back a lease."""


APPEND = """
local n = redis.call('incr', KEYS[2])
return redis.call('xadd', KEYS[1], '*', 'n', n, unpack(ARGV))
"""
"""An input at the end of the log, numbered: each input carries the number of inputs appended
before it plus one, so a reader that finds a number other than its last plus one knows that the
inputs between were trimmed before it read them (``Link._skip_gap``)."""


def stream_keys(stream_id: str) -> tuple[str, str, str, str, str]:
    """A stream's input log, lease, last owner, checkpoint and count of inputs appended."""
    return (
        f"livesim:in:{stream_id}",
        f"livesim:lease:{stream_id}",
        f"livesim:owner:{stream_id}",
        f"livesim:checkpoint:{stream_id}",
        f"livesim:count:{stream_id}",
    )


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A stream as it stood right after one input of its log (``livesim:checkpoint:{id}``)."""

    entry: bytes
    """The input it was taken after."""
    at: float
    """That input's time."""
    number: int | None
    """That input's number (``APPEND``); None in a checkpoint that does not say."""
    state: bytes
    """The replay's (``core/checkpoint.py``), as stored: zlib-compressed if ``compressed``."""
    faults: str | None
    """The stream's faults then (``SetFaults``: its input log changes them, so they are the
    checkpoint's, not the definition's); "" none; None in a checkpoint that does not say."""
    compressed: bool = False

    @classmethod
    def read(cls, raw: dict[bytes, bytes]) -> Checkpoint:
        faults = raw.get(b"faults")
        number = raw.get(b"n")
        return cls(
            raw[b"id"],
            float(raw[b"t"]),
            None if number is None else int(number),
            raw[b"state"],
            None if faults is None else faults.decode(),
            raw.get(b"encoding") == b"zlib",
        )

    def fields(self) -> dict[bytes, bytes]:
        return {
            b"id": self.entry,
            b"t": repr(self.at).encode(),
            **({} if self.number is None else {b"n": str(self.number).encode()}),
            b"state": self.state,
            b"faults": (self.faults or "").encode(),
            **({b"encoding": b"zlib"} if self.compressed else {}),
        }

    async def json(self) -> bytes:
        """The state as ``checkpoint.restore`` reads it (decompressed in a worker thread: 10 MB
        into 59 MB is ~0.2 s for a stream of 100 000 posts)."""
        if not self.compressed:
            return self.state
        return await asyncio.to_thread(zlib.decompress, self.state)


async def encode(captured: tuple[Checkpoint, checkpoint.Captured]) -> Checkpoint:
    """The checkpoint ``Link.capture`` took, its state encoded and compressed in a worker
    thread: for a stream of 100 000 posts that is about a second of work the loop does not wait
    for, and 10 MB instead of 59 MB to copy into Redis (docs/scaling.md "Limits")."""
    where, state = captured
    return replace(where, state=await asyncio.to_thread(_compressed, state), compressed=True)


def _compressed(state: checkpoint.Captured) -> bytes:
    """zlib at its fastest level (a sixth of the JSON's size); fed piece by piece, so that the
    JSON is never joined (zlib lets go of the GIL while it works, ``orjson`` and a join do not)."""
    compressor = zlib.compressobj(1)
    out = [compressor.compress(piece) for piece in checkpoint.pieces(state)]
    out.append(compressor.flush())
    return b"".join(out)


def _entry_key(entry_id: bytes) -> tuple[int, int]:
    millis, _, seq = entry_id.partition(b"-")
    return int(millis), int(seq or 0)


class Link:
    """One shared stream's tie to Redis: its inputs applied as the node reads them, and, while
    this node holds its lease, the clock that appends "advance"."""

    def __init__(self, node: Node, stream: Stream, definition: bytes, api: bool) -> None:
        self.node = node
        self.stream = stream
        self.definition = definition
        self.api = api
        """Made through the API: deleted here when its definition goes."""
        keys = stream_keys(stream.id)
        self.key, self.lease_key, self.owner_key, self.checkpoint_key, self.count_key = keys
        self._since_checkpoint = 0
        self._previous_checkpoint: bytes | None = None
        self._saving = False
        self.last_id = b"0-0"
        self.last_t = -math.inf
        """The latest input's time: later inputs are applied at no earlier time, so the
        replay's clock never goes back when the owner changes (every node takes the same max)."""
        self.last_n: int | None = 0
        """The latest input's number (``APPEND``): the next one read must be one more."""
        self.owner = False
        self._waiting: dict[str, asyncio.Future[int]] = {}
        self._tokens = itertools.count()
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        """Set after each read: what ``_catch_up`` waits on."""
        self._holds = 0
        """Taking the stream up from a checkpoint: the node's reader leaves it alone."""
        self._tasks: list[asyncio.Task[Any]] = []
        self._clock: asyncio.Task[Any] | None = None

    async def start(self) -> None:
        """Return once the node's reader caught this stream up with the end of its log
        (``Node.links`` names it already), then go for the lease."""
        await self._catch_up()
        self._tasks.append(self.node.spawn(self._lease(), f"redis:lease:{self.stream.id}"))

    async def close(self) -> None:
        self.node.links.pop(self.stream.id, None)
        for task in [*self._tasks, *([self._clock] if self._clock else [])]:
            task.cancel()
        if self.owner and self.node.up:  # the next owner need not wait for the lease to end
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(RELEASE_TIMEOUT):
                    await self.node.release(keys=[self.lease_key], args=[self.node.id])
        self.owner = False

    async def send(self, command: Command) -> None:
        """Append ``command``; return once this node's replay applied it, raising what it
        raised. ``Unavailable`` if Redis does not take it or no answer comes in time."""
        message = orjson.dumps(command_message(command))
        await self._append({b"o": b"c", b"c": message})

    async def _append(self, fields: dict[bytes, bytes]) -> int:
        self.node.check()
        token = f"{self.node.id}:{next(self._tokens)}"
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting[token] = future
        fields = {**fields, b"t": repr(self.node.now()).encode(), b"r": token.encode()}
        args = [part for pair in fields.items() for part in pair]
        try:
            await self.node.append(keys=[self.key, self.count_key], args=args)
            self.node.published += 1
            async with asyncio.timeout(COMMAND_TIMEOUT):
                return await future
        except TimeoutError:  # first: it is an OSError, but Redis did answer
            raise Unavailable("redis: the input was not read back in time") from None
        except (RedisError, OSError) as exc:
            self.node.lost(exc)
            raise Unavailable(f"{self.node.reason} (this node cannot reach Redis)") from None
        finally:
            self._waiting.pop(token, None)

    async def resync(self, definition: bytes) -> None:
        """Redis lost its data and another node put this stream back from its own replay:
        take the stream up from that checkpoint. This node may have applied an input more or
        less than that node (the last ones before Redis went): unless it stands exactly there,
        its subscribers get a ``stream.reset`` (they reload the snapshot) rather than events
        that were never the service's."""
        try:
            saved = await self.node.checkpoint_of(self.stream.id)
            behind = saved is not None and saved.entry != self.last_id and not self.stream.failed
            if behind:  # unless it went on from that checkpoint with the inputs appended since
                behind = not await self.node.redis.xrange(self.key, self.last_id, self.last_id)
        except (RedisError, OSError) as exc:
            self.node.lost(exc)
            return  # the next look at the definitions tries again
        except Unavailable:
            return
        self.definition = definition
        if saved is None or not behind:
            return  # the same inputs applied: the same replay
        self._holds += 1
        try:
            await self.take_up(saved)
        finally:
            self._holds -= 1
        replay = self.stream.replay
        self.stream.hub.publish([replay.reset_for("redis", self.stream.now())])
        self._wake.set()
        log.warning("stream %s: taken up from the replay another node put back", self.stream.id)

    async def take_up(self, saved: Checkpoint) -> None:
        """Put ``saved`` into this node's stream: its replay, its faults, and where its reader
        goes on from. Raises as ``checkpoint.restore``."""
        checkpoint.restore(self.stream.replay, await saved.json())
        if saved.faults is not None:
            self.stream.set_faults(SetFaults.parse(saved.faults, "checkpoint.faults").spec)
        self.last_id, self.last_t, self.last_n = saved.entry, saved.at, saved.number

    async def reach(self, serial: int) -> None:
        try:
            async with asyncio.timeout(CURSOR_WAIT):
                while self.stream.replay.serial < serial:
                    self._progress.clear()
                    await self._progress.wait()
        except TimeoutError:
            pass  # a cursor never issued: the replay answers it (``stream.reset``)

    # Reading ------------------------------------------------------------------------------

    async def _catch_up(self) -> None:
        """Wait until this node applied every input appended before now."""
        while True:
            try:
                newest: Any = await self.node.redis.xrevrange(self.key, count=1)
                break
            except (RedisError, OSError) as exc:
                self.node.lost(exc)
                await self.node.back.wait()
        if not newest:
            return
        target = _entry_key(newest[0][0])
        while _entry_key(self.last_id) < target:
            self._progress.clear()
            await self._progress.wait()

    @property
    def held(self) -> bool:
        return self._holds > 0

    def deliver(self, read_from: bytes, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        """Apply the inputs the node's reader read for this stream after ``read_from``, in
        order; none if the stream no longer stands there (a take-up from a checkpoint moved it
        while they were read: the next read starts from where it stands now)."""
        for entry_id, fields in entries:
            if self.held or read_from != self.last_id:
                return
            if not self._follows(fields):
                self._holds += 1
                self.node.spawn(self._skip_gap(fields), f"redis:gap:{self.stream.id}")
                return
            self._apply(entry_id, fields)
            read_from = entry_id

    def progressed(self) -> None:
        self._progress.set()

    def _follows(self, fields: dict[bytes, bytes]) -> bool:
        """The input is the one after the last applied here (or does not say)."""
        number = fields.get(b"n")
        return number is None or self.last_n is None or int(number) == self.last_n + 1

    async def _skip_gap(self, fields: dict[bytes, bytes]) -> None:
        try:
            await self._take_up_latest(fields)
        finally:
            self._holds -= 1

    async def _take_up_latest(self, fields: dict[bytes, bytes]) -> None:
        """The next input in the log is not the one after the last applied here: those between
        were trimmed before this node read them (it joined, or fell behind, while two
        checkpoints were written), or Redis lost the log and another node put the stream back
        from a replay behind this one. Take the stream up from the latest checkpoint, which the
        log goes on from, and tell this node's subscribers to reload (a ``stream.reset``):
        never go on without the inputs, never silently."""
        found = fields.get(b"n", b"?").decode(errors="replace")
        log.warning(
            "stream %s: the input log goes on at input %s, not %s (the ones between were "
            "trimmed before this node read them): taking it up from the latest checkpoint",
            self.stream.id,
            found,
            (self.last_n or 0) + 1,
        )
        while True:
            try:
                saved = await self.node.checkpoint_of(self.stream.id)
            except (RedisError, OSError, Unavailable):
                saved = None
            if saved is not None and saved.entry != self.last_id:
                break
            await asyncio.sleep(RETRY)  # not written yet: the owner writes one soon
        if self.stream.failed:
            self.last_id, self.last_t, self.last_n = saved.entry, saved.at, saved.number
            return
        await self.take_up(saved)
        replay = self.stream.replay
        self.stream.hub.publish([replay.reset_for("redis", self.stream.now())])

    def _apply(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        self.last_id = entry_id
        number = fields.get(b"n")
        self.last_n = None if number is None else int(number)
        self.node.received += 1
        self._since_checkpoint += 1
        self._apply_one(entry_id, fields)
        if (
            self.owner
            and self._since_checkpoint >= self.node.checkpoint_every
            and not self.stream.failed
            and not self._saving
        ):
            self._since_checkpoint = 0
            self._saving = True
            self.node.spawn(self._save(self.capture()), f"checkpoint:{self.key}")

    def capture(self) -> tuple[Checkpoint, checkpoint.Captured]:
        """The stream as it stands right after the last input applied here, to encode: the
        checkpoint's state is left empty, for ``encode``."""
        where = Checkpoint(
            self.last_id, self.last_t, self.last_n, b"", self.stream.faults_text or ""
        )
        return where, checkpoint.capture(self.stream.replay)

    async def _save(self, captured: tuple[Checkpoint, checkpoint.Captured]) -> None:
        """Encode a checkpoint, save it, then trim the log to the one before
        (``Node.checkpoint_every``). One at a time: saved out of order, an older checkpoint
        would replace a newer one after the log was trimmed past it."""
        try:
            saved = await encode(captured)
            await self.node.redis.hset(self.checkpoint_key, mapping=saved.fields())  # type: ignore[arg-type]
            if self._previous_checkpoint is not None:
                await self.node.redis.xtrim(self.key, minid=self._previous_checkpoint)
            self._previous_checkpoint = saved.entry
        except (RedisError, OSError) as exc:
            self.node.lost(exc)
        finally:
            self._saving = False

    def _apply_one(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        token = fields.get(b"r", b"").decode(errors="replace")
        future = self._waiting.pop(token, None)
        command: Command | None = None
        try:
            at = self.last_t = max(float(fields[b"t"]), self.last_t)
            if fields.get(b"o") == b"c":
                message = orjson.loads(fields[b"c"])
                command = parse_logged(message, "redis")
            count = self.stream.apply_input(command, at)
        except (ValueError, StreamFailed, KeyError, TypeError) as exc:  # a bad entry: skipped
            if future is None and not isinstance(exc, InputError | StreamFailed):
                log.error("stream %s: input %s skipped: %r", self.stream.id, entry_id, exc)
            if future is not None and not future.done():
                future.set_exception(exc)
            return
        if future is not None and not future.done():
            future.set_result(count)
        if command is not None:
            self._wake.set()

    # The clock ----------------------------------------------------------------------------

    async def _lease(self) -> None:
        node = self.node
        millis = int(node.lease * 1000)
        while True:
            try:
                if self.owner:
                    if not await node.renew(keys=[self.lease_key], args=[node.id, millis]):
                        self._demote("lease lost")
                elif self.stream.failed:
                    pass  # a node that cannot run the replay must not hold its clock
                elif await node.redis.set(self.lease_key, node.id, nx=True, px=millis):
                    await self._catch_up()
                    previous: Any = await node.redis.set(self.owner_key, node.id, get=True)
                    if previous is not None and previous != node.id.encode():
                        node.takeovers += 1
                        log.warning(
                            "stream %s: took over its clock from node %s",
                            self.stream.id,
                            previous.decode(errors="replace"),
                        )
                    self._promote()
            except (RedisError, OSError) as exc:
                node.lost(exc)
            await asyncio.sleep(node.lease / 3)

    def _promote(self) -> None:
        self.owner = True
        self._clock = self.node.spawn(self._tick(), f"redis:clock:{self.stream.id}")

    def _demote(self, why: str) -> None:
        log.warning("stream %s: no longer runs its clock (%s)", self.stream.id, why)
        self.owner = False
        if self._clock is not None:
            self._clock.cancel()
            self._clock = None

    async def _tick(self) -> None:
        """Append "advance" when the replay's next deadline comes (woken early by a command).
        Events that fell due while no node ran the clock go out at once, in order, late."""
        stream = self.stream
        replay = stream.replay
        while self.owner and not stream.failed:
            self._wake.clear()
            deadline = replay.next_deadline()
            if deadline is None:
                await self._wake.wait()
                continue
            if deadline == -math.inf:
                await self._drain()
            else:
                try:
                    async with asyncio.timeout_at(deadline - self.node.base):
                        await self._wake.wait()
                    continue
                except TimeoutError:
                    pass
            try:
                count = await self._append({b"o": b"a"})
            except Unavailable:
                await self.node.back.wait()
                continue
            if count and deadline != -math.inf and stream.on_lateness:
                stream.on_lateness(max(0.0, self.last_t - deadline))

    async def _drain(self) -> None:
        """At speed max, as fast as this node's subscribers take it."""
        hub = self.stream.hub
        await asyncio.sleep(0.001)
        for _ in range(50):
            if hub.backlog() <= self.stream.max_pending // 2:
                return
            await asyncio.sleep(0.002)
