"""Weeks of participation, read in a few aggregate queries and kept as arrays.

One digest run reads the events of nine weeks (this week and the eight before) once per time
zone and keeps, for every person and week, how many events of each kind they had and how many
nudges they were sent: a (people × 9 × columns) array of small integers. Any number of leaders'
scopes are then sums over rows of that array, so 50,000 people and millions of events cost a
few aggregate queries, not one per leader.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

import numpy as np
from sqlalchemy import Select, case, func, literal, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from bot.digests.figures import ACTIVE_KINDS
from bot.storage.database import dialect_of
from bot.storage.models import NudgeRow, ParticipationRow

EVENT_COLUMNS = (*ACTIVE_KINDS, "ladder_up")
COLUMNS = (*EVENT_COLUMNS, "nudges_sent")
COLUMN = {name: i for i, name in enumerate(COLUMNS)}
ACTIVE = [COLUMN[k] for k in ACTIVE_KINDS]
STREAM_ROWS = 50_000


@dataclass
class Ledger:
    bounds: list[datetime]
    """Week boundaries, oldest first: len(weeks) + 1 instants (the last may be 'now')."""
    ids: np.ndarray
    """The person id of each row of `table`, ascending."""
    table: np.ndarray
    """int32, (people, weeks, columns)."""
    started: float | None = None
    """When anyone in the organisation first took part in these weeks (epoch seconds); None
    to work it out from this ledger's own people."""

    def __post_init__(self) -> None:
        self.index = {int(p): i for i, p in enumerate(self.ids)}

    @property
    def weeks(self) -> int:
        return len(self.bounds) - 1

    def rows(self, people: frozenset[int] | set[int]) -> np.ndarray:
        return np.fromiter((self.index[p] for p in people if p in self.index), dtype=np.int64)

    def sums(self, rows: np.ndarray) -> np.ndarray:
        """(weeks, columns): every column summed over these people."""
        if rows.size == 0:
            return np.zeros((self.weeks, len(COLUMNS)), dtype=np.int64)
        summed: np.ndarray = self.table[rows].sum(axis=0, dtype=np.int64)
        return summed

    def active(self, rows: np.ndarray) -> np.ndarray:
        """(weeks,): how many of these people took part in each week."""
        if rows.size == 0:
            return np.zeros(self.weeks, dtype=np.int64)
        taken = self.table[rows][:, :, ACTIVE].sum(axis=2)
        active: np.ndarray = (taken > 0).sum(axis=0)
        return active

    @cached_property
    def first_week(self) -> int | None:
        """The first week in which anyone at all took part (None: nobody yet).

        Weeks before it predate the organisation's use of Evangelist: averaging them in as
        zeros would understate every trend.
        """
        if self.started is not None:
            ends = np.array([b.timestamp() for b in self.bounds[1:]])
            return int(np.searchsorted(ends, self.started, side="right"))
        if self.table.size == 0:
            return None
        taken = self.table[:, :, ACTIVE].sum(axis=(0, 2))
        found = np.flatnonzero(taken)
        return int(found[0]) if found.size else None

    def values(self, rows: np.ndarray, week: int, columns: list[str]) -> np.ndarray:
        """(rows, columns): these people's counts of `columns` in `week`."""
        found: np.ndarray = self.table[rows, week][:, [COLUMN[c] for c in columns]]
        return found


@dataclass
class Segments:
    """Everyone's counts for each stretch of time between two consecutive `edges`.

    The edges are every week boundary some run needs (leaders in several time zones have
    different weeks): one read serves them all, and each period's ledger adds up the stretches
    that make its weeks.
    """

    edges: list[datetime]
    rows: np.ndarray
    """int64, (n, 2 + columns): person id, stretch, then a count per column."""

    @cached_property
    def started(self) -> float | None:
        """When anyone at all first took part, as the start of that stretch (None: nobody)."""
        active = self.rows[:, [2 + c for c in ACTIVE]].sum(axis=1) > 0
        if not active.any():
            return None
        return float(self.edges[int(self.rows[active, 1].min())].timestamp())

    def ledger(self, bounds: list[datetime], only: frozenset[int] | None = None) -> Ledger:
        """The ledger of one period, whose bounds must be among the edges (of the people in
        `only`, when given: a time zone's leaders cover a fraction of the organisation)."""
        edges = np.array([e.timestamp() for e in self.edges])
        weeks = np.array([b.timestamp() for b in bounds])
        rows = self.rows
        if only is not None:
            wanted = np.fromiter(only, dtype=np.int64, count=len(only))
            rows = rows[np.isin(rows[:, 0], wanted)]
        stretch = rows[:, 1]
        begins, ends = edges[stretch], edges[stretch + 1]
        inside = (begins >= weeks[0]) & (ends <= weeks[-1])
        chosen = rows[inside]
        week = np.searchsorted(weeks, begins[inside], side="right") - 1
        people = np.unique(chosen[:, 0])
        weeks_n = len(bounds) - 1
        # A week may hold several stretches: add them up, one bincount per column.
        cell = np.searchsorted(people, chosen[:, 0]) * weeks_n + week
        size = len(people) * weeks_n
        table = np.stack(
            [
                np.bincount(cell, weights=chosen[:, 2 + c], minlength=size)
                for c in range(len(COLUMNS))
            ],
            axis=-1,
        ).astype(np.int32)
        shape = (len(people), weeks_n, len(COLUMNS))
        return Ledger(bounds, people.astype(np.int64), table.reshape(shape), self.started)


async def read_segments(session: AsyncSession, edges: list[datetime]) -> Segments:
    """Every person's events and nudges per stretch between the sorted `edges`."""
    chunks: list[np.ndarray] = []
    if dialect_of(session) == "postgresql":
        # Grouping weeks of events by person spills to disk at the default 4 MB.
        await session.execute(text("SET LOCAL work_mem = '64MB'"))
    for query, columns in (
        (_events_query(edges), [COLUMN[k] for k in EVENT_COLUMNS]),
        (_nudges_query(edges), [COLUMN["nudges_sent"]]),
    ):
        # Streamed in slices, each turned into an array at once: the rows never sit in memory
        # as Python objects all together (hundreds of MB at 50,000 people). Plain tuples:
        # numpy reads them ten times faster than SQLAlchemy's rows.
        result = await session.stream(query)
        async for part in result.partitions(STREAM_ROWS):
            rows = np.array([tuple(row) for row in part], dtype=np.int64)
            if rows.size:
                chunks.append(_spread(rows, columns))
    if not chunks:
        return Segments(edges, np.zeros((0, 2 + len(COLUMNS)), dtype=np.int64))
    return Segments(edges, np.concatenate(chunks))


async def read_ledger(session: AsyncSession, bounds: list[datetime]) -> Ledger:
    """Every person's events and nudges per week between bounds[0] and bounds[-1]."""
    return (await read_segments(session, bounds)).ledger(bounds)


def _spread(rows: np.ndarray, columns: list[int]) -> np.ndarray:
    """(person, week, values...) → (person, week, all columns) with zeros elsewhere."""
    out = np.zeros((rows.shape[0], 2 + len(COLUMNS)), dtype=np.int64)
    out[:, :2] = rows[:, :2]
    out[:, [2 + c for c in columns]] = rows[:, 2:]
    return out


def _week_of(column: InstrumentedAttribute[Any], bounds: list[datetime]) -> Any:
    """The stretch `column` falls in: a balanced tree of comparisons with the inner bounds, so
    each row costs a handful of comparisons even with a hundred edges (one CASE arm per edge
    would cost fifty on average). Comparing with real instants keeps weeks exact across clock
    changes (a week with a DST change is 167 or 169 hours long)."""

    def tree(low: int, high: int) -> Any:
        # Stretches low..high; the edge between stretch i and i + 1 is bounds[i + 1].
        if low == high:
            return literal(low)
        middle = (low + high) // 2
        return case((column < bounds[middle + 1], tree(low, middle)), else_=tree(middle + 1, high))

    return tree(0, len(bounds) - 2)


def _events_query(bounds: list[datetime]) -> Select[Any]:
    inner = (
        select(
            ParticipationRow.person_id.label("person_id"),
            _week_of(ParticipationRow.at, bounds).label("week"),
            ParticipationRow.kind.label("kind"),
        )
        .where(
            ParticipationRow.at >= bounds[0],
            ParticipationRow.at < bounds[-1],
            ParticipationRow.kind.in_(EVENT_COLUMNS),
        )
        .subquery()
    )
    counts = [func.sum(case((inner.c.kind == kind, 1), else_=0)) for kind in EVENT_COLUMNS]
    return select(inner.c.person_id, inner.c.week, *counts).group_by(
        inner.c.person_id, inner.c.week
    )


def _nudges_query(bounds: list[datetime]) -> Select[Any]:
    inner = (
        select(
            NudgeRow.person_id.label("person_id"),
            _week_of(NudgeRow.sent_at, bounds).label("week"),
        )
        .where(
            NudgeRow.status == "sent",
            NudgeRow.test.is_(False),
            NudgeRow.sent_at >= bounds[0],
            NudgeRow.sent_at < bounds[-1],
        )
        .subquery()
    )
    return select(inner.c.person_id, inner.c.week, func.count()).group_by(
        inner.c.person_id, inner.c.week
    )
