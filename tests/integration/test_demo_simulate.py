"""`evangelist demo simulate`: weeks of made-up participation for the demo organisation.

The simulation is run against a real (migrated) database, SQLite or PostgreSQL, and read back:
plausible and deterministic for a seed, replaced whole by the next run, never outside the weeks
asked for, never touching rows it did not make, and enough for a leader's digest to say
something.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import aliased

from bot.config.organisation import OrganisationConfig
from bot.core.clock import FrozenClock, as_utc
from bot.digests.compute import Period
from bot.digests.figures import ACTIVE_KINDS
from bot.digests.service import DigestService
from bot.digests.simulate import SimulationReport, remove_simulation, simulate
from bot.digests.weeks import week_of
from bot.storage.database import Database
from bot.storage.directory import sync_organisation
from bot.storage.models import (
    AssignmentRow,
    LinkFeedbackRow,
    LinkRow,
    LinkShareRow,
    NudgePreferenceRow,
    NudgeRow,
    ParticipationRow,
    PersonRow,
    QuestionRow,
)

# Wednesday 11 March 2026, 14:30 UTC.
NOW = datetime(2026, 3, 11, 14, 30, tzinfo=UTC)
KINDS = {*ACTIVE_KINDS, "question_routed", "ladder_up"}


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.close()


def _plain(value: Any) -> Any:
    return as_utc(value) if isinstance(value, datetime) else value


async def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row a simulation makes or sets, without surrogate ids (PostgreSQL never reuses
    them, so they differ from one run to the next)."""
    who, by = aliased(PersonRow), aliased(PersonRow)
    queries = {
        "events": select(
            who.key,
            ParticipationRow.kind,
            ParticipationRow.reference,
            ParticipationRow.at,
            ParticipationRow.details,
        ).join(who, who.id == ParticipationRow.person_id),
        "questions": select(
            QuestionRow.external_id,
            QuestionRow.status,
            QuestionRow.topic_key,
            QuestionRow.text,
            QuestionRow.created_at,
            QuestionRow.sla_due_at,
            QuestionRow.first_response_at,
            QuestionRow.answered_at,
            QuestionRow.answer_kind,
            by.key,
        ).outerjoin(by, by.id == QuestionRow.answered_by_id),
        "assignments": select(
            QuestionRow.external_id,
            who.key,
            AssignmentRow.kind,
            AssignmentRow.sent_at,
            AssignmentRow.outcome,
            AssignmentRow.outcome_at,
        )
        .join(QuestionRow, QuestionRow.id == AssignmentRow.question_id)
        .join(who, who.id == AssignmentRow.person_id),
        "nudges": select(
            NudgeRow.key,
            who.key,
            NudgeRow.campaign_key,
            NudgeRow.stage,
            NudgeRow.variant,
            NudgeRow.status,
            NudgeRow.sent_at,
            NudgeRow.response,
            NudgeRow.responded_at,
            LinkRow.url,
        )
        .join(who, who.id == NudgeRow.person_id)
        .outerjoin(LinkRow, LinkRow.id == NudgeRow.link_id),
        "links": select(LinkRow.url, LinkRow.title, LinkRow.source, LinkRow.status),
        "shares": select(
            LinkShareRow.key, LinkRow.url, who.key, LinkShareRow.week, LinkShareRow.shared_at
        )
        .join(LinkRow, LinkRow.id == LinkShareRow.link_id)
        .outerjoin(who, who.id == LinkShareRow.person_id),
        "feedback": select(LinkRow.url, who.key, LinkFeedbackRow.opens, LinkFeedbackRow.vote)
        .join(LinkRow, LinkRow.id == LinkFeedbackRow.link_id)
        .join(who, who.id == LinkFeedbackRow.person_id),
        "consent": select(PersonRow.key, PersonRow.recognition_at).where(
            PersonRow.recognition_at.is_not(None)
        ),
        "preferences": select(who.key, NudgePreferenceRow.stage, NudgePreferenceRow.stage_at).join(
            who, who.id == NudgePreferenceRow.person_id
        ),
    }
    found: dict[str, list[tuple[Any, ...]]] = {}
    async with db.transaction() as session:
        for name, query in queries.items():
            rows = (await session.execute(query)).all()
            found[name] = sorted((tuple(_plain(v) for v in row) for row in rows), key=repr)
    return found


async def count(db: Database, model: type[Any]) -> int:
    async with db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def run(
    db: Database, org: OrganisationConfig, weeks: int = 8, seed: int = 1
) -> SimulationReport:
    return await simulate(db, org, NOW, weeks=weeks, seed=seed)


async def test_plausible_and_the_same_for_the_same_seed(
    db: Database, organisation: OrganisationConfig
) -> None:
    first = await run(db, organisation)
    assert first.people == 19 and first.weeks == 8 and first.removed == 0
    assert 6 * 7 <= first.questions <= 15 * 8 + 2
    assert first.answered >= 0.8 * first.questions
    assert 1 <= first.open_questions <= 2
    assert 0 < first.sla_missed < first.questions / 4
    assert 19 * 8 * 0.3 <= first.nudges <= 19 * 8
    assert 0 < first.ladder_up <= first.nudges_done < first.nudges
    assert first.links == 8 and first.link_opens > 0 and first.experiments > 0
    assert first.comments > 0 and first.reactions > 0
    assert first.consent_set == first.people_consenting == 6
    assert "8 weeks for 19 people" in first.describe()
    before = await snapshot(db)

    again = await run(db, organisation)

    assert again == first
    assert again.removed > first.events
    assert "was removed first" in again.describe()
    assert await snapshot(db) == before
    assert await count(db, ParticipationRow) == first.events == len(before["events"])
    assert await count(db, QuestionRow) == first.questions
    assert await count(db, NudgeRow) >= first.nudges
    assert len(before["consent"]) == 6


async def test_another_seed_makes_another_history(
    db: Database, organisation: OrganisationConfig
) -> None:
    one = await run(db, organisation, seed=1)
    first = await snapshot(db)
    two = await run(db, organisation, seed=2)
    assert two != one
    second = await snapshot(db)
    assert second["events"] != first["events"]
    assert second["questions"] != first["questions"]
    # The second run replaced the first: nothing of seed 1 is left over.
    assert await count(db, ParticipationRow) == two.events


async def test_everything_happens_within_the_weeks_asked_for(
    db: Database, organisation: OrganisationConfig
) -> None:
    report = await run(db, organisation, weeks=52, seed=7)
    start = NOW - timedelta(weeks=52)
    assert report.start == start and report.end == NOW
    rows = await snapshot(db)

    def inside(*moments: datetime | None) -> bool:
        return all(start <= m < NOW for m in moments if m is not None)

    assert all(inside(at) for _, _, _, at, _ in rows["events"])
    assert {kind for _, kind, *_ in rows["events"]} <= KINDS
    assert all(reference.startswith("sim:") for _, _, reference, *_ in rows["events"])
    assert all(inside(q[4], q[6], q[7]) for q in rows["questions"])
    assert all(inside(a[3], a[5]) for a in rows["assignments"])
    assert all(inside(n[6], n[8]) for n in rows["nudges"])
    assert all(inside(s[4]) for s in rows["shares"])
    assert all(inside(at) for _, at in rows["consent"])
    # Over a year the weeks differ: the busiest has well over the quietest.
    weekly: dict[int, int] = {}
    for _, _, _, at, _ in rows["events"]:
        index = int((at - start) / timedelta(weeks=1))
        weekly[index] = weekly.get(index, 0) + 1
    assert len(weekly) == 52
    assert max(weekly.values()) > 1.5 * min(weekly.values())


async def test_rows_it_did_not_make_are_left_alone(
    db: Database, organisation: OrganisationConfig
) -> None:
    earlier = NOW - timedelta(days=3)
    async with db.transaction() as session:
        await sync_organisation(session, organisation, earlier)
        rows = (await session.execute(select(PersonRow.key, PersonRow.id))).all()
        ids = {key: pid for key, pid in rows}
        session.add(
            ParticipationRow(
                person_id=ids["ravi"], kind="question_answered", reference="question:1", at=earlier
            )
        )
        session.add(
            NudgePreferenceRow(person_id=ids["ben"], stage="share", stopped=[], updated_at=earlier)
        )
        await session.execute(
            update(PersonRow).where(PersonRow.key == "amara").values(recognition_at=earlier)
        )
    real = await snapshot(db)

    await run(db, organisation)
    simulated = await snapshot(db)
    assert all(event in simulated["events"] for event in real["events"])
    assert ("ben", "share", None) in simulated["preferences"]
    assert ("amara", earlier) in simulated["consent"]

    # Someone the simulation set to be named says `recognition on` again later: theirs now.
    chosen = next(key for key, _ in simulated["consent"] if key != "amara")
    async with db.transaction() as session:
        await session.execute(
            update(PersonRow).where(PersonRow.key == chosen).values(recognition_at=NOW)
        )
    await run(db, organisation, seed=3)
    async with db.transaction() as session:
        assert await remove_simulation(session) > 0

    assert await snapshot(db) == {
        **real,
        "consent": sorted([*real["consent"], (chosen, NOW)], key=repr),
    }


@pytest.mark.parametrize("weeks", [0, 53, -1])
async def test_weeks_must_be_one_to_fifty_two(
    db: Database, organisation: OrganisationConfig, weeks: int
) -> None:
    with pytest.raises(ValueError, match=f"between 1 and 52, not {weeks}"):
        await run(db, organisation, weeks=weeks)
    assert await count(db, ParticipationRow) == 0


async def test_a_single_week_still_makes_a_history(
    db: Database, organisation: OrganisationConfig
) -> None:
    report = await run(db, organisation, weeks=1)
    assert report.questions > 0 and report.nudges > 0 and report.open_questions >= 1
    rows = await snapshot(db)
    assert all(NOW - timedelta(weeks=1) <= at < NOW for _, _, _, at, _ in rows["events"])


async def test_a_leaders_digest_has_something_to_say(
    db: Database, organisation: OrganisationConfig
) -> None:
    await run(db, organisation)
    service = DigestService(db, FrozenClock(NOW), organisation)
    async with db.transaction() as session:
        structure = await service.structure(session)
        grace = next(m for m in structure.people.values() if m.key == "grace")
        period = Period.complete(week_of(NOW, grace.zone).shifted(-1))
        [(_, figures)] = await service.compute(
            session, [(structure.scope_of(grace), period)], structure
        )

    assert figures.people >= 5
    assert figures.this is not None and figures.previous is not None
    assert figures.this.active > 0 and figures.this.nudges_sent > 0
    assert figures.desk.answered > 0 and figures.desk.routed > 0
    assert figures.desk.median_minutes is not None
    assert len(figures.trend) == 9
    assert sum(1 for point in figures.trend if point.rate) >= 6
    assert sum(point.answered for point in figures.trend) > 0
    assert figures.groups and figures.topics
    assert figures.oldest is not None and figures.oldest.hours > 0
    assert figures.recognised or figures.others
