"""Scenarios as settings: ``[scenarios.NAME]`` tables, a stream's ``scenario``, and their checks.

A stream's ``scenario`` is one of three things:

- a name, ``scenario = "newsroom"``: the table ``[scenarios.newsroom]``;
- a list of steps, ``scenario = [{action = "pin", post = "p-…", after = "1m"}]`` (the older form);
- a table of rules, inline (``POST /api/streams`` with ``"scenario": {"developing": {…}}``).

Every rule's parameters are bounded, and an unknown key is refused naming it. ``build`` (in
``scenario.py``) does the work; this module only checks input and converts it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    PrivateAttr,
    TypeAdapter,
)

from . import scenario as core
from .errors import InputError, shown
from .live import Body, Flag, Text
from .model import ArchiveError
from .script import Step
from .timeline import parse_duration

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
ScenarioName = Annotated[str, Field(pattern=NAME_PATTERN)]
MAX_STEPS = 10_000
MAX_INJECT = 1_000
MAX_BURSTS = 1_000
MAX_BURST_SIZE = 100
MAX_GROWTH_STEPS = 50


def _rule_switch(value: object) -> object:
    """``developing = true`` turns a rule on with its defaults; ``false`` leaves it off."""
    if value is True:
        return {}
    if value is False:
        return None
    return value


Duration = Annotated[float, BeforeValidator(parse_duration)]
Share = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False, strict=True)]
"""A share of posts, 0 to 1 (``strict``: ``true`` is not 1)."""
PostId = Annotated[str, Field(min_length=1, max_length=1000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScenarioStep(_Strict):
    """An explicit step. An ``update`` may carry new values for ``headline``, ``body``,
    ``author``, ``source``, ``key_event``."""

    action: str
    post: PostId
    after: Duration = 0.0
    headline: Text | None = None
    body: Body | None = None
    author: Text | None = None
    source: Text | None = None
    key_event: bool | None = None

    def step(self) -> Step:
        names = ("headline", "body", "author", "source", "key_event")
        fields = {name: getattr(self, name) for name in names if name in self.model_fields_set}
        if fields.get("body", "") is None:
            fields.pop("body")  # a post always has a body; null means "unchanged"
        return Step(self.action, self.post, self.after, fields)


class DevelopingRule(_Strict):
    share: Share = 0.3
    interval: Duration = 120.0
    max_steps: int = Field(default=4, ge=2, le=MAX_GROWTH_STEPS)


class CorrectionsRule(_Strict):
    share: Share = 0.1
    after: Duration = 600.0


class RetractionsRule(_Strict):
    share: Share = 0.05
    after: Duration = 1800.0


class KeyEventsRule(_Strict):
    headline: bool = True
    posts: tuple[PostId, ...] = Field(default=(), max_length=MAX_STEPS)


class BurstsRule(_Strict):
    count: int = Field(default=1, ge=0, le=MAX_BURSTS)
    size: int = Field(default=5, ge=2, le=MAX_BURST_SIZE)
    within: Duration = 30.0


class InjectPost(_Strict):
    at: str = Field(min_length=1, max_length=100)
    body: Body
    headline: Text = None
    author: Text = None
    source: Text = None
    key_event: Flag = False
    id: str | None = Field(default=None, pattern=NAME_PATTERN)


Switch = BeforeValidator(_rule_switch)


class ScenarioRules(_Strict):
    """A scenario as a table of rules (see ``scenario.py`` for what each does)."""

    seed: int = Field(default=0, ge=0, le=2**63 - 1, strict=True)
    developing: Annotated[DevelopingRule | None, Switch] = None
    corrections: Annotated[CorrectionsRule | None, Switch] = None
    retractions: Annotated[RetractionsRule | None, Switch] = None
    key_events: Annotated[KeyEventsRule | None, Switch] = None
    pin_latest_key_event: bool = False
    bursts: Annotated[BurstsRule | None, Switch] = None
    inject: tuple[InjectPost, ...] = Field(default=(), max_length=MAX_INJECT)
    steps: tuple[ScenarioStep, ...] = Field(default=(), max_length=MAX_STEPS)
    _name: str | None = PrivateAttr(default=None)

    @property
    def name(self) -> str | None:
        """The ``[scenarios.NAME]`` it came from, when a stream named it."""
        return self._name

    def named(self, name: str) -> ScenarioRules:
        copy = self.model_copy()
        copy._name = name
        return copy

    def scenario(self) -> core.Scenario:
        def plain(rule: BaseModel | None, kind: Any) -> Any:
            return None if rule is None else kind(**rule.model_dump())

        key_events = None
        if self.key_events is not None:
            key_events = core.KeyEvents(self.key_events.headline, tuple(self.key_events.posts))
        return core.Scenario(
            seed=self.seed,
            developing=plain(self.developing, core.Developing),
            corrections=plain(self.corrections, core.Corrections),
            retractions=plain(self.retractions, core.Retractions),
            key_events=key_events,
            pin_latest_key_event=self.pin_latest_key_event,
            bursts=plain(self.bursts, core.Bursts),
            inject=tuple(core.Inject(**item.model_dump()) for item in self.inject),
            steps=tuple(step.step() for step in self.steps),
        )


_STEPS = TypeAdapter(tuple[ScenarioStep, ...])
_NAME = TypeAdapter(Annotated[str, Field(pattern=NAME_PATTERN)])


def _scenario_value(value: object) -> str | tuple[ScenarioStep, ...] | ScenarioRules:
    """Dispatch on the shape, so an error's path is the form's own (``scenario[0].post``,
    ``scenario.developing.share``), not pydantic's union of all three."""
    if isinstance(value, ScenarioRules | str):
        return value if isinstance(value, ScenarioRules) else _NAME.validate_python(value)
    if isinstance(value, list | tuple):
        if len(value) > MAX_STEPS:
            raise ValueError(f"{len(value)} steps, at most {MAX_STEPS}")
        return _STEPS.validate_python(value)
    if isinstance(value, dict):
        return ScenarioRules.model_validate(value)
    raise ValueError(
        "expected a scenario name, an array of steps or a table of rules, "
        f"got {type(value).__name__}"
    )


ScenarioValue = Annotated[
    str | tuple[ScenarioStep, ...] | ScenarioRules,
    PlainValidator(
        _scenario_value, json_schema_input_type=str | tuple[ScenarioStep, ...] | ScenarioRules
    ),
]
"""The type of a stream's ``scenario`` setting."""


def resolve(
    value: str | tuple[ScenarioStep, ...] | ScenarioRules,
    scenarios: Mapping[str, ScenarioRules],
) -> tuple[core.Scenario | list[Step], str]:
    """What ``scenario.build`` takes, and the path its errors should name."""
    if isinstance(value, str):
        rules = scenarios.get(value)
        if rules is None:
            known = ", ".join(sorted(scenarios)) or "none configured"
            raise InputError("scenario", f"no scenario named {shown(value, 64)} (known: {known})")
        return rules.scenario(), f"scenarios.{value}"
    if isinstance(value, ScenarioRules):
        return value.scenario(), f"scenarios.{value.name}" if value.name else "scenario"
    return [step.step() for step in value], "scenario"


Config = TypeVar("Config", bound=BaseModel)


def resolve_names(
    streams: Sequence[Config], scenarios: Mapping[str, ScenarioRules], where: str
) -> tuple[Config, ...]:
    """The configured streams with each scenario name replaced by its rules (which remember the
    name, for errors): a name that is not configured stops the server at once, naming it."""
    out = []
    for number, stream in enumerate(streams):
        name = getattr(stream, "scenario", None)
        if isinstance(name, str):
            if name not in scenarios:
                known = ", ".join(sorted(scenarios)) or "none configured"
                raise ArchiveError(
                    f"streams[{number}].scenario: no scenario named {name!r} (known: {known})",
                    source=where,
                )
            stream = stream.model_copy(update={"scenario": scenarios[name].named(name)})
        out.append(stream)
    return tuple(out)
