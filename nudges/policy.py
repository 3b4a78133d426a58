"""The one policy per person, above every campaign: may this person get a nudge at this instant?

Pure functions over a person's state; the planner asks them before it plans a nudge and the
sender asks them again just before it sends one (a pause or an opt-out may have come between).
Everything here is in UTC except what is explicitly local to the person.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from nudges.cadence import local_instant
from nudges.config import NudgePolicyConfig

CLOCK_CHANGE = timedelta(hours=1)
"""The most a daylight-saving change moves a local time (nearly everywhere)."""


@dataclass(frozen=True)
class Rules:
    """The organisation's side of the policy."""

    max_nudges: int = 1
    per: timedelta = timedelta(days=7)
    """The cap's window. From the organisation file it is `per_days` less an hour: the week
    in which clocks go forward is an hour short, and "one a week" must still let a weekly
    nudge go at its usual local time (10:30 each Tuesday) rather than an hour later until the
    clocks go back."""
    min_gap: timedelta = timedelta(hours=48)
    window_start: time = time(10, 0)
    window_end: time = time(16, 0)
    holidays: frozenset[date] = frozenset()

    @classmethod
    def from_config(cls, config: NudgePolicyConfig, holidays: frozenset[date]) -> Rules:
        return cls(
            max_nudges=config.max_nudges,
            per=timedelta(days=config.per_days) - CLOCK_CHANGE,
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
    rules: Rules,
    person: PersonState,
    campaign: str,
    earliest: datetime,
    latest: datetime,
    *,
    windows: Windows | None = None,
) -> datetime | None:
    """The first instant in [earliest, latest] the policy allows, or None.

    `windows` keeps the window's instants per local day for these rules; the planner passes one
    so that everyone in a time zone shares them instead of converting them again for each call.
    """
    if person.opted_out or campaign in person.stopped:
        return None
    if windows is None:
        windows = Windows(rules)
    elif windows.rules is not rules and windows.rules != rules:
        raise ValueError("the windows were computed for other rules")
    if rules.max_nudges == 1:
        # With one nudge per `per`, no instant less than `per` from a nudge is allowed: when
        # one nudge is that close to both `earliest` and `latest`, nothing in between is. This
        # answers most of the planner's questions after it has planned someone's nudge.
        sent = person.sent
        index = bisect_right(sent, latest - rules.per)
        if index < len(sent) and sent[index] < earliest + rules.per:
            return None
    zone = person.zone
    candidate = earliest
    if person.paused_until is not None and candidate < person.paused_until:
        candidate = person.paused_until
    for _ in range(400):  # days; each turn moves to a later day or returns
        if candidate > latest:
            return None
        day = candidate.astimezone(zone).date()
        opens, closes, next_opens = windows[zone, day]
        if candidate >= closes or _day_refusal(rules, person, day) is not None:
            candidate = next_opens
            continue
        if opens > candidate:
            candidate = opens
        blocked_until = _blocked_until(rules, person, candidate)
        if blocked_until is None:
            return candidate if candidate <= latest else None
        candidate = blocked_until
    return None


class Windows(dict[tuple[ZoneInfo, date], tuple[datetime, datetime, datetime]]):
    """Where the nudge window lies on each local day in each zone, computed when first asked.

    `windows[zone, day]` is (opens, closes, opens the next day), in UTC. They depend only on the
    rules, the zone and the date, and converting local times to UTC was most of what
    `next_allowed` cost: one of these serves a whole planning run (a dict, for fast lookups).
    """

    __slots__ = ("rules",)

    def __init__(self, rules: Rules) -> None:
        super().__init__()
        self.rules = rules

    def __missing__(self, key: tuple[ZoneInfo, date]) -> tuple[datetime, datetime, datetime]:
        zone, day = key
        opens, closes = self.rules.window_start, self.rules.window_end
        instants = (
            local_instant(day, opens, zone),
            local_instant(day, closes, zone),
            local_instant(day + timedelta(days=1), opens, zone),
        )
        self[key] = instants
        return instants


def _day_refusal(rules: Rules, person: PersonState, day: date) -> str | None:
    """Why no nudge may reach `person` at all on their local `day`, or None."""
    if day in rules.holidays:
        return "a holiday"
    if person.away and any(first <= day <= last for first, last in person.away):
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
    # `sent` is sorted, so each group of nudges the rule looks at is a slice of it, found by
    # bisection instead of by filtering the list: the nudges near `at` are sent[first:last].
    sent = person.sent
    per, gap, most = rules.per, rules.min_gap, rules.max_nudges
    reach = max(per, gap)
    first = bisect_left(sent, at - reach)
    last = bisect_left(sent, at + reach, first)
    if first == last and most > 0:
        return None  # nothing near: the common case
    # Too close: less than `gap` away on either side. Try again `gap` after the latest of them
    # (the first of equal instants, which may differ in tzinfo: the one max() would pick).
    low = bisect_right(sent, at - gap, first, last)
    high = bisect_left(sent, at + gap, low, last)
    if low < high:
        return sent[bisect_left(sent, sent[high - 1], low, high)] + gap
    # Over the cap: a window starting at a nudge in (at - per, at], or at `at`, already holds
    # `most` nudges. Nudges in (at, at + per) are sent[ahead_low:ahead_high].
    ahead_low = bisect_right(sent, at, first, last)
    ahead_high = bisect_left(sent, at + per, ahead_low, last)
    for index in range(bisect_right(sent, at - per, first, last), ahead_low):
        start = sent[index]
        opening = bisect_left(sent, start, first, index + 1)
        if bisect_left(sent, start + per, opening, last) - opening >= most:
            if start < at:
                return start + per
            return (sent[ahead_high - 1] if ahead_high > ahead_low else at) + per
    opening = bisect_left(sent, at, first, last)
    if bisect_left(sent, at + per, opening, last) - opening >= most:
        return (sent[ahead_high - 1] if ahead_high > ahead_low else at) + per
    return None
