"""When a campaign wants to reach a person: its cadence, in the person's own time zone.

A cadence names a local wall-clock time ("Tuesdays at 10:30"), so its instant in UTC moves with
daylight saving. Two cases need a rule:

- a local time that does not exist (clocks jump from 02:00 to 03:00): the nudge comes at the
  same distance after the jump (02:30 becomes 03:30), which is what zoneinfo gives for fold=0;
- a local time that happens twice (clocks go back): the first of the two.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.config.base import WEEKDAYS
from nudges.config import CampaignConfig

EPOCH = date(2024, 1, 1)
"""A Monday: every-N-weeks cadences of campaigns without a start date count weeks from here."""


def local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a local date and time (see the module docstring for DST)."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One time a campaign wants to reach one person."""

    day: date
    """The local date of the slot: with the campaign and person, it names this nudge."""
    due: datetime
    """UTC."""


def occurrences(
    campaign: CampaignConfig, zone: ZoneInfo, start: datetime, end: datetime
) -> Iterator[Occurrence]:
    """The campaign's slots for someone in `zone` that fall in [start, end) (UTC), in order."""
    cadence = campaign.cadence
    first_day = (start.astimezone(zone) - timedelta(days=1)).date()
    last_day = (end.astimezone(zone) + timedelta(days=1)).date()
    if campaign.start is not None:
        first_day = max(first_day, campaign.start)
    if campaign.end is not None:
        last_day = min(last_day, campaign.end)
    if cadence.once is not None:
        days: Iterator[date] = iter([cadence.once] if first_day <= cadence.once <= last_day else [])
    else:
        assert cadence.day is not None
        days = _weekly(
            WEEKDAYS.index(cadence.day), cadence.every_weeks, campaign.start, first_day, last_day
        )
    for day in days:
        due = local_instant(day, cadence.at, zone)
        if start <= due < end:
            yield Occurrence(day, due)


def _weekly(
    weekday: int, every: int, anchor: date | None, first: date, last: date
) -> Iterator[date]:
    base = anchor or EPOCH
    base_monday = base - timedelta(days=base.weekday())
    day = first + timedelta(days=(weekday - first.weekday()) % 7)
    while day <= last:
        weeks = (day - base_monday).days // 7
        if weeks % every == 0 and (anchor is None or day >= anchor):
            yield day
        day += timedelta(days=7)
