from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.config.organisation import WorkingHoursConfig
from bot.questions.hours import WorkingTime

ALL_WEEK = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)


def local(zone: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A wall-clock time in `zone`, as the UTC instant the methods take."""
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def office(
    zone: str, days: list[str] | None = None, holidays: tuple[date, ...] = ()
) -> WorkingTime:
    hours = WorkingHoursConfig() if days is None else WorkingHoursConfig(days=days)
    return WorkingTime.from_config(hours, zone, holidays)


def test_from_config() -> None:
    hours = WorkingHoursConfig(start=time(8, 30), end=time(16), days=["sun", "mon", "Thursday"])
    working = WorkingTime.from_config(hours, "Asia/Dubai", [date(2026, 1, 1)])
    assert working == WorkingTime(
        zone=ZoneInfo("Asia/Dubai"),
        start=time(8, 30),
        end=time(16),
        days=frozenset({6, 0, 3}),
        holidays=frozenset({date(2026, 1, 1)}),
    )


def test_is_working_in_london() -> None:
    london = office("Europe/London")
    assert london.is_working(utc(2026, 3, 2, 9, 0))  # Monday 09:00 GMT: start counts
    assert london.is_working(utc(2026, 3, 2, 16, 59, 59))
    assert not london.is_working(utc(2026, 3, 2, 17, 0))  # the end does not
    assert not london.is_working(utc(2026, 3, 2, 8, 59))
    assert not london.is_working(utc(2026, 3, 7, 12, 0))  # Saturday
    # In summer 09:00 BST is 08:00 UTC.
    assert london.is_working(utc(2026, 6, 1, 8, 0))
    assert not london.is_working(utc(2026, 6, 1, 16, 0))
    # Any aware datetime is accepted; naive ones are refused.
    assert london.is_working(datetime(2026, 3, 2, 4, 30, tzinfo=ZoneInfo("America/New_York")))
    with pytest.raises(ValueError):
        london.is_working(datetime(2026, 3, 2, 10, 0))


def test_next_start_over_a_weekend() -> None:
    london = office("Europe/London")
    working = utc(2026, 3, 4, 11, 15)
    assert london.next_start(working) == working
    assert london.next_start(utc(2026, 3, 6, 17, 0)) == utc(2026, 3, 9, 9, 0)  # Fri → Mon
    assert london.next_start(utc(2026, 3, 7, 12, 0)) == utc(2026, 3, 9, 9, 0)  # Sat → Mon
    assert london.next_start(utc(2026, 3, 9, 6, 0)) == utc(2026, 3, 9, 9, 0)  # early Monday
    result = london.next_start(utc(2026, 3, 8, 23, 0))
    assert result.tzinfo is UTC


def test_add_across_evenings_weekends_and_holidays() -> None:
    london = office("Europe/London", holidays=(date(2026, 4, 3), date(2026, 4, 6)))
    # Same day.
    assert london.add(utc(2026, 3, 2, 10, 0), 90) == utc(2026, 3, 2, 11, 30)
    # Over the evening: 60 minutes on Monday, 60 on Tuesday.
    assert london.add(utc(2026, 3, 2, 16, 0), 120) == utc(2026, 3, 3, 10, 0)
    # Work that ends with the day ends then, not the next morning.
    assert london.add(utc(2026, 3, 2, 16, 0), 60) == utc(2026, 3, 2, 17, 0)
    # Over a weekend, from outside working hours, and 0 minutes.
    assert london.add(utc(2026, 3, 6, 16, 0), 120) == utc(2026, 3, 9, 10, 0)
    assert london.add(utc(2026, 3, 7, 12, 0), 30) == utc(2026, 3, 9, 9, 30)
    assert london.add(utc(2026, 3, 7, 12, 0), 0) == utc(2026, 3, 9, 9, 0)
    # Easter: Good Friday and Easter Monday are holidays (BST, UTC+1).
    thursday = local("Europe/London", 2026, 4, 2, 16, 0)
    assert london.add(thursday, 120) == local("Europe/London", 2026, 4, 7, 10, 0)
    # A whole working week from Monday morning ends on Friday evening.
    assert london.add(utc(2026, 3, 2, 9, 0), 5 * 8 * 60) == utc(2026, 3, 6, 17, 0)
    assert london.add(utc(2026, 3, 2, 9, 0), 0.5) == utc(2026, 3, 2, 9, 0, 30)
    with pytest.raises(ValueError):
        london.add(utc(2026, 3, 2, 9, 0), -1)


def test_add_steps_by_day_not_by_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    london = office("Europe/London")
    calls = 0
    window = WorkingTime._window

    def counting(self: WorkingTime, day: date) -> tuple[datetime, datetime] | None:
        nonlocal calls
        calls += 1
        return window(self, day)

    monkeypatch.setattr(WorkingTime, "_window", counting)
    assert london.add(utc(2026, 3, 6, 15, 0), 4 * 60) == utc(2026, 3, 9, 11, 0)
    assert calls < 20


@pytest.mark.parametrize(
    ("zone", "friday", "monday"),
    [
        # London springs forward on Sunday 29 March 2026 (GMT → BST).
        ("Europe/London", utc(2026, 3, 27, 16, 0), utc(2026, 3, 30, 9, 0)),
        # ...and falls back on Sunday 25 October 2026 (BST → GMT).
        ("Europe/London", utc(2026, 10, 23, 15, 0), utc(2026, 10, 26, 10, 0)),
        # New York: Sunday 8 March (EST → EDT) and Sunday 1 November (EDT → EST).
        ("America/New_York", utc(2026, 3, 6, 21, 0), utc(2026, 3, 9, 14, 0)),
        ("America/New_York", utc(2026, 10, 30, 20, 0), utc(2026, 11, 2, 15, 0)),
    ],
)
def test_weekends_when_the_clocks_change(zone: str, friday: datetime, monday: datetime) -> None:
    # Friday 16:00 local plus two working hours is Monday 10:00 local, whatever the offset.
    working = office(zone)
    assert working.add(friday, 120) == monday
    assert working.working_minutes_between(friday, monday) == 120
    assert working.local(monday).hour == 10


@pytest.mark.parametrize(
    ("zone", "day"),
    [
        ("Europe/London", date(2026, 3, 29)),
        ("Europe/London", date(2026, 10, 25)),
        ("America/New_York", date(2026, 3, 8)),
        ("America/New_York", date(2026, 11, 1)),
    ],
)
def test_a_clock_change_day_still_has_eight_hours(zone: str, day: date) -> None:
    every_day = office(zone, ALL_WEEK)
    midnight = local(zone, day.year, day.month, day.day)
    next_midnight = local(zone, day.year, day.month, day.day + 1)
    assert every_day.working_minutes_between(midnight, next_midnight) == 480
    start = local(zone, day.year, day.month, day.day, 9)
    assert every_day.add(start, 480) == local(zone, day.year, day.month, day.day, 17)
    assert every_day.add(start, 480) - start == timedelta(hours=8)


def test_hours_that_span_the_skipped_and_repeated_hour() -> None:
    night = WorkingHoursConfig(start=time(0, 30), end=time(3, 30), days=ALL_WEEK)
    london = WorkingTime.from_config(night, "Europe/London")
    # 00:30 GMT to 03:30 BST is two real hours; 00:30 BST to 03:30 GMT is four.
    spring = london.next_start(utc(2026, 3, 29, 0, 0))
    assert spring == utc(2026, 3, 29, 0, 30)
    assert london.add(spring, 120) == utc(2026, 3, 29, 2, 30)
    autumn = london.next_start(utc(2026, 10, 24, 23, 0))
    assert autumn == utc(2026, 10, 24, 23, 30)
    assert london.add(autumn, 240) == utc(2026, 10, 25, 3, 30)
    # A start inside the skipped hour is read as the same time after the change.
    gap = WorkingHoursConfig(start=time(1, 30), end=time(5), days=ALL_WEEK)
    assert WorkingTime.from_config(gap, "Europe/London").next_start(utc(2026, 3, 29, 0, 0)) == utc(
        2026, 3, 29, 1, 30
    )  # 01:30 GMT is 02:30 BST


def test_kolkata_half_hour_offset() -> None:
    kolkata = office("Asia/Kolkata")  # UTC+05:30, no DST: 09:00-17:00 is 03:30-11:30 UTC
    assert kolkata.is_working(utc(2026, 3, 2, 3, 30))
    assert not kolkata.is_working(utc(2026, 3, 2, 11, 30))
    # Monday 22:00 UTC is already Tuesday 03:30 in Kolkata: the day starts at 03:30 UTC.
    assert kolkata.next_start(utc(2026, 3, 2, 22, 0)) == utc(2026, 3, 3, 3, 30)
    # Friday 11:00 UTC is 16:30 local: 30 minutes left, the rest on Monday.
    assert kolkata.add(utc(2026, 3, 6, 11, 0), 60) == utc(2026, 3, 9, 4, 0)
    assert kolkata.local(utc(2026, 3, 6, 11, 0)) == datetime(
        2026, 3, 6, 16, 30, tzinfo=ZoneInfo("Asia/Kolkata")
    )


def test_auckland_works_while_utc_is_still_on_sunday() -> None:
    auckland = office("Pacific/Auckland")  # NZDT, UTC+13 until 5 April 2026
    # Monday 09:00 in Auckland is Sunday 20:00 UTC.
    assert auckland.is_working(utc(2026, 3, 1, 20, 0))
    assert not auckland.is_working(utc(2026, 3, 1, 19, 59))
    assert auckland.next_start(utc(2026, 2, 28, 12, 0)) == utc(2026, 3, 1, 20, 0)
    # Friday 16:00 NZDT plus two hours: Monday 10:00 NZDT.
    assert auckland.add(utc(2026, 3, 6, 3, 0), 120) == utc(2026, 3, 8, 21, 0)
    # Over the end of daylight saving (Sunday 5 April): Monday 09:00 NZST is 21:00 UTC.
    assert auckland.add(utc(2026, 4, 3, 3, 0), 120) == utc(2026, 4, 5, 22, 0)


def test_a_sunday_to_thursday_week() -> None:
    dubai = office("Asia/Dubai", ["sun", "mon", "tue", "wed", "thu"])  # UTC+4
    assert dubai.is_working(utc(2026, 3, 1, 6, 0))  # Sunday 10:00
    assert not dubai.is_working(utc(2026, 3, 6, 6, 0))  # Friday 10:00
    # Thursday 16:00 plus two hours: Sunday 10:00.
    assert dubai.add(utc(2026, 3, 5, 12, 0), 120) == utc(2026, 3, 8, 6, 0)
    assert dubai.next_start(utc(2026, 3, 6, 6, 0)) == utc(2026, 3, 8, 5, 0)


def test_working_minutes_between() -> None:
    london = office("Europe/London", holidays=(date(2026, 3, 4),))
    assert london.working_minutes_between(utc(2026, 3, 2, 10, 0), utc(2026, 3, 2, 10, 45)) == 45
    # Monday 15:00 to Thursday 10:00, Wednesday a holiday: 2 h + 8 h + 1 h.
    assert london.working_minutes_between(utc(2026, 3, 2, 15, 0), utc(2026, 3, 5, 10, 0)) == 660
    # Friday 16:30 to Monday 09:15 over the weekend.
    assert london.working_minutes_between(utc(2026, 3, 6, 16, 30), utc(2026, 3, 9, 9, 15)) == 45
    assert london.working_minutes_between(utc(2026, 3, 7, 1, 0), utc(2026, 3, 8, 23, 0)) == 0
    assert london.working_minutes_between(utc(2026, 3, 3, 12, 0), utc(2026, 3, 2, 12, 0)) == 0
    # Consistent with add.
    start = utc(2026, 3, 2, 11, 17)
    assert london.working_minutes_between(start, london.add(start, 1234)) == 1234


def test_no_working_day_in_a_year_is_an_error() -> None:
    mondays = tuple(date(2026, 1, 5) + timedelta(weeks=n) for n in range(60))
    hopeless = office("UTC", ["mon"], holidays=mondays)
    with pytest.raises(ValueError, match="no working day within 366 days"):
        hopeless.next_start(utc(2026, 1, 1))
    with pytest.raises(ValueError, match="no working day"):
        hopeless.add(utc(2026, 1, 1), 60)
    # The first Monday after the holidays is found when it is within reach.
    assert hopeless.next_start(utc(2026, 12, 1)) == utc(2027, 3, 1, 9, 0)


def test_invalid_schedules_are_refused() -> None:
    zone = ZoneInfo("UTC")
    with pytest.raises(ValueError):
        WorkingTime(zone, time(9), time(17), frozenset())
    with pytest.raises(ValueError):
        WorkingTime(zone, time(17), time(9), frozenset({0}))
    with pytest.raises(ValueError):
        WorkingTime(zone, time(9), time(17), frozenset({7}))
