"""Weeks as a leader lives them: Monday 00:00 to Monday 00:00 in their own time zone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.core.errors import ConfigurationError

ISO_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


@dataclass(frozen=True, slots=True)
class Week:
    """One ISO week in one time zone; `start` and `end` are UTC instants."""

    year: int
    number: int
    zone: str
    start: datetime
    end: datetime

    @property
    def label(self) -> str:
        return f"{self.year}-W{self.number:02d}"

    @property
    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.number, 1)

    def shifted(self, weeks: int) -> Week:
        """The week `weeks` later (negative: earlier), in the same zone."""
        return week_of_day(self.monday + timedelta(weeks=weeks), self.zone)

    def previous(self, count: int) -> list[Week]:
        """The `count` weeks before this one, oldest first."""
        return [self.shifted(-n) for n in range(count, 0, -1)]

    def days(self) -> str:
        """'16–22 Mar 2026', as a reader says it."""
        first, last = self.monday, self.monday + timedelta(days=6)
        if first.month == last.month:
            return f"{first.day}–{last.day} {last:%b %Y}"
        if first.year == last.year:
            return f"{first.day} {first:%b} – {last.day} {last:%b %Y}"
        return f"{first.day} {first:%b %Y} – {last.day} {last:%b %Y}"


def week_of_day(day: date, zone: str) -> Week:
    """The week holding `day`, with its boundaries at local midnight (DST-aware)."""
    year, number, weekday = day.isocalendar()
    monday = day - timedelta(days=weekday - 1)
    tz = ZoneInfo(zone)
    start = datetime.combine(monday, time(0), tz).astimezone(UTC)
    end = datetime.combine(monday + timedelta(days=7), time(0), tz).astimezone(UTC)
    return Week(year, number, zone, start, end)


def week_of(instant: datetime, zone: str) -> Week:
    """The week, in `zone`, that holds `instant`."""
    return week_of_day(instant.astimezone(ZoneInfo(zone)).date(), zone)


def parse_week(text: str, zone: str) -> Week:
    """'2026-W12' → that week in `zone`; a clear error for anything else."""
    match = ISO_WEEK.match(text.strip())
    if match is None:
        raise ConfigurationError(f"--week {text!r}: write an ISO week like 2026-W12")
    year, number = int(match.group(1)), int(match.group(2))
    try:
        monday = date.fromisocalendar(year, number, 1)
    except ValueError as exc:
        raise ConfigurationError(f"--week {text!r}: {year} has no week {number}") from exc
    return week_of_day(monday, zone)
