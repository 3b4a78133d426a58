"""Who gets a question: one named person at a time.

The policy first filters the topic's experts (already asked, away or paused, at capacity,
outside their working hours) and then ranks the rest by their effective weight on the topic
(configured, learned from answers, claims and declines, or set by the evangelist: see
bot/questions/expertise.py), current load and fairness (least recently asked). Experts whose
effective weight is 0 are not asked; people who are not configured experts but have answered
the topic's questions again and again join as emerging experts. Ties are broken by the
person's key, so the same state always gives the same choice. With no expert free now, the
question waits for the first one who starts work before its first-response target. The
fallback owner (no expert at all) and the evangelist (the last resort) are chosen by the desk's
escalation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config.organisation import OrganisationConfig, TopicConfig
from bot.core.clock import as_utc
from bot.questions import expertise
from bot.questions.hours import WorkingTime
from bot.storage.models import AssignmentRow, PersonRow, QuestionRow

HOLDING = ("routed", "claimed", "reported")
"""Statuses in which a question counts against its assignee's capacity."""


@dataclass(frozen=True)
class Pick:
    """Ask this person now (or from `not_before`, the start of their working day)."""

    person_id: int
    key: str
    name: str
    kind: str
    """'expert', 'fallback' or 'evangelist'."""
    reason: str
    not_before: datetime | None = None


@dataclass(frozen=True)
class Wait:
    """Nobody can take it now; look again at `until`."""

    until: datetime
    reason: str


@dataclass(frozen=True)
class _Candidate:
    row: PersonRow
    weight: float
    """The effective weight on the topic (configured, learned or overridden)."""
    answers: int
    load: int
    last_asked: datetime | None
    basis: str = "configured"
    """'configured', 'override' or 'emerging': why they are a candidate at all."""


class Hours:
    """Working time for each person: their own hours or the organisation's, in their zone."""

    def __init__(self, organisation: OrganisationConfig) -> None:
        self.organisation = organisation
        self._cache: dict[tuple[str, str], WorkingTime] = {}

    def of(self, key: str, timezone: str) -> WorkingTime:
        cached = self._cache.get((key, timezone))
        if cached is None:
            config = self.organisation.person(key)
            hours = (config.working_hours if config else None) or (
                self.organisation.questions.working_hours
            )
            cached = WorkingTime.from_config(hours, timezone, self.organisation.questions.holidays)
            self._cache[(key, timezone)] = cached
        return cached

    def organisation_time(self) -> WorkingTime:
        org = self.organisation
        return self.of("", org.organisation.timezone)


class Router:
    def __init__(
        self, organisation: OrganisationConfig, hours: Hours, rule: expertise.Rule = expertise.RULE
    ) -> None:
        self.org = organisation
        self.hours = hours
        self.rule = rule

    async def choose(
        self,
        session: AsyncSession,
        question: QuestionRow,
        topic: TopicConfig | None,
        now: datetime,
        *,
        deadline: datetime,
    ) -> Pick | Wait | None:
        """The best expert for `question`, a time to look again, or None (no expert is left)."""
        asked = await _asked(session, question.id)
        candidates = await self._candidates(session, topic, asked, now) if topic else []
        free = [c for c in candidates if self._available(c, now)]
        working = [c for c in free if self._working(c, now)]
        if working:
            best = min(working, key=lambda c: self._rank(c, now))
            return Pick(best.row.id, best.row.key, best.row.name, "expert", self._why(best, topic))
        if free:
            first = min(
                (self.hours.of(c.row.key, c.row.timezone).next_start(now) for c in free),
                default=None,
            )
            if first is not None and first <= deadline:
                return Wait(first, "no expert on this topic is at work right now")
        return None

    async def _candidates(
        self, session: AsyncSession, topic: TopicConfig, asked: set[int], now: datetime
    ) -> list[_Candidate]:
        configured = {e.person: e.weight for e in topic.experts}
        learned = {r.person_id: r for r in await expertise.rows_for(session, topic_key=topic.id)}
        rows = (
            await session.scalars(
                select(PersonRow).where(
                    PersonRow.key.in_(list(configured)) | PersonRow.id.in_(list(learned)),
                    PersonRow.in_directory.is_(True),
                )
            )
        ).all()
        chosen: list[tuple[PersonRow, expertise.Weight]] = []
        for row in rows:
            evangelist = "evangelist" in row.roles.split(",")
            weight = expertise.weigh(
                configured.get(row.key, 0.0),
                learned.get(row.id),
                now,
                evangelist=evangelist,
                rule=self.rule,
            )
            if weight.value > 0 and row.id not in asked:
                chosen.append((row, weight))
        ids = [r.id for r, _ in chosen]
        loads = await _loads(session, ids)
        answers = await _answers(session, ids, topic.id)
        last = await _last_asked(session, ids)
        return [
            _Candidate(
                r, w.value, answers.get(r.id, 0), loads.get(r.id, 0), last.get(r.id), w.basis
            )
            for r, w in chosen
        ]

    def _available(self, candidate: _Candidate, now: datetime) -> bool:
        row = candidate.row
        for until in (row.away_until, row.questions_paused_until):
            if until is not None and as_utc(until) > now:
                return False
        config = self.org.person(row.key)
        capacity = (config.capacity if config else None) or self.org.questions.capacity
        return candidate.load < capacity

    def _working(self, candidate: _Candidate, now: datetime) -> bool:
        return self.hours.of(candidate.row.key, candidate.row.timezone).is_working(now)

    @staticmethod
    def _rank(candidate: _Candidate, now: datetime) -> tuple[float, float, str]:
        # The effective weight says who knows best: the evangelist's view, moved by experience
        # (bounded, so one person does not take everything); load spreads work; the fairness
        # bonus (up to a day since last asked) rotates equals. Lower sorts first.
        hours_idle = 24.0
        if candidate.last_asked is not None:
            hours_idle = min(24.0, (now - as_utc(candidate.last_asked)).total_seconds() / 3600)
        score = candidate.weight - 0.5 * candidate.load + 0.2 * hours_idle / 24
        last = as_utc(candidate.last_asked).timestamp() if candidate.last_asked else 0.0
        return (-round(score, 6), last, candidate.row.key)

    @staticmethod
    def _why(candidate: _Candidate, topic: TopicConfig | None) -> str:
        name = topic.name if topic else "this topic"
        if candidate.answers:
            plural = "s" if candidate.answers != 1 else ""
            return f"you answered {candidate.answers} question{plural} about {name}"
        if candidate.basis == "override":
            return f"our evangelist asked for you on {name}"
        if candidate.basis == "emerging":
            return f"you've been taking on questions about {name} lately"
        return f"you're one of our experts on {name}"

    async def fallback_owner(
        self, session: AsyncSession, question: QuestionRow, topic: TopicConfig | None, now: datetime
    ) -> Pick | None:
        """The topic's fallback owner, when no expert can take the question at all."""
        if topic is None or not topic.fallback_owner:
            return None
        reason = f"you look after {topic.name} questions when no expert is free"
        return await self._pick(session, question, topic.fallback_owner, "fallback", reason, now)

    async def last_resort(
        self, session: AsyncSession, question: QuestionRow, topic: TopicConfig | None, now: datetime
    ) -> Pick | None:
        """The evangelist (the first one not yet asked), after experts and the channel."""
        for person in self.org.evangelists():
            pick = await self._pick(
                session, question, person.id, "evangelist", "nobody else could take it", now
            )
            if pick is not None:
                return pick
        return None

    async def _pick(
        self,
        session: AsyncSession,
        question: QuestionRow,
        key: str,
        kind: str,
        reason: str,
        now: datetime,
    ) -> Pick | None:
        row = await session.scalar(select(PersonRow).where(PersonRow.key == key))
        if row is None or row.id in await _asked(session, question.id):
            return None
        start = self.hours.of(row.key, row.timezone).next_start(now)
        return Pick(row.id, row.key, row.name, kind, reason, None if start <= now else start)


async def _asked(session: AsyncSession, question_id: int) -> set[int]:
    rows = await session.scalars(
        select(AssignmentRow.person_id).where(
            AssignmentRow.question_id == question_id, AssignmentRow.person_id.is_not(None)
        )
    )
    return {r for r in rows if r is not None}


async def _loads(session: AsyncSession, ids: Iterable[int]) -> dict[int, int]:
    rows = await session.execute(
        select(QuestionRow.assignee_id, func.count())
        .where(QuestionRow.assignee_id.in_(list(ids)), QuestionRow.status.in_(HOLDING))
        .group_by(QuestionRow.assignee_id)
    )
    return {int(person): int(count) for person, count in rows.all() if person is not None}


async def _answers(session: AsyncSession, ids: Iterable[int], topic: str) -> dict[int, int]:
    rows = await session.execute(
        select(QuestionRow.answered_by_id, func.count())
        .where(
            QuestionRow.answered_by_id.in_(list(ids)),
            QuestionRow.topic_key == topic,
            QuestionRow.status == "answered",
        )
        .group_by(QuestionRow.answered_by_id)
    )
    return {int(person): int(count) for person, count in rows.all() if person is not None}


async def _last_asked(session: AsyncSession, ids: Iterable[int]) -> dict[int, datetime]:
    rows = await session.execute(
        select(AssignmentRow.person_id, func.max(AssignmentRow.sent_at))
        .where(AssignmentRow.person_id.in_(list(ids)))
        .group_by(AssignmentRow.person_id)
    )
    return {int(person): at for person, at in rows.all() if person is not None and at}
