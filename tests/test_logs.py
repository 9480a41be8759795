"""``simulator/logs.py``: log records are one line each, text or JSON, an exception as its type
and message only."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest

from simulator import logs


def log_with_exception() -> None:
    logger = logging.getLogger("livesim.test")
    logger.info("started %s", "ok")
    logging.getLogger("apscheduler.scheduler").info("Scheduler started")  # library chatter
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        logger.exception("it failed\nbadly")


def test_text_log_records_are_one_line_each(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure("text")
    log_with_exception()
    assert capsys.readouterr().err.splitlines() == [
        "livesim: INFO livesim.test: started ok",
        "livesim: ERROR livesim.test: it failed | badly: ValueError: bad | thing",
    ]


def test_json_log_records_are_one_object_per_line(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure("json")
    log_with_exception()
    lines = capsys.readouterr().err.splitlines()
    records = [json.loads(line) for line in lines]
    assert [{k: v for k, v in r.items() if k != "ts"} for r in records] == [
        {"level": "INFO", "logger": "livesim.test", "msg": "started ok"},
        {
            "level": "ERROR",
            "logger": "livesim.test",
            "msg": "it failed\nbadly",
            "exc": "ValueError: bad | thing",
        },
    ]
    for record in records:
        stamp = datetime.fromisoformat(record["ts"])
        assert stamp.utcoffset() == timedelta(0)
        assert abs(datetime.now(UTC) - stamp) < timedelta(minutes=1)
