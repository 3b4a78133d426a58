"""Personal picks: the library link that suits one person best and that they never had.

A pick travels inside a nudge (a campaign whose message uses `{link}`), so it obeys the nudge
policy; this module only chooses. Never twice: a pick is recorded in `link_shares`, whose
(link, person) pair is unique, in the transaction that sends the nudge. Two replicas picking
the same link for the same person at once insert one row; the loser picks again.

The pool of links in circulation is read once and kept for `POOL_SECONDS` (or until the
library changes in this process), so a run sending thousands of nudges does not read every
link for every person.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config.organisation import OrganisationConfig
from bot.storage.database import insert_for
from bot.storage.models import (
    ExpertiseRow,
    LinkFeedbackRow,
    LinkRow,
    LinkShareRow,
    PersonRow,
    TeamMemberRow,
    TeamRow,
)
from content_library import messages
from content_library.store import ACTIVE, SHAREABLE
from nudges.config import Stage
from nudges.messages import LinkPick

POOL_SECONDS = 60.0
SHORTLIST = 20
"""Best candidates tried in turn when the first was taken or changed since the pool was read."""
TOPIC_MATCH, GENERAL = 3.0, 1.0
"""A link on one of the person's topics beats anything else; one with no topics suits anyone."""


@dataclass(frozen=True, slots=True)
class Candidate:
    id: int
    topics: frozenset[str]
    level: Stage | None
    votes: int
    """Helpful minus not-for-me presses."""


def score(candidate: Candidate, stage: Stage, topics: frozenset[str], person_id: int) -> float:
    """How well a link suits a person at `stage` with `topics` (higher is better)."""
    on_topic = TOPIC_MATCH if candidate.topics & topics else 0.0
    fit = on_topic if candidate.topics else GENERAL
    fit += level_fit(candidate.level, stage)
    fit += 0.3 * max(-3, min(3, candidate.votes))
    return fit + spread(candidate.id, person_id)


def spread(link_id: int, person_id: int) -> float:
    """A small, stable amount (under 0.1) so people with the same profile do not all get the
    same link. The same arithmetic as `Pool.scores`, which does it for every link at once."""
    return (((link_id * _MIX) ^ (person_id * _MIX_PERSON)) % 1000) / 10_000


def level_fit(level: Stage | None, stage: Stage) -> float:
    """The next rung is what a nudge asks for; far above it is too much too soon."""
    if level is None:
        return 1.0
    if level is stage.next:
        return 2.0
    if level is stage:
        return 1.5
    if level.rank < stage.rank:
        return 0.5
    return 0.0


_MIX, _MIX_PERSON = 2_654_435_761, 40_503
"""Multiplicative hashing constants (Knuth); link ids stay far below 2**33, so the products
fit numpy's int64."""
NO_LEVEL = len(Stage)
"""The level code of a link that suits everyone."""
LEVEL_FIT = np.array(
    [[level_fit(level, stage) for level in (*Stage, None)] for stage in Stage],
    dtype=np.float64,
)
"""level_fit by (stage rank, level code)."""


class Pool:
    """The links in circulation, laid out so one person's scores are a few array operations
    (about 10,000 links in well under a millisecond) instead of a loop over every link."""

    def __init__(self, candidates: Sequence[Candidate]) -> None:
        self.candidates = list(candidates)
        self.ids = np.array([c.id for c in candidates], dtype=np.int64)
        self.position = {c.id: i for i, c in enumerate(candidates)}
        self.has_topics = np.array([bool(c.topics) for c in candidates], dtype=bool)
        self.level = np.array(
            [c.level.rank if c.level is not None else NO_LEVEL for c in candidates], dtype=np.int64
        )
        self.votes = 0.3 * np.clip(np.array([c.votes for c in candidates], dtype=np.float64), -3, 3)
        by_topic: dict[str, list[int]] = defaultdict(list)
        for i, c in enumerate(candidates):
            for topic in c.topics:
                by_topic[topic].append(i)
        self.by_topic = {t: np.array(p, dtype=np.int64) for t, p in by_topic.items()}

    def __len__(self) -> int:
        return len(self.candidates)

    def scores(self, stage: Stage, topics: frozenset[str], person_id: int) -> np.ndarray:
        """`score` for every link, in pool order."""
        fit = np.where(self.has_topics, 0.0, GENERAL)
        for topic in topics:
            if (positions := self.by_topic.get(topic)) is not None:
                fit[positions] = TOPIC_MATCH
        fit += LEVEL_FIT[stage.rank][self.level]
        fit += self.votes
        mixed = np.bitwise_xor(self.ids * _MIX, person_id * _MIX_PERSON) % 1000
        return fit + mixed / 10_000

    def best(
        self, stage: Stage, topics: frozenset[str], person_id: int, given: set[int], count: int
    ) -> list[int]:
        """The ids of the `count` best links the person was not given, best first."""
        if not self.candidates:
            return []
        fit = self.scores(stage, topics, person_id)
        taken = [self.position[i] for i in given if i in self.position]
        fit[taken] = -np.inf
        count = min(count, len(fit))
        top = np.argpartition(-fit, count - 1)[:count]
        top = top[np.argsort(-fit[top], kind="stable")]
        return [int(self.ids[i]) for i in top if fit[i] != -np.inf]


class Picker:
    """Chooses and records personal picks (the `LinkPicker` the nudge service calls)."""

    def __init__(
        self, organisation: OrganisationConfig, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._configured: dict[str, set[str]] = defaultdict(set)
        for topic in organisation.topics:
            for expert in topic.experts:
                self._configured[expert.person].add(topic.id.lower())
        self._monotonic = monotonic
        self._pool: Pool | None = None
        self._topics: dict[int, frozenset[str]] = {}
        """Everyone's topics, read with the pool (a send batch picks for many people)."""
        self._loaded_at = 0.0

    def forget(self) -> None:
        """The library changed: read the pool again on the next pick."""
        self._pool = None

    async def pick(
        self,
        session: AsyncSession,
        person_id: int,
        stage: Stage,
        now: datetime,
        *,
        nudge_id: int | None,
    ) -> LinkPick | None:
        pool = await self._candidates(session)
        given = set(
            (
                await session.scalars(
                    select(LinkShareRow.link_id).where(LinkShareRow.person_id == person_id)
                )
            ).all()
        )
        topics = self._topics.get(person_id)
        if topics is None:  # someone new since the pool was read
            topics = self._topics[person_id] = await self.topics_of(session, person_id)
        for link_id in pool.best(stage, topics, person_id, given, SHORTLIST):
            link = await session.get(LinkRow, link_id)
            if link is None or link.status != ACTIVE or link.health not in SHAREABLE:
                continue  # changed since the pool was read
            if nudge_id is None or await self._record(session, link, person_id, nudge_id, now):
                return messages.pick_of(link)
        return None

    async def pick_of(self, session: AsyncSession, link_id: int) -> LinkPick | None:
        link = await session.get(LinkRow, link_id)
        return messages.pick_of(link) if link is not None else None

    async def topics_of(self, session: AsyncSession, person_id: int) -> frozenset[str]:
        """The topics they know (configured or learned, not overridden to 0) and their teams."""
        found = await self.topics(session, [person_id])
        return found.get(person_id, frozenset())

    async def topics(
        self, session: AsyncSession, person_ids: Sequence[int] | None = None
    ) -> dict[int, frozenset[str]]:
        """`topics_of` for many people (everyone when None) in three queries."""

        def only(query: Any, column: Any) -> Any:
            return query if person_ids is None else query.where(column.in_(list(person_ids)))

        keys = await session.execute(only(select(PersonRow.id, PersonRow.key), PersonRow.id))
        found: dict[int, set[str]] = {pid: set(self._configured.get(key, ())) for pid, key in keys}
        expertise = select(
            ExpertiseRow.person_id,
            ExpertiseRow.topic_key,
            ExpertiseRow.override,
            ExpertiseRow.answers,
            ExpertiseRow.claims,
        )
        for person_id, topic, override, answers, claims in await session.execute(
            only(expertise, ExpertiseRow.person_id)
        ):
            mine = found.setdefault(person_id, set())
            if override is not None and override <= 0:
                mine.discard(topic.lower())
            elif override is not None or answers or claims:
                mine.add(topic.lower())
        teams = (
            select(TeamMemberRow.person_id, TeamRow.key)
            .join(TeamRow, TeamRow.id == TeamMemberRow.team_id)
            .where(TeamMemberRow.is_member.is_(True))
        )
        for person_id, team in await session.execute(only(teams, TeamMemberRow.person_id)):
            found.setdefault(person_id, set()).add(team.lower())
        return {pid: frozenset(topics) for pid, topics in found.items()}

    async def _record(
        self, session: AsyncSession, link: LinkRow, person_id: int, nudge_id: int, now: datetime
    ) -> bool:
        result = await session.execute(
            insert_for(session)(LinkShareRow)
            .values(
                key=f"pick:{nudge_id}",
                link_id=link.id,
                kind="pick",
                person_id=person_id,
                week=iso_week(now),
                nudge_id=nudge_id,
                shared_at=now,
            )
            .on_conflict_do_nothing()
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def _candidates(self, session: AsyncSession) -> Pool:
        fresh = self._monotonic() - self._loaded_at < POOL_SECONDS
        if self._pool is not None and fresh:
            return self._pool
        featured = select(LinkShareRow.link_id).where(LinkShareRow.kind == "weekly")
        votes = (
            select(
                LinkFeedbackRow.link_id,
                func.sum(
                    case((LinkFeedbackRow.vote > 0, 1), (LinkFeedbackRow.vote < 0, -1), else_=0)
                ).label("net"),
            )
            .group_by(LinkFeedbackRow.link_id)
            .subquery()
        )
        rows = await session.execute(
            select(LinkRow.id, LinkRow.topics, LinkRow.level, votes.c.net)
            .outerjoin(votes, votes.c.link_id == LinkRow.id)
            .where(
                LinkRow.status == ACTIVE,
                LinkRow.health.in_(SHAREABLE),
                # Everyone in the channels saw the links of the week.
                LinkRow.id.not_in(featured),
            )
        )
        self._pool = Pool(
            [
                Candidate(
                    id=link_id,
                    topics=frozenset(t.lower() for t in topics or ()),
                    level=Stage(level) if level in Stage._value2member_map_ else None,
                    votes=int(net or 0),
                )
                for link_id, topics, level, net in rows
            ]
        )
        self._topics = await self.topics(session)
        self._loaded_at = self._monotonic()
        return self._pool


def iso_week(at: datetime) -> str:
    """'2026-W09': the ISO week a moment falls in (in the moment's own time zone)."""
    year, week, _ = at.isocalendar()
    return f"{year}-W{week:02d}"
