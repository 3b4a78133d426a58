"""Working time per person: when someone may be asked, and deadlines counted in working time.

Hours are local wall-clock times on local working days, so the arithmetic happens one local day
at a time: each working day is turned into one UTC interval [start, end), and time is summed or
added over those intervals. That keeps DST right for free (a 09:00-17:00 day is 8 hours on the
day the clocks change) and lets `add` jump a whole day per step instead of a minute.

A start or end that falls in the hour skipped in spring is read with the offset from before the
change (02:30 on a skipped night means 03:30 new time); in the repeated autumn hour the first
occurrence counts. A day whose interval comes out empty that way has no working time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.config.base import WEEKDAYS
from bot.config.organisation import WorkingHoursConfig

HORIZON_DAYS = 366
"""How far ahead a working day is looked for before the schedule is declared impossible."""
_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class WorkingTime:
    """Someone's working hours: `start`-`end` local time on `days` (0 = Monday) in `zone`,
    except on `holidays` (local dates). Every method takes and returns aware UTC datetimes.
    """

    zone: ZoneInfo
    start: time
    end: time
    days: frozenset[int]
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"end {self.end} must be after start {self.start}")
        if not self.days or not self.days <= frozenset(range(7)):
            raise ValueError(f"days must be a non-empty set of 0 (Monday) to 6, not {self.days}")

    @classmethod
    def from_config(
        cls, hours: WorkingHoursConfig, zone: str, holidays: Iterable[date] = ()
    ) -> WorkingTime:
        """Build from the organisation file's hours, an IANA zone name and the holiday dates."""
        return cls(
            zone=ZoneInfo(zone),
            start=hours.start,
            end=hours.end,
            days=frozenset(WEEKDAYS.index(day) for day in hours.days),
            holidays=frozenset(holidays),
        )

    def local(self, at: datetime) -> datetime:
        """`at` as wall-clock time in this person's zone."""
        return _utc(at).astimezone(self.zone)

    def is_working(self, at: datetime) -> bool:
        """Whether `at` is within working hours (start inclusive, end exclusive)."""
        return self._containing(_utc(at)) is not None

    def next_start(self, at: datetime) -> datetime:
        """`at` itself when it is working time, else the moment working time next begins.

        Raises ValueError when there is no working day in the next `HORIZON_DAYS` days (every
        working day a holiday), rather than looking forever.
        """
        moment = _utc(at)
        # The day before too: a window never crosses local midnight, but starting a day early
        # costs nothing and guards against zones that change their clocks at midnight.
        first = self.local(moment).date() - _ONE_DAY
        for offset in range(HORIZON_DAYS + 2):
            window = self._window(first + offset * _ONE_DAY)
            if window is not None and moment < window[1]:
                return max(window[0], moment)
        raise ValueError(f"no working day within {HORIZON_DAYS} days of {moment.isoformat()}")

    def add(self, at: datetime, minutes: float) -> datetime:
        """The moment `minutes` of working time have passed since `at`.

        Counting starts at `at`, or at the next start when `at` is outside working time (so
        adding 0 minutes gives `next_start(at)`). Work that ends exactly at the end of a day
        finishes then, not at the next morning's start.
        """
        if minutes < 0:
            raise ValueError(f"minutes must not be negative, not {minutes}")
        remaining = timedelta(minutes=minutes)
        moment = self.next_start(at)
        while True:
            window = self._containing(moment)
            if window is None:  # next_start only returns moments inside a window
                raise RuntimeError(f"{moment.isoformat()} should be working time")
            available = window[1] - moment
            if remaining <= available:
                return moment + remaining
            remaining -= available
            moment = self.next_start(window[1])

    def working_minutes_between(self, a: datetime, b: datetime) -> float:
        """Minutes of working time in [a, b); 0 when `b` is not after `a`."""
        begin, finish = _utc(a), _utc(b)
        if finish <= begin:
            return 0.0
        total = timedelta()
        day = self.local(begin).date() - _ONE_DAY
        last = self.local(finish).date()
        while day <= last:
            window = self._window(day)
            if window is not None:
                overlap = min(window[1], finish) - max(window[0], begin)
                total += max(overlap, timedelta())
            day += _ONE_DAY
        return total.total_seconds() / 60

    def _containing(self, moment: datetime) -> tuple[datetime, datetime] | None:
        """The working interval that `moment` (UTC) falls in, if any."""
        day = self.local(moment).date()
        for candidate in (day, day - _ONE_DAY):
            window = self._window(candidate)
            if window is not None and window[0] <= moment < window[1]:
                return window
        return None

    def _window(self, day: date) -> tuple[datetime, datetime] | None:
        """The UTC interval worked on local date `day`, or None for a day off."""
        if day.weekday() not in self.days or day in self.holidays:
            return None
        begin = datetime.combine(day, self.start, tzinfo=self.zone).astimezone(UTC)
        finish = datetime.combine(day, self.end, tzinfo=self.zone).astimezone(UTC)
        return (begin, finish) if begin < finish else None


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{at.isoformat()} has no time zone; pass an aware datetime")
    return at.astimezone(UTC)
