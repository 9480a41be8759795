"""``livesim script ARCHIVE``: the event script an archive plays under a scenario, one line a cue.

The same archive, scenario and seed always print the same script, so a scenario can be checked
(and diffed) before a stream plays it.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import Any

import orjson

from .. import settings as settings_module
from ..core import scenario as core
from ..core.model import ArchiveError, format_time
from ..core.scenario_config import ScenarioRules
from ..core.script import DEFAULT_EDIT_DELAY, Script
from ..sources import load_feed
from .options import duration

MAX_SEED = 2**63 - 1


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "script",
        help="print the events an archive plays under a scenario",
        description="Print the event script: archive time, event type, post id and what "
        "changed, one event a line. The same archive, scenario and seed always print the same.",
    )
    parser.add_argument("archive", metavar="ARCHIVE", help="archive file (any importable format)")
    parser.add_argument("--config", metavar="FILE", help="TOML settings with [scenarios.NAME]")
    parser.add_argument("--scenario", metavar="NAME", help="a scenario from --config")
    parser.add_argument(
        "--seed", type=_seed, metavar="N", help="override the scenario's seed (0 to 2**63-1)"
    )
    parser.add_argument(
        "--edit-delay",
        type=duration,
        metavar="DURATION",
        help="from an edited post's creation to its update (default 3m)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    feed = load_feed(args.archive)
    rules = _scenario(args)
    edit_delay = DEFAULT_EDIT_DELAY if args.edit_delay is None else args.edit_delay
    where = f"scenarios.{args.scenario}" if args.scenario else "scenario"
    try:
        script = core.build(feed, rules, edit_delay, where)
    except ValueError as exc:
        raise ArchiveError(str(exc), source=args.config or args.archive) from None
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(as_json(script, args.scenario, rules.seed)) + b"\n")
    else:
        sys.stdout.write(render(script, args.scenario, rules.seed))
    return 0


def _scenario(args: argparse.Namespace) -> core.Scenario:
    scenarios: dict[str, ScenarioRules] = {}
    if args.config:
        scenarios = settings_module.load(args.config, env={}).scenarios
    if args.scenario is None:
        rules = core.Scenario()
    elif args.scenario in scenarios:
        rules = scenarios[args.scenario].scenario()
    else:
        known = ", ".join(sorted(scenarios)) or "none: give --config FILE with [scenarios.NAME]"
        raise ArchiveError(f"--scenario: no scenario named {args.scenario[:64]!r} (known: {known})")
    return rules if args.seed is None else replace(rules, seed=args.seed)


def events(script: Script) -> list[dict[str, Any]]:
    return [
        {
            "archive_time": format_time(script.archive_time(cue.at)),
            "type": str(cue.type),
            "post": cue.post.id,
            "change": cue.note or None,
        }
        for cue in script.cues
    ]


def as_json(script: Script, name: str | None, seed: int) -> dict[str, Any]:
    return {"feed": script.feed.id, "scenario": name, "seed": seed, "events": events(script)}


def render(script: Script, name: str | None, seed: int) -> str:
    rows = events(script)
    head = f"# {script.feed.id}: {len(rows)} events, scenario {name or '(none)'}, seed {seed}\n"
    lines = [
        f"{r['archive_time']:<21} {r['type']:<14} {r['post']:<14} {r['change'] or ''}".rstrip()
        for r in rows
    ]
    return head + "".join(line + "\n" for line in lines)


def _seed(text: str) -> int:
    try:
        value = int(text) if len(text) <= 20 else -1
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(
            f"expected an integer from 0 to 2**63-1, got {text[:30]!r}"
        )
    return value
