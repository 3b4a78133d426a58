"""Per-destination and per-platform send rates, with pauses the platform asks for.

The rules are the platforms' documented limits (see PLATFORM-FACTS.md §A.6 and §B.7). Each rule
is "at most N sends in W seconds", checked on a sliding window of send times; a 429 with
`Retry-After` pauses the destination (or the whole platform) until then.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Rule:
    count: int
    seconds: float


@dataclass
class PlatformLimits:
    per_destination: tuple[Rule, ...] = ()
    overall: tuple[Rule, ...] = ()


# Slack: chat.postMessage allows about one message per second per channel with short bursts,
# plus a workspace-wide limit Slack does not publish; 20/s keeps well under it.
SLACK_LIMITS = PlatformLimits(
    per_destination=(Rule(3, 3.0),),
    overall=(Rule(20, 1.0),),
)
# Teams, per bot per conversation: 7 per second, 8 per 2 s, 60 per 30 s, 1,800 per hour; per app
# per tenant about 30 requests per second (Microsoft's pages disagree between 30 and 50).
TEAMS_LIMITS = PlatformLimits(
    per_destination=(Rule(7, 1.0), Rule(8, 2.0), Rule(60, 30.0), Rule(1800, 3600.0)),
    overall=(Rule(30, 1.0),),
)
UNLIMITED = PlatformLimits()


@dataclass
class _Window:
    times: deque[float] = field(default_factory=deque)
    paused_until: float = 0.0


MARGIN = 0.03
"""Each window is kept this much longer than documented: a send is recorded when it leaves
and counted by the platform when it arrives, and a few milliseconds of jitter at the edge of
a window would otherwise cost a 429 (and at least a second's `Retry-After`)."""


class RateLimiter:
    """Decides when the next send to a destination may happen. Time is passed in, never read."""

    def __init__(self, limits: PlatformLimits, margin: float = MARGIN) -> None:
        self.limits = limits
        self.margin = margin
        self._destinations: dict[str, _Window] = {}
        self._overall = _Window()

    def wait_time(self, destination: str, now: float, calls: int = 1) -> float:
        """Seconds until a send to `destination` is allowed (0 when it is allowed now).

        `calls` is what the send costs platform-wide (a Teams first contact is two calls).
        """
        wait = max(0.0, self._overall.paused_until - now)
        wait = max(wait, self._window_wait(self._overall, self.limits.overall, now, calls))
        window = self._destinations.get(destination)
        if window is not None:
            wait = max(wait, window.paused_until - now)
            wait = max(wait, self._window_wait(window, self.limits.per_destination, now))
        return wait

    def record(self, destination: str, now: float) -> None:
        if self.limits.per_destination:
            self._destinations.setdefault(destination, _Window()).times.append(now)
        if self.limits.overall:
            self._overall.times.append(now)

    def record_overall(self, now: float) -> None:
        """A call the platform counts that is not a send of ours (a Teams first contact opens
        the conversation with a call of its own before the message)."""
        if self.limits.overall:
            times = self._overall.times
            times.insert(bisect.bisect_right(times, now), now)

    def restamp(self, destination: str, reserved: float, now: float) -> None:
        """Move a send recorded at `reserved` (when its slot was taken) to `now` (when it
        really leaves), so the windows hold against what the platform counts on arrival."""
        windows = [self._overall] if self.limits.overall else []
        if self.limits.per_destination and destination in self._destinations:
            windows.append(self._destinations[destination])
        for window in windows:
            try:
                window.times.remove(reserved)
            except ValueError:
                continue  # already out of the window
            position = bisect.bisect_right(window.times, now)
            window.times.insert(position, now)

    def pause(self, destination: str | None, until: float) -> None:
        """Stop sending to one destination, or (None) to the whole platform, until `until`."""
        window = (
            self._overall
            if destination is None
            else self._destinations.setdefault(destination, _Window())
        )
        window.paused_until = max(window.paused_until, until)

    def forget_idle(self, now: float) -> None:
        """Drop state of destinations that have been quiet longer than the longest rule."""
        horizon = max((r.seconds for r in self.limits.per_destination), default=0.0)
        for key in [k for k, w in self._destinations.items() if _idle(w, now, horizon)]:
            del self._destinations[key]

    def _window_wait(
        self, window: _Window, rules: tuple[Rule, ...], now: float, calls: int = 1
    ) -> float:
        if not rules:
            return 0.0
        stretch = 1 + self.margin
        longest = max(rule.seconds for rule in rules) * stretch
        while window.times and window.times[0] <= now - longest:
            window.times.popleft()
        wait = 0.0
        for rule in rules:
            # Sends are in time order: the rule is full when its count-th latest send is
            # still inside the window, and frees up when that send leaves it.
            seconds = rule.seconds * stretch
            room = max(1, rule.count - calls + 1)  # sends that may be in the window already
            if len(window.times) >= room:
                oldest_counted = window.times[-room]
                if oldest_counted > now - seconds:
                    wait = max(wait, oldest_counted + seconds - now)
        return wait


def _idle(window: _Window, now: float, horizon: float) -> bool:
    last = window.times[-1] if window.times else float("-inf")
    return last <= now - horizon and window.paused_until <= now
