"""``livesim push ARCHIVE --to URL``: replay an archive into someone's pipeline, signed, on time.

``simulator.cli`` wires the command with ``add_parser(commands)``; the work is in
``clients.push``. Exit status as k6's: 0 every threshold held, 99 one failed, 1 the target took
nothing (unreachable or refusing everything), 2 the push could not run (usage, archive, secret).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from clients.verdicts import COULD_NOT_RUN, SERVICE_WRONG, THRESHOLD_FAILED
from simulator.core import scenario as core_scenario
from simulator.core.model import ArchiveError
from simulator.sources import load_feed

from .options import bounded_duration, count, duration, read_small, speed
from .script import _scenario

ENV_SECRET = "LIVESIM_PUSH_SECRET"
MAX_CONCURRENCY = 10_000
MAX_RETRIES = 100
MAX_SECRET_FILE = 4096


POSITIVE = bounded_duration(0, 3600, "more than 0 and at most 1h", above=True)


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "push",
        allow_abbrev=False,  # else --secret would be taken for --secret-file: never a flag
        help="POST an archive's events to your endpoint, signed (Standard Webhooks), on time",
        description="Replay ARCHIVE into your system: each event is POSTed to --to as livesim's "
        "JSON envelope at its due time, signed as Standard Webhooks says, with the secret "
        f"(whsec_<base64>) from ${ENV_SECRET} or --secret-file. Retries 408, 429, 5xx, "
        "timeouts and dropped connections with backoff. Exit 0 pass, 99 a threshold failed, "
        "1 the target took nothing, 2 could not run.",
    )
    parser.add_argument("archive", metavar="ARCHIVE")
    parser.add_argument(
        "--to",
        required=True,
        metavar="URL",
        help="http(s)://… (POST each event, signed), redis://HOST[:PORT][/DB]?stream=KEY "
        "(XADD id, type, data) or ?channel=NAME (PUBLISH the envelope)",
    )
    parser.add_argument("--secret-file", metavar="FILE", help=f"the secret (else ${ENV_SECRET})")
    parser.add_argument("--secret", nargs="?", action=_NeverAFlag, help=argparse.SUPPRESS)
    parser.add_argument(
        "--speed", type=speed, default=60.0, help="1 = original timing; default 60; or max"
    )
    parser.add_argument(
        "--max-gap",
        type=_gap,
        default=120.0,
        metavar="DURATION",
        help="clamp quiet stretches to this much archive time (default 2m; none)",
    )
    parser.add_argument(
        "--from",
        dest="start",
        type=duration,
        default=0.0,
        metavar="DURATION",
        help="start this far into the archive (archive time past its first event)",
    )
    parser.add_argument(
        "--faults",
        type=_faults,
        metavar="SPEC",
        help="as serve's: drop:P, delay:D, jitter:D, duplicate:P, reorder:P, seed:N",
    )
    parser.add_argument("--config", metavar="FILE", help="TOML settings with [scenarios.NAME]")
    parser.add_argument("--scenario", metavar="NAME", help="a scenario from --config")
    parser.add_argument("--concurrency", type=count(1, MAX_CONCURRENCY, "an integer"), default=16)
    parser.add_argument("--timeout", type=POSITIVE, default=10.0, metavar="DURATION")
    parser.add_argument("--retries", type=count(0, MAX_RETRIES, "an integer"), default=3)
    parser.add_argument(
        "--max-failed",
        type=count(0, 10**9, "an integer"),
        default=0,
        metavar="N",
        help="threshold (0)",
    )
    parser.add_argument(
        "--max-p99", type=POSITIVE, metavar="DURATION", help="threshold on lateness p99"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.set_defaults(handler=run, seed=None)


def run(args: argparse.Namespace) -> int:
    from clients.push.signing import SecretError, parse_secret
    from clients.push.targets import TargetError, check_target

    try:
        kind = check_target(args.to)
        key = parse_secret(*_secret(args)) if kind == "http" else b""
        feed = load_feed(args.archive)
        rules = _scenario(args)
        script = core_scenario.build(feed, rules, 180.0)
    except (TargetError, SecretError, ArchiveError) as exc:
        return _fail(str(exc))
    except ValueError as exc:
        return _fail(f"{args.config or args.archive}: {exc}")
    report = asyncio.run(_push(args, kind, key, script))
    p50, p99 = report.percentile(0.5), report.percentile(0.99)
    broken = []
    if report.failed > args.max_failed:
        broken.append(f"failed {report.failed} > {args.max_failed}")
    if args.max_p99 is not None and p99 is not None and p99 > args.max_p99:
        broken.append(f"lateness p99 {p99 * 1000:.1f} ms > {args.max_p99 * 1000:.1f} ms")
    if report.planned and not report.acknowledged:
        status = SERVICE_WRONG
    else:
        status = THRESHOLD_FAILED if broken else 0
    if args.json:
        summary = {
            "to": args.to,
            "planned": report.planned,
            "sent": report.sent,
            "acknowledged": report.acknowledged,
            "retried": report.retried,
            "failed": report.failed,
            "statuses": report.statuses,
            "lateness_ms": {"p50": _ms(p50), "p99": _ms(p99)},
            "faults": report.faults,
            "thresholds_failed": broken,
            "errors": report.errors,
            "exit": status,
        }
        sys.stdout.buffer.write(orjson.dumps(summary) + b"\n")
    else:
        print(
            f"{args.to}: {report.sent} sent, {report.acknowledged} acknowledged, "
            f"{report.retried} retried, {report.failed} failed; lateness p50 {_ms(p50)} ms, "
            f"p99 {_ms(p99)} ms"
        )
        for line in broken:
            print(f"threshold failed: {line}", file=sys.stderr)
        if report.errors and (report.failed or status):
            print("errors: " + "; ".join(report.errors), file=sys.stderr)
    return status


class _NeverAFlag(argparse.Action):
    """``--secret`` is refused without echoing it: a flag shows in ``ps`` and shell history."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        parser.error(f"--secret: not a flag; put the secret in ${ENV_SECRET} or --secret-file")


async def _push(args: argparse.Namespace, kind: str, key: bytes, script: Any) -> Any:
    """Dues count from when the target is open: imports and connecting are not lateness."""
    from clients.push.plan import plan, with_faults
    from clients.push.run import Policy, push
    from clients.push.targets import http_target, redis_target

    policy = Policy(args.concurrency, args.retries)
    if kind == "http":
        target = http_target(args.to, key, args.timeout, args.concurrency)
    else:
        target = redis_target(args.to, args.timeout, args.concurrency)
    async with target as send:
        wall, start = time.time(), time.monotonic()
        events = plan(script, args.speed, args.max_gap, f"push{int(wall)}", wall, args.start)
        struck: dict[str, int] = {}
        if args.faults is not None:
            events, struck = with_faults(events, args.faults)
        report = await push(events, send, policy, start)
        report.faults = struck
        return report


def _secret(args: argparse.Namespace) -> tuple[str, str]:
    from clients.push.signing import SecretError

    if args.secret_file:
        path = Path(args.secret_file)
        try:
            data = read_small(path, MAX_SECRET_FILE)
        except OSError as exc:
            raise SecretError(f"{path}: {exc.strerror or 'cannot read'}") from None
        except ValueError as exc:
            raise SecretError(f"{path}: {exc}: not a secret") from None
        return data.decode("utf-8", "replace"), str(path)
    text = os.environ.get(ENV_SECRET)
    if not text:
        raise SecretError(f"no secret: set ${ENV_SECRET} or give --secret-file (never a flag)")
    return text, f"${ENV_SECRET}"


def _fail(message: str) -> int:
    print(f"livesim: {message}", file=sys.stderr)
    return COULD_NOT_RUN


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _faults(text: str) -> Any:
    from clients.push.plan import check_push_faults
    from simulator.core.faults import parse

    try:
        spec = parse(text)
        check_push_faults(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return spec


def _gap(text: str) -> float | None:
    if text.strip().lower() in ("none", "off"):
        return None
    return duration(text)
