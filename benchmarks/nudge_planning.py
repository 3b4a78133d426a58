"""How long the nudge planner takes for a large audience, against the issue's target.

    .venv/bin/python benchmarks/nudge_planning.py [--people 50000] [--days 7,14] [--seed 1]
                                                  [--json]

Builds a seeded organisation: people in 12 time zones, in a tree of teams, at every ladder
stage, some opted out, paused, away or having stopped a campaign, most with a few weeks of
nudges already sent (and some with one already planned in the horizon); and 6 overlapping
campaigns (weekly, every 2 and 3 weeks, a one-off; different audiences, stages and priorities).
Then it times `plan_people` over each planning horizon, starting on Monday 23 March 2026 (the
two weeks cross Europe's clock change and the end of daylight saving in Sydney and Auckland).

The target (from the issue) is a 50,000-person audience planned in at most 5 s (scaled
linearly for other --people). The PASS/FAIL verdicts are informational; the script exits 0
when it could measure. Every run also checks, on a sample of 200 people, that the batch plan is
exactly what `plan_person` gives one by one (plans, states, last nudge per campaign), and times
that for comparison. Each horizon gets a freshly built population, since planning records the
planned nudges in each person's state; building it is not timed. The report goes to stdout,
progress to stderr.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import random
import resource
import sys
import time as clock
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.config.base import WEEKDAYS
from nudges.config import CampaignConfig, Stage
from nudges.planner import (
    PlannedNudge,
    Recipient,
    in_audience,
    plan_people,
    plan_person,
    team_closure,
)
from nudges.policy import PersonState, Rules

TARGET_PEOPLE = 50_000
TARGET_SECONDS = 5.0
SAMPLE = 200
START = datetime(2026, 3, 23, tzinfo=UTC)  # a Monday
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
TEAMS: dict[str, str | None] = {
    "org": None,
    "sales": "org",
    "sales-emea": "sales",
    "sales-amer": "sales",
    "sales-apac": "sales",
    "eng": "org",
    "eng-platform": "eng",
    "eng-platform-sre": "eng-platform",
    "eng-apps": "eng",
    "eng-data": "eng",
    "ops": "org",
    "ops-hr": "ops",
    "ops-finance": "ops",
    "marketing": "org",
    "marketing-brand": "marketing",
    "marketing-social": "marketing",
}
LEAVES = [team for team in TEAMS if not any(parent == team for parent in TEAMS.values())]
STAGES = [
    (Stage.WATCH, 0.5),
    (Stage.REACT, 0.25),
    (Stage.SHARE, 0.13),
    (Stage.COMMENT, 0.08),
    (Stage.CREATE, 0.04),
]
HOLIDAYS = frozenset({date(2026, 4, 3), date(2026, 4, 6)})  # Good Friday, Easter Monday


def message(stage: str) -> str:
    return f"Hi {{first_name}}, one small step this week ({stage}) on {{page}}."


def build_campaigns(start: datetime) -> list[CampaignConfig]:
    """Six campaigns that overlap in audience and in days, so people's wishes compete."""
    one_off = start.date() + timedelta(days=3)
    data: list[dict[str, object]] = [
        {
            "id": "weekly-react",
            "audience": {"everyone": True, "stages": ["watch", "react"]},
            "cadence": {"day": "mon", "at": "10:30"},
            "messages": {
                "watch": [{"id": "short", "text": "React?"}, {"id": "long", "text": message("w")}],
                "react": [message("react")],
            },
        },
        {
            "id": "sales-share",
            "audience": {"teams": ["sales"]},
            "cadence": {"day": "tue", "at": "11:00"},
            "priority": 1,
            "messages": {s: [message(s)] for s in ("watch", "react", "share")},
        },
        {
            "id": "fortnight-comment",
            "audience": {"everyone": True, "stages": ["react", "share", "comment"]},
            "cadence": {"day": "wed", "at": "14:00", "every_weeks": 2},
            "messages": {s: [message(s), message(s + "!")] for s in ("react", "share", "comment")},
        },
        {
            "id": "launch-day",
            "audience": {"everyone": True},
            "cadence": {"once": one_off.isoformat(), "at": "12:00"},
            "priority": 5,
            "messages": {s.value: [message(s.value)] for s in Stage},
        },
        {
            "id": "eng-early",
            "audience": {"teams": ["eng", "marketing-social"]},
            "cadence": {"day": "thu", "at": "09:00"},  # before the window: waits for it
            "priority": -1,
            "start": (start.date() - timedelta(days=30)).isoformat(),
            "end": (start.date() + timedelta(days=90)).isoformat(),
            "messages": {s: [message(s)] for s in ("watch", "react", "share")},
        },
        {
            "id": "experts-create",
            "audience": {
                "roles": ["expert", "evangelist"],
                "people": [f"p{i}" for i in range(0, 5000, 10)],
                "stages": ["share", "comment", "create"],
            },
            "cadence": {"day": "fri", "at": "15:30", "every_weeks": 3},
            "priority": 2,
            "messages": {s: [message(s)] for s in ("share", "comment", "create")},
        },
    ]
    return [CampaignConfig.model_validate({"name": str(d["id"]), **d}) for d in data]


@dataclass
class Population:
    people: list[Recipient]
    taken: dict[str, set[tuple[str, date]]] = field(default_factory=dict)
    """Slots already sent or planned, by person."""
    sent: int = 0
    """Nudges in the people's history (the weeks before, and any already in the horizon)."""


def build_population(
    count: int,
    seed: int,
    start: datetime,
    campaigns: list[CampaignConfig],
    teams: dict[str, set[str]],
) -> Population:
    """`count` people drawn with `seed`. History: in most of the 4 weeks before `start`, one
    nudge from a weekly campaign they are in the audience of, on its slot's day at its local time
    (or some minutes past 10:00 when that is before the window: sends are not all on the
    minute); one in ten also has one planned in the first week of the horizon already."""
    rng = random.Random(seed)
    weekly = [c for c in campaigns if c.cadence.day is not None and c.cadence.every_weeks == 1]
    population = Population([])
    taken: dict[str, set[tuple[str, date]]] = defaultdict(set)
    stages, weights = zip(*STAGES, strict=True)
    for i in range(count):
        zone = ZoneInfo(ZONES[rng.randrange(len(ZONES))])
        key = f"p{i}"
        state = PersonState(key, zone)
        draw = rng.random()
        if draw < 0.05:
            state.working_days = frozenset({6, 0, 1, 2, 3})  # Sunday to Thursday
        elif draw < 0.10:
            state.working_days = frozenset(range(4))  # part time
        if rng.random() < 0.02:
            state.opted_out = True
        if rng.random() < 0.04:
            state.paused_until = start + timedelta(hours=rng.randrange(0, 10 * 24))
        if rng.random() < 0.03:
            state.stopped = frozenset({rng.choice(campaigns).id})
        if rng.random() < 0.06:
            first = start.date() + timedelta(days=rng.randrange(-5, 12))
            state.away = ((first, first + timedelta(days=rng.randrange(1, 10))),)
        member_of = {rng.choice(LEAVES)}
        if rng.random() < 0.2:
            member_of.add(rng.choice(LEAVES))
        roles = {"employee"}
        draw = rng.random()
        if draw < 0.05:
            roles.add("expert")
        elif draw < 0.07:
            roles.add("evangelist")
        elif draw < 0.10:
            roles.add("leader")
        stage = rng.choices(stages, weights)[0]
        person = Recipient(state, f"Person {i}", stage, frozenset(member_of), frozenset(roles))
        theirs = [c for c in weekly if c.variants(stage) and in_audience(c, person, teams)]
        weeks = [-4, -3, -2, -1, 0] if rng.random() < 0.1 else [-4, -3, -2, -1]
        for week in weeks:
            if not theirs or rng.random() < 0.25:
                continue
            campaign = rng.choice(theirs)
            assert campaign.cadence.day is not None
            day = (start + timedelta(weeks=week)).astimezone(zone).date()
            day += timedelta(days=(WEEKDAYS.index(campaign.cadence.day) - day.weekday()) % 7)
            at = max(campaign.cadence.at, time(10, rng.randrange(60)))
            sent = datetime.combine(day, at, tzinfo=zone).astimezone(UTC)
            state.add(sent)
            person.last_by_campaign[campaign.id] = sent
            taken[key].add((campaign.id, day))
            population.sent += 1
        population.people.append(person)
    population.taken = dict(taken)
    return population


@dataclass
class Run:
    days: int
    people: int
    history: int = 0
    planned: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    build_seconds: float = 0.0
    peak_rss_mib: float = 0.0
    sample: int = 0
    sample_identical: bool = False
    sample_seconds: float = 0.0
    """`plan_person` one by one for the sample."""

    @property
    def target(self) -> float:
        """5 s for 50,000 people, scaled to the audience."""
        return TARGET_SECONDS * self.people / TARGET_PEOPLE

    @property
    def people_per_second(self) -> float:
        return self.people / self.seconds if self.seconds else float("inf")

    @property
    def sample_people_per_second(self) -> float | None:
        return self.sample / self.sample_seconds if self.sample_seconds else None

    @property
    def passed(self) -> bool:
        return self.seconds <= self.target

    def as_dict(self) -> dict[str, object]:
        alone = self.sample_people_per_second
        return {
            "days": self.days,
            "people": self.people,
            "history_nudges": self.history,
            "nudges_planned": self.planned,
            "seconds": round(self.seconds, 3),
            "cpu_seconds": round(self.cpu_seconds, 3),
            "people_per_second": round(self.people_per_second),
            "build_seconds": round(self.build_seconds, 3),
            "peak_rss_mib": round(self.peak_rss_mib, 1),
            "sample": self.sample,
            "sample_identical": self.sample_identical,
            "plan_person_people_per_second": None if alone is None else round(alone),
            "target_seconds": round(self.target, 3),
            "pass": self.passed,
        }


def peak_rss_mib() -> float:
    """The process's peak resident memory so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(days: int, people: int, seed: int) -> Run:
    """Build the organisation, time `plan_people` over `days`, and check a sample."""
    run = Run(days, people)
    rules = Rules(holidays=HOLIDAYS)
    campaigns = build_campaigns(START)
    teams = team_closure(TEAMS)
    end = START + timedelta(days=days)
    began = clock.perf_counter()
    population = build_population(people, seed, START, campaigns, teams)
    run.build_seconds = clock.perf_counter() - began
    run.history = population.sent
    picks = sorted(random.Random(seed + 1).sample(range(people), min(SAMPLE, people)))
    sample = [copy.deepcopy(population.people[i]) for i in picks]
    print(
        f"{days} days: built {people:,} people in {run.build_seconds:.1f} s, planning",
        file=sys.stderr,
    )
    gc.collect()  # the building's garbage is not the planner's

    began, cpu = clock.perf_counter(), clock.process_time()
    planned = plan_people(
        rules, campaigns, population.people, START, end, teams=teams, taken=population.taken
    )
    run.seconds = clock.perf_counter() - began
    run.cpu_seconds = clock.process_time() - cpu
    run.peak_rss_mib = peak_rss_mib()
    run.planned = len(planned)

    began = clock.perf_counter()
    one_by_one = [
        plan_person(
            rules,
            campaigns,
            person,
            START,
            end,
            teams=teams,
            taken=population.taken.get(person.key, ()),
        )
        for person in sample
    ]
    run.sample_seconds = clock.perf_counter() - began
    by_person: dict[str, list[PlannedNudge]] = defaultdict(list)
    for nudge in planned:
        by_person[nudge.person].append(nudge)
    identical = True
    for person, alone, index in zip(sample, one_by_one, picks, strict=True):
        batched = population.people[index]
        identical &= alone == by_person.get(person.key, [])
        identical &= person.state == batched.state
        identical &= person.last_by_campaign == batched.last_by_campaign
    run.sample, run.sample_identical = len(sample), identical
    return run


def report(runs: list[Run]) -> str:
    lines = [
        f"Nudge planning: plan_people from {START.date()} (6 campaigns, 12 time zones)",
        "",
        f"{'days':>4} {'people':>7} {'history':>8} {'planned':>8} {'seconds':>7} {'CPU s':>6} "
        f"{'people/s':>8} {'peak RSS MiB':>12} {'sample of ' + str(SAMPLE):>14} "
        f"{'alone/s':>7}  verdict",
    ]
    for run in runs:
        same = "identical" if run.sample_identical else "DIFFERENT"
        alone = run.sample_people_per_second
        verdict = "PASS" if run.passed else "FAIL"
        lines.append(
            f"{run.days:>4} {run.people:>7,} {run.history:>8,} {run.planned:>8,} "
            f"{run.seconds:>7.2f} {run.cpu_seconds:>6.2f} {run.people_per_second:>8,.0f} "
            f"{run.peak_rss_mib:>12.1f} {same:>14} {'-' if alone is None else f'{alone:,.0f}':>7}"
            f"  {verdict} (target ≤ {run.target:.2f} s)"
        )
    lines += [
        "",
        "history: nudges sent (or planned) before the run; planned: nudges plan_people planned;",
        "seconds: wall time of plan_people alone; peak RSS: this process's ru_maxrss so far;",
        f"sample: plan_person one by one for {SAMPLE} people gives the same plans and states;",
        "alone/s: plan_person's own rate on that sample (no sharing between people).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=TARGET_PEOPLE, help="audience size")
    parser.add_argument(
        "--days", default="7,14", help="planning horizons in days, comma-separated (7,14)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed for the organisation")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of text")
    args = parser.parse_args(argv)
    try:
        horizons = [int(d) for d in str(args.days).split(",") if d.strip()]
    except ValueError:
        parser.error(f"--days: whole numbers separated by commas, not {args.days!r}")
    if args.people < 1 or not horizons or min(horizons) < 1:
        parser.error("--people and --days must be at least 1")
    runs = [measure(days, args.people, args.seed) for days in horizons]
    if args.json:
        print(json.dumps({"start": START.isoformat(), "runs": [r.as_dict() for r in runs]}))
    else:
        print(report(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
