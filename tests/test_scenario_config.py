"""``core/scenario_config.py``: a stream's ``scenario`` in its three shapes, each checked with
errors on the shape's own path, and names resolved against ``[scenarios.NAME]``."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from simulator.core import scenario as core
from simulator.core.errors import InputError
from simulator.core.model import ArchiveError
from simulator.core.scenario_config import (
    MAX_STEPS,
    ScenarioRules,
    ScenarioStep,
    ScenarioValue,
    resolve,
    resolve_names,
)
from simulator.core.script import Step

VALUE: TypeAdapter[Any] = TypeAdapter(ScenarioValue)


def error_of(value: object) -> tuple[str, str]:
    """The first error's path (dotted, indexes in brackets) and message."""
    with pytest.raises(ValidationError) as info:
        VALUE.validate_python(value)
    error = info.value.errors()[0]
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
    return path, str(error["msg"])


def test_the_three_shapes() -> None:
    assert VALUE.validate_python("newsroom") == "newsroom"
    (step,) = VALUE.validate_python([{"action": "pin", "post": "p1", "after": "1m"}])
    assert isinstance(step, ScenarioStep) and step.after == 60.0
    rules = VALUE.validate_python({"developing": True, "seed": 7})
    assert isinstance(rules, ScenarioRules) and rules.seed == 7
    assert rules.developing is not None and rules.developing.share == 0.3


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ([{"action": "pin", "post": ""}], "[0].post"),
        ([{"action": "pin", "post": "p", "after": "soon"}], "[0].after"),
        ([{"action": "pin", "post": "p", "colour": "red"}], "[0].colour"),
        ({"developing": {"share": 2}}, ".developing.share"),
        ({"developing": {"share": True}}, ".developing.share"),
        ({"bursts": {"size": 1}}, ".bursts.size"),
        ({"sneaky": True}, ".sneaky"),
        ({"inject": [{"at": "1m"}]}, ".inject[0].body"),
    ],
)
def test_errors_name_the_shapes_own_path(value: object, path: str) -> None:
    assert error_of(value)[0] == path


@pytest.mark.parametrize("value", ["", "-lead", "a b", "x" * 65])
def test_a_name_must_be_a_plain_name(value: str) -> None:
    assert "pattern" in error_of(value)[1]


def test_other_shapes_and_too_many_steps_are_refused() -> None:
    assert "got int" in error_of(3)[1]
    steps = [{"action": "pin", "post": "p"}] * (MAX_STEPS + 1)
    assert f"at most {MAX_STEPS}" in error_of(steps)[1]


def test_false_leaves_a_rule_off() -> None:
    rules = ScenarioRules.model_validate({"developing": False, "corrections": True})
    assert rules.developing is None and rules.corrections is not None
    scenario = rules.scenario()
    assert scenario.developing is None
    assert scenario.corrections == core.Corrections(share=0.1, after=600.0)


def test_an_updates_null_body_means_unchanged() -> None:
    step = ScenarioStep(action="update", post="p", body=None, headline="New").step()
    assert step == Step("update", "p", 0.0, {"headline": "New"})
    assert ScenarioStep(action="pin", post="p").step().fields == {}


def test_resolve_names_the_path_errors_should_use() -> None:
    named = ScenarioRules.model_validate({"corrections": True})
    scenario, where = resolve("newsroom", {"newsroom": named})
    assert isinstance(scenario, core.Scenario) and where == "scenarios.newsroom"
    assert resolve(named, {})[1] == "scenario"
    assert resolve(named.named("desk"), {})[1] == "scenarios.desk"
    steps, where = resolve((ScenarioStep(action="pin", post="p"),), {})
    assert steps == [Step("pin", "p", 0.0, {})] and where == "scenario"
    with pytest.raises(InputError) as info:
        resolve("nope", {"newsroom": named})
    assert info.value.where == "scenario" and "known: newsroom" in info.value.message


class _Stream(BaseModel):
    id: str
    scenario: ScenarioValue | None = None


def test_resolve_names_swaps_names_for_their_rules() -> None:
    rules = ScenarioRules.model_validate({"retractions": True})
    streams = [_Stream(id="a", scenario="desk"), _Stream(id="b")]
    resolved = resolve_names(streams, {"desk": rules}, "livesim.toml")
    assert isinstance(resolved[0].scenario, ScenarioRules)
    assert resolved[0].scenario.name == "desk" and rules.name is None
    assert resolved[1] is streams[1]
    with pytest.raises(ArchiveError) as info:
        resolve_names([_Stream(id="c", scenario="gone")], {}, "livesim.toml")
    assert str(info.value).startswith("livesim.toml: streams[0].scenario: no scenario named")
    assert "none configured" in str(info.value)
