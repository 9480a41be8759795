"""Server settings: built-in defaults, then a TOML file, then ``LIVESIM_*`` environment variables,
then command-line flags; each later source wins.

pydantic-settings reads the environment (``Environment``); the file, the variables and the flags
are then laid over one another as raw values and validated once, by the pydantic models below, so
a bad value is reported as one line naming its place: the file and the key path
(``config/livesim.toml: streams[0].speed: …``), or the variable or flag that set it. (Handing the
layers to pydantic-settings to merge would lose which layer set a bad value, and a flag such as
``--speed`` sets a key in every element of the file's ``streams`` list, which its merge cannot.)
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict, SettingsError

from .core.faults import FaultSpec
from .core.faults import parse as parse_faults
from .core.model import ArchiveError, shown
from .core.replay import Options
from .core.scenario_config import ScenarioName, ScenarioRules, ScenarioValue, resolve_names
from .core.snapshot import DEFAULT_MAX_BYTES as DEFAULT_SNAPSHOT_BYTES
from .core.timeline import parse_duration, parse_speed
from .sources import ID_PATTERN, ID_RULE, read_regular_file
from .web.schedule import Moment, ScheduleEntry


def _optional_duration(value: object) -> object:
    """``max_gap = "none"`` (or "off") turns clamping off."""
    if isinstance(value, str) and value.strip().lower() in ("none", "off", ""):
        return None
    return parse_duration(value)


# ``json_schema_input_type``: what a client may send, for the API documents (web/apidocs).
Duration = Annotated[float, BeforeValidator(parse_duration, json_schema_input_type=float | str)]
OptionalDuration = Annotated[
    float | None, BeforeValidator(_optional_duration, json_schema_input_type=float | str | None)
]
Speed = Annotated[float, BeforeValidator(parse_speed, json_schema_input_type=float | str)]


def _faults(value: object) -> object:
    """A fault spec (``duplicate:0.5,seed:1``), checked here and kept in its canonical form."""
    return None if value is None else str(parse_faults(value))


Faults = Annotated[str | None, BeforeValidator(_faults)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReplayConfig(_Strict):
    speed: Speed = 60.0
    max_gap: OptionalDuration = 120.0
    loop: bool = True
    start: str | None = None
    paused: bool = False
    loop_pause: Duration = 60.0
    edit_delay: Duration = 180.0
    scenario: ScenarioValue = ()
    """A name from ``[scenarios]``, a list of steps, or a table of rules (scenario_config.py)."""
    faults: Faults = None
    """Faults every connection to the stream suffers (``simulator/faults.py``)."""
    timestamps: Literal["archive", "now"] = "archive"
    """Post times as in the archive, or as the wall-clock instant each event is due."""

    def fault_spec(self) -> FaultSpec | None:
        return parse_faults(self.faults) if self.faults else None

    def options(self) -> Options:
        return Options(
            speed=self.speed,
            max_gap=self.max_gap,
            loop=self.loop,
            start=self.start,
            paused=self.paused,
            loop_pause=self.loop_pause,
            timestamps=self.timestamps,
        )


class StreamConfig(ReplayConfig):
    id: str = Field(pattern=ID_PATTERN)
    feed: str
    start_at: Moment | None = None
    """The stream waits, paused, until this wall-clock time (with its zone), then plays."""
    schedule: tuple[ScheduleEntry, ...] = Field(default=(), max_length=100)


class FeedConfig(_Strict):
    path: str
    id: str | None = Field(default=None, pattern=ID_PATTERN)
    format: str | None = None
    timezone: str | None = None
    date: dt.date | None = None


LOOPBACK_ORIGINS = ("http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*")


def _heartbeat(value: object) -> object:
    """A heartbeat is off (0) or at least 50 ms: anything faster only burns CPU and bytes."""
    seconds = parse_duration(value)
    if 0 < seconds < 0.05:
        raise ValueError(f"must be 0 (off) or at least 50ms, got {value!r}")
    return seconds


Heartbeat = Annotated[float, BeforeValidator(_heartbeat)]


MAX_PATH = 4096
"""Characters of a file name in the settings at most (Linux's PATH_MAX)."""


def _state_path(value: object) -> object:
    """A file name: not empty, not absurdly long, no NUL character (the OS refuses those)."""
    if isinstance(value, str):
        if not value:
            raise ValueError("expected a file name, got ''")
        if len(value) > MAX_PATH:
            raise ValueError(f"{len(value)} characters, at most {MAX_PATH}")
        if "\x00" in value:
            raise ValueError("contains a NUL character")
    return value


StatePath = Annotated[str | None, BeforeValidator(_state_path)]


MAX_ADDRESSES = 8
"""Addresses one server listens on at most (``host = "127.0.0.1,::1"``)."""


def _host(value: object) -> object:
    """One address or name, or several joined by commas (an IPv6 address has none): the server
    listens on each, on one port. Normalised to ``a,b`` without spaces."""
    if not isinstance(value, str):
        return value
    names = [name.strip() for name in value.split(",")]
    if len(names) > MAX_ADDRESSES:
        raise ValueError(f"{len(names)} addresses, at most {MAX_ADDRESSES}")
    for name in names:
        if not name:
            raise ValueError(f"an empty address in {value[:60]!r}")
        if len(name) > 253:
            raise ValueError(f"an address of {len(name)} characters, at most 253")
        if names.count(name) > 1:
            raise ValueError(f"{name[:60]!r} is given twice")
    return ",".join(names)


class ServerConfig(_Strict):
    host: Annotated[str, BeforeValidator(_host)] = Field(
        default="127.0.0.1", min_length=1, max_length=MAX_ADDRESSES * 254
    )
    """Where to listen: an address or a name, or several separated by commas (``addresses``)."""
    port: int = Field(default=8080, ge=0, le=65535)
    sse_heartbeat: Heartbeat = 15.0
    sse_retry: Duration = 2.0
    ws_heartbeat: Heartbeat = 20.0
    ws_max_message: int = Field(default=64 * 1024, ge=256, le=16 * 1024 * 1024)
    max_pending: int = Field(default=1024, ge=1, le=1_000_000)
    bundled: bool = True
    """Serve the bundled archive as a feed (and, with no streams configured, as a stream)."""

    # Limits: each refusal is a JSON error with a reason.
    max_streams: int = Field(default=100, ge=0, le=100_000)
    """Streams created through the API (configured streams do not count)."""
    max_log_bytes: int = Field(default=16 * 1024 * 1024, ge=64 * 1024, le=2**40)
    """Per stream: the encoded events kept for exact resume; older cursors get ``stream.reset``."""
    max_connections: int = Field(default=19_000, ge=1, le=10_000_000)
    """Requests in flight, SSE and WebSocket connections included; more get 503 with
    ``Retry-After``."""
    max_connections_per_client: int = Field(default=1_000, ge=1, le=10_000_000)
    """The same from one client address (not a loopback one, unless
    ``limit_loopback_per_client``): one address cannot take every slot."""
    header_timeout: Duration = 10.0
    """Seconds a new connection has to send its request headers (slowloris)."""
    body_timeout: Annotated[Duration, Field(gt=0, le=3600)] = 10.0
    """Seconds a request has, once its headers are in, to send its whole body (slow bodies)."""
    limit_loopback_per_client: bool = False
    """Whether ``max_connections_per_client`` also limits loopback addresses (off: a local load
    run, or a reverse proxy on this host, is one address for many clients)."""
    ws_control_rate: float = Field(default=20.0, gt=0, le=1_000_000)
    """WebSocket messages a second per connection (bursts of twice that); more get an error."""
    max_private_replays: int = Field(default=10_000, ge=0, le=10_000_000)
    """Private replays (``/feeds/{feed}/events|ws``) open at once; more get 503 with
    ``Retry-After``. 0 turns private replays off."""
    max_private_live_bytes: int = Field(default=128 * 1024 * 1024, ge=0, le=2**40)
    """Encoded bytes of the live posts (and edits) all private replays hold together; a post or
    an edit past it is refused."""
    max_private_log_bytes: int = Field(default=256 * 1024 * 1024, ge=64 * 1024, le=2**40)
    """Encoded bytes of the event logs of all private replays together; past it each log keeps
    less (older cursors get ``stream.reset``), nothing is refused."""
    max_snapshot_bytes: int = Field(default=DEFAULT_SNAPSHOT_BYTES, ge=64 * 1024, le=2**30)
    """The largest snapshot (and feed post list), encoded: over it, the newest posts that fit."""
    max_snapshot_bytes_in_flight: int = Field(default=256 * 1024 * 1024, ge=64 * 1024, le=2**40)
    """Bytes of snapshots being written at once, server-wide; more get 503 with Retry-After."""
    snapshot_timeout: Duration = Field(default=60.0, ge=1.0, le=3600.0)
    """Seconds a reader has to take a whole snapshot; then the connection is closed."""

    @property
    def addresses(self) -> tuple[str, ...]:
        """Each address ``host`` names, the first the one announced."""
        return tuple(self.host.split(","))

    @field_validator("max_snapshot_bytes_in_flight")
    @classmethod
    def _holds_a_snapshot(cls, value: int, info: ValidationInfo) -> int:
        largest = info.data.get("max_snapshot_bytes")
        if largest is not None and value < largest:
            raise ValueError(f"must be at least max_snapshot_bytes ({largest}), got {value}")
        return value

    # Who may control streams (docs/operations.md).
    control_origins: tuple[str, ...] = LOOPBACK_ORIGINS
    """Browser origins allowed to pause, seek, create… (``*`` wildcards a port or a label)."""
    hosts: tuple[str, ...] = ()
    """Host names served besides the loopback ones when bound to loopback."""
    token: str | None = Field(default=None, min_length=16, max_length=1024)
    """Bearer token for control when bound to a non-loopback address (``LIVESIM_TOKEN``)."""
    log_format: Literal["text", "json"] = "text"
    """``text``: a line per log record; ``json``: a JSON object per line (LIVESIM_LOG_FORMAT)."""
    event_loop: Literal["asyncio", "uvloop"] = "asyncio"
    """asyncio's own event loop, or uvloop's (``--event-loop``)."""
    redis: str | None = Field(default=None, pattern=r"^rediss?://", max_length=1000)
    """``redis://HOST:PORT/DB``: share the streams with the other nodes using this Redis
    (``--redis``, ``LIVESIM_REDIS``; docs/scaling.md); none: one process, as alone."""
    redis_lease: Annotated[Duration, Field(ge=0.2, le=60.0)] = 3.0
    """Seconds a node's lease on a stream's clock lasts unrenewed: how soon another node takes
    over a stream whose owner died."""
    redis_checkpoint_every: int = Field(default=1000, ge=10, le=1_000_000)
    """Inputs between two checkpoints of a shared stream's replay: a node joining reads one
    checkpoint and at most twice this many inputs; each checkpoint costs the node running the
    stream's clock an export of its replay (docs/scaling.md)."""
    state_file: StatePath = None
    """Where live posts and API-made streams are saved to survive a restart (``--state-file``,
    ``LIVESIM_STATE_FILE``; relative to the working directory); none: not saved."""


class Settings(_Strict):
    server: ServerConfig = ServerConfig()
    feeds: tuple[FeedConfig, ...] = ()
    streams: tuple[StreamConfig, ...] = ()
    scenarios: dict[ScenarioName, ScenarioRules] = {}
    """Named scenarios (``[scenarios.NAME]``), for streams, the API and private replays."""
    base_dir: Path = Path(".")
    """Where relative feed paths in the config are resolved from."""


class Environment(BaseSettings):
    """The ``LIVESIM_*`` variables: the five shortcuts below, and ``LIVESIM_SERVER__KEY`` for any
    ``[server]`` key (``LIVESIM_SERVER__MAX_CONNECTIONS=5000``); a shortcut wins over its long
    form. An empty variable is unset. Values stay text: the settings models validate them with the
    file's values, so a bad one is reported naming its variable."""

    model_config = SettingsConfigDict(
        env_prefix="LIVESIM_", env_nested_delimiter="__", env_ignore_empty=True, extra="ignore"
    )

    server: dict[str, str] = {}
    host: str | None = None
    port: str | None = None
    token: str | None = None
    log_format: str | None = None
    state_file: str | None = None
    redis: str | None = None

    @classmethod
    def read(cls, variables: Mapping[str, str] | None = None) -> Environment:
        """From ``variables`` (default: the process environment)."""
        try:
            if variables is None:
                return cls()
            return cls.model_validate(_Variables(cls, variables)())
        except SettingsError:  # LIVESIM_SERVER itself, holding what is not a JSON object
            raise ArchiveError(
                "LIVESIM_SERVER: set [server] keys one by one, as LIVESIM_SERVER__KEY=value"
            ) from None
        except ValidationError as exc:  # LIVESIM_SERVER__A__B, or a JSON table in LIVESIM_SERVER
            name = "__".join(str(part).upper() for part in exc.errors()[0]["loc"])
            raise ArchiveError(
                f"LIVESIM_{name}: expected one value (set [server] keys as "
                "LIVESIM_SERVER__KEY=value)"
            ) from None

    def overrides(self) -> list[Override]:
        """What the variables set, as overrides of the file, each named by its variable."""
        found = [
            Override(f"LIVESIM_SERVER__{key.upper()}", ("server", key), value)
            for key, value in self.server.items()
        ]
        for key in SHORTCUTS:
            value = getattr(self, key)
            if value is not None:
                found.append(Override(f"LIVESIM_{key.upper()}", ("server", key), value))
        return found


SHORTCUTS = ("host", "port", "token", "log_format", "state_file", "redis")
"""``[server]`` keys with a short variable (``LIVESIM_PORT``) besides the long one."""


class _Variables(EnvSettingsSource):
    """pydantic-settings' environment source, reading a given mapping instead of ``os.environ``
    (tests pass theirs). Names are matched case-insensitively, as the source does by default."""

    def __init__(self, settings_cls: type[BaseSettings], variables: Mapping[str, str]) -> None:
        self._variables = variables
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name.lower(): value for name, value in self._variables.items() if value}


MAX_CONFIG_BYTES = 1024 * 1024
"""The largest config file read (a generous config is a few KB)."""


@dataclass(frozen=True)
class Override:
    """A value set outside the config file, by a flag or an environment variable.

    ``key`` is a path into the settings, where ``"*"`` means every element (``("streams", "*",
    "speed")``); ``name`` is what an error about the value cites (``--speed``, ``LIVESIM_PORT``).
    """

    name: str
    key: tuple[str, ...]
    value: object


def load(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    flags: Sequence[Override] = (),
) -> Settings:
    """Settings by precedence: ``flags`` > ``LIVESIM_*`` in ``env`` > the file at ``path`` >
    defaults. An error names the flag, the variable, or the file and key path at fault."""
    raw: dict[str, Any] = {}
    where = "settings"
    if path is not None:
        where = str(path)
        raw = _read(Path(path))
        raw["base_dir"] = str(Path(path).resolve().parent)
    overrides = Environment.read(env).overrides() + list(flags)
    for override in overrides:
        _apply(raw, override.key, override.value)
    settings = validate(raw, where, overrides)
    _check_unique_streams(settings, where)
    streams = resolve_names(settings.streams, settings.scenarios, where)
    return settings.model_copy(update={"streams": streams})


def _read(path: Path) -> dict[str, Any]:
    where = str(path)
    data = read_regular_file(path, MAX_CONFIG_BYTES, "a config file")
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ArchiveError(f"not UTF-8 text (byte {exc.start})", source=where) from None
    except tomllib.TOMLDecodeError as exc:
        raise ArchiveError(f"invalid TOML: {exc}", source=where) from None
    except RecursionError:
        raise ArchiveError(
            "invalid TOML: arrays or tables nested too deeply", source=where
        ) from None


def _apply(raw: Any, key: tuple[str, ...], value: object) -> None:
    """Set ``key`` in the raw settings, creating tables on the way. A part of the way that has
    the wrong shape is left alone: validation reports it, naming the file's key."""
    head, rest = key[0], key[1:]
    if head == "*":
        items = raw if isinstance(raw, list) else []
        for item in items:
            if rest and isinstance(item, dict):
                _apply(item, rest, value)
    elif isinstance(raw, dict):
        if not rest:
            raw[head] = value
            return
        if head not in raw:
            raw[head] = [] if rest[0] == "*" else {}
        _apply(raw[head], rest, value)


def validate(
    raw: Mapping[str, Any], where: str = "settings", overrides: Sequence[Override] = ()
) -> Settings:
    """Validated settings, or one error naming the place: an override's name, else ``where`` and
    the key path."""
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
    except RecursionError:
        raise ArchiveError("nested too deeply", source=where) from None
    loc = tuple(error["loc"])
    message = _message(error)
    for override in reversed(overrides):
        if _matches(override.key, loc):
            raise ArchiveError(f"{override.name}: {message}") from None
    raise ArchiveError(f"{_path(loc)}: {message}", source=where) from None


def _matches(key: tuple[str, ...], loc: tuple[int | str, ...]) -> bool:
    return len(loc) >= len(key) and all(
        k == part or (k == "*" and isinstance(part, int)) for k, part in zip(key, loc, strict=False)
    )


SHAPES = {
    "model_type": "expected a table",
    "model_attributes_type": "expected a table",
    "dict_type": "expected a table",
    "tuple_type": "expected an array",
    "list_type": "expected an array",
}
TYPE_NAMES = {
    dict: "a table",
    list: "an array",
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
}


def _message(error: Any) -> str:
    """pydantic's message in the words of TOML (``table``, ``array``, ``key``)."""
    kind = error["type"]
    if kind in SHAPES:
        got = TYPE_NAMES.get(type(error["input"]), type(error["input"]).__name__)
        return f"{SHAPES[kind]}, got {got}"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind == "string_pattern_mismatch":
        return f"expected {ID_RULE}, got {shown(error['input'])}"
    return str(error["msg"]).removeprefix("Value error, ")


def _check_unique_streams(settings: Settings, where: str) -> None:
    """Two streams with one id would leave one of them unreachable: refuse, naming both."""
    seen: dict[str, int] = {}
    for number, stream in enumerate(settings.streams):
        if stream.id in seen:
            raise ArchiveError(
                f"streams[{number}].id: stream id {stream.id!r} is already used by "
                f"streams[{seen[stream.id]}]; give each stream its own id",
                source=where,
            )
        seen[stream.id] = number


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "$"
