"""A token bucket for client messages: ``rate`` a second on average, bursts of ``burst``.

Time is passed in, so the arithmetic is tested exactly without a clock.
"""

from __future__ import annotations


class TokenBucket:
    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._at = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one; False means over the rate."""
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False
