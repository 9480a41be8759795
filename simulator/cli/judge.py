"""``livesim judge --stream URL LOG``: judge someone else's client from a log of what it
received, against the stream's event log or ``livesim script`` output (``clients.logjudge``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import orjson

from clients.verdicts import COULD_NOT_RUN, PASS, SERVICE_WRONG

KINDS = ("missing", "duplicate", "out_of_order", "foreign")


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "judge",
        help="judge any client from a log of the event ids it received",
        description="Read LOG, what a client received in the order it received it: one JSON "
        'object a line with at least "id" (livesim\'s envelope will do), or one event id a '
        "line. Judge it against the stream's own event log (--stream: fetched over SSE from "
        "just before the log's first id, up to the stream's cursor now or --until) or against "
        "`livesim script` output (--script: events matched by type and post, so the log needs "
        '"type" and "post"), and report missing, duplicate, out-of-order and foreign events.',
        epilog="Exit status (as k6's and livesim load's): 0 pass; 1 what the client received was "
        "wrong (missing, duplicate, out-of-order or foreign events: its fault or the service's); "
        "2 could not run (bad flags or log, unreachable, no such stream, the stream's log no "
        "longer holds the events).",
    )
    parser.add_argument("log", metavar="LOG", help="the client's log ('-': stdin)")
    against = parser.add_mutually_exclusive_group(required=True)
    against.add_argument("--stream", metavar="URL", help="e.g. http://127.0.0.1:8080/streams/ID")
    against.add_argument(
        "--script", metavar="FILE", help="`livesim script` output (text or --json)"
    )
    parser.add_argument(
        "--until",
        metavar="ID",
        help="with --stream: the client should have received everything up to this id "
        "(default: up to the furthest it received)",
    )
    parser.add_argument(
        "--whole",
        action="store_true",
        help="the client should have received everything: up to the stream's cursor now, or "
        "to the script's end",
    )
    parser.add_argument("--json", metavar="FILE", help="write the verdict as JSON ('-': stdout)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from clients.logjudge import (
        fetch_reference,
        judge,
        keys_by_id,
        keys_by_post,
        read_log,
        read_script,
    )
    from clients.target import ClientError

    if args.until is not None and args.script:
        print(
            "livesim: --until ID: only with --stream (--whole: to the script's end)",
            file=sys.stderr,
        )
        return COULD_NOT_RUN
    try:
        path = "/dev/stdin" if args.log == "-" else args.log
        entries = read_log(path)
        if args.script:
            reference: list[Any] = list(read_script(args.script))
            received = keys_by_post(entries, args.log)
            against = args.script
        else:
            received = keys_by_id(entries)
            reference = asyncio.run(fetch_reference(args.stream, received, args.until))
            against = args.stream
        verdict = judge(reference, received, to_end=args.until is not None or args.whole)
    except ClientError as exc:
        print(f"livesim: {exc}", file=sys.stderr)
        return COULD_NOT_RUN
    status = SERVICE_WRONG if verdict.wrong else PASS
    data = {"log": args.log, "against": against, **verdict.as_dict(), "exit": status}
    out = sys.stderr if args.json == "-" else sys.stdout
    counts = verdict.counts
    print(f"judged {args.log} against {against}", file=out)
    print(f"  {'expected':<13}{counts.expected:>7}", file=out)
    print(f"  {'received':<13}{counts.received:>7}", file=out)
    for kind in KINDS:
        examples = ", ".join(verdict.examples.get(kind, []))
        more = " …" if getattr(counts, kind) > len(verdict.examples.get(kind, [])) else ""
        line = f"  {kind.replace('_', '-'):<13}{getattr(counts, kind):>7}"
        print(f"{line}   {examples}{more}".rstrip(), file=out)
    if counts.connection_resets:
        print(f"  {'resets':<13}{counts.connection_resets:>7}   (per connection)", file=out)
    wrong = [f"{getattr(counts, k)} {k.replace('_', '-')}" for k in KINDS if getattr(counts, k)]
    print("PASS" if not wrong else "FAIL: " + ", ".join(wrong), file=out)
    if args.json:
        body = orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n"
        try:
            if args.json == "-":
                sys.stdout.buffer.write(body)
            else:
                with open(args.json, "wb") as file:
                    file.write(body)
        except OSError as exc:
            print(f"livesim: {args.json}: {exc.strerror or exc}", file=sys.stderr)
            return COULD_NOT_RUN
    return status
