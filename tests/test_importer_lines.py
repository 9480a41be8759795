"""``core/importers/lines.py``: a text export's line is bounded before it is read as anything."""

from __future__ import annotations

import pytest

from simulator.core.importers.lines import check_line
from simulator.core.model import MAX_LINE_CHARS, ArchiveError


def test_a_line_within_the_bound_is_returned_as_is() -> None:
    line = "x" * MAX_LINE_CHARS
    assert check_line(line, 1) is line
    assert check_line("", 2) == ""


def test_a_longer_line_is_refused_naming_its_number() -> None:
    with pytest.raises(ArchiveError) as info:
        check_line("x" * (MAX_LINE_CHARS + 1), 42)
    assert info.value.line == 42
    assert str(info.value).startswith(f"42: line is {MAX_LINE_CHARS + 1} characters long")
    assert str(info.value.at("blog.txt")).startswith("blog.txt:42: ")
