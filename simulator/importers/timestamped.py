"""Placeholder: being written."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..model import ArchiveError, Feed

if TYPE_CHECKING:
    from . import ImportOptions


def sniff(text: str) -> bool:
    return False


def parse(text: str, options: ImportOptions) -> Feed:
    raise ArchiveError("not implemented yet")
