"""The one policy per person, above every campaign: may this person get a nudge at this instant?

Pure functions over a person's state; the planner asks them before it plans a nudge and the
sender asks them again just before it sends one (a pause or an opt-out may have come between).
Everything here is in UTC except what is explicitly local to the person.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from nudges.cadence import local_instant
from nudges.config import NudgePolicyConfig


@dataclass(frozen=True)
class Rules:
    """The organisation's side of the policy."""

    max_nudges: int = 1
    per: timedelta = timedelta(days=7)
    min_gap: timedelta = timedelta(hours=48)
    window_start: time = time(10, 0)
    window_end: time = time(16, 0)
    holidays: frozenset[date] = frozenset()

    @classmethod
    def from_config(cls, config: NudgePolicyConfig, holidays: frozenset[date]) -> Rules:
        return cls(
            max_nudges=config.max_nudges,
            per=timedelta(days=config.per_days),
            min_gap=timedelta(hours=config.min_gap_hours),
            window_start=config.window.start,
            window_end=config.window.end,
            holidays=holidays | frozenset(config.holidays),
        )


@dataclass
class PersonState:
    """The person's side: where they are, what they told us, what they have had."""

    key: str
    zone: ZoneInfo
    working_days: frozenset[int] = frozenset(range(5))
    """date.weekday() numbers (0 = Monday)."""
    opted_out: bool = False
    paused_until: datetime | None = None
    stopped: frozenset[str] = frozenset()
    """Campaigns they stopped."""
    away: tuple[tuple[date, date], ...] = ()
    """Out of office, local dates, both ends included."""
    sent: list[datetime] = field(default_factory=list)
    """Nudges sent or planned to them, sorted."""

    def add(self, at: datetime) -> None:
        insort(self.sent, at)


def refusal(rules: Rules, person: PersonState, campaign: str, at: datetime) -> str | None:
    """Why `person` may not get a nudge from `campaign` at `at`, or None if they may."""
    reason = _closed(rules, person, campaign, at)
    if reason is None and _blocked_until(rules, person, at) is not None:
        return "the cap or the minimum gap"
    return reason


def next_allowed(
    rules: Rules, person: PersonState, campaign: str, earliest: datetime, latest: datetime
) -> datetime | None:
    """The first instant in [earliest, latest] the policy allows, or None."""
    if person.opted_out or campaign in person.stopped:
        return None
    candidate = earliest
    if person.paused_until is not None and candidate < person.paused_until:
        candidate = person.paused_until
    for _ in range(400):  # days; each turn moves to a later day or returns
        if candidate > latest:
            return None
        local = candidate.astimezone(person.zone)
        day = local.date()
        opens = local_instant(day, rules.window_start, person.zone)
        closes = local_instant(day, rules.window_end, person.zone)
        if _day_refusal(rules, person, day) is not None or candidate >= closes:
            candidate = local_instant(day + timedelta(days=1), rules.window_start, person.zone)
            continue
        candidate = max(candidate, opens)
        blocked_until = _blocked_until(rules, person, candidate)
        if blocked_until is None:
            return candidate if candidate <= latest else None
        candidate = blocked_until
    return None


def _day_refusal(rules: Rules, person: PersonState, day: date) -> str | None:
    """Why no nudge may reach `person` at all on their local `day`, or None."""
    if day in rules.holidays:
        return "a holiday"
    if any(first <= day <= last for first, last in person.away):
        return "out of office"
    if day.weekday() not in person.working_days:
        return "not a working day"
    return None


def _closed(rules: Rules, person: PersonState, campaign: str, at: datetime) -> str | None:
    if person.opted_out:
        return "opted out of all nudges"
    if campaign in person.stopped:
        return "stopped this campaign"
    if person.paused_until is not None and at < person.paused_until:
        return "paused"
    local = at.astimezone(person.zone)
    reason = _day_refusal(rules, person, local.date())
    if reason is None and not rules.window_start <= local.time() < rules.window_end:
        return "outside their nudge hours"
    return reason


def _blocked_until(rules: Rules, person: PersonState, at: datetime) -> datetime | None:
    """None if one more nudge at `at` keeps the cap and the gap; else a later instant to try.

    The cap holds when every window of length `per` that contains `at` already holds fewer
    than `max_nudges` nudges; the windows worth checking start at a nudge before `at` or at
    `at` itself. The instant returned is always later than `at` (callers check it again).
    """
    sent = person.sent
    reach = max(rules.per, rules.min_gap)
    near = sent[bisect_left(sent, at - reach) : bisect_left(sent, at + reach)]
    too_close = [s for s in near if abs(s - at) < rules.min_gap]
    if too_close:
        return max(too_close) + rules.min_gap
    behind = [s for s in near if at - rules.per < s <= at]
    ahead = [s for s in near if at < s < at + rules.per]
    for start in [*behind, at]:
        if sum(1 for s in near if start <= s < start + rules.per) >= rules.max_nudges:
            if start < at:
                return start + rules.per
            return (ahead[-1] if ahead else at) + rules.per
    return None
