"""Expertise that learns: who knows which topic, from what people do with its questions.

The organisation file names each topic's experts with a weight: the evangelist's opinion. The
desk adds evidence from what happens to routed questions and keeps one score per person and
topic:

- answered a question on the topic: +1.0 (the strongest evidence there is);
- claimed one ("I'll answer"): +0.3 (they judged it theirs, but have not answered yet);
- "Not me: wrong topic": -1.0 (they say the topic is not theirs);
- released a claim ("I can't after all", or silence after the reminder): -0.3, which takes back
  the claim's +0.3: a claim that came to nothing says nothing either way;
- "Not me: busy", a routed question left unclaimed, away or paused: 0. They are about time,
  not knowledge; counting them would teach the desk to stop asking its busiest experts.

Evidence fades with a half-life (90 days by default), so what someone did last month counts
for more than what they did last year and one bad week is forgotten within months. The score
is stored with the moment it is valid for and decayed lazily, on read and on write:
`score * 0.5 ** (elapsed / half_life)`; nothing needs a job to age it.

The effective weight the router ranks by (see `Rule.weight`):

1. the evangelist's override, when there is one (0 means: never ask them about this topic);
2. else, for a configured expert, the configured weight plus a bonus that grows with positive
   evidence but never exceeds `bonus_cap` (tanh), so nobody runs away with a topic; negative
   evidence instead takes a *share* of the configured weight, all of it at `exclude_at` (three
   recent wrong-topic declines, net of answers), so it means the same at weight 3 as at 1;
3. else (not configured) an "emerging expert" once the score reaches `emerging_at`, about
   three answers in three weeks, and only while it stays there. Their weight is the bonus
   alone, below 1.0, so a free configured expert with the default weight still comes first.
   The evangelist never emerges: answering as the last resort is their job, not a wish to be
   asked first;
4. else 0. A weight of 0 (the floor; it never goes below) means the person is not asked.

Time is an argument everywhere here; the caller's clock decides what "now" is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.clock import as_utc
from bot.storage.database import insert_for
from bot.storage.models import ExpertiseRow

MAX_OVERRIDE = 3.0
"""The largest weight the evangelist can set (configured weights are usually 1 to 3)."""


class Evidence(StrEnum):
    ANSWERED = "answered"
    CLAIMED = "claimed"
    DECLINED_TOPIC = "declined_topic"
    RELEASED = "released"
    BUSY = "busy"


@dataclass(frozen=True)
class Rule:
    """The learning rule's numbers. Pure: every method takes the time it needs."""

    half_life: timedelta = timedelta(days=90)
    answered: float = 1.0
    claimed: float = 0.3
    declined_topic: float = -1.0
    released: float = -0.3
    busy: float = 0.0
    bonus_cap: float = 1.0
    """The most positive evidence can add to a weight."""
    bonus_scale: float = 2.0
    """The score at which the bonus is tanh(1) ≈ 76% of the cap."""
    exclude_at: float = 3.0
    """A score this negative takes a configured expert's whole weight."""
    emerging_at: float = 2.5
    """The score from which someone who is not configured becomes a candidate: three answers
    within about three weeks (or four within two months), never claims alone."""
    floor: float = 0.0

    def points(self, evidence: Evidence) -> float:
        return {
            Evidence.ANSWERED: self.answered,
            Evidence.CLAIMED: self.claimed,
            Evidence.DECLINED_TOPIC: self.declined_topic,
            Evidence.RELEASED: self.released,
            Evidence.BUSY: self.busy,
        }[evidence]

    def decayed(self, score: float, since: datetime, now: datetime) -> float:
        """`score`, valid at `since`, as it stands at `now` (never grown by a clock going back)."""
        elapsed = max(0.0, (as_utc(now) - as_utc(since)).total_seconds())
        return score * math.pow(0.5, elapsed / self.half_life.total_seconds())

    def add(self, score: float, since: datetime, now: datetime, evidence: Evidence) -> float:
        """The score after `evidence` at `now`."""
        return self.decayed(score, since, now) + self.points(evidence)

    def bonus(self, score: float) -> float:
        """What positive evidence adds: bounded by `bonus_cap`; nothing for a negative score."""
        return self.bonus_cap * math.tanh(max(0.0, score) / self.bonus_scale)

    def emerging(self, configured: float, score: float) -> bool:
        return configured <= 0 and score >= self.emerging_at

    def weight(
        self,
        configured: float,
        score: float,
        override: float | None = None,
        *,
        can_emerge: bool = True,
    ) -> float:
        """The effective weight from the configured weight (0: not configured), the decayed
        score and the override. At most `floor` (0) means: do not ask."""
        if override is not None:
            return max(self.floor, override)
        if configured > 0:
            if score >= 0:
                weight = configured + self.bonus(score)
            else:
                weight = configured * (1.0 - min(1.0, -score / self.exclude_at))
        elif can_emerge and self.emerging(configured, score):
            weight = self.bonus(score)
        else:
            weight = 0.0
        return max(self.floor, weight)


RULE = Rule()


@dataclass(frozen=True)
class Weight:
    """A person's effective weight on a topic at one moment, and what it rests on."""

    value: float
    score: float
    """The learned score, decayed to that moment."""
    basis: str
    """'override', 'configured', 'emerging' or 'none' (not a candidate)."""


def weigh(
    configured: float,
    row: ExpertiseRow | None,
    now: datetime,
    *,
    evangelist: bool = False,
    rule: Rule = RULE,
) -> Weight:
    """The effective weight of someone configured at `configured` (0: not) with `row`.

    The evangelist never emerges as an expert: answering as the last resort is their job.
    """
    score = rule.decayed(row.learned, row.learned_at, now) if row is not None else 0.0
    override = row.override if row is not None else None
    value = rule.weight(configured, score, override, can_emerge=not evangelist)
    if override is not None:
        basis = "override"
    elif configured > 0:
        basis = "configured"
    else:
        basis = "emerging" if value > 0 else "none"
    return Weight(value, score, basis)


# -- the table ------------------------------------------------------------------------------


async def record(
    session: AsyncSession,
    *,
    person_id: int,
    topic_key: str | None,
    evidence: Evidence,
    now: datetime,
    rule: Rule = RULE,
) -> None:
    """Add `evidence` about `person_id` on `topic_key`, in the caller's transaction."""
    if not topic_key or rule.points(evidence) == 0:
        return  # no evidence (busy): no row either
    row = await _locked(session, person_id, topic_key[:100], now)
    row.learned = rule.add(row.learned, row.learned_at, now, evidence)
    row.learned_at = max(as_utc(row.learned_at), now)
    if evidence is Evidence.ANSWERED:
        row.answers += 1
    elif evidence is Evidence.CLAIMED:
        row.claims += 1
    elif evidence is Evidence.DECLINED_TOPIC:
        row.declines += 1
    row.updated_at = now


async def set_override(
    session: AsyncSession,
    *,
    person_id: int,
    topic_key: str,
    weight: float,
    by: str,
    now: datetime,
    note: str | None = None,
) -> float | None:
    """Fix a person's weight on a topic; returns the override it replaced."""
    if not 0 <= weight <= MAX_OVERRIDE or math.isnan(weight):
        raise ValueError(f"the weight must be between 0 and {MAX_OVERRIDE:g}")
    row = await _locked(session, person_id, topic_key[:100], now)
    before = row.override
    row.override, row.overridden_by, row.overridden_at = weight, by[:100], now
    row.note = note[:300] if note else None
    row.updated_at = now
    return before


async def reset(session: AsyncSession, *, person_id: int, topic_key: str, now: datetime) -> bool:
    """Back to the configured weight: drop the override and forget the learned score.

    The counts stay (they are history); learning starts again from this moment. Returns False
    when there was nothing to reset.
    """
    row = await session.scalar(
        select(ExpertiseRow).where(
            ExpertiseRow.person_id == person_id, ExpertiseRow.topic_key == topic_key
        )
    )
    if row is None:
        return False
    if row.answers == row.claims == row.declines == 0:
        await session.execute(delete(ExpertiseRow).where(ExpertiseRow.id == row.id))
        return True
    row.override, row.overridden_by, row.overridden_at, row.note = None, None, None, None
    row.learned, row.learned_at, row.updated_at = 0.0, now, now
    return True


async def rows_for(
    session: AsyncSession, *, topic_key: str | None = None, person_id: int | None = None
) -> list[ExpertiseRow]:
    query = select(ExpertiseRow).order_by(ExpertiseRow.topic_key, ExpertiseRow.person_id)
    if topic_key is not None:
        query = query.where(ExpertiseRow.topic_key == topic_key)
    if person_id is not None:
        query = query.where(ExpertiseRow.person_id == person_id)
    return list((await session.scalars(query)).all())


async def _locked(
    session: AsyncSession, person_id: int, topic_key: str, now: datetime
) -> ExpertiseRow:
    """The row, created if missing and locked for this transaction.

    Insert-if-absent first, so two transactions learning about the same person at once both
    find the row; then SELECT … FOR UPDATE (PostgreSQL; SQLite already holds the write lock
    after the insert), so the read-decay-write cannot lose the other's evidence.
    """
    insert = insert_for(session)
    await session.execute(
        insert(ExpertiseRow)
        .values(
            person_id=person_id,
            topic_key=topic_key,
            learned=0.0,
            learned_at=now,
            answers=0,
            claims=0,
            declines=0,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["person_id", "topic_key"])
    )
    row = await session.scalar(
        select(ExpertiseRow)
        .where(ExpertiseRow.person_id == person_id, ExpertiseRow.topic_key == topic_key)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert row is not None
    return row
