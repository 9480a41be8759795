"""A loop exception handler that lets one "accept() out of system resource" report through a
second, with a count of the ones it held back.

Out of file descriptors (EMFILE) or memory, asyncio's accept loop reports the failure to the
loop's exception handler once per ``accept`` it tries: up to the listen backlog (4 096 here) per
turn of the loop, every turn until descriptors free up. Logged one by one, that was 514 306 lines
in 15 s, and the logging itself kept the server from recovering. Every other report goes to the
handler that was there before (asyncio's default: the ``asyncio`` logger).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

ACCEPT_FAILED = "socket.accept() out of system resource"
"""How asyncio's selector loop begins the message of such a report."""
EVERY = 1.0
"""Seconds between two reports let through."""

Report = Callable[[dict[str, Any]], None]


class AcceptErrors:
    """``loop.set_exception_handler(AcceptErrors())``: see the module's docstring.

    ``report`` receives the reports let through and ``other`` every unrelated one; both default
    to the loop's ``default_exception_handler``. ``clock`` is injectable for tests.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        report: Report | None = None,
        other: Report | None = None,
    ) -> None:
        self.clock = clock
        self.report = report
        self.other = other
        self.last: float | None = None
        self.held_back = 0

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if not str(context.get("message", "")).startswith(ACCEPT_FAILED):
            (self.other or loop.default_exception_handler)(context)
            return
        now = self.clock()
        if self.last is not None and now - self.last < EVERY:
            self.held_back += 1
            return
        if self.held_back and self.last is not None:
            more = f"{self.held_back} more like it in the last {now - self.last:.1f} s"
            context = {**context, "message": f"{context['message']} ({more})"}
        self.last = now
        self.held_back = 0
        (self.report or loop.default_exception_handler)(context)
