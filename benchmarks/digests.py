"""Leader digests at scale: every leader's digest of one week for 50,000 people and 5,000,000
participation events, against the issue's targets.

    .venv/bin/python benchmarks/digests.py [--backend sqlite|postgresql|both] [--people 50000]
        [--events 5000000] [--weeks 8] [--seed 1] [--keep] [--repeat 2] [--charts 20]
        [--explain] [--experiments] [--postgres URL] [--scratch NAME] [--sqlite PATH] [--json]

    .venv/bin/python benchmarks/digests.py --keep               # both backends; keep the data
    .venv/bin/python benchmarks/digests.py --keep --backend postgresql --experiments
    .venv/bin/python benchmarks/digests.py --people 2000 --events 100000   # a quick smoke run

Targets (from the issue): all leaders' digests in ≤ 5 s on PostgreSQL and ≤ 15 s on SQLite,
peak memory ≤ 500 MB, a chart rendered in ≤ 1 s. At full size, generating and loading takes
about 1½ min (PostgreSQL) and 3½ min (SQLite), the measurement a few minutes per backend (as
long as the product takes: one run of (a) that takes over 2 minutes is not repeated).
It needs the project's virtualenv and, for PostgreSQL, a server that accepts `postgres`
without a password (--postgres names the server; any database on it).

1. Generation (seeded: the same --seed and sizes give the same rows on both backends). An
   organisation of --people people in four levels of teams (divisions → departments → groups →
   teams of ~10; every team has a leader, 3 % of teams a co-leader, 2 % of group heads also
   lead a team of their group; division, department and group heads are direct members of the
   team they lead), in 14 time zones: divisions based in Europe/London, America/New_York or
   Asia/Kolkata (one in another zone: Asia/Tokyo with seed 1), 8 % of their teams remote in
   one of 11 other zones (among them Europe/Dublin, Berlin and Paris, which share week
   boundaries with London or with each other), 15 % of members anywhere. With seed 1: 5,684
   leaders, 84 % of them in the three main zones, 11 % in Tokyo, ~35 in each other zone.
   ~8 sent nudges a person (weekly, 85 % of weeks, some skipped, some planned; a quarter
   answered 'done'), 0.4 questions a person routed to topic experts with their assignments,
   escalations and answers, and --events participation events over the --weeks weeks before
   the reported week, the reported week (2026-W11) and
   this week so far (to Tuesday 17 March 2026 12:00 UTC): nudge_done for each nudge done,
   question_routed/declined/claimed/answered/answer_verified from the questions, the rest
   link_opened, reacted, page_comment, experiment_tried/note and ladder_up, drawn with a
   skewed activity per person (a fifth never take part), in local working hours, fewer at
   weekends, growing week on week. References are unique per person and kind. Rows are
   written in time order (as a live system writes them): on PostgreSQL with COPY
   (asyncpg `copy_records_to_table`), on SQLite with `executemany` in one transaction; the
   event and nudge tables' secondary indexes and constraints are dropped during the load and
   made again from their own definitions. The scratch databases are --scratch
   (`evangelist_bench_digests`) on the --postgres server and --sqlite
   (/tmp/evangelist_bench_digests.sqlite3); both are dropped at the end unless --keep. With
   --keep a database generated with the same sizes and seed is reused (a marker in the
   database comment, or PATH.meta), so a re-run skips generation.
2. Measurement, after VACUUM ANALYZE (PostgreSQL) or ANALYZE (SQLite), in a fresh Python process
   (so its peak memory is the digest computation's own, not the generator's):
   (a) every leader's digest of last week as `DigestService.run_due` computes them on Tuesday
       17 March 12:00 UTC, when every leader in every zone is due (the catch-up after a
       Monday outage, or a first run): `load_structure`, `due_week` and `scope_of` for each
       leader, the stored-digest check, then `DigestService.digests` (`compute`, grouped by
       period, plus the template narrative). The reads the service module calls
       (`read_ledger` or `read_segments`, `read_questions`) and `narrate` are wrapped, in
       this process only, to time them, as is `Segments.ledger` when there is one;
       "per-scope figures" is the rest of `compute` (the Calculator's Python/numpy work).
       --repeat runs; the first is reported apart (cold caches), the best is checked against
       the target. Also the largest run the job makes on a normal Monday: the leaders of one
       zone (Europe/London) at 09:05 London time.
   (b) peak memory: VmHWM, the high-water mark of the process's resident set, at start
       (imports done), after (a), after (a') and (c), at the end. Not ru_maxrss: Linux carries
       the parent's peak into a child across fork and exec.
   (c) chart rendering: `chart.render` (Slack PNG) and `chart.render(compact=True)` (Teams)
       of --charts digests from (a), from the largest scope to the smallest; median and max.
       The first render in a process (matplotlib import, fonts) is reported apart.
   (d) "this week so far" for one leader (the largest scope, and a small team's leader), as
       `DigestService.so_far` does it, without the outbox: structure, scope, digest, chart.
   Plus a split of the participation read as the run makes it (the events query, the nudges
   query, rows to arrays) and the plans of its two queries (EXPLAIN (ANALYZE, BUFFERS) on
   PostgreSQL, EXPLAIN QUERY PLAN on SQLite), printed with --explain or when (a) misses.
   --experiments times alternatives with SQL only (the product code is not changed): settings,
   other query shapes, reading only the people of some scopes, and every period in one read
   (width_bucket on PostgreSQL, a binary search of CASEs on SQLite), checked equal to the
   product's events query.
3. A table of figures with their targets and PASS/MISS (informational: the script exits 0 when
   it could measure), with the load average before and after each measurement: the machine
   may be small and shared, so re-run when the load was high. Progress goes to stderr, the
   report (or --json) to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import resource
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

SCRATCH = "evangelist_bench_digests"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_SQLITE = Path("/tmp/evangelist_bench_digests.sqlite3")
REPORTED = date(2026, 3, 9)  # Monday of 2026-W11, the week the digests report on
NOW = datetime(2026, 3, 17, 12, 0, tzinfo=UTC)  # Tuesday: every zone's Monday 09:00 has passed
LONDON_MONDAY = datetime(2026, 3, 16, 9, 5, tzinfo=UTC)  # 09:05 in London (GMT)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TARGETS = {"postgresql": 5.0, "sqlite": 15.0}
TARGET_RSS_MB = 500.0
TARGET_CHART_S = 1.0
LONG_RUN_S = 120.0
"""A run of (a) that took longer is not repeated: caches do not matter at that scale."""

MAIN_ZONES = ("Europe/London", "America/New_York", "Asia/Kolkata")
OTHER_ZONES = (
    "Europe/Dublin",
    "Europe/Berlin",
    "Europe/Paris",
    "America/Chicago",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Africa/Johannesburg",
    "Asia/Dubai",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
)
ZONES = (*MAIN_ZONES, *OTHER_ZONES)
# A division's home: London, New York or Kolkata, or (-1) one of the other zones, drawn.
DIVISION_HOMES = (0, 1, 2, 0, 1, 0, 2, 1, 0, -1)
DIVISION_NAMES = (
    "Admissions",
    "Research",
    "Teaching",
    "Operations",
    "Finance",
    "Estates",
    "Library",
    "Student Life",
    "Marketing",
    "International",
)

KINDS = (
    "question_claimed",
    "question_answered",
    "answer_verified",
    "page_comment",
    "nudge_done",
    "link_opened",
    "experiment_tried",
    "experiment_note",
    "reacted",
    "ladder_up",
    "question_routed",
    "question_declined",
)
K = {name: i for i, name in enumerate(KINDS)}
PREFIX = {
    "question_claimed": "question:",
    "question_answered": "question:",
    "answer_verified": "question:",
    "page_comment": "facebook:brand:",
    "nudge_done": "nudge:",
    "link_opened": "link:",
    "experiment_tried": "experiment:link:",
    "experiment_note": "experiment:note:",
    "reacted": "reaction:",
    "ladder_up": "ladder:",
    "question_routed": "question:",
    "question_declined": "question:",
}
# The events nobody else's rows imply, by share, and who does them (share of people).
FREE_KINDS = {
    "link_opened": (0.44, 1.0),
    "reacted": (0.32, 1.0),
    "page_comment": (0.09, 0.12),
    "experiment_tried": (0.07, 0.35),
    "experiment_note": (0.05, 0.35),
    "ladder_up": (0.01, 1.0),
}
TOPICS = [f"t{n:02d}" for n in range(20)]
TOPIC_NAMES = (
    "Fees",
    "PhD positions",
    "Accommodation",
    "Visas",
    "Open days",
    "Scholarships",
    "Timetables",
    "Exams",
    "Library cards",
    "Parking",
    "Sport",
    "Careers",
    "Alumni",
    "Research grants",
    "Clearing",
    "Erasmus",
    "Wellbeing",
    "IT accounts",
    "Graduation",
    "Catering",
)
ORG_YAML = "organisation: {name: Bench University}\ntopics:\n" + "".join(
    f"  - {{id: {t}, name: {n}}}\n" for t, n in zip(TOPICS, TOPIC_NAMES, strict=True)
)
FIRST = ("Ada", "Ben", "Chloe", "Dev", "Emma", "Femi", "Grace", "Hugo", "Isla", "Jay", "Kiran")
LAST = ("Ahmed", "Brown", "Chen", "Diaz", "Evans", "Fischer", "Gupta", "Hughes", "Ito", "Jones")


def names(text: str) -> list[str]:
    return text.split()


PEOPLE_COLUMNS = names(
    "id key name email timezone roles in_directory welcomed_at recognition_at created_at updated_at"
)
NUDGE_COLUMNS = names(
    "id key campaign_key campaign_version person_id slot_day send_at variant stage status"
    " reason response test planned_at sent_at responded_at"
)
QUESTION_COLUMNS = names(
    "id source_key external_id kind url author_name text posted_at via confidence topic_key"
    " topic_score excluded_topics status step version sla_due_at first_response_at claimed_at"
    " answered_at answered_by_id answer_kind closed_reason created_at updated_at"
)
ASSIGNMENT_COLUMNS = names(
    "id question_id person_id kind topic_key reason sent_at outcome outcome_at"
)

T = TypeVar("T")


def progress(message: str) -> None:
    print(f"[digests {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, MiB: VmHWM, the high-water mark of its
    own address space. (ru_maxrss would not do: Linux carries the parent's peak across
    fork and exec, so a child of the generator would start at the generator's size.)"""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f}/{five:.2f}"


def micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def moment(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


# -- the generated organisation ---------------------------------------------------------------


@dataclass
class Table:
    name: str
    columns: list[str]
    rows: list[tuple[Any, ...]]


@dataclass
class Events:
    """Participation events, sorted by time; ids are 1..n in that order."""

    person: np.ndarray
    kind: np.ndarray
    at: np.ndarray
    """Epoch microseconds."""
    ref: np.ndarray
    """The number after the kind's reference prefix."""

    def __len__(self) -> int:
        return int(self.person.size)


@dataclass
class World:
    tables: list[Table]
    events: Events
    leaders: int
    counts: dict[str, int] = field(default_factory=dict)


class Generator:
    """The organisation, its nudges, questions and events, from one seed."""

    def __init__(self, people: int, events: int, weeks: int, seed: int) -> None:
        self.n = people
        self.total_events = events
        self.weeks = weeks
        self.rng = np.random.default_rng(seed)
        self.py = random.Random(seed)
        self.start = REPORTED - timedelta(weeks=weeks)
        self.days = (NOW.date() - self.start).days + 2
        """Days that can hold an event (the last ones only partly: nothing after NOW)."""
        # Local midnight of every day in every zone (and two weeks more), as epoch seconds.
        self.midnight = np.array(
            [
                [
                    datetime.combine(
                        self.start + timedelta(days=d), datetime.min.time(), ZoneInfo(z)
                    )
                    .astimezone(UTC)
                    .timestamp()
                    for d in range(self.days + 14)
                ]
                for z in ZONES
            ],
            dtype=np.float64,
        )
        weekday = np.array([(self.start + timedelta(days=d)).weekday() for d in range(self.days)])
        weights = np.where(weekday < 5, 1.0, np.where(weekday == 5, 0.22, 0.18))
        weights *= 1.015 ** (np.arange(self.days) / 7)
        self.day_weights = weights / weights.sum()

    # -- people and teams -----------------------------------------------------------------

    def organisation(self) -> tuple[Table, Table, Table, int]:
        rng, n = self.rng, self.n
        leaves = max(1, round(n / 10))
        groups = math.ceil(leaves / 10)
        departments = math.ceil(groups / 10)
        divisions = math.ceil(departments / 5)
        # Slots: heads of divisions, departments and groups, then their direct staff, then
        # team members; person ids are a shuffle of slots, as a directory import would give.
        ids = rng.permutation(n) + 1
        slot = 0
        zone = np.zeros(n + 1, dtype=np.int64)
        teams: list[tuple[Any, ...]] = []
        members: list[tuple[int, int, bool, bool]] = []
        leader_ids: set[int] = set()

        def home(division: int) -> int:
            found = DIVISION_HOMES[division % len(DIVISION_HOMES)]
            return found if found >= 0 else len(MAIN_ZONES) + int(rng.integers(len(OTHER_ZONES)))

        def team(key: str, name: str, parent: str | None) -> int:
            teams.append((len(teams) + 1, key, name, parent))
            return len(teams)

        def head(team_id: int, zone_index: int) -> int:
            nonlocal slot
            person = int(ids[slot])
            slot += 1
            zone[person] = zone_index
            members.append((team_id, person, True, True))
            leader_ids.add(person)
            return person

        division_zone: list[int] = []
        upper: dict[tuple[int, ...], int] = {}
        for a in range(divisions):
            division_zone.append(home(a))
            name = DIVISION_NAMES[a % len(DIVISION_NAMES)] + (
                f" {a // len(DIVISION_NAMES) + 1}" if a >= len(DIVISION_NAMES) else ""
            )
            upper[(a,)] = team(f"d{a}", name, None)
            head(upper[(a,)], division_zone[a])
        for b in range(departments):
            a = b * divisions // departments
            upper[(a, b)] = team(f"d{a}.{b}", f"Department {a}.{b}", f"d{a}")
            head(upper[(a, b)], division_zone[a])
        group_heads: list[int] = []
        for c in range(groups):
            b = c * departments // groups
            a = b * divisions // departments
            upper[(a, b, c)] = team(f"d{a}.{b}.{c}", f"Group {a}.{b}.{c}", f"d{a}.{b}")
            group_heads.append(head(upper[(a, b, c)], division_zone[a]))
        # Direct staff of divisions (4) and departments (2).
        for key, team_id in upper.items():
            staff = {1: 4, 2: 2}.get(len(key), 0)
            for _ in range(staff):
                if slot >= n:
                    break
                person = int(ids[slot])
                slot += 1
                zone[person] = division_zone[key[0]]
                members.append((team_id, person, False, True))
        left = n - slot
        if left < 3 * leaves:
            raise SystemExit(f"--people {n}: too few people for {leaves} teams of three")
        weights = rng.lognormal(0.0, 0.5, leaves)
        sizes = 3 + rng.multinomial(left - 3 * leaves, weights / weights.sum())
        for i in range(leaves):
            c = i * groups // leaves
            b = c * departments // groups
            a = b * divisions // departments
            team_id = team(f"d{a}.{b}.{c}.{i}", f"Team {a}.{b}.{c}.{i}", f"d{a}.{b}.{c}")
            own = division_zone[a]
            if own < len(MAIN_ZONES) and rng.random() < 0.08:  # a remote team
                own = len(MAIN_ZONES) + int(rng.integers(len(OTHER_ZONES)))
            cross = rng.random(int(sizes[i])) < 0.15
            elsewhere = rng.integers(len(ZONES), size=int(sizes[i]))
            co_lead = sizes[i] >= 6 and rng.random() < 0.03
            for j in range(int(sizes[i])):
                person = int(ids[slot])
                slot += 1
                leads = j == 0 or (j == 1 and co_lead)
                zone[person] = own if leads or not cross[j] else int(elsewhere[j])
                members.append((team_id, person, bool(leads), True))
                if leads:
                    leader_ids.add(person)
            if rng.random() < 0.02 * groups / leaves:  # ~2 % of group heads lead a team too
                members.append((team_id, group_heads[c], True, False))
        self.zone = zone
        self.leader_ids = leader_ids
        self.person_ids = np.arange(1, n + 1)
        experts = rng.permutation(self.person_ids)[: max(20, n // 20)]
        self.experts: dict[str, list[int]] = {t: [] for t in TOPICS}
        for expert in experts.tolist():
            for topic in self.py.sample(TOPICS, self.py.choice((1, 1, 2))):
                self.experts[topic].append(int(expert))
        self.fallback = [int(p) for p in experts[:5]]
        expert_set = {int(e) for e in experts}
        joined = micros(datetime(2025, 9, 1, tzinfo=UTC))
        people: list[tuple[Any, ...]] = []
        for person in range(1, n + 1):
            first, last = self.py.choice(FIRST), self.py.choice(LAST)
            roles = "leader" if person in leader_ids else "expert" if person in expert_set else ""
            consent = self.py.random() < 0.35
            created = moment(joined + self.py.randrange(0, 86_400 * 60) * 1_000_000)
            people.append(
                (
                    person,
                    f"p{person}",
                    f"{first} {last} {person}",
                    f"p{person}@bench.example.org",
                    ZONES[int(zone[person])],
                    ",".join(filter(None, ["employee", roles])),
                    True,
                    created,
                    created + timedelta(days=3) if consent else None,
                    created,
                    created,
                )
            )
        return (
            Table(
                "people",
                PEOPLE_COLUMNS,
                people,
            ),
            Table("teams", ["id", "key", "name", "parent_key"], teams),
            Table("team_members", ["team_id", "person_id", "is_leader", "is_member"], members),
            len(leader_ids),
        )

    # -- when things happen ---------------------------------------------------------------

    def working_hours(self, people: np.ndarray) -> np.ndarray:
        """An instant (epoch µs) for each person: a local working-day moment before NOW."""
        out = np.empty(people.size, dtype=np.int64)
        todo = np.arange(people.size)
        now = NOW.timestamp()
        while todo.size:
            day = self.rng.choice(self.days, size=todo.size, p=self.day_weights)
            tod = np.clip(self.rng.normal(13.5 * 3600, 2.8 * 3600, todo.size), 0, 86_399.0)
            at = self.midnight[self.zone[people[todo]], day] + tod
            fine = at < now
            out[todo[fine]] = np.round(at[fine] * 1e6).astype(np.int64)
            todo = todo[~fine]
        return out

    # -- nudges ---------------------------------------------------------------------------

    def nudges(self) -> tuple[Table, list[tuple[int, int, int]]]:
        """~8 sent nudges a person; and (person, 'done' time µs, nudge id) for the events."""
        rng, n = self.rng, self.n
        now = NOW.timestamp()
        day_of_week = rng.integers(0, 4, size=n + 1)  # each person's campaign day, Mon–Thu
        person_l: list[np.ndarray] = []
        day_l: list[np.ndarray] = []
        for week in range(self.weeks + 3):  # the weeks, the reported one, this one, next one
            take = self.person_ids[rng.random(n) < 0.85]
            person_l.append(take)
            day_l.append(week * 7 + day_of_week[take])
        person = np.concatenate(person_l)
        day = np.concatenate(day_l)
        send = (
            self.midnight[self.zone[person], day]
            + 10.5 * 3600
            + rng.integers(0, 900, size=person.size)
        )
        sent = send + rng.integers(1, 120, size=person.size)
        skipped = rng.random(person.size) < 0.04
        draw = rng.random(person.size)
        responded = sent + rng.lognormal(math.log(2 * 3600), 1.0, size=person.size)
        order = np.argsort(send, kind="stable")
        rows: list[tuple[Any, ...]] = []
        done: list[tuple[int, int, int]] = []
        for i in order.tolist():
            nudge_id = len(rows) + 1
            p = int(person[i])
            slot_day = self.start + timedelta(days=int(day[i]))
            send_at = moment(round(send[i] * 1e6))
            status, sent_at, response, responded_at, reason = "planned", None, None, None, None
            if send[i] < now and skipped[i]:
                status, reason = "skipped", "away"
            elif send[i] < now:
                status, sent_at = "sent", moment(round(sent[i] * 1e6))
                if responded[i] < now and draw[i] < 0.35:
                    response = "done" if draw[i] < 0.27 else "not_now"
                    responded_at = moment(round(responded[i] * 1e6))
                    if response == "done":
                        done.append((p, round(responded[i] * 1e6), nudge_id))
            planned = send_at - timedelta(days=2)
            rows.append(
                (
                    nudge_id,
                    f"weekly-react:p{p}:{slot_day.isoformat()}",
                    "weekly-react",
                    1,
                    p,
                    slot_day,
                    send_at,
                    "short" if p % 2 else "long",
                    "watch",
                    status,
                    reason,
                    response,
                    False,
                    planned,
                    sent_at,
                    responded_at,
                )
            )
        for t in range(20):  # test sends to the first leader: outside the figures
            at = moment(micros(NOW) - (t + 1) * 3_600_000_000 * 24)
            key = f"test:p1:{t}"
            rows.append(
                (
                    len(rows) + 1,
                    key,
                    "weekly-react",
                    1,
                    1,
                    at.date(),
                    at,
                    "short",
                    "watch",
                    "sent",
                    None,
                    None,
                    True,
                    at,
                    at,
                    None,
                )
            )
        columns = NUDGE_COLUMNS
        return Table("nudges", columns, rows), done

    # -- questions ------------------------------------------------------------------------

    def questions(self) -> tuple[Table, Table, list[tuple[int, int, int, int]]]:
        """Questions and assignments; and (person, kind, µs, question id) for the events."""
        py = self.py
        count = max(1, round(self.n * 0.4))
        first = micros(datetime.combine(self.start, datetime.min.time(), UTC)) - 7 * 86_400_000_000
        last = micros(NOW) - 300_000_000
        created = sorted(py.randrange(first, last) for _ in range(count))
        topic_weights = [1 / (i + 1) for i in range(len(TOPICS))]
        now = micros(NOW)
        hour = 3_600_000_000
        questions: list[tuple[Any, ...]] = []
        assignments: list[tuple[Any, ...]] = []
        events: list[tuple[int, int, int, int]] = []
        for qid, made in enumerate(created, start=1):
            topic = None if py.random() < 0.08 else py.choices(TOPICS, topic_weights)[0]
            pool = self.experts[topic] if topic and self.experts[topic] else self.fallback
            asked = py.sample(pool, min(len(pool), py.choices((1, 2, 3), (0.6, 0.3, 0.1))[0]))
            sent = [made + 30_000_000 + i * 2 * hour for i in range(len(asked))]
            asked_sent = [(p, s) for p, s in zip(asked, sent, strict=True) if s < now]
            if not asked_sent:
                asked_sent = [(asked[0], made + 1)]
            draw = py.random()
            first_response = claimed = answered_at = answered_by = None
            status, answer_kind, closed_at = "routed", None, None
            if draw < 0.80:
                at = asked_sent[-1][1] + int(py.lognormvariate(math.log(40 * 60e6), 1.0))
                if at < now:
                    first_response = answered_at = at
                    status = "answered"
                    if draw < 0.72:
                        answered_by, answer_kind = asked_sent[-1][0], "reported"
                        if py.random() < 0.6:
                            claimed = max(
                                asked_sent[-1][1] + 1, at - py.randrange(5, 30) * 60_000_000
                            )
                    else:
                        answered_by, answer_kind = py.randrange(1, self.n + 1), "staff"
            elif draw < 0.88:
                at = made + py.randrange(24, 72) * hour
                if at < now:
                    status, closed_at = "closed", at
            updated = max(x for x in (made, first_response, closed_at, asked_sent[-1][1]) if x)
            questions.append(
                (
                    qid,
                    "facebook-brand",
                    f"fb:{qid}",
                    "comment",
                    f"https://facebook.example.com/brand/posts/{qid}",
                    "A member of the public",
                    f"Question {qid} about {topic or 'something'}?",
                    moment(made - 60_000_000),
                    "webhook",
                    0.9,
                    topic,
                    0.8 if topic else None,
                    "[]",
                    status,
                    len(asked_sent),
                    len(asked_sent) + (status != "routed"),
                    moment(made + 4 * hour),
                    moment(first_response) if first_response else None,
                    moment(claimed) if claimed else None,
                    moment(answered_at) if answered_at else None,
                    answered_by,
                    answer_kind,
                    "closed: no answer needed" if closed_at else None,
                    moment(made),
                    moment(updated),
                )
            )
            for i, (person, at) in enumerate(asked_sent):
                final = i == len(asked_sent) - 1
                outcome = "answered" if final and answered_by == person else "open"
                if not final:
                    outcome = "declined" if py.random() < 0.5 else "timed_out"
                assignments.append(
                    (
                        len(assignments) + 1,
                        qid,
                        person,
                        "expert",
                        topic,
                        "expert",
                        moment(at),
                        outcome,
                        None if outcome == "open" else moment(min(now - 1, at + hour)),
                    )
                )
                events.append((person, K["question_routed"], at, qid))
                if outcome == "declined" and at + hour < now:
                    events.append((person, K["question_declined"], at + hour, qid))
            if py.random() < 0.05:  # also posted in the topic's channel
                assignments.append(
                    (
                        len(assignments) + 1,
                        qid,
                        None,
                        "channel",
                        topic,
                        "no expert free",
                        moment(asked_sent[-1][1] + 1),
                        "open",
                        None,
                    )
                )
            if answered_by is not None and first_response is not None:
                if claimed is not None:
                    events.append((answered_by, K["question_claimed"], claimed, qid))
                events.append((answered_by, K["question_answered"], first_response, qid))
                if py.random() < 0.4 and first_response + hour < now:
                    events.append((answered_by, K["answer_verified"], first_response + hour, qid))
        question_columns = QUESTION_COLUMNS
        assignment_columns = ASSIGNMENT_COLUMNS
        return (
            Table("questions", question_columns, questions),
            Table("assignments", assignment_columns, assignments),
            events,
        )

    # -- participation events -------------------------------------------------------------

    def participation(
        self, done: list[tuple[int, int, int]], desk: list[tuple[int, int, int, int]]
    ) -> Events:
        rng, n = self.rng, self.n
        person_l = [np.array([d[0] for d in done], dtype=np.int64)]
        kind_l = [np.full(len(done), K["nudge_done"], dtype=np.int8)]
        at_l = [np.array([d[1] for d in done], dtype=np.int64)]
        ref_l = [np.array([d[2] for d in done], dtype=np.int64)]
        person_l.append(np.array([d[0] for d in desk], dtype=np.int64))
        kind_l.append(np.array([d[1] for d in desk], dtype=np.int8))
        at_l.append(np.array([d[2] for d in desk], dtype=np.int64))
        ref_l.append(np.array([d[3] for d in desk], dtype=np.int64))
        free = max(0, self.total_events - len(done) - len(desk))
        activity = rng.lognormal(0.0, 1.25, n) * (rng.random(n) >= 0.2)
        shares = {k: s for k, (s, _) in FREE_KINDS.items()}
        scale = sum(shares.values())
        counts = {k: round(free * s / scale) for k, s in shares.items()}
        counts["link_opened"] += free - sum(counts.values())
        for kind, (_, who) in FREE_KINDS.items():
            weight = activity * (rng.random(n) < who)
            chosen = rng.choice(self.person_ids, size=counts[kind], p=weight / weight.sum())
            person_l.append(chosen)
            kind_l.append(np.full(chosen.size, K[kind], dtype=np.int8))
            at_l.append(self.working_hours(chosen))
            ref_l.append(np.full(chosen.size, -1, dtype=np.int64))
        person = np.concatenate(person_l)
        kind = np.concatenate(kind_l)
        at = np.concatenate(at_l)
        ref = np.concatenate(ref_l)
        order = np.lexsort((person, at))
        person, kind, at, ref = person[order], kind[order], at[order], ref[order]
        mine = ref < 0
        ref[mine] = np.flatnonzero(mine) + 1  # the event's own id: unique per person and kind
        return Events(person, kind, at, ref)

    def build(self) -> World:
        people, teams, members, leaders = self.organisation()
        progress(f"organisation: {self.n:,} people, {len(teams.rows):,} teams, {leaders:,} leaders")
        nudges, done = self.nudges()
        questions, assignments, desk = self.questions()
        progress(
            f"{len(nudges.rows):,} nudges ({len(done):,} done), {len(questions.rows):,} questions,"
            f" {len(assignments.rows):,} assignments"
        )
        events = self.participation(done, desk)
        kinds = np.bincount(events.kind, minlength=len(KINDS))
        counts = {name: int(kinds[i]) for i, name in enumerate(KINDS)}
        statuses: dict[str, int] = {}
        for row in nudges.rows:
            statuses[f"nudges {row[9]}"] = statuses.get(f"nudges {row[9]}", 0) + 1
        return World(
            [people, teams, members, nudges, questions, assignments],
            events,
            leaders,
            {**counts, **statuses},
        )


def event_rows(events: Events, start: int, stop: int, at: Sequence[Any]) -> list[Any]:
    """Rows (id, person_id, kind, at, reference, details) of events [start, stop), with
    their times as given."""
    kinds = [KINDS[k] for k in events.kind[start:stop].tolist()]
    return [
        (i, p, kind, when, PREFIX[kind] + str(ref), None)
        for i, p, kind, when, ref in zip(
            range(start + 1, stop + 1),
            events.person[start:stop].tolist(),
            kinds,
            at,
            events.ref[start:stop].tolist(),
            strict=True,
        )
    ]


EVENT_COLUMNS = ["id", "person_id", "kind", "at", "reference", "details"]
CHUNK = 250_000


# -- loading: PostgreSQL ----------------------------------------------------------------------


@dataclass(frozen=True)
class Scratch:
    """The scratch database `name` on the PostgreSQL server that `server` reaches."""

    server: str
    name: str

    @property
    def url(self) -> str:
        base, _, _ = self.server.rpartition("/")
        return f"{base}/{self.name}"


async def postgres_marker(pg: Scratch) -> str | None:
    import asyncpg

    conn = await asyncpg.connect(pg.server)
    try:
        return await conn.fetchval(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
            pg.name,
        )
    finally:
        await conn.close()


async def postgres_drop(pg: Scratch) -> None:
    import asyncpg

    conn = await asyncpg.connect(pg.server)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {pg.name} WITH (FORCE)")
    finally:
        await conn.close()


async def postgres_create(pg: Scratch) -> None:
    import asyncpg

    await postgres_drop(pg)
    conn = await asyncpg.connect(pg.server)
    try:
        await conn.execute(f"CREATE DATABASE {pg.name}")
    finally:
        await conn.close()


async def postgres_load(pg: Scratch, world: World, marker: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(pg.url)
    try:
        await conn.execute("SET maintenance_work_mem = '512MB'")
        for table in world.tables:
            again = await _set_aside(conn, table.name) if table.name == "nudges" else []
            await conn.copy_records_to_table(table.name, records=table.rows, columns=table.columns)
            for sql in again:
                await conn.execute(sql)
            progress(f"postgresql: {table.name} ({len(table.rows):,} rows)")
        again = await _set_aside(conn, "participation_events")
        events = world.events
        for start in range(0, len(events), CHUNK):
            stop = min(len(events), start + CHUNK)
            at = [EPOCH + timedelta(microseconds=us) for us in events.at[start:stop].tolist()]
            rows = event_rows(events, start, stop, at)
            await conn.copy_records_to_table(
                "participation_events", records=rows, columns=EVENT_COLUMNS
            )
            if start // CHUNK % 4 == 3:
                progress(f"postgresql: participation_events {start + len(rows):,}")
        progress("postgresql: indexes and constraints of participation_events")
        for sql in again:
            await conn.execute(sql)
        for table in [*(t.name for t in world.tables if "id" in t.columns), "participation_events"]:
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" (SELECT max(id) FROM {table}))"
            )
        await conn.execute(f"COMMENT ON DATABASE {pg.name} IS '{marker}'")
    finally:
        await conn.close()


async def _set_aside(conn: Any, table: str) -> list[str]:
    """Drop the table's secondary indexes, unique and foreign-key constraints; the SQL that
    makes them again, from their own definitions."""
    constraints = await conn.fetch(
        "SELECT conname, contype, pg_get_constraintdef(oid) AS definition FROM pg_constraint"
        " WHERE conrelid = $1::regclass AND contype IN ('u', 'f') ORDER BY contype DESC",
        table,
    )
    indexes = await conn.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
        " AND tablename = $1 AND indexname NOT IN"
        " (SELECT conname FROM pg_constraint WHERE conrelid = $1::regclass)",
        table,
    )
    for row in constraints:
        await conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT {row['conname']}")
    for row in indexes:
        await conn.execute(f"DROP INDEX {row['indexname']}")
    return [row["indexdef"] for row in indexes] + [
        f"ALTER TABLE {table} ADD CONSTRAINT {row['conname']} {row['definition']}"
        for row in constraints
    ]


async def postgres_vacuum(pg: Scratch) -> float:
    import asyncpg

    conn = await asyncpg.connect(pg.url)
    try:
        began = time.perf_counter()
        await conn.execute("VACUUM ANALYZE")
        return time.perf_counter() - began
    finally:
        await conn.close()


# -- loading: SQLite --------------------------------------------------------------------------


def sqlite_time(us: int) -> str:
    """As SQLAlchemy stores a UTC datetime in SQLite: 'YYYY-MM-DD HH:MM:SS.ffffff'."""
    return moment(us).strftime("%Y-%m-%d %H:%M:%S.%f")


def sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value


def check_sqlite_format() -> None:
    """The strings written here must be the ones SQLAlchemy binds, or the week bounds compare
    wrongly: check against its own processors."""
    from sqlalchemy import Date, DateTime
    from sqlalchemy.dialects import sqlite

    dialect = sqlite.dialect()
    when = datetime(2026, 3, 9, 0, 0, 0, 120, tzinfo=UTC)
    to_text = DateTime(timezone=True).dialect_impl(dialect).bind_processor(dialect)
    day_text = Date().dialect_impl(dialect).bind_processor(dialect)
    assert to_text is not None and day_text is not None
    assert to_text(when) == sqlite_value(when) == sqlite_time(micros(when)), to_text(when)
    assert day_text(when.date()) == sqlite_value(when.date())


def sqlite_load(path: Path, world: World, marker: str) -> None:
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=OFF")
        con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA cache_size=-1000000")
        con.execute("BEGIN")
        for table in world.tables:
            again = _sqlite_set_aside(con, table.name) if table.name == "nudges" else []
            marks = ", ".join("?" for _ in table.columns)
            con.executemany(
                f"INSERT INTO {table.name} ({', '.join(table.columns)}) VALUES ({marks})",
                ([sqlite_value(v) for v in row] for row in table.rows),
            )
            for sql in again:
                con.execute(sql)
            progress(f"sqlite: {table.name} ({len(table.rows):,} rows)")
        again = _sqlite_set_aside(con, "participation_events")
        events = world.events
        insert = (
            f"INSERT INTO participation_events ({', '.join(EVENT_COLUMNS)}) VALUES (?,?,?,?,?,?)"
        )
        for start in range(0, len(events), CHUNK):
            stop = min(len(events), start + CHUNK)
            at = np.datetime_as_string(events.at[start:stop].astype("datetime64[us]"), unit="us")
            texts = [t.replace("T", " ") for t in at.tolist()]
            con.executemany(insert, event_rows(events, start, stop, texts))
            if start // CHUNK % 4 == 3:
                progress(f"sqlite: participation_events {stop:,}")
        progress("sqlite: indexes of participation_events")
        for sql in again:
            con.execute(sql)
        con.execute("COMMIT")
        con.execute("PRAGMA journal_mode=WAL")
    finally:
        con.close()
    Path(f"{path}.meta").write_text(marker, encoding="utf-8")


def _sqlite_set_aside(con: sqlite3.Connection, table: str) -> list[str]:
    found = con.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?"
        " AND sql IS NOT NULL",
        (table,),
    ).fetchall()
    for name, _ in found:
        con.execute(f"DROP INDEX {name}")
    return [sql for _, sql in found]


def sqlite_analyze(path: Path) -> float:
    con = sqlite3.connect(path, isolation_level=None)
    try:
        began = time.perf_counter()
        con.execute("ANALYZE")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return time.perf_counter() - began
    finally:
        con.close()


def sqlite_drop(path: Path) -> None:
    for name in (str(path), f"{path}-wal", f"{path}-shm", f"{path}.meta"):
        Path(name).unlink(missing_ok=True)


# -- measuring (in a fresh process) -----------------------------------------------------------


READS = {
    "read_ledger": "ledger",
    "read_segments": "ledger",
    "read_questions": "questions",
    "narrate": "narrate",
}
"""What the service module calls, wrapped to time it, and under which name."""


class Stopwatch:
    """Total seconds spent in wrapped coroutine functions, by name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.each: dict[str, list[float]] = {}
        self.rows = 0
        """People in the ledgers read (a Ledger's `ids`)."""

    def wrap(self, name: str, function: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        async def timed(*args: Any, **kwargs: Any) -> T:
            began = time.perf_counter()
            try:
                result = await function(*args, **kwargs)
                if isinstance(getattr(result, "ids", None), np.ndarray):  # a Ledger
                    self.rows += int(result.ids.size)
                elif isinstance(getattr(result, "rows", None), np.ndarray):  # Segments
                    self.rows += int(np.unique(result.rows[:, 0]).size)
                return result
            finally:
                spent = time.perf_counter() - began
                self.seconds[name] = self.seconds.get(name, 0.0) + spent
                self.each.setdefault(name, []).append(spent)

        return timed

    def wrap_sync(self, name: str, function: Callable[..., T]) -> Callable[..., T]:
        def timed(*args: Any, **kwargs: Any) -> T:
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent = time.perf_counter() - began
                self.seconds[name] = self.seconds.get(name, 0.0) + spent
                self.each.setdefault(name, []).append(spent)

        return timed

    def reset(self) -> None:
        self.seconds.clear()
        self.each.clear()
        self.rows = 0


async def measure(url: str, args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import select

    import bot.digests.service as service_module
    from bot.config.organisation import parse_organisation
    from bot.core.clock import FrozenClock
    from bot.digests import chart
    from bot.digests import ledger as ledger_module
    from bot.digests.compute import Period
    from bot.digests.ledger import _events_query, _nudges_query
    from bot.digests.scope import Member
    from bot.digests.service import DigestService
    from bot.storage.database import Database
    from bot.storage.models import DigestRow

    watch = Stopwatch()
    # The reads as the service module names them (the product reads participation per
    # period with read_ledger, or for every period at once with read_segments).
    for name, label in READS.items():
        if hasattr(service_module, name):
            setattr(service_module, name, watch.wrap(label, getattr(service_module, name)))
    segments_class = getattr(ledger_module, "Segments", None)
    if segments_class is not None and hasattr(segments_class, "ledger"):
        segments_class.ledger = watch.wrap_sync("build", segments_class.ledger)
    out: dict[str, Any] = {"rss_start_mb": peak_rss_mb()}
    db = Database(url)
    org = parse_organisation(ORG_YAML)
    service = DigestService(db, FrozenClock(NOW), org)
    await db.ping()
    digests: list[Any] = []
    periods: list[Any] = []

    async def full(now: datetime, zone: str | None) -> dict[str, Any]:
        """What run_due does up to the outbox, for every due leader (or one zone's)."""
        nonlocal digests, periods
        watch.reset()
        cpu = time.process_time()
        began = time.perf_counter()
        async with db.transaction() as session:
            structure = await service.structure(session)
            loaded = time.perf_counter()
            wanted = [
                (m, w)
                for m in structure.leaders()
                if (zone is None or m.zone == zone) and (w := service.due_week(m, now))
            ]
            have = {
                (leader_id, week)
                for leader_id, week in await session.execute(
                    select(DigestRow.leader_id, DigestRow.week).where(
                        DigestRow.week.in_({w.label for _, w in wanted})
                    )
                )
            }
        checked = time.perf_counter()
        work = [
            (structure.scope_of(m), Period.complete(w))
            for m, w in wanted
            if (m.id, w.label) not in have
        ]
        scoped = time.perf_counter()
        digests = await service.digests(work, structure)
        done = time.perf_counter()
        periods = list({p: None for _, p in work})
        ledger = watch.seconds.get("ledger", 0.0)
        questions = watch.seconds.get("questions", 0.0)
        narrate = watch.seconds.get("narrate", 0.0)
        compute = done - scoped - narrate
        return {
            "total": done - began,
            "cpu": time.process_time() - cpu,
            "structure": loaded - began,
            "due": checked - loaded,
            "scopes": scoped - checked,
            "compute": compute,
            "ledger": ledger,
            "ledger_each": watch.each.get("ledger", []),
            "question_reads": len(watch.each.get("questions", [])),
            "questions": questions,
            "build": watch.seconds.get("build", 0.0),
            "per_scope": compute - ledger - questions - watch.seconds.get("build", 0.0),
            "narrate": narrate,
            "leaders": len(work),
            "periods": len({p for _, p in work}),
            "zones": len({p.week.zone for _, p in work}),
            "bounds": len({tuple(p.bounds) for _, p in work}),
            "scope_people": sum(len(s.people) for s, _ in work),
            "needed_people": needed(work),
            "ledger_people": watch.rows,
        }

    def needed(work: list[tuple[Any, Any]]) -> int:
        """People whose events the scopes need, summed over the periods."""
        found: dict[Any, set[int]] = {}
        for scope, period in work:
            found.setdefault(period, set()).update(scope.people)
        return sum(len(p) for p in found.values())

    runs: list[dict[str, Any]] = []
    while len(runs) < args.repeat and not (runs and runs[-1]["total"] > LONG_RUN_S):
        runs.append(await full(NOW, None))
        all_periods = periods
        progress(f"  all leaders, run {len(runs)}: {runs[-1]['total']:.2f} s (load {load()})")
    out["runs"] = runs
    out["rss_after_compute_mb"] = peak_rss_mb()
    zone_runs: list[dict[str, Any]] = []
    while len(zone_runs) < args.repeat and not (zone_runs and zone_runs[-1]["total"] > LONG_RUN_S):
        zone_runs.append(await full(LONDON_MONDAY, "Europe/London"))
        progress(f"  London's Monday, run {len(zone_runs)}: {zone_runs[-1]['total']:.2f} s")
    out["zone_runs"] = zone_runs
    out["rss_after_zone_mb"] = peak_rss_mb()

    # (c) charts: the first in the process apart, then `--charts` digests big to small.
    ordered = sorted(digests or [], key=lambda d: -d.figures.people)
    picks = [ordered[round(i)] for i in np.linspace(0, len(ordered) - 1, args.charts)]
    began = time.perf_counter()
    chart.render(picks[0].figures)
    first_chart = time.perf_counter() - began
    slack, teams, sizes = [], [], []
    for digest in picks:
        began = time.perf_counter()
        chart.render(digest.figures)
        slack.append(time.perf_counter() - began)
        began = time.perf_counter()
        png = chart.render(digest.figures, compact=True)
        teams.append(time.perf_counter() - began)
        sizes.append(len(png))
    out["charts"] = {
        "first": first_chart,
        "slack": slack,
        "teams": teams,
        "teams_bytes_max": max(sizes),
        "people": [d.figures.people for d in picks],
    }
    out["rss_after_charts_mb"] = peak_rss_mb()

    # (d) this week so far, as so_far does it (without the outbox).
    async def so_far(pick: Callable[[dict[int, Member], dict[int, list[str]]], Member]) -> Any:
        watch.reset()
        began = time.perf_counter()
        async with db.transaction() as session:
            structure = await service.structure(session)
        loaded = time.perf_counter()
        member = pick(structure.people, structure.leads)
        scope = structure.scope_of(member)
        scoped = time.perf_counter()
        [digest] = await service.digests([(scope, Period.until(NOW, member.zone))], structure)
        computed = time.perf_counter()
        chart.render(digest.figures)
        drawn = time.perf_counter()
        return {
            "leader": member.key,
            "zone": member.zone,
            "people": len(scope.people),
            "total": drawn - began,
            "structure": loaded - began,
            "scope": scoped - loaded,
            "digest": computed - scoped,
            "ledger": watch.seconds.get("ledger", 0.0),
            "questions": watch.seconds.get("questions", 0.0),
            "chart": drawn - computed,
        }

    def biggest(people: dict[int, Member], leads: dict[int, list[str]]) -> Member:
        return people[min(leads, key=lambda i: (min(k.count(".") for k in leads[i]), i))]

    def team_leader(people: dict[int, Member], leads: dict[int, list[str]]) -> Member:
        return people[min(i for i, keys in leads.items() if all(k.count(".") == 3 for k in keys))]

    out["so_far"] = [await so_far(biggest), await so_far(team_leader)]

    # The run's participation read, split: the events query, the nudges query, the arrays.
    # Per period (read_ledger: London's) or for every period's edges (read_segments).
    period = Period.complete(zone_week("Europe/London"))
    segments = getattr(ledger_module, "read_segments", None)
    span = sorted({b for p in all_periods for b in p.bounds}) if segments else period.bounds
    async with db.transaction() as session:
        began = time.perf_counter()
        rows = (await session.execute(_events_query(span))).all()
        events_s = time.perf_counter() - began
        began = time.perf_counter()
        array = np.array(rows, dtype=np.int64)
        to_array_s = time.perf_counter() - began
        began = time.perf_counter()
        again = np.array([tuple(row) for row in rows], dtype=np.int64)
        tuples_s = time.perf_counter() - began
        assert np.array_equal(array, again)
        began = time.perf_counter()
        nudge_rows = (await session.execute(_nudges_query(span))).all()
        nudges_s = time.perf_counter() - began
        began = time.perf_counter()
        if segments:
            ledger = (await segments(session, span)).ledger(period.bounds)
        else:
            ledger = await ledger_module.read_ledger(session, period.bounds)
        ledger_s = time.perf_counter() - began
    out["split"] = {
        "span": "every period's edges" if segments else "London's weeks",
        "edges": len(span),
        "events_query": events_s,
        "events_rows": len(rows),
        "events_array": to_array_s,
        "events_array_tuples": tuples_s,
        "nudges_query": nudges_s,
        "nudges_rows": len(nudge_rows),
        "read_ledger": ledger_s,
        "ledger_people": int(ledger.ids.size),
        "ledger_mb": ledger.table.nbytes / 2**20,
    }
    del rows, array, again, nudge_rows, ledger

    # The plans of the read the run makes (printed with --explain or when (a) misses).
    async with db.transaction() as session:
        out["plans"] = await plans(session, span)
    if args.experiments:
        async with db.transaction() as session:
            samples = await samples_of(session, service)
            out["experiments"] = await experiments(session, period.bounds, _events_query, samples)
        async with db.transaction() as session:
            out["one_read"] = await one_read(session, all_periods, period)
    await db.close()
    out["rss_end_mb"] = peak_rss_mb()
    return out


def zone_week(zone: str) -> Any:
    from bot.digests.weeks import week_of_day

    return week_of_day(REPORTED, zone)


def literal(query: Any, dialect_name: str) -> str:
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql.dialect() if dialect_name == "postgresql" else sqlite.dialect()
    return str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


async def driver_sql(session: Any, sql: str) -> list[Any]:
    connection = await session.connection()
    return list((await connection.exec_driver_sql(sql)).all())


async def plans(session: Any, bounds: list[datetime]) -> dict[str, str]:
    from bot.digests.ledger import _events_query, _nudges_query
    from bot.storage.database import dialect_of

    dialect = dialect_of(session)
    explain = "EXPLAIN (ANALYZE, BUFFERS) " if dialect == "postgresql" else "EXPLAIN QUERY PLAN "
    found = {}
    for name, query in (("events", _events_query(bounds)), ("nudges", _nudges_query(bounds))):
        sql = literal(query, dialect)
        rows = await driver_sql(session, explain + sql)
        if dialect == "postgresql":  # long CASEs shortened: the plan's shape is what counts
            found[name] = "\n".join(r[0] if len(r[0]) < 200 else r[0][:200] + " …" for r in rows)
        else:
            found[name] = "\n".join(f"{r[0]:>3} {r[1]:>3} {r[3]}" for r in rows)
        found[f"{name}_sql"] = sql
    return found


async def samples_of(session: Any, service: Any) -> dict[str, tuple[Any, list[int]]]:
    """(period, people) to restrict the events query to: the scopes of all the leaders in a
    small zone and in the largest, and one small team's scope 'so far' this week."""
    from bot.digests.compute import Period

    structure = await service.structure(session)
    found: dict[str, tuple[Any, list[int]]] = {}
    for zone in ("Asia/Tokyo", "Europe/London"):
        people: set[int] = set()
        for member in structure.leaders():
            if member.zone == zone:
                people |= structure.scope_of(member).people
        if people:
            name = f"{zone} leaders' scopes"
            found[name] = (Period.complete(zone_week(zone)), sorted(people))
    small = min(structure.leaders(), key=lambda m: (len(structure.scope_of(m).people), m.id))
    found["one team, this week so far"] = (
        Period.until(NOW, small.zone),
        sorted(structure.scope_of(small).people),
    )
    return found


async def experiments(
    session: Any,
    bounds: list[datetime],
    events_query: Callable[[list[datetime]], Any],
    samples: dict[str, tuple[Any, list[int]]],
) -> dict[str, Any]:
    """Alternatives to the ledger's events query (SQL only): the time the database takes
    (`SELECT count(*)` over the query, nothing sent back) and, for some, the time to fetch
    every row through SQLAlchemy)."""
    from bot.storage.database import dialect_of

    dialect = dialect_of(session)
    base = literal(events_query(bounds), dialect)
    found: dict[str, Any] = {}

    async def timed(name: str, sql: str, fetch: bool = False, before: Sequence[str] = ()) -> None:
        for statement in before:
            await driver_sql_nofetch(session, statement)
        began = time.perf_counter()
        [(rows,)] = await driver_sql(session, f"SELECT count(*) FROM ({sql}) AS counted")
        found[name] = {"server": time.perf_counter() - began, "rows": int(rows)}
        if fetch:
            began = time.perf_counter()
            await driver_sql(session, sql)
            found[name]["fetch"] = time.perf_counter() - began
        shown = f", fetched in {found[name]['fetch']:.2f} s" if fetch else ""
        progress(f"  experiment {name}: {found[name]['server']:.2f} s, {rows:,} rows{shown}")

    await timed("as is", base, fetch=True)
    if dialect == "postgresql":
        await timed("as is, work_mem 64MB", base, before=["SET LOCAL work_mem = '64MB'"])
        await driver_sql_nofetch(session, "SET LOCAL work_mem = '4MB'")
        off = "SET LOCAL max_parallel_workers_per_gather = 0"
        await timed("as is, no parallel workers", base, before=[off])
        await driver_sql_nofetch(session, "SET LOCAL max_parallel_workers_per_gather = 2")
    filtered = re.sub(
        r"sum\(CASE WHEN \(anon_1\.kind = ('[a-z_]+')\) THEN 1 ELSE 0 END\)",
        r"count(*) FILTER (WHERE anon_1.kind = \1)",
        base,
    )
    await timed("count(*) FILTER (WHERE kind = …) instead of sum(CASE …)", filtered)
    by_kind = base[: base.index("sum(")] + "anon_1.kind, count(*) " + base[base.index("\nFROM (") :]
    by_kind = by_kind.replace("GROUP BY anon_1.person_id, anon_1.week", "GROUP BY 1, 2, 3")
    await timed("rows per (person, week, kind), pivoted by the caller", by_kind, fetch=True)
    # Only the people in some scopes: every period of a run needs only its leaders' people.
    for name, (period, people) in samples.items():
        query = literal(events_query(period.bounds), dialect)
        only = query.replace(
            "FROM participation_events \nWHERE ",
            "FROM participation_events \nWHERE participation_events.person_id IN"
            f" ({','.join(map(str, people))}) AND ",
        )
        assert only != query, "the events query changed shape"
        await timed(f"only the {len(people):,} people of {name}", only, True)
    return found


async def one_read(session: Any, periods: list[Any], check: Any) -> dict[str, Any]:
    """Every period's events in one read: counts per person and elementary interval (the
    spans between consecutive week bounds of all the periods), then each period's weeks as
    sums of intervals in numpy. Checked against the events query for `check`."""
    from bot.digests.ledger import EVENT_COLUMNS, _events_query
    from bot.storage.database import dialect_of

    dialect = dialect_of(session)
    edges = sorted({b for p in [*periods, check] for b in p.bounds})
    counts = ", ".join(f"count(*) FILTER (WHERE kind = '{k}')" for k in EVENT_COLUMNS)
    kinds = ", ".join(f"'{k}'" for k in EVENT_COLUMNS)
    window = (
        f"at >= {stamp(edges[0], dialect)} AND at < {stamp(edges[-1], dialect)}"
        f" AND kind IN ({kinds})"
    )
    if dialect == "postgresql":
        listed = ", ".join(stamp(e, dialect) for e in edges)
        slot = f"width_bucket(at, ARRAY[{listed}]::timestamptz[])"
    else:
        slot = bisect_sql("at", [stamp(e, dialect) for e in edges], 0, len(edges) - 1)
    sql = (
        f"SELECT person_id, {slot} AS slot, {counts} FROM participation_events"
        f" WHERE {window} GROUP BY 1, 2"
    )
    began = time.perf_counter()
    rows = await driver_sql(session, sql)
    fetched = time.perf_counter() - began
    table = np.array([tuple(r) for r in rows], dtype=np.int64)
    arrays = time.perf_counter() - began
    starts = np.array([e.timestamp() for e in edges])

    people, person_row = np.unique(table[:, 0], return_inverse=True)

    def ledger_of(period: Any) -> np.ndarray:
        """(people, weeks, kinds) counts of one period, as read_ledger's table holds them."""
        bounds = np.array([b.timestamp() for b in period.bounds])
        week = np.searchsorted(bounds, starts, side="right") - 1
        week = np.where((starts >= bounds[-1]) | (week < 0), -1, week)
        weeks = week[table[:, 1] - 1]
        keep = weeks >= 0
        cell = person_row[keep] * (len(bounds) - 1) + weeks[keep]
        size = people.size * (len(bounds) - 1)
        out = np.zeros((size, table.shape[1] - 2), dtype=np.int32)
        for column in range(table.shape[1] - 2):
            out[:, column] = np.bincount(cell, weights=table[keep, 2 + column], minlength=size)
        return out.reshape(people.size, len(bounds) - 1, -1)

    for period in periods:
        ledger_of(period)
    built = time.perf_counter() - began
    cube = ledger_of(check)
    theirs = np.array(
        [tuple(r) for r in (await session.execute(_events_query(check.bounds))).all()],
        dtype=np.int64,
    )
    theirs = theirs[np.lexsort((theirs[:, 1], theirs[:, 0]))]
    # Rows of nothing but zeros (people with only other kinds of events) change no figure.
    theirs = theirs[theirs[:, 2:].any(axis=1)]
    person, week = np.nonzero(cube.any(axis=2))
    mine = np.column_stack([people[person], week, cube[person, week]])
    same = bool(mine.shape == theirs.shape and np.array_equal(mine, theirs))
    progress(
        f"  one read for {len(periods)} periods: {fetched:.2f} s fetch, {len(rows):,} rows,"
        f" {built:.2f} s with every ledger; same as the events query: {same}"
    )
    return {
        "periods": len(periods),
        "edges": len(edges),
        "rows": len(rows),
        "fetch": fetched,
        "arrays": arrays,
        "total": built,
        "same": same,
        "sql_head": sql[:300],
    }


def stamp(moment: datetime, dialect: str) -> str:
    if dialect == "postgresql":
        return f"'{moment.isoformat()}'"
    return f"'{moment.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S.%f')}'"


def bisect_sql(column: str, edges: list[str], lo: int, hi: int) -> str:
    """SQL for the number of `edges` ≤ column, for a column known to be in [edges[lo],
    edges[hi]): a binary search of CASEs (SQLite has no width_bucket)."""
    if hi - lo <= 1:
        return str(lo + 1)
    mid = (lo + hi) // 2
    below = bisect_sql(column, edges, lo, mid)
    above = bisect_sql(column, edges, mid, hi)
    return f"CASE WHEN {column} < {edges[mid]} THEN {below} ELSE {above} END"


async def driver_sql_nofetch(session: Any, sql: str) -> None:
    connection = await session.connection()
    await connection.exec_driver_sql(sql)


def child_main(args: argparse.Namespace) -> int:
    result = asyncio.run(measure(args.child, args))
    print(json.dumps(result))
    return 0


# -- the parent: generate, measure in a child, report -----------------------------------------


def marker_of(args: argparse.Namespace) -> str:
    sizes = f"people={args.people} events={args.events} weeks={args.weeks} seed={args.seed}"
    return f"bench-digests {sizes}"


class Lazy:
    """The generated rows, built once for both backends and only when needed."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.world: World | None = None
        self.seconds = 0.0

    def get(self) -> World:
        if self.world is None:
            began = time.perf_counter()
            a = self.args
            self.world = Generator(a.people, a.events, a.weeks, a.seed).build()
            self.seconds = time.perf_counter() - began
            progress(f"generated in {self.seconds:.1f} s: {len(self.world.events):,} events")
        return self.world


def prepare(backend: str, args: argparse.Namespace, lazy: Lazy) -> dict[str, Any]:
    """The scratch database, generated (or reused with --keep); its URL and timings."""
    from bot.storage.migrate import upgrade

    marker = marker_of(args)
    info: dict[str, Any] = {"reused": False}
    if backend == "postgresql":
        pg = Scratch(args.postgres, args.scratch)
        url = pg.url
        if args.keep and asyncio.run(postgres_marker(pg)) == marker:
            info["reused"] = True
        else:
            world = lazy.get()
            began = time.perf_counter()
            asyncio.run(postgres_create(pg))
            upgrade(url)
            asyncio.run(postgres_load(pg, world, marker))
            info["load_s"] = time.perf_counter() - began
        progress("postgresql: VACUUM ANALYZE")
        info["analyze_s"] = asyncio.run(postgres_vacuum(pg))
    else:
        path: Path = args.sqlite
        url = f"sqlite:///{path}"
        meta = Path(f"{path}.meta")
        if args.keep and path.exists() and meta.exists() and meta.read_text() == marker:
            info["reused"] = True
        else:
            check_sqlite_format()
            world = lazy.get()
            began = time.perf_counter()
            sqlite_drop(path)
            upgrade(url)
            sqlite_load(path, world, marker)
            info["load_s"] = time.perf_counter() - began
            progress("sqlite: ANALYZE")
            info["analyze_s"] = sqlite_analyze(path)
    info["url"] = url
    info["size_mb"] = database_size_mb(backend, args)
    return info


def database_size_mb(backend: str, args: argparse.Namespace) -> float:
    if backend == "sqlite":
        return float(args.sqlite.stat().st_size) / 2**20

    async def size() -> float:
        import asyncpg

        conn = await asyncpg.connect(Scratch(args.postgres, args.scratch).url)
        try:
            return float(await conn.fetchval("SELECT pg_database_size(current_database())")) / 2**20
        finally:
            await conn.close()

    return asyncio.run(size())


def run_child(url: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        url,
        "--repeat",
        str(args.repeat),
        "--charts",
        str(args.charts),
    ]
    command += ["--explain"] * args.explain + ["--experiments"] * args.experiments
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(backend: str, args: argparse.Namespace, info: dict[str, Any], r: dict[str, Any]) -> str:
    runs = r["runs"]
    best = min(runs, key=lambda x: x["total"])
    zone_best = min(r["zone_runs"], key=lambda x: x["total"])
    target = TARGETS[backend]
    charts = r["charts"]
    slack, teams = charts["slack"], charts["teams"]
    chart_max = max(max(slack), max(teams))
    lines = [
        f"## {backend}: {args.people:,} people, {args.events:,} events over {args.weeks} weeks"
        f" + the reported week (2026-W11)",
        "",
        f"database: {'reused' if info['reused'] else 'generated'}"
        + (f", rows generated in {info['gen_s']:.1f} s" if info.get("gen_s") else "")
        + (f", loaded in {info['load_s']:.1f} s" if "load_s" in info else "")
        + (
            f", {'VACUUM ' if backend == 'postgresql' else ''}ANALYZE {info['analyze_s']:.1f} s"
            if "analyze_s" in info
            else ", ANALYZEd when generated"
        )
        + f", {info['size_mb']:,.0f} MiB on disk",
        f"load average (1/5 min): before {info['load_before']}, after {info['load_after']}"
        f" ({os.cpu_count()} cores)",
        "",
        f"{'figure':<58} {'value':>12}  {'target':>10}  verdict",
        f"{'-' * 58} {'-' * 12}  {'-' * 10}  -------",
    ]

    def row(name: str, value: str, goal: str = "", ok: bool | None = None) -> None:
        lines.append(
            f"{name:<58} {value:>12}  {goal:>10}  {'' if ok is None else verdict(ok)}".rstrip()
        )

    row(
        f"(a) all {best['leaders']:,} leaders' digests, best of {len(runs)} run(s)",
        f"{best['total']:.2f} s",
        f"≤ {target:g} s",
        best["total"] <= target,
    )
    row(
        f"    periods read: {best['periods']} ({best['zones']} zones,"
        f" {best['bounds']} distinct week bounds)",
        "",
    )
    row(
        f"    people read: {best['ledger_people']:,}; in the periods' scopes:"
        f" {best['needed_people']:,}",
        "",
    )
    row("    load_structure", f"{best['structure']:.2f} s")
    row("    due_week + stored-digest check", f"{best['due']:.2f} s")
    row(f"    scope_of × {best['leaders']:,}", f"{best['scopes']:.2f} s")
    each = best["ledger_each"]
    row(
        f"    participation reads × {len(each)} (median {statistics.median(each):.2f} s)"
        if each
        else "    participation reads",
        f"{best['ledger']:.2f} s",
    )
    if best["build"]:
        row(
            "    each period's ledger from the one read (Segments.ledger)", f"{best['build']:.2f} s"
        )
    row(f"    read_questions × {best['question_reads']}", f"{best['questions']:.2f} s")
    row(
        f"    per-scope figures (Python/numpy, {best['scope_people']:,} scope members)",
        f"{best['per_scope']:.2f} s",
    )
    row("    narrative (template)", f"{best['narrate']:.2f} s")
    row("    CPU time of this process", f"{best['cpu']:.2f} s")
    row("    first run (cold caches)", f"{runs[0]['total']:.2f} s")
    row(
        f"(a') London's Monday 09:00 run: {zone_best['leaders']:,} leaders, 1 period",
        f"{zone_best['total']:.2f} s",
        f"≤ {target:g} s",
        zone_best["total"] <= target,
    )
    row(
        "     ledger / questions / per-scope",
        f"{zone_best['ledger']:.2f}/{zone_best['questions']:.2f}/{zone_best['per_scope']:.2f}",
    )
    split = r["split"]
    row(f"the participation read, split ({split['span']}, {split['edges']} bounds):", "")
    row(
        f"    events query, execute + fetch ({split['events_rows']:,} rows)",
        f"{split['events_query']:.2f} s",
    )
    row(
        "    rows → numpy array: np.array(rows), as the first read_ledger did",
        f"{split['events_array']:.2f} s",
    )
    row(
        "    rows → numpy array: np.array([tuple(r) for r in rows])",
        f"{split['events_array_tuples']:.2f} s",
    )
    row(
        f"    nudges query, execute + fetch ({split['nudges_rows']:,} rows)",
        f"{split['nudges_query']:.2f} s",
    )
    row(
        f"    the read as a whole, to London's ledger ({split['ledger_people']:,} people,"
        f" {split['ledger_mb']:.0f} MiB)",
        f"{split['read_ledger']:.2f} s",
    )
    rss = r["rss_after_compute_mb"]
    row(
        "(b) peak RSS of the computing process after (a)",
        f"{rss * 2**20 / 1e6:.0f} MB",
        f"≤ {TARGET_RSS_MB:g} MB",
        rss * 2**20 <= TARGET_RSS_MB * 1e6,
    )
    row("    at start (imports done)", f"{r['rss_start_mb']:.0f} MiB")
    row("    delta from (a)", f"{rss - r['rss_start_mb']:.0f} MiB")
    row("    after (a') and charts (matplotlib loaded)", f"{r['rss_after_charts_mb']:.0f} MiB")
    row(
        f"(c) chart, Slack PNG, {len(slack)} digests: median / max",
        f"{statistics.median(slack) * 1000:.0f}/{max(slack) * 1000:.0f} ms",
        f"≤ {TARGET_CHART_S * 1000:g} ms",
        chart_max <= TARGET_CHART_S,
    )
    row(
        f"    chart, Teams (compact), {len(teams)} digests: median / max",
        f"{statistics.median(teams) * 1000:.0f}/{max(teams) * 1000:.0f} ms",
        f"≤ {TARGET_CHART_S * 1000:g} ms",
        max(teams) <= TARGET_CHART_S,
    )
    row("    first chart in the process (matplotlib import, fonts)", f"{charts['first']:.2f} s")
    row("    largest Teams PNG", f"{charts['teams_bytes_max']:,} B")
    for so in r["so_far"]:
        row(
            f"(d) this week so far, {so['leader']} ({so['zone']}, {so['people']:,} people)",
            f"{so['total']:.2f} s",
        )
        row(
            "    structure / scope / digest (ledger, questions) / chart",
            f"{so['structure']:.2f}/{so['scope']:.2f}/{so['digest']:.2f}"
            f" ({so['ledger']:.2f}, {so['questions']:.2f})/{so['chart']:.2f}",
        )
    row(
        "peak RSS of the computing process at the end (after the split above)",
        f"{r['rss_end_mb'] * 2**20 / 1e6:.0f} MB",
        f"≤ {TARGET_RSS_MB:g} MB",
        r["rss_end_mb"] * 2**20 <= TARGET_RSS_MB * 1e6,
    )
    if "experiments" in r:
        lines += [
            "",
            "experiments: London's events query and alternatives (database time, count(*) over"
            " it; fetch: every row through SQLAlchemy)",
        ]
        for name, found in r["experiments"].items():
            fetch = f"  fetch {found['fetch']:.2f} s" if "fetch" in found else ""
            lines.append(f"  {name:<62} {found['server']:>6.2f} s {found['rows']:>10,} rows{fetch}")
    if "one_read" in r:
        o = r["one_read"]
        lines += [
            "",
            f"experiment: one read for all {o['periods']} periods ({o['edges']} distinct week"
            f" bounds): {o['rows']:,} rows in {o['fetch']:.2f} s (arrays {o['arrays']:.2f} s),"
            f" every period's ledger built by {o['total']:.2f} s; equal to the events query"
            f" for London: {o['same']}",
        ]
    if "plans" in r and (args.explain or best["total"] > target):
        lines += ["", "plan of the events query, as the run reads:", r["plans"]["events"]]
        lines += ["", "plan of the nudges query:", r["plans"]["nudges"]]
    return "\n".join(lines)


def parent_main(args: argparse.Namespace) -> int:
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    lazy = Lazy(args)
    reports, everything = [], {}
    try:
        for backend in backends:
            progress(f"{backend}: preparing the database")
            info = prepare(backend, args, lazy)
            info["gen_s"] = lazy.seconds if not info["reused"] else 0.0
            progress(f"{backend}: measuring in a fresh process (load {load()})")
            info["load_before"] = load()
            result = run_child(info["url"], args)
            info["load_after"] = load()
            try:
                reports.append(report(backend, args, info, result))
            except Exception:
                print(json.dumps(result), file=sys.stderr)  # what was measured, not lost
                raise
            everything[backend] = {"database": info, "figures": result}
            print(reports[-1] if not args.json else "", flush=True)
        if lazy.world is not None and not args.json:
            counts = ", ".join(f"{k} {v:,}" for k, v in lazy.world.counts.items())
            print(f"\ngenerated rows: {counts}")
    finally:
        if not args.keep:
            for backend in backends:
                if backend == "postgresql":
                    asyncio.run(postgres_drop(Scratch(args.postgres, args.scratch)))
                else:
                    sqlite_drop(args.sqlite)
    if args.json:
        print(json.dumps(everything, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--people", type=int, default=50_000)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--weeks", type=int, default=8, help="weeks of history before 2026-W11")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--keep", action="store_true", help="keep the databases; reuse one made with these sizes"
    )
    parser.add_argument(
        "--repeat", type=int, default=2, help=f"runs of (a) (one if it takes > {LONG_RUN_S:g} s)"
    )
    parser.add_argument("--charts", type=int, default=20)
    parser.add_argument("--explain", action="store_true", help="print the ledger query plans")
    parser.add_argument("--experiments", action="store_true", help="time other query shapes")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="server URL (any database)")
    parser.add_argument("--scratch", default=SCRATCH, help="the PostgreSQL scratch database")
    parser.add_argument("--sqlite", type=Path, default=DEFAULT_SQLITE)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args)
    if args.weeks < 1 or args.people < 100 or args.events < 0:
        parser.error("--weeks ≥ 1, --people ≥ 100, --events ≥ 0")
    return parent_main(args)


if __name__ == "__main__":
    sys.exit(main())
