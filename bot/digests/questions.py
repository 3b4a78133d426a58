"""The public's questions as the digests see them: who was asked, when they were answered.

A question belongs to a scope when it was put to someone in it (an expert, the fallback owner,
the evangelist) or someone in it answered it. Questions are few next to participation events,
so the ones that matter for the nine weeks are read once and kept as arrays of timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.clock import as_utc
from bot.digests.figures import DeskWeek, Oldest
from bot.storage.models import AssignmentRow, QuestionRow

NAN = float("nan")


@dataclass
class QuestionBook:
    ids: np.ndarray
    created: np.ndarray
    """Epoch seconds (float); NaN where unknown."""
    first_response: np.ndarray
    sla_due: np.ndarray
    closed: np.ndarray
    """When a question was closed without an answer (NaN: it was not)."""
    topics: list[str | None]
    urls: list[str | None]
    answered_by: np.ndarray
    """Person id, or -1."""
    routed_question: np.ndarray
    """Row into the arrays above, one per assignment to a person."""
    routed_person: np.ndarray
    routed_at: np.ndarray
    by_asked: _Index = field(init=False)
    by_answerer: _Index = field(init=False)

    def bind(self, slots: dict[int, int]) -> None:
        """Index the assignments and answers by person, numbered as `slots` numbers them, so
        a scope costs as much as its own people and their questions, not all questions."""
        outside = len(slots)
        asked = np.array([slots.get(int(p), outside) for p in self.routed_person], dtype=np.int64)
        answerer = np.array([slots.get(int(p), outside) for p in self.answered_by], dtype=np.int64)
        self.by_asked = _Index(asked, outside + 1)
        self.by_answerer = _Index(answerer, outside + 1)

    def of(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(question rows, assignment rows) put to, or answered by, anyone in `slots`."""
        assignments = self.by_asked.rows(slots)
        answered = self.by_answerer.rows(slots)
        return np.union1d(self.routed_question[assignments], answered), assignments

    def routed(self, assignments: np.ndarray, start: float, end: float) -> int:
        """Questions behind these assignments that were made in [start, end)."""
        at = self.routed_at[assignments]
        hit = assignments[(at >= start) & (at < end)]
        return int(np.unique(self.routed_question[hit]).size)

    def desk(
        self,
        rows: np.ndarray,
        assignments: np.ndarray,
        start: float,
        end: float,
        counts: dict[str, int],
    ) -> DeskWeek:
        """The desk's week for a scope: `counts` holds its claims and answers from events."""
        claimed, answered = counts.get("question_claimed", 0), counts.get("question_answered", 0)
        if rows.size == 0:  # most small teams, most weeks: no array work at all
            return DeskWeek(claimed=claimed, answered=answered)
        first = self.first_response[rows]
        created = self.created[rows]
        answered_now = (first >= start) & (first < end)
        waits = np.sort((first[answered_now] - created[answered_now]) / 60.0)
        waits = waits[~np.isnan(waits)]
        due, closed = self.sla_due[rows], self.closed[rows]
        due_now = (due >= start) & (due < end)
        # Closed before its deadline (spam, not a question after all): nothing was missed.
        missed = due_now & (np.isnan(first) | (first > due)) & ~(closed <= due)
        return DeskWeek(
            routed=self.routed(assignments, start, end),
            claimed=claimed,
            answered=answered,
            median_minutes=float(np.median(waits)) if waits.size else None,
            p90_minutes=nearest_rank(waits, 0.9),
            sla_breaches=int(missed.sum()),
        )

    def topic_counts(self, rows: np.ndarray, start: float, end: float) -> dict[str | None, int]:
        created = self.created[rows]
        counts: dict[str | None, int] = {}
        for row in rows[(created >= start) & (created < end)]:
            topic = self.topics[int(row)]
            counts[topic] = counts.get(topic, 0) + 1
        return counts

    def oldest(self, rows: np.ndarray, at: float) -> tuple[int, float] | None:
        """(row, hours waiting) of the question waiting longest at `at` (None: none waits)."""
        created, first, closed = self.created[rows], self.first_response[rows], self.closed[rows]
        waiting = (
            (created < at) & (np.isnan(first) | (first >= at)) & (np.isnan(closed) | (closed >= at))
        )
        if not waiting.any():
            return None
        candidates = rows[waiting]
        row = int(candidates[np.argmin(self.created[candidates])])
        return row, (at - float(self.created[row])) / 3600.0

    def oldest_view(self, rows: np.ndarray, at: float, names: dict[str, str]) -> Oldest | None:
        found = self.oldest(rows, at)
        if found is None:
            return None
        row, hours = found
        topic = self.topics[row]
        return Oldest(round(hours, 1), names.get(topic, topic) if topic else None, self.urls[row])


class _Index:
    """Rows grouped by a small integer key (a person's slot), for gathering many keys at once."""

    def __init__(self, keys: np.ndarray, size: int) -> None:
        self.order = np.argsort(keys, kind="stable")
        self.starts = np.searchsorted(keys[self.order], np.arange(size + 1))

    def rows(self, keys: np.ndarray) -> np.ndarray:
        """Every row whose key is one of `keys`."""
        first, last = self.starts[keys], self.starts[keys + 1]
        counts = last - first
        total = int(counts.sum())
        if total == 0:
            return np.zeros(0, dtype=np.int64)
        # One arange over all the runs: each run's offset, then positions within runs.
        offsets = np.repeat(first - np.cumsum(counts) + counts, counts)
        found: np.ndarray = self.order[offsets + np.arange(total)]
        return found


def nearest_rank(sorted_values: np.ndarray, share: float) -> float | None:
    """The nearest-rank percentile: the smallest value with at least `share` of them at or
    below it (so p90 of ten waits is the ninth, a wait that really happened)."""
    if sorted_values.size == 0:
        return None
    rank = int(np.ceil(share * sorted_values.size))
    return float(sorted_values[max(rank, 1) - 1])


def _epoch(value: datetime | None) -> float:
    return as_utc(value).timestamp() if value is not None else NAN


async def read_questions(session: AsyncSession, start: datetime, end: datetime) -> QuestionBook:
    """Questions that could count between `start` and `end`: asked, answered, due or still
    waiting in that time."""
    relevant = (
        QuestionRow.created_at < end,
        or_(
            QuestionRow.created_at >= start,
            QuestionRow.first_response_at.is_(None),
            QuestionRow.first_response_at >= start,
            QuestionRow.sla_due_at >= start,
        ),
    )
    rows = (
        await session.execute(
            select(
                QuestionRow.id,
                QuestionRow.created_at,
                QuestionRow.first_response_at,
                QuestionRow.sla_due_at,
                QuestionRow.status,
                QuestionRow.updated_at,
                QuestionRow.topic_key,
                QuestionRow.url,
                QuestionRow.answered_by_id,
            ).where(*relevant)
        )
    ).all()
    ids = np.array([r.id for r in rows], dtype=np.int64)
    position = {int(q): i for i, q in enumerate(ids)}
    routed = (
        await session.execute(
            select(AssignmentRow.question_id, AssignmentRow.person_id, AssignmentRow.sent_at)
            .join(QuestionRow, QuestionRow.id == AssignmentRow.question_id)
            .where(AssignmentRow.person_id.is_not(None), *relevant)
        )
    ).all()
    routed = [r for r in routed if r.question_id in position]
    return QuestionBook(
        ids=ids,
        created=np.array([_epoch(r.created_at) for r in rows], dtype=np.float64),
        first_response=np.array([_epoch(r.first_response_at) for r in rows], dtype=np.float64),
        sla_due=np.array([_epoch(r.sla_due_at) for r in rows], dtype=np.float64),
        closed=np.array(
            [_epoch(r.updated_at) if r.status == "closed" else NAN for r in rows],
            dtype=np.float64,
        ),
        topics=[r.topic_key for r in rows],
        urls=[r.url for r in rows],
        answered_by=np.array([r.answered_by_id or -1 for r in rows], dtype=np.int64),
        routed_question=np.array([position[r.question_id] for r in routed], dtype=np.int64),
        routed_person=np.array([r.person_id for r in routed], dtype=np.int64),
        routed_at=np.array([_epoch(r.sent_at) for r in routed], dtype=np.float64),
    )
