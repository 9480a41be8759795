"""Alert rules: the TOML file's shape (pydantic models) and how it is read, with errors that
name the file and key path."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from simulator.core.model import ArchiveError
from simulator.core.timeline import parse_duration
from simulator.sources import read_regular_file

from ..target import ClientError
from .matching import CompiledRule

MAX_RULES_BYTES = 1024 * 1024
EventType = Literal["post.created", "post.updated", "post.deleted", "post.pinned", "post.unpinned"]


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
