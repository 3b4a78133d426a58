"""From events, questions and scopes to the figures of each leader's digest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

import numpy as np

from bot.digests.figures import (
    MIX,
    TREND_WEEKS,
    DeskWeek,
    DigestFigures,
    Group,
    PeopleWeek,
    Recognised,
    WeekPoint,
)
from bot.digests.ledger import COLUMN, COLUMNS, Ledger
from bot.digests.privacy import may_describe, shown_groups
from bot.digests.questions import QuestionBook
from bot.digests.scope import Member, Scope
from bot.digests.weeks import Week, week_of

STEPPED_UP = ["question_answered", "page_comment"]
"""Public-facing work: what "who stepped up" recognises."""
NAMED = 5
"""At most this many people are named under "who stepped up"."""


@dataclass(frozen=True)
class Period:
    """The week a digest reports on, with the eight before it."""

    week: Week
    end: datetime
    """The week's end, or the moment asked for 'this week so far'."""
    so_far: bool

    @cached_property
    def weeks(self) -> list[Week]:
        return [*self.week.previous(TREND_WEEKS), self.week]

    @cached_property
    def bounds(self) -> list[datetime]:
        return [w.start for w in self.weeks] + [self.end]

    @classmethod
    def complete(cls, week: Week) -> Period:
        return cls(week, week.end, False)

    @classmethod
    def until(cls, now: datetime, zone: str) -> Period:
        week = week_of(now, zone)
        return cls(week, now, True)


class Calculator:
    """Figures for any number of scopes that share one period (one time zone's weeks)."""

    def __init__(
        self,
        period: Period,
        ledger: Ledger,
        book: QuestionBook,
        *,
        people: dict[int, Member],
        min_group: int,
        topic_names: dict[str, str],
    ) -> None:
        self.period = period
        self.ledger = ledger
        self.book = book
        self.people = people
        self.slots = {person_id: i for i, person_id in enumerate(sorted(people))}
        book.bind(self.slots)
        # Per ledger row: whether that person agreed to be named.
        self.consenting = np.array(
            [people[int(p)].consents if int(p) in people else False for p in ledger.ids],
            dtype=bool,
        )
        self.k = min_group
        self.topic_names = topic_names
        self.this = ledger.weeks - 1

    def slots_of(self, scope: Scope) -> np.ndarray:
        return np.fromiter((self.slots[p] for p in scope.people if p in self.slots), dtype=np.int64)

    def figures(self, scope: Scope) -> DigestFigures:
        rows = self.ledger.rows(scope.people)
        sums = self.ledger.sums(rows)
        active = self.ledger.active(rows)
        size = len(scope.people)
        described = may_describe(size, self.k)
        questions, assignments = self.book.of(self.slots_of(scope))
        groups, hidden = shown_groups(scope.people, [g for g in scope.groups if g[1]], self.k)
        recognised, others = self._stepped_up(rows, described)
        leader = scope.leader
        return DigestFigures(
            leader=leader.key if leader else "",
            leader_name=leader.name if leader else "",
            scope=scope.name,
            week=self.period.week.label,
            days=self.period.week.days(),
            zone=self.period.week.zone,
            so_far=self.period.so_far,
            min_group=self.k,
            people=size,
            this=self._people_week(size, sums[self.this], active[self.this]) if described else None,
            previous=(
                self._people_week(size, sums[self.this - 1], active[self.this - 1])
                if described
                else None
            ),
            average_rate=self._average(active, size) if described else None,
            average_weeks=self.this - (self.ledger.first_week or 0),
            desk=self._desk(questions, assignments, self.this, sums),
            desk_before=self._desk(questions, assignments, self.this - 1, sums),
            trend=[
                WeekPoint(
                    week.label,
                    float(active[i] / size) if described and size else None,
                    int(sums[i, COLUMN["question_answered"]]),
                )
                for i, week in enumerate(self.period.weeks)
            ],
            groups=[self._group(name, members) for name, members in groups],
            hidden_groups=hidden,
            recognised=recognised,
            others=others,
            topics=self._topics(questions),
            oldest=self.book.oldest_view(questions, self.period.end.timestamp(), self.topic_names),
        )

    def _average(self, active: np.ndarray, size: int) -> float | None:
        """The mean active share of the weeks before this one, from the first week anyone in
        the organisation took part (None when there is no such week yet)."""
        first = self.ledger.first_week
        if not size or first is None or first >= self.this:
            return None
        return float(active[first : self.this].mean() / size)

    def _people_week(self, size: int, sums: np.ndarray, active: np.integer) -> PeopleWeek:
        value = {name: int(sums[i]) for i, name in enumerate(COLUMNS)}
        mix = {label: sum(value[k] for k in kinds) for label, kinds in MIX.items()}
        return PeopleWeek(
            people=size,
            active=int(active),
            nudges_sent=value["nudges_sent"],
            nudges_done=value["nudge_done"],
            ladder_up=value["ladder_up"],
            links_opened=value["link_opened"],
            experiments=value["experiment_tried"],
            mix={label: n for label, n in mix.items() if n},
        )

    def _desk(
        self, questions: np.ndarray, assignments: np.ndarray, week: int, sums: np.ndarray
    ) -> DeskWeek:
        bounds = self.period.bounds
        counts = {name: int(sums[week, i]) for i, name in enumerate(COLUMNS)}
        return self.book.desk(
            questions, assignments, bounds[week].timestamp(), bounds[week + 1].timestamp(), counts
        )

    def _group(self, name: str, members: frozenset[int]) -> Group:
        active = self.ledger.active(self.ledger.rows(members))
        return Group(name, len(members), int(active[self.this]))

    def _topics(self, questions: np.ndarray) -> list[tuple[str, int]]:
        bounds = self.period.bounds
        counts = self.book.topic_counts(
            questions, bounds[self.this].timestamp(), bounds[self.this + 1].timestamp()
        )
        named = [
            (self.topic_names.get(t, t) if t else "No clear topic", n) for t, n in counts.items()
        ]
        return sorted(named, key=lambda item: (-item[1], item[0]))[:3]

    def _stepped_up(self, rows: np.ndarray, described: bool) -> tuple[list[Recognised], int]:
        """Who stepped up this week: named if they agreed, else counted (never listed)."""
        deeds = self.ledger.values(rows, self.this, STEPPED_UP)
        doers = deeds.sum(axis=1) > 0
        agreed = doers & self.consenting[rows]
        named_rows, named_deeds = rows[agreed], deeds[agreed]
        # Most answers first, then most comments, then by name; only those who can reach the
        # top are looked at by name.
        score = named_deeds[:, 0].astype(np.int64) * 1_000_000 + named_deeds[:, 1]
        if score.size > NAMED:
            keep = score >= np.partition(score, -NAMED)[-NAMED]
            named_rows, named_deeds, score = named_rows[keep], named_deeds[keep], score[keep]
        names = [self.people[int(p)].name for p in self.ledger.ids[named_rows]]
        order = sorted(range(len(names)), key=lambda i: (-int(score[i]), names[i]))[:NAMED]
        named = [
            Recognised(names[i], _deeds(int(named_deeds[i, 0]), int(named_deeds[i, 1])))
            for i in order
        ]
        others = int(doers.sum()) - len(named)
        # A count of the unnamed in a small group could point at someone.
        return named, others if described else 0


def _deeds(answered: int, commented: int) -> str:
    parts = []
    if answered:
        parts.append(f"answered {_times(answered, 'public question')}")
    if commented:
        often = {1: "once", 2: "twice"}.get(commented, f"{commented} times")
        parts.append(f"commented on our pages {often}")
    return " and ".join(parts)


def _times(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
