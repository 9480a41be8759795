"""``schemas/``: JSON Schema of the envelope and of each event, and TypeScript declarations.

Generated from ``models``, checked in for front-end developers, held current by a test:

    python -m simulator.web.apidocs.schemas [DIR]    # default: schemas/

writes the JSON files and, with Node.js present, ``livesim-events.d.ts`` from
``livesim-events.schema.json`` by npm's ``json-schema-to-typescript`` (run with npx).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from ...core.wire import EventType
from . import models as m
from .asyncapi import WS_OPS, WS_REPLIES

DIALECT = "https://json-schema.org/draft/2020-12/schema"
COMBINED = "livesim-events.schema.json"
TYPESCRIPT = "livesim-events.d.ts"
TS_TOOL = "json-schema-to-typescript@15.0.4"
"""Pinned: its output (formatting included) is what the checked-in file is compared with."""


def _dump(value: dict[str, Any]) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n"


def model_schema(model: type[BaseModel], description: str | None = None) -> dict[str, Any]:
    schema = model.model_json_schema(mode="serialization", schema_generator=m.Generator)
    if description:
        schema["description"] = description
    return {"$schema": DIALECT, **schema}


def _union(title: str, description: str, models: list[type[BaseModel]]) -> dict[str, Any]:
    return {
        "title": title,
        "description": description,
        "oneOf": [{"$ref": f"#/$defs/{model.__name__}"} for model in models],
    }


def combined() -> dict[str, Any]:
    """Every message of both transports in one schema: ``LivesimEvent`` (the envelopes),
    ``ServerReply`` (WebSocket replies) and ``ClientOp`` (WebSocket ops)."""
    events: list[type[BaseModel]] = list(m.EVENTS.values())
    replies: list[type[BaseModel]] = list(WS_REPLIES.values())
    ops: list[type[BaseModel]] = list(WS_OPS.values())
    pairs: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (model, "serialization") for model in (*events, *replies, *ops)
    ]
    _, top = models_json_schema(pairs, ref_template="#/$defs/{model}", schema_generator=m.Generator)
    defs = top["$defs"]
    defs["LivesimEvent"] = _union(
        "LivesimEvent", "Any event: an SSE data line, a WebSocket text frame.", events
    )
    defs["ServerReply"] = _union(
        "ServerReply", "A WebSocket message from the server that is not an event.", replies
    )
    defs["ClientOp"] = _union("ClientOp", "A WebSocket message a client sends.", ops)
    return {
        "$schema": DIALECT,
        "title": "LivesimMessage",
        "description": "Every message of livesim's SSE and WebSocket channels (docs/protocol.md).",
        "anyOf": [
            {"$ref": f"#/$defs/{name}"} for name in ("LivesimEvent", "ServerReply", "ClientOp")
        ],
        "$defs": dict(sorted(defs.items())),
    }


def files() -> dict[str, bytes]:
    """The JSON files of ``schemas/``, by path inside it."""
    out = {
        "envelope.schema.json": _dump(model_schema(m.Envelope)),
        COMBINED: _dump(combined()),
    }
    for event in EventType:
        schema = model_schema(m.EVENTS[event])
        schema["examples"] = [m.EXAMPLES[event]]
        out[f"events/{event}.schema.json"] = _dump(schema)
    return out


def typescript(schema: Path) -> bytes:
    """``json-schema-to-typescript``'s declarations for ``schema``; needs Node.js (npx)."""
    npx = shutil.which("npx")
    if npx is None:
        raise RuntimeError("npx not found: install Node.js to generate the TypeScript declarations")
    done = subprocess.run(
        [npx, "--yes", TS_TOOL, "--input", str(schema)],
        capture_output=True,
        check=True,
        timeout=300,
    )
    return done.stdout


def write(directory: Path) -> list[Path]:
    written = []
    for name, data in files().items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    if shutil.which("npx"):
        path = directory / TYPESCRIPT
        path.write_bytes(typescript(directory / COMBINED))
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    directory = Path(argv[0] if argv else "schemas")
    for path in write(directory):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
