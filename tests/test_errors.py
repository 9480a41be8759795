"""``core/errors.py``: one typed input error, its place joined under a caller's prefix, pydantic's
errors mapped to it, and input shown in errors cut short."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import AfterValidator, BaseModel, ValidationError

from simulator.core.errors import InputError, from_validation, join, shorten, shown


def test_input_error_keeps_its_fields_and_reads_where_first() -> None:
    error = InputError("body.speed", "must be positive", 422)
    assert (error.where, error.message, error.status) == ("body.speed", "must be positive", 422)
    assert str(error) == "body.speed: must be positive"
    assert str(InputError("", "no place known")) == "no place known"
    assert InputError("x", "y").status == 400
    assert isinstance(error, ValueError)  # so a pydantic validator may raise it


@pytest.mark.parametrize(
    ("prefix", "where", "joined"),
    [
        ("body", "to", "body.to"),
        ("body", "[0]", "body[0]"),
        ("body", "[0].kind", "body[0].kind"),
        ("", "to", "to"),
        ("body", "", "body"),
        ("", "", ""),
    ],
)
def test_join(prefix: str, where: str, joined: str) -> None:
    assert join(prefix, where) == joined


def test_under_moves_the_place_and_keeps_the_rest() -> None:
    moved = InputError("start", "not a post", 404).under("body")
    assert (moved.where, moved.message, moved.status) == ("body.start", "not a post", 404)


def _no_spaces(value: str) -> str:
    if " " in value:
        raise InputError("[0].kind", "no spaces")
    return value


class _Fields(BaseModel):
    count: int
    tags: list[Annotated[str, AfterValidator(_no_spaces)]] = []


def _validation_error(data: object) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        _Fields.model_validate(data)
    return info.value


def test_from_validation_names_the_path_under_the_prefix() -> None:
    error = from_validation(_validation_error({"count": "many"}), "body")
    assert error.where == "body.count" and error.status == 400
    assert "integer" in error.message


def test_from_validation_renames_fields_and_indexes_lists() -> None:
    error = from_validation(_validation_error({"count": "x"}), "query", {"count": "n"})
    assert error.where == "query.n"
    nested = from_validation(_validation_error({"count": 1, "tags": ["ok", "a b"]}), "body")
    assert nested.where == "body.tags[1]"
    assert nested.message.startswith("[0].kind: no spaces"), nested.message


def test_from_validation_inner_puts_a_raised_input_errors_place_on_the_path() -> None:
    inner = from_validation(_validation_error({"count": 1, "tags": ["a b"]}), "body", inner=True)
    assert (inner.where, inner.message) == ("body.tags[0][0].kind", "no spaces")


def test_shown_and_shorten_bound_what_an_error_repeats() -> None:
    assert shown("x" * 10_000) == repr("x" * 10_000)[:59] + "…"
    assert len(shown("x" * 10_000)) == 60
    assert shown(12) == "12"
    assert shorten("a\nb\x00c", 100) == "a\\nb\\x00c"
    assert shorten("abcdef", 4) == "abc…"
    assert shorten("abcd", 4) == "abcd"
