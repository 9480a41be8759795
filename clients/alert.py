"""``livesim alert``: follow a stream and fire rules on posts, once per post and rule.

An alerting client to copy from. It is built on ``tail.Follower`` (snapshot, resume from the last
id across faults, reload on ``stream.reset``) and adds:

- **Rules** (TOML, validated with pydantic; see ``config/alerts.toml``): every condition a rule
  gives must hold — ``keywords`` (any of them, whole words, case-insensitive), ``pattern`` (a
  regular expression, case-insensitive), both searched in ``fields`` (headline and body);
  ``source`` (the agency, any of them); ``types`` (the event types it looks at, default
  ``post.created`` and ``post.updated``; ``["post.deleted"]`` fires on any deletion); ``number``
  (a number pulled from the text compared with ``at_least`` / ``at_most``, see
  ``number_near``).
- **Once per post and rule**: the key is ``(rule, post id)``, never the event id, so a
  reconnect, a reset's reloaded snapshot or the next loop lap (new event ids, same posts) does
  not fire it again.
- **Actions**: a JSON line on stdout, always; a webhook POST (aiohttp, timeout, retries with
  exponential backoff); a ``command`` run with the alert JSON on stdin (with a timeout). An
  action that finally fails is reported as one line on stderr and as a JSON line
  ``{"error": …}`` on stdout, and the alerter goes on.
- **Lateness**: each alert records ``lateness_ms`` = when it fired − the event's ``due_at``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shlex
import sys
import time
import tomllib
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import aiohttp
import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from simulator.core.model import ArchiveError, shown
from simulator.core.timeline import parse_duration
from simulator.sources import read_regular_file

from . import reads
from .sse import MAX_EVENT_BYTES
from .tail import Envelope, Follower, follow_until, print_fault
from .target import ClientError, find_target, get_json

MAX_RULES_BYTES = 1024 * 1024
POST_TYPES = ("post.created", "post.updated", "post.deleted", "post.pinned", "post.unpinned")
EventType = Literal["post.created", "post.updated", "post.deleted", "post.pinned", "post.unpinned"]


# Rules ---------------------------------------------------------------------------------------


def _listed(value: object) -> object:
    return [value] if isinstance(value, str) else value


def _duration(value: object) -> object:
    return parse_duration(value, None) if value is not None else value


def _argv(value: object) -> object:
    if isinstance(value, str):
        try:
            value = shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"cannot split into arguments: {exc}") from None
    return value


Duration = Annotated[float, BeforeValidator(_duration), Field(ge=0.001, le=3600)]
Words = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=200)]], BeforeValidator(_listed)
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NumberRule(_Strict):
    """A number near a phrase, compared with a threshold (see ``number_near``)."""

    phrase: Annotated[Words, Field(min_length=1, max_length=50)]
    at_least: float | None = Field(default=None, allow_inf_nan=False)
    at_most: float | None = Field(default=None, allow_inf_nan=False)
    within: int = Field(default=6, ge=0, le=50)

    @model_validator(mode="after")
    def _threshold(self) -> NumberRule:
        if self.at_least is None and self.at_most is None:
            raise ValueError("give at_least or at_most (or both)")
        return self


class Webhook(_Strict):
    url: str = Field(pattern=r"^https?://[^\s/]+", max_length=2000)
    timeout: Duration = 5.0
    retries: int = Field(default=3, ge=0, le=10)
    backoff: Duration = 0.5
    """Before the first retry; doubles for each next one."""


def _webhook(value: object) -> object:
    return {"url": value} if isinstance(value, str) else value


class Rule(_Strict):
    name: str = Field(min_length=1, max_length=100)
    keywords: Annotated[Words, Field(max_length=200)] = []
    pattern: str | None = Field(default=None, max_length=2000)
    fields: list[Literal["headline", "body"]] = Field(default=["headline", "body"], min_length=1)
    source: Annotated[Words, Field(max_length=50)] = []
    types: Annotated[list[EventType], BeforeValidator(_listed), Field(min_length=1)] = [
        "post.created",
        "post.updated",
    ]
    number: NumberRule | None = None
    webhook: Annotated[Webhook | None, BeforeValidator(_webhook)] = None
    command: Annotated[
        list[Annotated[str, Field(min_length=1)]] | None,
        BeforeValidator(_argv),
        Field(min_length=1, max_length=100),
    ] = None
    command_timeout: Duration = 10.0

    @model_validator(mode="before")
    @classmethod
    def _pattern_compiles(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("pattern"), str):
            try:
                re.compile(data["pattern"])
            except re.error as exc:
                raise _FieldError("pattern", f"not a regular expression: {exc}") from None
        return data

    @model_validator(mode="after")
    def _has_condition(self) -> Rule:
        given = "types" in self.model_fields_set
        if not (self.keywords or self.pattern or self.source or self.number or given):
            raise ValueError("give at least one of keywords, pattern, source, number, types")
        return self


class _FieldError(ValueError):
    """A rule-level check that names its field (pydantic would name only the rule)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class RulesFile(_Strict):
    rules: list[Rule] = Field(min_length=1, max_length=1000)


class CompiledRule:
    """A rule with its expressions built once."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.name = rule.name
        words = "|".join(re.escape(k) for k in rule.keywords)
        self.keywords = re.compile(rf"(?<!\w)(?:{words})(?!\w)", re.I) if words else None
        self.pattern = re.compile(rule.pattern, re.I) if rule.pattern else None
        self.sources = {s.casefold() for s in rule.source}
        self.types = frozenset(rule.types)

    def match(self, post: dict[str, Any], type: str) -> dict[str, Any] | None:
        """What matched (for the alert), or None."""
        if type not in self.types:
            return None
        rule = self.rule
        matched: dict[str, Any] = {}
        if self.sources:
            source = post.get("source")
            if not isinstance(source, str) or source.casefold() not in self.sources:
                return None
            matched["source"] = source
        text = "\n\n".join(
            value for f in rule.fields if isinstance(value := post.get(f), str) and value
        )
        if self.keywords is not None:
            found = sorted({m.group(0).lower() for m in self.keywords.finditer(text)})
            if not found:
                return None
            matched["keywords"] = found
        if self.pattern is not None:
            hit = self.pattern.search(text)
            if hit is None:
                return None
            matched["pattern"] = hit.group(0)[:200]
        if rule.number is not None:
            number = rule.number
            values = number_near(text, number.phrase, number.within)
            good = [
                v
                for v in values
                if (number.at_least is None or v >= number.at_least)
                and (number.at_most is None or v <= number.at_most)
            ]
            if not good:
                return None
            matched["number"] = good[0]
        return matched


def load_rules(path: str) -> list[CompiledRule]:
    """Rules from a TOML file, or a ``ClientError`` naming the file and key path at fault:
    ``config/alerts.toml: rules[2].pattern: not a regular expression: …``."""
    try:
        data = read_regular_file(Path(path), MAX_RULES_BYTES, "a rules file")
    except ArchiveError as exc:
        raise ClientError(str(exc)) from None
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ClientError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ClientError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:
        raise ClientError(f"{path}: invalid TOML: nested too deeply") from None
    return compile_rules(raw, path)


def compile_rules(raw: object, where: str = "rules") -> list[CompiledRule]:
    try:
        parsed = RulesFile.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error["loc"])
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, _FieldError):
            loc += (cause.field,)
        raise ClientError(f"{where}: {_path(loc)}: {_message(error)}") from None
    seen: dict[str, int] = {}
    for number, rule in enumerate(parsed.rules):
        if rule.name in seen:
            raise ClientError(
                f"{where}: rules[{number}].name: {rule.name!r} is already the name of "
                f"rules[{seen[rule.name]}]"
            )
        seen[rule.name] = number
    return [CompiledRule(rule) for rule in parsed.rules]


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, str) and part.startswith("function-"):
            continue  # pydantic's name for a validator step, not a key
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "$"


def _message(error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind in ("model_type", "dict_type"):
        return f"expected a table, got {type(error['input']).__name__}"
    if kind == "list_type":
        return f"expected an array, got {type(error['input']).__name__}"
    return str(error["msg"]).removeprefix("Value error, ")


# Numbers in text -----------------------------------------------------------------------------

_WORD_NUMBERS = {
    w: n
    for n, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
} | {"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_TOKEN = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|[A-Za-z][A-Za-z'-]*")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def number_near(text: str, phrases: Iterable[str], within: int = 6) -> list[float]:
    """The numbers a phrase is about, one per occurrence of the phrase.

    How a number is associated with a phrase: in the same sentence, the nearest number
    *before* the phrase with at most ``within`` words between them; if there is none, the
    nearest number *after* it within ``within`` words. A number is digits (``1,075``, ``26``,
    ``2.5``) or a word up to twenty and the tens (``three``, ``sixty``), optionally followed by
    a scale word (``two thousand`` = 2000, ``1.2 million``). So "at least 1,075 people have
    been killed" gives 1075 for ``killed``; "757 civilians were killed and 599 injured" gives
    757; "air strikes killed at least 26 people" gives 26.

    Linear in the text: each occurrence finds its neighbours by bisection in the sentence's
    numbers, which are in order and do not overlap.
    """
    wanted = [p.lower().split() for p in phrases if p.split()]
    out: list[float] = []
    for sentence in _SENTENCE.split(text):
        tokens = [t.lower() for t in _TOKEN.findall(sentence)]
        numbers = _numbers(tokens)
        starts = [start for start, _, _ in numbers]
        ends = [end for _, end, _ in numbers]
        for phrase in wanted:
            size = len(phrase)
            first = phrase[0]
            for at in range(len(tokens) - size + 1):
                if tokens[at] != first or tokens[at : at + size] != phrase:
                    continue
                before = bisect_right(ends, at) - 1  # the last number ending at or before it
                if before >= 0 and at - ends[before] <= within:
                    out.append(numbers[before][2])
                    continue
                after = bisect_left(starts, at + size)  # the first number after it
                if after < len(numbers) and starts[after] - at - size <= within:
                    out.append(numbers[after][2])
    return out


def _numbers(tokens: list[str]) -> list[tuple[int, int, float]]:
    """``(first token, token after the last, value)`` for every number in ``tokens``."""
    found: list[tuple[int, int, float]] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        value: float | None = None
        if token[0].isdigit():
            value = float(token.replace(",", ""))
        elif token in _WORD_NUMBERS:
            value = float(_WORD_NUMBERS[token])
        if value is None:
            i += 1
            continue
        end = i + 1
        while end < len(tokens) and tokens[end] in _SCALES:
            value *= _SCALES[tokens[end]]
            end += 1
        found.append((i, end, value))
        i = end
    return found


# The alerter ---------------------------------------------------------------------------------


def _due(text: object) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class Alerter:
    """Judges posts against the rules; fires each (rule, post) once; runs the actions.

    ``emit`` gets each JSON line (alerts and action errors); ``report`` each error line for
    stderr. Actions run as tasks, so a slow webhook never holds up the stream."""

    def __init__(
        self,
        rules: list[CompiledRule],
        *,
        emit: Callable[[dict[str, Any]], None],
        report: Callable[[str], None],
        session: aiohttp.ClientSession,
    ) -> None:
        self.rules = rules
        self.emit = emit
        self.report = report
        self.session = session
        self.fired: set[tuple[str, str]] = set()
        self.alerts = 0
        self.failures = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.on_alert: Callable[[dict[str, Any]], None] = lambda alert: None
        self.limit: int | None = None
        """Alerts to fire at most (``--count``)."""

    def on_event(self, envelope: Envelope) -> None:
        post = envelope.get("post")
        if isinstance(post, dict):
            self.judge(post, str(envelope.get("type")), envelope)

    def on_snapshot(self, snapshot: dict[str, Any]) -> None:
        """Posts in a (re)loaded snapshot: those created while the client was reloading are
        only there, never sent as events; the once-per-post key keeps the rest quiet."""
        for post in reversed(snapshot.get("posts") or []):
            if isinstance(post, dict):
                self.judge(post, "post.created", None)

    def judge(self, post: dict[str, Any], type: str, envelope: Envelope | None) -> None:
        post_id = post.get("id")
        if not isinstance(post_id, str):
            return
        for rule in self.rules:
            if self.limit is not None and self.alerts >= self.limit:
                return
            key = (rule.name, post_id)
            if key in self.fired:
                continue
            matched = rule.match(post, type)
            if matched is None:
                continue
            self.fired.add(key)
            self._fire(rule, post, type, envelope, matched)

    def _fire(
        self,
        rule: CompiledRule,
        post: dict[str, Any],
        type: str,
        envelope: Envelope | None,
        matched: dict[str, Any],
    ) -> None:
        now = time.time()
        due_at = envelope.get("due_at") if envelope else None
        due = _due(due_at)
        text = post.get("headline") or post.get("body") or ""
        alert = {
            "alert": rule.name,
            "post_id": post["id"],
            "type": type,
            "event_id": envelope.get("id") if envelope else None,
            "stream": envelope.get("stream") if envelope else None,
            "from": "event" if envelope else "snapshot",
            "due_at": due_at,
            "fired_at": datetime.fromtimestamp(now).astimezone().isoformat(timespec="milliseconds"),
            "lateness_ms": round((now - due) * 1000, 3) if due is not None else None,
            "matched": matched,
            "headline": post.get("headline"),
            "excerpt": str(text).split("\n", 1)[0][:200],
            "source": post.get("source"),
            "post": post,
        }
        self.alerts += 1
        self.emit(alert)
        self.on_alert(alert)
        spec = rule.rule
        if spec.webhook is not None:
            self._spawn(self._webhook(spec.webhook, alert))
        if spec.command is not None:
            self._spawn(self._command(spec.command, spec.command_timeout, alert))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _webhook(self, hook: Webhook, alert: dict[str, Any]) -> None:
        """POST the alert, retrying failures with backoff. Redirects are never followed (the
        alert would go to an address the rules do not name): a 3xx is a failed delivery."""
        body = orjson.dumps(alert)
        headers = {"Content-Type": "application/json"}
        problem = ""
        attempts = 0
        for attempt in range(hook.retries + 1):
            if attempt:
                await asyncio.sleep(hook.backoff * 2 ** (attempt - 1))
            attempts += 1
            try:
                timeout = aiohttp.ClientTimeout(total=hook.timeout)
                async with self.session.post(
                    hook.url, data=body, headers=headers, timeout=timeout, allow_redirects=False
                ) as response:
                    if 200 <= response.status < 300:
                        return
                    problem = f"HTTP {response.status}"
                    if 300 <= response.status < 400:
                        where = shown(response.headers.get("Location", ""), 120)
                        problem += f" redirect to {where} not followed"
                        break
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                problem = f"{type(exc).__name__}: {exc}".rstrip(": ")
        self._failed("webhook", hook.url, alert, f"{problem} after {attempts} attempt(s)")

    async def _command(self, argv: list[str], limit: float, alert: dict[str, Any]) -> None:
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            self._failed("command", argv[0], alert, exc.strerror or str(exc))
            return
        try:
            async with asyncio.timeout(limit):
                _, err = await process.communicate(orjson.dumps(alert) + b"\n")
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            self._failed("command", argv[0], alert, f"timed out after {limit:g}s; killed")
            return
        if process.returncode != 0:
            last = err.decode(errors="replace").strip().splitlines()[-1:] if err else []
            detail = f"exit status {process.returncode}" + (f": {last[0][:200]}" if last else "")
            self._failed("command", argv[0], alert, detail)

    def _failed(self, action: str, target: str, alert: dict[str, Any], detail: str) -> None:
        self.failures += 1
        self.report(f"{action} {target}: alert {alert['alert']} post {alert['post_id']}: {detail}")
        self.emit(
            {
                "error": action,
                "target": target,
                "alert": alert["alert"],
                "post_id": alert["post_id"],
                "detail": detail,
            }
        )

    async def drain(self, within: float = 30.0) -> None:
        """Let the actions in flight finish (webhook retries included), up to ``within`` s."""
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=within)


def print_line(data: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(data) + b"\n")
    sys.stdout.flush()


def print_error(text: str) -> None:
    print(f"livesim: alert: {text}", file=sys.stderr, flush=True)


async def run_alert(
    url: str | None,
    rules: list[CompiledRule],
    *,
    transport: str = "sse",
    backfill: bool = False,
    count: int | None = None,
    duration: float | None = None,
    emit: Callable[[dict[str, Any]], None] = print_line,
    report: Callable[[str], None] = print_error,
    max_event_bytes: int = MAX_EVENT_BYTES,
    max_snapshot_bytes: int = reads.MAX_BODY_BYTES,
) -> int:
    """Follow the stream at ``url`` until ``count`` alerts, ``duration`` or Ctrl+C."""
    async with reads.session() as session:
        target = await find_target(url, session)
        if target.private:
            raise ClientError(f"{target}: alert follows a shared stream (/streams/ID), not a feed")
        await get_json(session, f"{target.base}/api/streams/{target.id}")
        alerter = Alerter(rules, emit=emit, report=report, session=session)
        done = asyncio.Event()
        if count:
            alerter.limit = count
            alerter.on_alert = lambda alert: done.set() if alerter.alerts >= count else None
        first = True

        def on_snapshot(snapshot: dict[str, Any]) -> None:
            nonlocal first
            if backfill or not first:  # the first snapshot is history: judged on request only
                alerter.on_snapshot(snapshot)
            first = False

        follower = Follower(
            target.base,
            target.id,
            alerter.on_event,
            transport=transport,
            on_fault=print_fault,
            on_snapshot=on_snapshot,
            params=target.query,
            max_event_bytes=max_event_bytes,
            max_snapshot_bytes=max_snapshot_bytes,
        )
        try:
            await follow_until(follower, done, duration)
        finally:
            await alerter.drain()
    return 0
