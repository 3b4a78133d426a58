"""Leader digests: computed once a week for each leader, stored, and sent through the outbox.

Each leader gets last week's digest at their own local time (Monday 09:00 unless the file
says otherwise). The weekly job runs every few minutes: a leader whose moment has passed and
who has no snapshot for last week gets one. The snapshot and its outbox rows are written in one
transaction, and (leader, week) is unique, so a job that runs twice, on any replica, sends one
digest. A service that was down catches up later the same week.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config.base import WEEKDAYS
from bot.config.organisation import OrganisationConfig
from bot.core.clock import Clock
from bot.core.errors import ConfigurationError
from bot.core.ports import LanguageModel
from bot.core.types import Address, OutgoingMessage, Platform
from bot.delivery import outbox
from bot.digests import chart, render
from bot.digests.compute import Calculator, Period
from bot.digests.figures import DigestFigures
from bot.digests.ledger import read_segments
from bot.digests.narrative import narrate
from bot.digests.questions import read_questions
from bot.digests.scope import Member, Scope, Structure, load_structure
from bot.digests.weeks import Week, parse_week, week_of
from bot.storage import directory
from bot.storage.database import Database, insert_for
from bot.storage.models import DigestRow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Digest:
    """One digest, ready to store, send or write out."""

    scope: Scope
    figures: DigestFigures
    narrative: str
    source: str
    """'model' or 'template'."""

    def message(self) -> OutgoingMessage:
        return render.message(self.figures, self.narrative)

    def markdown(self, chart_file: str | None) -> str:
        return render.markdown(self.figures, self.narrative, chart_file)


class DigestService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        organisation: OrganisationConfig,
        *,
        platforms: Iterable[str] = (),
        on_enqueued: Callable[[], None] = lambda: None,
        language_model: LanguageModel | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.org = organisation
        self.config = organisation.digests
        self.platforms = list(platforms)
        self.on_enqueued = on_enqueued
        self.model = language_model if self.config.narrative else None
        self.topic_names = {t.id: t.name for t in organisation.topics}
        self._quiet_until: datetime | None = None

    # -- computing ------------------------------------------------------------------------

    async def structure(self, session: AsyncSession) -> Structure:
        return await load_structure(session, self.org.organisation.name)

    async def compute(
        self, session: AsyncSession, work: list[tuple[Scope, Period]], structure: Structure
    ) -> list[tuple[Scope, DigestFigures]]:
        """Figures for each (scope, period); scopes sharing a period share its reads."""
        if not work:
            return []
        by_period: dict[Period, list[Scope]] = {}
        for scope, period in work:
            by_period.setdefault(period, []).append(scope)
        done: list[tuple[Scope, DigestFigures]] = []
        # One read for every period: leaders in other time zones have other weeks.
        edges = sorted({b for period in by_period for b in period.bounds})
        segments = await read_segments(session, edges)
        book = await read_questions(session, edges[0], edges[-1])
        for period, scopes in by_period.items():
            calculator = Calculator(
                period,
                segments.ledger(period.bounds, frozenset().union(*(s.people for s in scopes))),
                book,
                people=structure.people,
                min_group=self.config.min_group,
                topic_names=self.topic_names,
            )
            done += [(scope, calculator.figures(scope)) for scope in scopes]
        return done

    async def digests(self, work: list[tuple[Scope, Period]], structure: Structure) -> list[Digest]:
        async with self.db.transaction() as session:
            computed = await self.compute(session, work, structure)
        out = []
        for scope, figures in computed:
            text, source = await narrate(figures, self.model)
            out.append(Digest(scope, figures, text, source))
        return out

    # -- the weekly job -------------------------------------------------------------------

    @property
    def quiet_until(self) -> datetime | None:
        """Until then the weekly job reads nothing (everything due went out)."""
        return self._quiet_until

    def moment(self, leader: Member, week: Week) -> datetime | None:
        """When, in `week`, this leader gets the digest of the week before (None: never)."""
        enabled, day, at = self.config.schedule_of(leader.key)
        if not enabled:
            return None
        local = datetime.combine(
            week.monday + timedelta(days=WEEKDAYS.index(day)), at, ZoneInfo(leader.zone)
        )
        return local.astimezone(UTC)

    def due_week(self, leader: Member, now: datetime) -> Week | None:
        """Last week, if this leader's moment to get it has come (this week, their time)."""
        this = week_of(now, leader.zone)
        moment = self.moment(leader, this)
        return this.shifted(-1) if moment is not None and now >= moment else None

    def _next_moment(self, leaders: list[Member], now: datetime) -> datetime | None:
        """The first moment after `now` at which some leader's digest falls due."""
        found = []
        for leader in leaders:
            this = week_of(now, leader.zone)
            for week in (this, this.shifted(1)):
                moment = self.moment(leader, week)
                if moment is not None and moment > now:
                    found.append(moment)
                    break
        return min(found, default=None)

    async def run_due(self, now: datetime | None = None) -> int:
        """Send every digest that is due and not sent; the number sent."""
        now = now or self.clock.now()
        if not self.config.enabled or (self._quiet_until is not None and now < self._quiet_until):
            # Everyone has had what is due: nothing is read until someone's moment comes.
            return 0
        async with self.db.transaction() as session:
            structure = await self.structure(session)
            wanted = [(m, w) for m in structure.leaders() if (w := self.due_week(m, now))]
            # Leaders come from the organisation file, read at start: once this run's work is
            # done, nothing new can fall due before the next leader's moment.
            quiet_until = self._next_moment(structure.leaders(), now)
            if not wanted:
                self._quiet_until = quiet_until
                return 0
            have = {
                (leader_id, week)
                for leader_id, week in await session.execute(
                    select(DigestRow.leader_id, DigestRow.week).where(
                        DigestRow.week.in_({w.label for _, w in wanted})
                    )
                )
            }
        work = [
            (structure.scope_of(m), Period.complete(w))
            for m, w in wanted
            if (m.id, w.label) not in have
        ]
        sent = 0
        for digest in await self.digests(work, structure) if work else []:
            sent += await self.deliver(digest, now)
        if sent:
            self.on_enqueued()
        self._quiet_until = quiet_until  # only after everything due went out
        return sent

    async def deliver(self, digest: Digest, now: datetime) -> int:
        """Store the week's snapshot and queue the message and chart; 0 if already there."""
        leader = digest.scope.leader
        assert leader is not None
        f = digest.figures
        key = f"digest:{f.week}:{leader.key}"
        async with self.db.transaction() as session:
            address = await directory.address_of(session, leader.id, self.platforms)
        png = await self.chart(f, address)
        async with self.db.transaction() as session:
            insert = insert_for(session)
            stored = await session.execute(
                insert(DigestRow)
                .values(
                    leader_id=leader.id,
                    week=f.week,
                    zone=f.zone,
                    scope=f.scope[:300],
                    figures=f.to_dict(),
                    narrative=digest.narrative,
                    narrative_source=digest.source,
                    message_key=key,
                    created_at=now,
                )
                .on_conflict_do_nothing(index_elements=["leader_id", "week"])
            )
            if not stored.rowcount:  # type: ignore[attr-defined]
                return 0
            if address is None:
                log.warning("digest for %s stored but not sent: no way to reach them", leader.key)
                return 0
            await self.enqueue(session, digest, address, key, png, now, leader.id)
        return 1

    async def chart(self, figures: DigestFigures, address: Address | None) -> bytes:
        # Drawing takes a few hundred milliseconds of CPU: not on the event loop.
        compact = address is not None and address.platform is Platform.TEAMS
        return await asyncio.to_thread(chart.render, figures, compact=compact)

    async def enqueue(
        self,
        session: AsyncSession,
        digest: Digest,
        address: Address,
        key: str,
        png: bytes,
        now: datetime,
        person_id: int,
    ) -> None:
        """The message, then the chart once the message is out (in that order)."""
        await outbox.enqueue(
            session,
            key=key,
            address=address,
            message=digest.message(),
            now=now,
            person_id=person_id,
        )
        f = digest.figures
        await outbox.enqueue(
            session,
            key=f"{key}:chart",
            address=address,
            message=OutgoingMessage(text=f"Participation chart: {f.scope}, {f.week}"),
            operation="upload",
            attachment=png,
            now=now,
            person_id=person_id,
            after_key=key,
            extra={
                "filename": f"participation-{f.week}.png",
                "title": f"Participation: {f.scope}, {f.week}",
                "alt_text": chart.alt_text(f),
            },
        )

    # -- on request -----------------------------------------------------------------------

    async def preview(self, week_text: str, email: str | None, now: datetime) -> list[Digest]:
        """The digests `--week` would bring one leader (by email) or every leader, unsent."""
        async with self.db.transaction() as session:
            structure = await self.structure(session)
        if email is not None:
            members = [self._leader_by_email(structure, email)]
        else:
            members = structure.leaders()
            if not members:
                raise ConfigurationError("--all: the organisation file names no team leaders")
        work = []
        for member in members:
            week = parse_week(week_text, member.zone)
            period = Period(week, now, True) if week.end > now else Period.complete(week)
            work.append((structure.scope_of(member), period))
        return await self.digests(work, structure)

    def _leader_by_email(self, structure: Structure, email: str) -> Member:
        person = next((p for p in self.org.people if p.email == email.strip().lower()), None)
        if person is None:
            raise ConfigurationError(
                f"--leader {email!r}: nobody in the organisation file has this email"
            )
        member = next(m for m in structure.people.values() if m.key == person.id)
        evangelist = any(p.id == person.id for p in self.org.evangelists())
        if member.id not in structure.leads and not evangelist:
            raise ConfigurationError(
                f"--leader {email!r}: {person.name} leads no team in the organisation file"
            )
        return member

    async def so_far(self, person_key: str, address: Address, now: datetime) -> Digest | None:
        """'This week so far' for a leader (their scope) or an evangelist (the organisation),
        queued to `address`; None when they lead nothing and are not the evangelist."""
        async with self.db.transaction() as session:
            structure = await self.structure(session)
        member = next((m for m in structure.people.values() if m.key == person_key), None)
        if member is None:
            return None
        evangelist = any(p.id == person_key for p in self.org.evangelists())
        if member.id not in structure.leads and not evangelist:
            return None
        scope = structure.scope_of(member)
        [digest] = await self.digests([(scope, Period.until(now, member.zone))], structure)
        png = await self.chart(digest.figures, address)
        # Each request is its own digest (the command event itself is de-duplicated).
        key = f"digest-now:{member.key}:{now.isoformat()}:{uuid.uuid4().hex[:8]}"
        async with self.db.transaction() as session:
            await self.enqueue(session, digest, address, key, png, now, member.id)
        self.on_enqueued()
        return digest
