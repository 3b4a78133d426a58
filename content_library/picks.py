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

import heapq
import time
import zlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config.organisation import OrganisationConfig
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
from content_library.store import ACTIVE, SHAREABLE, insert_for
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
    # A small, stable spread, so people with the same profile do not all get the same link.
    fit += (zlib.crc32(f"{person_id}:{candidate.id}".encode()) % 1000) / 10_000
    return fit


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
        self._pool: list[Candidate] | None = None
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
        topics = await self.topics_of(session, person_id)
        ranked = heapq.nlargest(
            SHORTLIST,
            (c for c in pool if c.id not in given),
            key=lambda c: score(c, stage, topics, person_id),
        )
        for candidate in ranked:
            link = await session.get(LinkRow, candidate.id)
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
        key = await session.scalar(select(PersonRow.key).where(PersonRow.id == person_id))
        topics = set(self._configured.get(key or "", ()))
        for topic, override, answers, claims in await session.execute(
            select(
                ExpertiseRow.topic_key,
                ExpertiseRow.override,
                ExpertiseRow.answers,
                ExpertiseRow.claims,
            ).where(ExpertiseRow.person_id == person_id)
        ):
            if override is not None and override <= 0:
                topics.discard(topic.lower())
            elif override is not None or answers or claims:
                topics.add(topic.lower())
        teams = await session.scalars(
            select(TeamRow.key)
            .join(TeamMemberRow, TeamMemberRow.team_id == TeamRow.id)
            .where(TeamMemberRow.person_id == person_id, TeamMemberRow.is_member.is_(True))
        )
        topics.update(team.lower() for team in teams)
        return frozenset(topics)

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

    async def _candidates(self, session: AsyncSession) -> list[Candidate]:
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
        self._pool = [
            Candidate(
                id=link_id,
                topics=frozenset(t.lower() for t in topics or ()),
                level=Stage(level) if level in Stage._value2member_map_ else None,
                votes=int(net or 0),
            )
            for link_id, topics, level, net in rows
        ]
        self._loaded_at = self._monotonic()
        return self._pool


def iso_week(at: datetime) -> str:
    """'2026-W09': the ISO week a moment falls in (in the moment's own time zone)."""
    year, week, _ = at.isocalendar()
    return f"{year}-W{week:02d}"
