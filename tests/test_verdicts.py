"""Exit statuses and thresholds shared by load, judge and push (clients/verdicts.py), pure."""

from __future__ import annotations

import pytest

import simulator.cli as commands
from clients.verdicts import (
    COULD_NOT_RUN,
    PASS,
    SERVICE_WRONG,
    THRESHOLD_FAILED,
    Outcome,
    ThresholdError,
    parse_threshold,
    worst,
)


def test_the_worst_status_wins() -> None:
    assert worst([]) == PASS
    assert worst([THRESHOLD_FAILED, PASS]) == THRESHOLD_FAILED
    assert worst([THRESHOLD_FAILED, SERVICE_WRONG]) == SERVICE_WRONG
    assert worst([SERVICE_WRONG, COULD_NOT_RUN, THRESHOLD_FAILED]) == COULD_NOT_RUN


@pytest.mark.parametrize(
    "text,metric,op,limit,unit",
    [
        ("p95<200ms", "lateness_p95", "<", 200.0, "ms"),
        ("p99.9 <= 1.5s", "lateness_p99.9", "<=", 1500.0, "ms"),
        ("lateness_p99<500", "lateness_p99", "<", 500.0, "ms"),
        ("max<1m", "lateness_max", "<", 60000.0, "ms"),
        ("p100<1h", "lateness_p100", "<", 3600000.0, "ms"),
        ("connect_failures<1%", "connect_failures", "<", 0.01, "%"),
        ("resets<10", "resets", "<", 10.0, ""),
        ("missing==0", "missing", "==", 0.0, ""),
        ("reconnects>=2", "reconnects", ">=", 2.0, ""),
    ],
)
def test_thresholds_parse(text: str, metric: str, op: str, limit: float, unit: str) -> None:
    threshold = parse_threshold(text)
    assert (threshold.metric, threshold.op, threshold.unit) == (metric, op, unit)
    assert threshold.limit == pytest.approx(limit)


def test_outcomes_show_value_and_verdict() -> None:
    p95 = parse_threshold("p95<200ms")
    assert Outcome(p95, 150.0).line() == "p95<200ms: 150 ms ok"
    assert Outcome(p95, 200.0).line() == "p95<200ms: 200 ms FAILED"
    assert Outcome(p95, None).line() == "p95<200ms: no data FAILED"
    share = parse_threshold("connect_failures<1%")
    assert Outcome(share, 0.02).line() == "connect_failures<1%: 2% FAILED"
    assert Outcome(share, 0.0).as_dict()["passed"] is True


@pytest.mark.parametrize(
    "text", ["p95<1e3ms", "p95 < 2 kg", "P95<1s", "p95<<1s", "p95<1s<2s", "p1000<1s", "resets<1%%"]
)
def test_bad_thresholds_name_themselves(text: str) -> None:
    with pytest.raises(ThresholdError, match="threshold"):
        parse_threshold(text)


@pytest.mark.parametrize("command", ["load", "judge", "push"])
def test_help_states_the_exit_statuses(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        commands.main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "0 pass" in text and "1 " in text and "2 " in text
    if command != "judge":
        assert "99 a threshold failed" in text
