"""What a fired alert does besides its JSON line: a webhook POST and a command.

Each runs as a task, so a slow webhook never holds up the stream; one that finally fails is
reported as a line for stderr and as a JSON line ``{"error": …}``, and the alerter goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp
import orjson
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from simulator.core.model import shown

from .rules import Rule, Webhook

Alert = dict[str, Any]


def print_line(data: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(data) + b"\n")
    sys.stdout.flush()


def print_error(text: str) -> None:
    print(f"livesim: alert: {text}", file=sys.stderr, flush=True)


class _Undelivered(Exception):
    """A webhook attempt that failed and may be retried."""


class _NotFollowed(Exception):
    """A redirect: never retried, never followed."""


class Actions:
    """Runs a rule's webhook and command for an alert; ``emit`` and ``report`` take the
    failures (a JSON line, an error line)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        emit: Callable[[dict[str, Any]], None],
        report: Callable[[str], None],
    ) -> None:
        self.session = session
        self.emit = emit
        self.report = report
        self.failures = 0
        self.tasks: set[asyncio.Task[None]] = set()

    def run(self, rule: Rule, alert: Alert) -> None:
        if rule.webhook is not None:
            self._spawn(self.webhook(rule.webhook, alert))
        if rule.command is not None:
            self._spawn(self.command(rule.command, rule.command_timeout, alert))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def webhook(self, hook: Webhook, alert: Alert) -> None:
        """POST the alert, retrying failures with exponential backoff (tenacity). Redirects
        are never followed (the alert would go to an address the rules do not name): a 3xx
        is a failed delivery, not retried."""
        body = orjson.dumps(alert)
        attempts = 0
        retrying = AsyncRetrying(
            stop=stop_after_attempt(hook.retries + 1),
            wait=wait_exponential(multiplier=hook.backoff),
            retry=retry_if_exception_type(_Undelivered),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    await self._post(hook, body)
        except (_Undelivered, _NotFollowed) as exc:
            self.failed("webhook", hook.url, alert, f"{exc} after {attempts} attempt(s)")

    async def _post(self, hook: Webhook, body: bytes) -> None:
        timeout = aiohttp.ClientTimeout(total=hook.timeout)
        headers = {"Content-Type": "application/json"}
        try:
            async with self.session.post(
                hook.url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as response:
                if 200 <= response.status < 300:
                    return
                problem = f"HTTP {response.status}"
                if 300 <= response.status < 400:
                    where = shown(response.headers.get("Location", ""), 120)
                    raise _NotFollowed(f"{problem} redirect to {where} not followed")
                raise _Undelivered(problem)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise _Undelivered(f"{type(exc).__name__}: {exc}".rstrip(": ")) from None

    async def command(self, argv: list[str], limit: float, alert: Alert) -> None:
        """Run ``argv`` with the alert's JSON on stdin; killed after ``limit`` seconds."""
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            self.failed("command", argv[0], alert, exc.strerror or str(exc))
            return
        try:
            async with asyncio.timeout(limit):
                _, err = await process.communicate(orjson.dumps(alert) + b"\n")
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            self.failed("command", argv[0], alert, f"timed out after {limit:g}s; killed")
            return
        if process.returncode != 0:
            last = err.decode(errors="replace").strip().splitlines()[-1:] if err else []
            detail = f"exit status {process.returncode}" + (f": {last[0][:200]}" if last else "")
            self.failed("command", argv[0], alert, detail)

    def failed(self, action: str, target: str, alert: Alert, detail: str) -> None:
        self.failures += 1
        self.report(f"{action} {target}: alert {alert['alert']} post {alert['post_id']}: {detail}")
        self.emit(
            {
                "error": action,
                "target": target,
                "alert": alert["alert"],
                "post_id": alert["post_id"],
                "detail": detail,
            }
        )

    async def drain(self, within: float = 30.0) -> None:
        """Let the actions in flight finish (webhook retries included), up to ``within`` s."""
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=within)
