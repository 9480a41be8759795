"""The bound on a line of a text export, checked before the line is read as anything."""

from __future__ import annotations

from ..model import MAX_LINE_CHARS, ArchiveError


def check_line(line: str, number: int) -> str:
    """The line, when within the bound; else an error naming it.

    A live blog's line is a paragraph at most: a longer one is not a live blog, and reading it
    as a title or a post (a slug, a regular expression, a join) would take time and memory in
    proportion to the whole file.
    """
    if len(line) > MAX_LINE_CHARS:
        raise ArchiveError(
            f"line is {len(line)} characters long, at most {MAX_LINE_CHARS} "
            "(a line of a text export is a paragraph at most)",
            line=number,
        )
    return line
