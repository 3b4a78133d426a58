"""The nudge policy, cadences across daylight saving, and the planner, on a frozen calendar.

The year-long simulation draws people, time zones, holidays, out-of-office, pauses and opt-outs
with a seed, plans day by day as the service does, and then checks every planned nudge against
every rule independently of the code that planned it.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from nudges.cadence import occurrences
from nudges.config import CampaignConfig, Stage
from nudges.planner import PlannedNudge, Recipient, plan_person, team_closure, variant_for
from nudges.policy import PersonState, Rules, next_allowed, refusal

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
ZONES = [
    "Pacific/Honolulu",
    "America/Los_Angeles",
    "America/Denver",
    "America/New_York",
    "America/Sao_Paulo",
    "Europe/London",
    "Europe/Berlin",
    "Africa/Johannesburg",
    "Asia/Kolkata",
    "Asia/Shanghai",
    "Australia/Sydney",
    "Pacific/Auckland",
]


def campaign(**overrides: object) -> CampaignConfig:
    data: dict[str, object] = {
        "id": "react",
        "name": "One reaction a week",
        "audience": {"everyone": True},
        "cadence": {"day": "tue", "at": "10:30"},
        "messages": {"watch": ["Hi {first_name}, could you react to one post on {page}?"]},
    }
    data.update(overrides)
    return CampaignConfig.model_validate(data)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# -- configuration ---------------------------------------------------------------------------


def test_unknown_placeholders_and_mixed_cadences_are_refused() -> None:
    with pytest.raises(ValidationError, match="unknown placeholder"):
        campaign(messages={"watch": ["Hi {nmae}!"]})
    with pytest.raises(ValidationError, match="either day"):
        campaign(cadence={"day": "tue", "on": "2026-12-01"})
    with pytest.raises(ValidationError, match="name teams, roles or people"):
        campaign(audience={"stages": ["watch"]})
    assert campaign(cadence={"day": "Tuesday"}).cadence.day == "tue"


def test_the_ladder_asks_for_the_next_small_step() -> None:
    assert [s.next for s in Stage] == [
        Stage.REACT,
        Stage.SHARE,
        Stage.COMMENT,
        Stage.CREATE,
        Stage.CREATE,
    ]


# -- cadence and daylight saving --------------------------------------------------------------


def test_weekly_slots_keep_their_local_time_across_daylight_saving() -> None:
    weekly = campaign(cadence={"day": "sun", "at": "10:30"})
    slots = list(occurrences(weekly, BERLIN, utc(2026, 3, 20), utc(2026, 4, 6)))
    assert [s.day for s in slots] == [date(2026, 3, 22), date(2026, 3, 29), date(2026, 4, 5)]
    assert [s.due.astimezone(BERLIN).time() for s in slots] == [time(10, 30)] * 3
    assert [s.due.hour for s in slots] == [9, 8, 8]  # CET, then CEST from 29 March


def test_a_local_time_that_does_not_exist_moves_past_the_jump() -> None:
    early = campaign(cadence={"day": "sun", "at": "02:30"})
    [slot] = occurrences(early, BERLIN, utc(2026, 3, 29), utc(2026, 3, 30))
    assert slot.due.astimezone(BERLIN).time() == time(3, 30)


def test_a_local_time_that_happens_twice_is_the_first() -> None:
    early = campaign(cadence={"day": "sun", "at": "01:30"})
    [slot] = occurrences(early, NEW_YORK, utc(2026, 11, 1), utc(2026, 11, 2))
    assert slot.due == utc(2026, 11, 1, 5, 30)  # 01:30 EDT, not 01:30 EST


def test_every_two_weeks_counts_from_the_start_and_one_offs_happen_once() -> None:
    fortnightly = campaign(cadence={"day": "mon", "every_weeks": 2}, start="2026-01-07")
    days = [s.day for s in occurrences(fortnightly, BERLIN, utc(2026, 1, 1), utc(2026, 2, 10))]
    assert days == [date(2026, 1, 19), date(2026, 2, 2)]
    once = campaign(cadence={"on": "2026-01-14", "at": "11:00"})
    assert [s.day for s in occurrences(once, BERLIN, utc(2026, 1, 1), utc(2026, 3, 1))] == [
        date(2026, 1, 14)
    ]


# -- the policy ---------------------------------------------------------------------------------


def test_refusals_name_the_rule() -> None:
    rules = Rules(holidays=frozenset({date(2026, 12, 24)}))
    person = PersonState("ana", BERLIN, away=((date(2026, 12, 28), date(2026, 12, 30)),))
    tuesday_11 = utc(2026, 12, 22, 10)  # 11:00 in Berlin
    assert refusal(rules, person, "react", tuesday_11) is None
    assert refusal(rules, person, "react", utc(2026, 12, 22, 19)) == "outside their nudge hours"
    assert refusal(rules, person, "react", utc(2026, 12, 24, 10)) == "a holiday"
    assert refusal(rules, person, "react", utc(2026, 12, 26, 10)) == "not a working day"
    assert refusal(rules, person, "react", utc(2026, 12, 29, 10)) == "out of office"
    person.add(utc(2026, 12, 18, 10))
    assert refusal(rules, person, "react", tuesday_11) == "the cap or the minimum gap"
    person.paused_until = utc(2027, 1, 1)
    assert refusal(rules, person, "react", tuesday_11) == "paused"
    person.stopped = frozenset({"react"})
    assert refusal(rules, person, "react", tuesday_11) == "stopped this campaign"
    person.opted_out = True
    assert refusal(rules, person, "react", tuesday_11) == "opted out of all nudges"


def test_next_allowed_skips_to_the_first_open_moment() -> None:
    rules = Rules()
    person = PersonState("ana", BERLIN)
    person.add(utc(2026, 6, 1, 9))  # Monday 11:00 Berlin
    # The cap frees the next Monday at 11:00 local.
    assert next_allowed(rules, person, "x", utc(2026, 6, 2), utc(2026, 7, 1)) == utc(2026, 6, 8, 9)
    # Friday evening → Monday's window opens at 10:00 (after the cap, on a fresh person).
    fresh = PersonState("bo", BERLIN)
    assert next_allowed(rules, fresh, "x", utc(2026, 6, 5, 17), utc(2026, 7, 1)) == utc(
        2026, 6, 8, 8
    )
    assert next_allowed(rules, fresh, "x", utc(2026, 6, 5, 17), utc(2026, 6, 6)) is None


def test_a_cap_of_two_per_week_holds_in_every_window() -> None:
    rules = Rules(max_nudges=2, min_gap=timedelta(hours=24))
    person = PersonState("ana", BERLIN)
    at = utc(2026, 6, 1, 8)
    for _ in range(12):
        found = next_allowed(rules, person, "x", at, at + timedelta(days=60))
        assert found is not None
        person.add(found)
        at = found
    for first in person.sent:
        assert sum(1 for s in person.sent if first <= s < first + rules.per) <= 2


# -- the planner --------------------------------------------------------------------------------


def test_overlapping_campaigns_take_turns_under_the_cap() -> None:
    campaigns = [
        campaign(id=name, cadence={"day": day, "at": "10:30"})
        for name, day in [("monday", "mon"), ("wednesday", "wed"), ("friday", "fri")]
    ]
    person = Recipient(PersonState("ana", BERLIN), "Ana Silva")
    planned = plan_person(Rules(), campaigns, person, utc(2026, 6, 1), utc(2026, 7, 27), teams={})
    assert len(planned) == 8  # one a week
    turns = Counter(p.campaign for p in planned)
    assert set(turns) == {"monday", "wednesday", "friday"} and set(turns.values()) == {2, 3}
    weeks = [p.send_at.isocalendar().week for p in planned]
    assert weeks == sorted(set(weeks)), "never two in one week"


def test_variants_split_people_evenly_and_stay_put() -> None:
    ab = campaign(messages={"watch": [{"id": "short", "text": "A"}, {"id": "long", "text": "B"}]})
    arms = Counter(variant_for(ab, f"person{i}", Stage.WATCH) for i in range(2000))
    assert set(arms) == {"short", "long"} and abs(arms["short"] - 1000) < 100
    assert variant_for(ab, "person7", Stage.WATCH) == variant_for(ab, "person7", Stage.WATCH)


def test_sub_teams_belong_to_their_parents() -> None:
    closure = team_closure({"uni": None, "admissions": "uni", "intl": "admissions"})
    assert closure["uni"] == {"uni", "admissions", "intl"}
    assert closure["intl"] == {"intl"}


def test_a_year_of_planning_breaks_no_rule() -> None:
    """2,000 people in 12 time zones, 6 overlapping campaigns, a year planned a week at a time
    (the service plans more often; a week keeps this test quick and crosses no fewer rules)."""
    rng = random.Random(20261122)
    year = 2027
    holidays = frozenset(date(year, 1, 1) + timedelta(days=rng.randrange(365)) for _ in range(10))
    rules = Rules(holidays=holidays)
    campaigns = [
        campaign(
            id=f"c{i}",
            cadence={"day": day, "at": at, "every_weeks": every},
            priority=rng.randrange(-2, 3),
            audience={"teams": [team]} if team else {"everyone": True},
            messages={
                stage: [f"Step for {{first_name}} ({stage})"] for stage in ("watch", "react")
            },
        )
        for i, (day, at, every, team) in enumerate(
            [
                ("mon", "09:15", 1, None),
                ("tue", "10:30", 1, "t1"),
                ("wed", "02:30", 1, None),  # before the window: waits for it
                ("thu", "15:45", 2, "t2"),
                ("fri", "11:00", 1, None),
                ("tue", "13:00", 1, "t3"),
            ]
        )
    ]
    people: list[Recipient] = []
    for i in range(2000):
        zone = ZoneInfo(ZONES[i % len(ZONES)])
        state = PersonState(f"p{i}", zone)
        if rng.random() < 0.05:
            state.opted_out = True
        if rng.random() < 0.1:
            start = date(year, 1, 1) + timedelta(days=rng.randrange(350))
            state.away = ((start, start + timedelta(days=rng.randrange(3, 15))),)
        if rng.random() < 0.1:
            state.paused_until = utc(year, 1, 1) + timedelta(days=rng.randrange(365))
        if rng.random() < 0.1:
            state.stopped = frozenset({f"c{rng.randrange(6)}"})
        stage = Stage.WATCH if rng.random() < 0.7 else Stage.REACT
        people.append(Recipient(state, f"Person {i}", stage, frozenset({f"t{i % 4}"})))

    planned: list[PlannedNudge] = []
    taken: dict[str, set[tuple[str, date]]] = defaultdict(set)
    day = utc(year, 1, 1)
    while day < utc(year + 1, 1, 1):
        for person in people:
            for nudge in plan_person(
                rules,
                campaigns,
                person,
                day,
                day + timedelta(days=7),
                teams={},
                taken=taken[person.key],
            ):
                taken[person.key].add((nudge.campaign, nudge.day))
                planned.append(nudge)
        day += timedelta(days=7)

    by_person: dict[str, list[PlannedNudge]] = defaultdict(list)
    for nudge in planned:
        by_person[nudge.person].append(nudge)
    states = {p.key: p.state for p in people}
    for key, nudges in by_person.items():
        state = states[key]
        assert not state.opted_out
        times = sorted(n.send_at for n in nudges)
        for a, b in itertools.pairwise(times):
            assert b - a >= timedelta(days=7), f"{key}: cap broken at {b}"
        for n in nudges:
            local = n.send_at.astimezone(state.zone)
            assert local == n.local_time
            assert time(10) <= local.time() < time(16), f"{key}: quiet hours at {local}"
            assert local.weekday() < 5, f"{key}: weekend at {local}"
            assert local.date() not in holidays
            assert not any(a <= local.date() <= b for a, b in state.away)
            assert state.paused_until is None or n.send_at >= state.paused_until
            assert n.campaign not in state.stopped
    assert len(planned) > 2000 * 30, "most people get most weeks' nudge"


def test_plain_messages_are_checked_and_named_like_variants() -> None:
    with pytest.raises(ValidationError, match="unknown placeholder"):
        campaign(messages={"watch": ["fine", "Hi {nmae}"]})
    with pytest.raises(ValidationError, match="variant ids must differ"):
        campaign(messages={"watch": [{"id": "b", "text": "One"}, "Two"]})
    both = campaign(messages={"watch": ["One", "Two"]})
    assert [v.id for v in both.variants(Stage.WATCH)] == ["a", "b"]
