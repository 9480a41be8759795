"""Server settings: built-in defaults, then a TOML file, then ``LIVESIM_*`` environment variables.

Validated with pydantic; a bad value is reported as one line naming the file and the key path
(``config/livesim.toml: streams[0].speed: …``).
"""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from .model import ArchiveError
from .replay import Options
from .scenario_config import (
    ScenarioName,
    ScenarioRules,
    ScenarioValue,
    check_scenario_names,
)
from .schedule import ScheduleEntry
from .timeline import parse_duration, parse_speed


def _optional_duration(value: object) -> object:
    """``max_gap = "none"`` (or "off") turns clamping off."""
    if isinstance(value, str) and value.strip().lower() in ("none", "off", ""):
        return None
    return parse_duration(value)


Duration = Annotated[float, BeforeValidator(parse_duration)]
OptionalDuration = Annotated[float | None, BeforeValidator(_optional_duration)]
Speed = Annotated[float, BeforeValidator(parse_speed)]


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

    def options(self) -> Options:
        return Options(
            speed=self.speed,
            max_gap=self.max_gap,
            loop=self.loop,
            start=self.start,
            paused=self.paused,
            loop_pause=self.loop_pause,
        )


class StreamConfig(ReplayConfig):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    feed: str
    start_at: AwareDatetime | None = None
    """The stream waits, paused, until this wall-clock time (with its zone), then plays."""
    schedule: tuple[ScheduleEntry, ...] = Field(default=(), max_length=100)


class FeedConfig(_Strict):
    path: str
    id: str | None = None
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


class ServerConfig(_Strict):
    host: str = Field(default="127.0.0.1", min_length=1, max_length=253)
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
    """Open SSE and WebSocket connections in all; more get 503 with ``Retry-After``."""
    max_connections_per_client: int = Field(default=19_000, ge=1, le=10_000_000)
    """Open SSE and WebSocket connections from one client address."""
    header_timeout: Duration = 10.0
    """Seconds a new connection has to send its request headers (slowloris)."""
    ws_control_rate: float = Field(default=20.0, gt=0, le=1_000_000)
    """WebSocket messages a second per connection (bursts of twice that); more get an error."""

    # Who may control streams (docs/operations.md).
    control_origins: tuple[str, ...] = LOOPBACK_ORIGINS
    """Browser origins allowed to pause, seek, create… (``*`` wildcards a port or a label)."""
    hosts: tuple[str, ...] = ()
    """Host names served besides the loopback ones when bound to loopback."""
    token: str | None = Field(default=None, min_length=16, max_length=1024)
    """Bearer token for control when bound to a non-loopback address (``LIVESIM_TOKEN``)."""
    log_format: Literal["text", "json"] = "text"


class Settings(_Strict):
    server: ServerConfig = ServerConfig()
    feeds: tuple[FeedConfig, ...] = ()
    streams: tuple[StreamConfig, ...] = ()
    scenarios: dict[ScenarioName, ScenarioRules] = {}
    """Named scenarios (``[scenarios.NAME]``), for streams, the API and private replays."""
    base_dir: Path = Path(".")
    """Where relative feed paths in the config are resolved from."""


ENV = {
    "LIVESIM_HOST": "host",
    "LIVESIM_PORT": "port",
    "LIVESIM_TOKEN": "token",
    "LIVESIM_LOG_FORMAT": "log_format",
}


def load(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``path`` (if any) with environment overrides applied."""
    raw: dict[str, Any] = {}
    where = "settings"
    if path is not None:
        where = str(path)
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ArchiveError("no such config file", source=where) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ArchiveError(f"cannot read: {exc}", source=where) from None
        except tomllib.TOMLDecodeError as exc:
            raise ArchiveError(f"invalid TOML: {exc}", source=where) from None
        raw["base_dir"] = str(Path(path).resolve().parent)
    server = dict(raw.get("server") or {})
    for name, key in ENV.items():
        if (env if env is not None else os.environ).get(name):
            server[key] = (env if env is not None else os.environ)[name]
            where = f"{where} (with {name})"
    raw["server"] = server
    settings = validate(raw, where)
    check_scenario_names(settings.streams, settings.scenarios, where)
    return settings


def validate(raw: Mapping[str, Any], where: str = "settings") -> Settings:
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        location = _path(error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        raise ArchiveError(f"{location}: {message}", source=where) from None


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "$"
