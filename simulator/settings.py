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
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from .model import ArchiveError
from .replay import Options
from .script import Step
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


class ScenarioStep(_Strict):
    action: str
    post: str
    after: Duration = 0.0

    def step(self) -> Step:
        return Step(self.action, self.post, self.after)


class ReplayConfig(_Strict):
    speed: Speed = 60.0
    max_gap: OptionalDuration = 120.0
    loop: bool = True
    start: str | None = None
    paused: bool = False
    loop_pause: Duration = 60.0
    edit_delay: Duration = 180.0
    scenario: tuple[ScenarioStep, ...] = ()

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


class FeedConfig(_Strict):
    path: str
    id: str | None = None
    format: str | None = None
    timezone: str | None = None
    date: dt.date | None = None


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    sse_heartbeat: Duration = 15.0
    sse_retry: Duration = 2.0
    ws_heartbeat: Duration = 20.0
    ws_max_message: int = Field(default=64 * 1024, ge=256)
    max_pending: int = Field(default=1024, ge=1)
    bundled: bool = True
    """Serve the bundled archive as a feed (and, with no streams configured, as a stream)."""


class Settings(_Strict):
    server: ServerConfig = ServerConfig()
    feeds: tuple[FeedConfig, ...] = ()
    streams: tuple[StreamConfig, ...] = ()
    base_dir: Path = Path(".")
    """Where relative feed paths in the config are resolved from."""


ENV = {"LIVESIM_HOST": "host", "LIVESIM_PORT": "port"}


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
    return validate(raw, where)


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
