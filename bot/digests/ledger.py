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
from sqlalchemy import Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import Case

from bot.digests.figures import ACTIVE_KINDS
from bot.storage.models import NudgeRow, ParticipationRow

EVENT_COLUMNS = (*ACTIVE_KINDS, "ladder_up")
COLUMNS = (*EVENT_COLUMNS, "nudges_sent")
COLUMN = {name: i for i, name in enumerate(COLUMNS)}
ACTIVE = [COLUMN[k] for k in ACTIVE_KINDS]


@dataclass
class Ledger:
    bounds: list[datetime]
    """Week boundaries, oldest first: len(weeks) + 1 instants (the last may be 'now')."""
    ids: np.ndarray
    """The person id of each row of `table`, ascending."""
    table: np.ndarray
    """int32, (people, weeks, columns)."""

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
        if self.table.size == 0:
            return None
        taken = self.table[:, :, ACTIVE].sum(axis=(0, 2))
        found = np.flatnonzero(taken)
        return int(found[0]) if found.size else None

    def values(self, rows: np.ndarray, week: int, columns: list[str]) -> np.ndarray:
        """(rows, columns): these people's counts of `columns` in `week`."""
        found: np.ndarray = self.table[rows, week][:, [COLUMN[c] for c in columns]]
        return found


async def read_ledger(session: AsyncSession, bounds: list[datetime]) -> Ledger:
    """Every person's events and nudges per week between bounds[0] and bounds[-1]."""
    chunks: list[np.ndarray] = []
    for query, columns in (
        (_events_query(bounds), [COLUMN[k] for k in EVENT_COLUMNS]),
        (_nudges_query(bounds), [COLUMN["nudges_sent"]]),
    ):
        rows = np.array((await session.execute(query)).all(), dtype=np.int64)
        if rows.size:
            chunks.append(_spread(rows, columns))
    people = np.unique(np.concatenate([c[:, 0] for c in chunks])) if chunks else np.array([])
    table = np.zeros((len(people), len(bounds) - 1, len(COLUMNS)), dtype=np.int32)
    for chunk in chunks:
        rows_of = np.searchsorted(people, chunk[:, 0])
        table[rows_of, chunk[:, 1]] += chunk[:, 2:].astype(np.int32)
    return Ledger(bounds, people.astype(np.int64), table)


def _spread(rows: np.ndarray, columns: list[int]) -> np.ndarray:
    """(person, week, values...) → (person, week, all columns) with zeros elsewhere."""
    out = np.zeros((rows.shape[0], 2 + len(COLUMNS)), dtype=np.int64)
    out[:, :2] = rows[:, :2]
    out[:, [2 + c for c in columns]] = rows[:, 2:]
    return out


def _week_of(column: InstrumentedAttribute[Any], bounds: list[datetime]) -> Case[Any]:
    # Comparing with each boundary keeps weeks exact across clock changes (a week with a
    # DST change is 167 or 169 hours long).
    return case(*((column < b, i) for i, b in enumerate(bounds[1:-1])), else_=len(bounds) - 2)


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
