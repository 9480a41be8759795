"""The WebSocket message budget: exact arithmetic with an injected clock."""

from __future__ import annotations

from simulator.web.ratelimit import TokenBucket


def test_burst_then_rate() -> None:
    bucket = TokenBucket(rate=10, burst=20, now=0.0)
    assert [bucket.take(0.0) for _ in range(21)] == [True] * 20 + [False]
    assert bucket.take(0.05) is False  # half a token
    assert bucket.take(0.1) is True
    assert bucket.take(0.1) is False


def test_idle_time_refills_only_up_to_the_burst() -> None:
    bucket = TokenBucket(rate=1, burst=3, now=0.0)
    assert all(bucket.take(0.0) for _ in range(3))
    assert sum(bucket.take(1e9) for _ in range(10)) == 3
