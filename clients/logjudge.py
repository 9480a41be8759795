"""``livesim judge``: judge someone else's client from a log of what it received.

The log is what the client wrote down, one line per event received, in the order received:

- a JSON object with at least ``"id"`` (livesim's envelope as received will do; ``type`` and
  ``post`` — a post id, or the post object with its ``id`` — are needed to judge against a
  script), or
- a bare event id.

Blank lines and lines starting with ``#`` are skipped. The reference is the stream's own event
log (fetched over SSE from just before the log's first id) or the output of ``livesim script``.
Each received event is placed in the reference: **foreign** when it is not there; a repeat of one
already received is a **duplicate**; one placed before the furthest already received is **out of
order**; every reference event between the first and the furthest received that never arrived is
**missing**. Against a script events are keyed by ``(type, post)``: the k-th ``post.updated`` of a
post received is the k-th the script has. An id ending in ``.reset`` (a ``stream.reset`` made for
one connection: the server could not resume it) is not in the stream's log: it excuses what the
client missed up to it, as the protocol says it must reload. The judging is pure (``judge``); the
counts are ``clients.judge.Counts``, the same a load run reports.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from .judge import Counts, split_id
from .target import ClientError, read_file

MAX_LOG_BYTES = 256 * 1024 * 1024
MAX_LINE = 1024 * 1024
EXAMPLES = 5
"""Ids shown per kind of finding."""
FETCH_TIMEOUT = 30.0
SCRIPT_SKIPPED = "stream."
"""Against a script, ``stream.*`` events (state, resets, heartbeats) are not judged: a script
holds the posts' events only."""


@dataclass(frozen=True, slots=True)
class Entry:
    id: str | None
    type: str | None
    post: str | None
    line: int


@dataclass
class Verdict:
    counts: Counts = field(default_factory=Counts)
    examples: dict[str, list[str]] = field(default_factory=dict)
    first: str | None = None
    last: str | None = None

    def note(self, kind: str, what: str) -> None:
        shown = self.examples.setdefault(kind, [])
        if len(shown) < EXAMPLES:
            shown.append(what)

    @property
    def wrong(self) -> int:
        return self.counts.wrong

    def as_dict(self) -> dict[str, Any]:
        counts = self.counts.as_dict()
        return {
            "passed": not self.wrong,
            "first": self.first,
            "last": self.last,
            **{k: counts[k] for k in ("expected", "received", "missing", "duplicate")},
            "out_of_order": counts["out_of_order"],
            "foreign": counts["foreign"],
            "connection_resets": counts["connection_resets"],
            "examples": self.examples,
        }


def read_log(path: str) -> list[Entry]:
    """The log's entries; a line that is neither an id nor a JSON object with one is a
    ``ClientError`` naming ``path:line``."""
    data = read_file(path, MAX_LOG_BYTES)
    out = []
    for number, raw in enumerate(data.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        where = f"{path}:{number}"
        if len(line) > MAX_LINE:
            raise ClientError(f"{where}: a line over {MAX_LINE} bytes")
        if line[:1] in (b"{", b"[", b'"'):
            out.append(_json_entry(line, where, number))
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise ClientError(f"{where}: not UTF-8") from None
        if any(c.isspace() for c in text) or len(text) > 200:
            raise ClientError(f"{where}: expected an event id or a JSON object, got {text[:60]!r}")
        out.append(Entry(text, None, None, number))
    return out


def _json_entry(line: bytes, where: str, number: int) -> Entry:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ClientError(f"{where}: not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ClientError(f"{where}: expected a JSON object")
    event_id, type, post = obj.get("id"), obj.get("type"), obj.get("post")
    if isinstance(post, dict):
        post = post.get("id")
    for name, value in (("id", event_id), ("type", type), ("post", post)):
        if value is not None and not isinstance(value, str):
            raise ClientError(f"{where}: $.{name}: expected a string")
    if event_id is None and (type is None or post is None):
        raise ClientError(f"{where}: $.id: missing (or give type and post to judge by script)")
    return Entry(event_id, type, post, number)


def read_script(path: str) -> list[tuple[str, str]]:
    """``(type, post)`` of each event of ``livesim script`` output (text or ``--json``)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ClientError(f"{path}: {exc.strerror or 'cannot read'}") from None
    if data.lstrip().startswith(b"{"):
        try:
            events = orjson.loads(data)["events"]
            return [(str(e["type"]), str(e["post"])) for e in events]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise ClientError(f"{path}: not `livesim script --json` output: {exc}") from None
    out = []
    for number, raw in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if not raw.strip() or raw.startswith("#"):
            continue
        fields = raw.split()
        if len(fields) < 3:
            raise ClientError(
                f"{path}:{number}: expected TIME TYPE POST as `livesim script` prints"
            )
        out.append((fields[1], fields[2]))
    return out


def judge(
    reference: Sequence[Hashable], received: Iterable[Hashable], *, to_end: bool = False
) -> Verdict:
    """Place each received key in ``reference`` (keys may repeat there: a post updated twice);
    ``to_end``: the client should have received the reference through its last event, not
    only through the furthest it received."""
    places: dict[Hashable, list[int]] = {}
    for index, key in enumerate(reference):
        places.setdefault(key, []).append(index)
    taken: dict[Hashable, int] = {}
    got = bytearray(len(reference))
    verdict = Verdict()
    counts = verdict.counts
    first = high = -1
    excused_to = -1
    for key in received:
        counts.received += 1
        shown = _shown(key)
        if verdict.first is None:
            verdict.first = shown
        verdict.last = shown
        if isinstance(key, tuple) and key and key[0] == RESET:
            counts.connection_resets += 1
            counts.received -= 1
            upto = places.get(key[1], [-1])[0]
            excused_to = max(excused_to, upto)
            if first < 0 and upto >= 0:
                first = high = upto
            high = max(high, upto)
            continue
        indices = places.get(key)
        if indices is None:
            counts.foreign += 1
            verdict.note("foreign", shown)
            continue
        k = taken.get(key, 0)
        if k >= len(indices):
            counts.duplicate += 1
            verdict.note("duplicate", shown)
            continue
        taken[key] = k + 1
        index = indices[k]
        got[index] = 1
        if first < 0:
            first = high = index
        elif index > high:
            high = index
        elif index < high:
            counts.out_of_order += 1
            verdict.note("out_of_order", shown)
    if first >= 0:
        if to_end:
            high = len(reference) - 1
        for index in range(first, high + 1):
            if got[index]:
                counts.expected += 1
            elif index > excused_to:
                counts.expected += 1
                counts.missing += 1
                verdict.note("missing", _shown(reference[index]))
    return verdict


RESET = "\x00reset"
"""The key of a per-connection reset: ``(RESET, the id it says the stream is at)``."""


def _shown(key: Hashable) -> str:
    if isinstance(key, tuple):
        return f"{key[1]}.reset" if key[0] == RESET else " ".join(map(str, key))
    return str(key)


def keys_by_id(entries: list[Entry]) -> list[Hashable]:
    out: list[Hashable] = []
    for entry in entries:
        if entry.id is None:
            raise ClientError(f"line {entry.line}: $.id: missing (judging against a stream)")
        if entry.id.endswith(".reset"):
            out.append((RESET, entry.id.removesuffix(".reset")))
        else:
            out.append(entry.id)
    return out


def keys_by_post(entries: list[Entry], path: str) -> list[Hashable]:
    out: list[Hashable] = []
    for entry in entries:
        if entry.type is not None and entry.type.startswith(SCRIPT_SKIPPED):
            continue
        if entry.type is None or entry.post is None:
            raise ClientError(
                f"{path}:{entry.line}: judging against a script needs $.type and $.post"
            )
        out.append((entry.type, entry.post))
    return out


async def fetch_reference(url: str, ids: list[Hashable], until: str | None) -> list[Hashable]:
    """The stream's events from just before the log's first id (of the stream's incarnation)
    to ``until`` (default: the stream's cursor now), over SSE with ``?since=``."""
    from . import reads
    from .sse import SSEReader
    from .target import find_target, get_json

    async with reads.session() as session:
        target = await find_target(url, session)
        if target.private:
            raise ClientError(f"{target}: a private feed has no shared log; judge with --script")
        info = await get_json(session, f"{target.base}/api/streams/{target.id}")
        cursor = info.get("cursor") if isinstance(info, dict) else None
        end = split_id((until or (cursor if isinstance(cursor, str) else "")).encode())
        if end is None:
            raise ClientError(f"{target}: no cursor to judge up to (give --until ID)")
        incarnation = end[0].decode()
        serials = [
            parsed[1]
            for key in ids
            if isinstance(key, str)
            and (parsed := split_id(key.encode())) is not None
            and parsed[0].decode() == incarnation
        ]
        if not serials:
            raise ClientError(
                f"{target}: no id in the log is of the stream's incarnation {incarnation!r} "
                "(the server restarted since?): nothing to fetch"
            )
        since = f"{incarnation}-{max(0, min(serials) - 1)}"
        out: list[Hashable] = []
        if end[1] <= min(serials) - 1:
            return out
        deadlines = aiohttp.ClientTimeout(total=FETCH_TIMEOUT, sock_read=10)
        sse_url = target.base + target.path("sse", since=since)
        try:
            async with reads.get(session, sse_url, deadlines=deadlines) as response:
                if response.status != 200:
                    raise ClientError(f"{sse_url}: HTTP {response.status}")
                async for item in SSEReader(response):
                    event_id = getattr(item, "id", "")
                    if event_id.endswith(".reset"):
                        raise ClientError(
                            f"{target}: its log no longer holds the events after {since} (it "
                            "keeps the current epoch, bounded): judge sooner, or with --script"
                        )
                    parsed = split_id(event_id.encode())
                    if parsed is None:
                        continue
                    out.append(event_id)
                    if parsed[0] != end[0] or parsed[1] >= end[1]:
                        break
        except TimeoutError:
            raise ClientError(f"{sse_url}: the stream's log did not arrive in time") from None
        except reads.ReadError as exc:
            raise ClientError(str(exc)) from None
        except aiohttp.ClientError as exc:
            raise ClientError(f"{sse_url}: {type(exc).__name__}: {exc}") from None
        return out
