"""The ``livesim`` command: one module per subcommand, this one entry point.

Each subcommand module has ``add_parser(commands)``, which adds its parser and sets ``handler``,
and ``run(args) -> int``. Every failure the user can cause ends as one line ``livesim: …`` on
stderr naming the place, and exit status 1 (2 for usage errors, as argparse does; 130 on Ctrl+C)
— never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from clients.target import ClientError

from ..core.model import ArchiveError
from . import (
    alert,
    import_,
    inspect,
    judge,
    load,
    push,
    record,
    script,
    serve,
    synth,
    tail,
    validate,
)

COMMANDS = (
    serve,
    import_,
    inspect,
    validate,
    script,
    synth,
    tail,
    load,
    judge,
    alert,
    record,
    push,
)
"""In the order ``livesim --help`` lists them."""

EXAMPLES = """\
examples:
  livesim serve                                   bundled archive, looping, speed 60, on :8080
  livesim serve --speed 1 blog.jsonl              original timing
  livesim serve --config config/livesim.toml --speed 600
  livesim import export.txt -o blog.jsonl         any supported format -> canonical JSON Lines
  livesim inspect blog.jsonl --json
  livesim validate blog.jsonl
  livesim script blog.jsonl --config config/livesim.toml --scenario newsroom
  livesim synth --posts 100000 -o load.jsonl      a large archive for load tests
  livesim tail http://127.0.0.1:8080/streams/aljazeera-iraq-2014-06
  livesim load http://127.0.0.1:8080/streams/aljazeera-iraq-2014-06 --clients 200
  livesim judge --stream http://127.0.0.1:8080/streams/aljazeera-iraq-2014-06 client.log

'livesim COMMAND --help' describes a command.
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.handler(args)
        return result
    except (ArchiveError, ClientError) as exc:
        print(f"livesim: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="livesim",
        description="Replay archived live-blog posts over WebSocket and Server-Sent Events, and "
        "the tools around it: archives in (import, inspect, validate, script, synth), a "
        "server (serve, the default command), clients to follow, load-test, judge and alert on "
        "a stream (tail, load, judge, alert), and a live blog recorded or pushed into your "
        "pipeline (record, push).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(commands)
    parser.set_defaults(handler=lambda _: serve.run(parser.parse_args(["serve"])))
    return parser
