"""JSON data as block-style YAML, for ``/asyncapi.yaml``.

Every scalar is written as its JSON text (a JSON string is a YAML double-quoted scalar), so the
YAML reads back as exactly the JSON document; only the nesting is YAML's. No dependency for one
document.
"""

from __future__ import annotations

from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    lines: list[str] = []
    _emit(value, 0, lines)
    return ("\n".join(lines) + "\n").encode()


def _scalar(value: Any) -> str:
    return orjson.dumps(value).decode()


def _emit(value: Any, indent: int, lines: list[str]) -> None:
    pad = " " * indent
    if isinstance(value, dict) and value:
        for key, item in value.items():
            head = f"{pad}{_scalar(str(key))}:"
            _item(head, item, indent, lines)
    elif isinstance(value, list) and value:
        for item in value:
            _item(f"{pad}-", item, indent, lines)
    else:
        lines.append(pad + _scalar(value))


def _item(head: str, item: Any, indent: int, lines: list[str]) -> None:
    """``head`` and ``item``: on one line for a scalar or an empty collection, else nested."""
    if isinstance(item, dict | list) and item:
        lines.append(head)
        _emit(item, indent + 2, lines)
    else:
        lines.append(f"{head} {_scalar(item)}")
