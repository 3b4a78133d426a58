"""A circuit breaker: after a run of failures, stop calling for a while.

A model server that is down or keeps answering nonsense costs a timeout (and tokens) per call; the
breaker turns that into an immediate "unavailable" until the cool-down has passed. Then calls go
through again on trial: the first success closes the circuit, the first failure opens it for
another cool-down. The state is per process; each replica finds out on its own.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.core.clock import Clock


class CircuitBreaker:
    def __init__(
        self, clock: Clock, *, threshold: int = 5, cool_down: timedelta = timedelta(minutes=5)
    ) -> None:
        if threshold < 1:
            raise ValueError(f"threshold must be at least 1, not {threshold}")
        self.clock = clock
        self.threshold = threshold
        self.cool_down = cool_down
        self.failures = 0
        """Consecutive failures since the last success."""
        self.opened_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        """True while calls are refused."""
        if self.opened_at is None:
            return False
        return self.clock.now() < self.opened_at + self.cool_down

    def allow(self) -> bool:
        return not self.is_open

    def succeeded(self) -> None:
        self.failures = 0
        self.opened_at = None

    def failed(self) -> None:
        self.failures += 1
        if self.failures >= self.threshold:
            # Also on trial after a cool-down: the run of failures goes on, so wait again.
            self.opened_at = self.clock.now()
