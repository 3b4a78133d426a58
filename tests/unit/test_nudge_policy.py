"""The nudge policy, cadences across daylight saving, and the planner, on a frozen calendar.

The year-long simulation draws people, time zones, holidays, out-of-office, pauses and opt-outs
with a seed, plans day by day as the service does, and then checks every planned nudge against
every rule independently of the code that planned it. Planning a whole audience at once, and the
policy's fast paths, are checked against a literal reading of the rules (no caches, no shortcuts).
"""

from __future__ import annotations

import copy
import itertools
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from nudges.cadence import local_instant, occurrences
from nudges.config import CampaignConfig, Stage
from nudges.planner import (
    MAX_DELAY,
    PlannedNudge,
    Recipient,
    audience_groups,
    in_audience,
    plan_people,
    plan_person,
    team_closure,
    variant_for,
)
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
        campaign(cadence={"day": "tue", "once": "2026-12-01"})
    with pytest.raises(ValidationError, match="name teams, roles, channels or people"):
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
    once = campaign(cadence={"once": "2026-01-14", "at": "11:00"})
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
    everything = plan_person(
        Rules(), campaigns, person, utc(2026, 6, 1), utc(2026, 8, 31), teams={}
    )
    planned = [p for p in everything if p.send_at < utc(2026, 7, 27)]
    assert len(planned) == 6  # at most one in any 7 days: Monday, the Wednesday after next, …
    turns = Counter(p.campaign for p in planned)
    assert turns == {"monday": 2, "wednesday": 2, "friday": 2}
    weeks = [p.send_at.isocalendar().week for p in planned]
    assert weeks == sorted(set(weeks)), "never two in one week"
    # Each arrives on its own campaign's day and time: a late wish gives way to the next slot
    # instead of dragging every later nudge of its campaign late.
    assert all(p.local_time.strftime("%A").lower() == p.campaign for p in planned)
    assert {p.local_time.strftime("%H:%M") for p in planned} == {"10:30"}


def test_variants_split_people_evenly_and_stay_put() -> None:
    ab = campaign(messages={"watch": [{"id": "short", "text": "A"}, {"id": "long", "text": "B"}]})
    arms = Counter(variant_for(ab, f"person{i}", Stage.WATCH) for i in range(2000))
    assert set(arms) == {"short", "long"} and abs(arms["short"] - 1000) < 100
    assert variant_for(ab, "person7", Stage.WATCH) == variant_for(ab, "person7", Stage.WATCH)


def test_sub_teams_belong_to_their_parents() -> None:
    closure = team_closure({"uni": None, "admissions": "uni", "intl": "admissions"})
    assert closure["uni"] == {"uni", "admissions", "intl"}
    assert closure["intl"] == {"intl"}


def test_channel_audiences_reach_the_teams_that_list_the_channel() -> None:
    groups = audience_groups({"uni": None, "admissions": "uni"}, {"admissions": ["#adm"]})
    by_channel = campaign(audience={"channels": ["#adm"]})
    member = Recipient(PersonState("tom", BERLIN), "Tom", teams=frozenset({"admissions"}))
    outsider = Recipient(PersonState("ana", BERLIN), "Ana", teams=frozenset({"uni"}))
    assert in_audience(by_channel, member, groups) and not in_audience(by_channel, outsider, groups)
    planned = plan_people(
        Rules(), [by_channel], [member, outsider], utc(2026, 6, 1), utc(2026, 6, 8), teams=groups
    )
    assert [p.person for p in planned] == ["tom"]


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


# -- the policy against its literal reading -----------------------------------------------------


def literal_next_allowed(
    rules: Rules, person: PersonState, campaign: str, earliest: datetime, latest: datetime
) -> datetime | None:
    """`next_allowed` as the rules read, step by step: no cache, no bisection, no shortcut."""
    if person.opted_out or campaign in person.stopped:
        return None
    candidate = earliest
    if person.paused_until is not None and candidate < person.paused_until:
        candidate = person.paused_until
    for _ in range(400):
        if candidate > latest:
            return None
        day = candidate.astimezone(person.zone).date()
        opens = local_instant(day, rules.window_start, person.zone)
        closes = local_instant(day, rules.window_end, person.zone)
        closed = (
            day in rules.holidays
            or any(a <= day <= b for a, b in person.away)
            or day.weekday() not in person.working_days
        )
        if closed or candidate >= closes:
            candidate = local_instant(day + timedelta(days=1), rules.window_start, person.zone)
            continue
        candidate = max(candidate, opens)
        blocked_until = literal_blocked_until(rules, person.sent, candidate)
        if blocked_until is None:
            return candidate if candidate <= latest else None
        candidate = blocked_until
    return None


def literal_blocked_until(rules: Rules, sent: list[datetime], at: datetime) -> datetime | None:
    reach = max(rules.per, rules.min_gap)
    near = [s for s in sent if at - reach <= s < at + reach]
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


def test_next_allowed_answers_as_the_rules_read() -> None:
    """Random people, histories and rules: the fast `next_allowed` (shared window instants, the
    history searched by bisection, the one-a-week shortcut) answers exactly as the literal
    reading does, down to the instant's tzinfo."""
    rng = random.Random(7)
    base = utc(2026, 3, 20)
    elsewhere = timezone(timedelta(hours=-3))
    for trial in range(3000):
        rules = Rules(
            max_nudges=rng.choice([1, 1, 2, 3]),
            per=rng.choice([timedelta(days=7), timedelta(days=3), timedelta(hours=20)]),
            min_gap=rng.choice([timedelta(0), timedelta(hours=1), timedelta(hours=48)]),
            window_start=rng.choice([time(0), time(9, 15), time(10)]),
            window_end=rng.choice([time(10, 30), time(16), time(23, 59)]),
            holidays=frozenset(
                date(2026, 3, 20) + timedelta(days=rng.randrange(40))
                for _ in range(rng.randrange(3))
            ),
        )
        person = PersonState(f"p{trial}", ZoneInfo(rng.choice(ZONES)))
        if rng.random() < 0.2:
            person.working_days = frozenset(rng.sample(range(7), rng.randrange(7)))
        if rng.random() < 0.2:
            person.paused_until = base + timedelta(hours=rng.randrange(24 * 20))
        if rng.random() < 0.2:
            away = date(2026, 3, 20) + timedelta(days=rng.randrange(30))
            person.away = ((away, away + timedelta(days=rng.randrange(5))),)
        for _ in range(rng.randrange(6)):
            sent = base + timedelta(minutes=rng.randrange(-60 * 24 * 10, 60 * 24 * 30))
            if person.sent and rng.random() < 0.2:  # the same instant again, maybe elsewhere
                sent = rng.choice(person.sent)
            person.add(sent.astimezone(elsewhere) if rng.random() < 0.2 else sent)
        earliest = base + timedelta(minutes=rng.randrange(60 * 24 * 20))
        if person.sent and rng.random() < 0.3:  # right at a nudge, or a cap window from it
            earliest = rng.choice(person.sent) + rng.choice([timedelta(0), rules.per, -rules.per])
        latest = earliest + timedelta(minutes=rng.randrange(-60, 60 * 24 * 15))
        if trial == 0:  # the same instant twice, in two zones: the first one counts
            rules = Rules(max_nudges=3, min_gap=timedelta(hours=48), window_end=time(23, 59))
            person = PersonState("twice", ZoneInfo("Europe/London"))
            person.add(utc(2026, 6, 1, 10))
            person.add(utc(2026, 6, 1, 10).astimezone(elsewhere))
            earliest, latest = utc(2026, 6, 1, 11), utc(2026, 6, 5)
        expected = literal_next_allowed(rules, person, "c", earliest, latest)
        found = next_allowed(rules, person, "c", earliest, latest)
        assert found == expected, (trial, rules, person, earliest, latest)
        assert found is None or expected is None or found.tzinfo is expected.tzinfo


# -- planning everyone at once ------------------------------------------------------------------


Wish = tuple[CampaignConfig, date, datetime, datetime]  # campaign, slot day, due, expires


def literal_plan(
    rules: Rules,
    campaigns: Sequence[CampaignConfig],
    person: Recipient,
    start: datetime,
    end: datetime,
    *,
    teams: dict[str, set[str]],
    taken: Iterable[tuple[str, date]] = (),
) -> list[PlannedNudge]:
    """`plan_person` as the planner's rules read: nothing shared or skipped, every wish asked
    about at every turn, with the literal policy above."""
    state = person.state
    if state.opted_out:
        return []
    done = set(taken)
    wishes: list[Wish] = []
    for c in campaigns:
        if c.paused or c.id in state.stopped or not c.variants(person.stage):
            continue
        if not in_audience(c, person, teams):
            continue
        slots = list(occurrences(c, state.zone, start - MAX_DELAY, end + MAX_DELAY))
        for i, slot in enumerate(slots):
            if (c.id, slot.day) in done or slot.due >= end:
                continue
            expires = slot.due + MAX_DELAY
            if i + 1 < len(slots):
                expires = min(expires, slots[i + 1].due)
            if expires > start:
                wishes.append((c, slot.day, slot.due, expires))

    def preference(option: tuple[datetime, Wish]) -> tuple[float, int, datetime, str]:
        at, (c, _, _, _) = option
        last = person.last_by_campaign.get(c.id)
        return (float("-inf") if last is None else last.timestamp(), -c.priority, at, c.id)

    planned: list[PlannedNudge] = []
    while wishes:
        options: list[tuple[datetime, Wish]] = []
        for wish in wishes:
            c, _, due, expires = wish
            latest = min(expires, end) - timedelta(microseconds=1)
            at = literal_next_allowed(rules, state, c.id, max(due, start), latest)
            if at is not None:
                options.append((at, wish))
        if not options:
            break
        # A newer slot of the same campaign that can go within `per` replaces a late one.
        options = [
            (at, w)
            for at, w in options
            if at <= w[2]
            or not any(
                o[0].id == w[0].id and o[2] > w[2] and o_at < at + rules.per for o_at, o in options
            )
        ]
        first = min(at for at, _ in options)
        at, chosen = min([o for o in options if o[0] < first + rules.per], key=preference)
        c, day, due, _ = chosen
        variant = variant_for(c, person.key, person.stage)
        assert variant is not None
        local = at.astimezone(state.zone)
        planned.append(PlannedNudge(person.key, c.id, day, at, local, variant, person.stage))
        state.add(at)
        person.last_by_campaign[c.id] = at
        wishes = [w for w in wishes if w is not chosen and not (w[0].id == c.id and w[2] <= due)]
    return planned


def planning_campaigns(start: date) -> list[CampaignConfig]:
    """Cadences of every kind, audiences of every kind, and some that want nobody."""
    ab = [{"id": "short", "text": "A"}, {"id": "long", "text": "B"}]
    return [
        campaign(id="weekly", messages={"watch": ab, "react": ["React?"]}),
        campaign(
            id="fortnight",
            cadence={"day": "thu", "at": "15:45", "every_weeks": 2},
            start=(start - timedelta(days=10)).isoformat(),
            audience={"teams": ["t1"], "stages": ["watch", "react", "share"]},
            messages={s: [f"{s} a", f"{s} b", f"{s} c"] for s in ("watch", "react", "share")},
            priority=1,
        ),
        campaign(
            id="once",
            cadence={"once": (start + timedelta(days=3)).isoformat(), "at": "11:00"},
            priority=3,
            messages={s.value: ["Once"] for s in Stage},
        ),
        campaign(
            id="early",
            cadence={"day": "wed", "at": "02:30"},
            audience={"roles": ["expert"], "people": [f"p{i}" for i in range(0, 300, 7)]},
            end=(start + timedelta(days=9)).isoformat(),
            messages={s.value: ["Early"] for s in Stage},
        ),
        campaign(id="paused", paused=True, cadence={"day": "mon", "at": "12:00"}),
        campaign(
            id="share",
            cadence={"day": "tue", "at": "13:00"},
            audience={"everyone": True, "stages": ["share", "comment"]},
            messages={"share": ["Share?"]},  # nothing for comment: they get none
            priority=-1,
        ),
    ]


def planning_people(
    rng: random.Random, count: int, start: datetime, campaigns: list[CampaignConfig]
) -> tuple[list[Recipient], dict[str, Iterable[tuple[str, date]]]]:
    """People as the year simulation draws them, plus what they have had and what is planned."""
    people: list[Recipient] = []
    taken: dict[str, Iterable[tuple[str, date]]] = {}
    for i in range(count):
        state = PersonState(f"p{i}", ZoneInfo(rng.choice(ZONES)))
        if rng.random() < 0.05:
            state.opted_out = True
        if rng.random() < 0.1:
            state.paused_until = start + timedelta(hours=rng.randrange(-48, 24 * 10))
        if rng.random() < 0.1:
            state.stopped = frozenset({rng.choice(campaigns).id})
        if rng.random() < 0.1:
            away = start.date() + timedelta(days=rng.randrange(-3, 12))
            state.away = ((away, away + timedelta(days=rng.randrange(4))),)
        if rng.random() < 0.1:
            state.working_days = frozenset({6, 0, 1, 2, 3})
        person = Recipient(
            state,
            f"Person {i}",
            rng.choice(list(Stage)),
            frozenset(rng.sample(["t0", "t1", "t1a", "t2"], rng.randrange(3))),
            frozenset(["employee", "expert"] if rng.random() < 0.2 else ["employee"]),
        )
        slots: list[tuple[str, date]] = []
        for _ in range(rng.randrange(4)):  # weeks gone by, and some nudges already planned
            chosen = rng.choice(campaigns)
            when = start + timedelta(minutes=rng.randrange(-60 * 24 * 21, 60 * 24 * 3))
            state.add(when)
            person.last_by_campaign[chosen.id] = when
            slots += [
                (chosen.id, slot.day)
                for slot in occurrences(chosen, state.zone, when - timedelta(days=3), when)
            ]
        if rng.random() < 0.3:  # one planned already, in the horizon or just before it
            chosen = rng.choice(campaigns)
            around = start + timedelta(days=rng.randrange(-7, 7))
            for slot in itertools.islice(
                occurrences(chosen, state.zone, around, around + timedelta(days=7)), 1
            ):
                state.add(slot.due)
                slots.append((chosen.id, slot.day))
        taken[person.key] = set(slots) if rng.random() < 0.5 else slots
        people.append(person)
    return people, taken


@pytest.mark.parametrize(
    ("start", "days", "rules"),
    [
        (utc(2026, 3, 23), 7, Rules()),  # Europe changes its clocks on the 29th
        (utc(2026, 3, 25, 13, 30), 14, Rules(holidays=frozenset({date(2026, 4, 3)}))),
        (utc(2026, 10, 29), 3, Rules(max_nudges=2, min_gap=timedelta(hours=24))),
        (utc(2026, 10, 26), 21, Rules(max_nudges=2, per=timedelta(days=10))),
    ],
)
def test_planning_everyone_at_once_is_planning_each_alone(
    start: datetime, days: int, rules: Rules
) -> None:
    rng = random.Random(f"{start}{days}")
    campaigns = planning_campaigns(start.date())
    teams = team_closure({"t0": None, "t1": None, "t1a": "t1", "t2": "t1a"})
    people, taken = planning_people(rng, 300, start, campaigns)
    people.append(people[3])  # the same person twice: the second plan sees the first
    alone, literally = copy.deepcopy(people), copy.deepcopy(people)
    end = start + timedelta(days=days)

    together = plan_people(rules, campaigns, iter(people), start, end, teams=teams, taken=taken)

    for plan, copies in [(plan_person, alone), (literal_plan, literally)]:
        one_by_one = [
            nudge
            for person in copies
            for nudge in plan(
                rules, campaigns, person, start, end, teams=teams, taken=taken[person.key]
            )
        ]
        assert together == one_by_one, plan.__name__
        assert [p.state for p in people] == [p.state for p in copies]
        assert [p.last_by_campaign for p in people] == [p.last_by_campaign for p in copies]
    assert len({n.campaign for n in together}) >= 4 and len(together) > 150
    assert plan_people(rules, campaigns, [], start, end, teams=teams) == []


def test_each_planning_sees_the_campaigns_as_they_are() -> None:
    """Nothing is kept between runs: a campaign edited under the same id plans its new slots."""
    start, end = utc(2026, 6, 1), utc(2026, 6, 8)
    tuesdays = campaign(id="weekly", cadence={"day": "tue", "at": "10:30"})
    thursdays = campaign(id="weekly", cadence={"day": "thu", "at": "14:00"})
    [before] = plan_people(
        Rules(), [tuesdays], [Recipient(PersonState("ana", BERLIN), "Ana")], start, end, teams={}
    )
    [after] = plan_people(
        Rules(), [thursdays], [Recipient(PersonState("ana", BERLIN), "Ana")], start, end, teams={}
    )
    # This week's slot (last week's, late, gives way to it): a Tuesday's, then a Thursday's.
    assert (before.day, after.day) == (date(2026, 6, 2), date(2026, 6, 4))
    assert before.local_time.strftime("%a %H:%M") == "Tue 10:30"
    assert after.local_time.strftime("%a %H:%M") == "Thu 14:00"


def test_a_late_wish_still_goes_when_the_next_slot_is_far() -> None:
    """Every four weeks: a nudge held back by a holiday goes the next working day."""
    monthly = campaign(id="monthly", cadence={"day": "tue", "every_weeks": 4, "at": "10:30"})
    rules = Rules(holidays=frozenset({date(2026, 6, 16)}))
    person = Recipient(PersonState("ana", BERLIN), "Ana")
    planned = plan_person(rules, [monthly], person, utc(2026, 6, 1), utc(2026, 6, 25), teams={})
    assert [(p.day, p.local_time.strftime("%a %d %H:%M")) for p in planned] == [
        (date(2026, 6, 16), "Wed 17 10:00")
    ]


def test_a_weekly_nudge_keeps_its_local_time_in_the_week_clocks_go_forward() -> None:
    """That week is an hour short: "one a week" from the file must still let 10:30 be 10:30
    (the service once held it an hour, then dropped it for the next week's slot)."""
    from bot.config.organisation import parse_organisation
    from nudges.cli import preview, recipients_from_file

    org = parse_organisation(
        """
organisation: {name: Org, timezone: Europe/Berlin}
people:
  - {id: mia, name: Mia, timezone: Europe/Berlin}
  - {id: noah, name: Noah, timezone: America/New_York}
campaigns:
  - id: weekly
    name: Weekly
    audience: {everyone: true}
    cadence: {day: tue, at: "10:30"}
    messages: {watch: ["Hi {first_name}"]}
"""
    )
    start, end = utc(2026, 3, 1), utc(2026, 4, 15)
    planned = preview(org, recipients_from_file(org), org.campaigns, start, end)
    for person in ("mia", "noah"):
        local = [p.local_time for p in planned if p.person == person]
        assert len(local) == 7, f"{person}: one every Tuesday, clock changes included"
        assert {(t.weekday(), t.hour, t.minute) for t in local} == {(1, 10, 30)}
