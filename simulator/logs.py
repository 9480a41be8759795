"""Log records as one line each: readable text for a terminal, or JSON for a log collector.

A record never spans lines, not even with an exception: its type and message go on the same line
(``exc``), because a 30-line traceback per dropped connection buries everything else and breaks
line-based collectors. Expected failures are logged without ``exc_info`` in the first place.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from typing import Literal

import orjson

LogFormat = Literal["text", "json"]


class TextFormatter(logging.Formatter):
    """``livesim: LEVEL logger: message`` (``: ExcType: message`` appended for an exception)."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"livesim: {record.levelname} {record.name}: {_one_line(record.getMessage())}"
        exc = exception_line(record)
        return f"{line}: {exc}" if exc else line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (ISO-8601 UTC), ``level``, ``logger``, ``msg``, ``exc``."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        exc = exception_line(record)
        if exc:
            entry["exc"] = exc
        return orjson.dumps(entry, default=str).decode()


def exception_line(record: logging.LogRecord) -> str | None:
    """``Type: message`` of the record's exception, on one line, or None."""
    if not record.exc_info or record.exc_info[1] is None:
        return None
    exc = record.exc_info[1]
    text = _one_line(str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _one_line(text: str) -> str:
    return " | ".join(part.strip() for part in text.splitlines() if part.strip())


def configure(format: LogFormat | str = "text", level: int = logging.INFO) -> None:
    """Route every logger (aiohttp's too) through one stderr handler in ``format``."""
    if format not in ("text", "json"):
        raise ValueError(f"unknown log format {format!r} (text or json)")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for chatty in QUIET:
        logging.getLogger(chatty).setLevel(max(level, logging.WARNING))


QUIET = ("apscheduler",)
"""Libraries whose INFO records (a scheduler started, a job added) are noise in a server log."""


class RepeatedWarnings:
    """Log a warning that keeps recurring at most once per ``interval`` seconds per ``key``.

    A failure that recurs every second (a hundred scheduled injects into a full live-post store)
    would otherwise bury the log. The first one is logged at once; repeats within the interval
    are only counted, and the next line logged after it says how many: ``… (and 99 more like it
    in the last 10 s)``. ``clock`` is injected so tests need no sleeps.
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 1024,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._max_keys = max_keys
        self._seen: OrderedDict[Hashable, tuple[float, int]] = OrderedDict()
        """key → (when it was last logged, repeats held back since)."""

    def warning(self, key: Hashable, message: str, *args: object) -> None:
        now = self._clock()
        logged = self._seen.get(key)
        if logged is not None and now - logged[0] < self._interval:
            self._seen[key] = (logged[0], logged[1] + 1)
            return
        if logged is not None and logged[1]:
            message += f" (and {logged[1]} more like it in the last {now - logged[0]:.0f} s)"
        self._logger.warning(message, *args)
        self._seen[key] = (now, 0)
        self._seen.move_to_end(key)
        while len(self._seen) > self._max_keys:  # the least recently logged go first
            self._seen.popitem(last=False)
