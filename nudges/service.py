"""Nudges in the service: campaigns in the database, planning into the `nudges` table, sending.

Two jobs run under the scheduler leader:

- **plan** (every few minutes) reads the campaigns, every person's policy state and history,
  plans the next `per_days + 7` days with the pure planner, and stores the nudges due within
  `HORIZON`. A nudge's key names its campaign slot, so planning twice inserts once; plans
  further out are recomputed on the next run (an edit, a pause or an opt-out changes them).
- **send** (every 30 s) claims due nudges with a conditional UPDATE (`planned` → `sent`),
  asks the policy again (a pause, an opt-out or the end of the campaign may have come since),
  and writes the message to the outbox in the same transaction. A crash before the commit
  leaves the nudge planned and the outbox empty; after it, both are written: each due nudge
  is sent exactly once, on any replica.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config.base import WEEKDAYS
from bot.config.organisation import OrganisationConfig
from bot.core.clock import Clock, as_utc
from bot.core.types import OutgoingMessage, Role
from bot.delivery import outbox
from bot.storage import directory
from bot.storage.database import Database, insert_for
from bot.storage.models import (
    CampaignRow,
    NudgePreferenceRow,
    NudgeRow,
    ParticipationRow,
    PersonRow,
    TeamMemberRow,
    TeamRow,
)
from nudges import messages
from nudges.config import CampaignConfig, Stage
from nudges.planner import MAX_DELAY, PlannedNudge, Recipient, plan_people
from nudges.policy import PersonState, Rules, next_allowed, refusal

log = logging.getLogger(__name__)

HORIZON = timedelta(hours=24)
"""Planned nudges due within this are stored; later ones are planned again on later runs."""
SEND_BATCH = 50
"""Nudges claimed and written to the outbox per transaction."""
PLAN_BATCH = 1000
"""Planned nudges inserted per transaction."""

PLANNED, SENT, SKIPPED = "planned", "sent", "skipped"
COUNTED = (PLANNED, SENT)
"""Nudges that count towards the cap: planned and sent (skipped ones never reached anyone)."""

IMPLIED_STAGE: dict[str, Stage] = {
    "question_answered": Stage.COMMENT,
    "answer_verified": Stage.COMMENT,
    "page_comment": Stage.COMMENT,
}
"""Participation that shows where someone already is: answering on a page is commenting."""

PERSON_REASONS = ("opted out of all nudges", "stopped this campaign", "paused")
"""Refusals that are the person's choice: the nudge is dropped, not postponed."""


class LinkPicker(Protocol):
    """The learning library, as nudges see it: a fresh pick for a person, or one made before."""

    async def pick(
        self,
        session: AsyncSession,
        person_id: int,
        stage: Stage,
        now: datetime,
        *,
        nudge_id: int | None,
    ) -> messages.LinkPick | None:
        """A link this person has never been given, suited to their topics and stage; recorded
        as given to them with `nudge_id` (None: only look, as a test send does)."""
        ...

    async def pick_of(self, session: AsyncSession, link_id: int) -> messages.LinkPick | None:
        """The pick a nudge already carries (to draw the message again after a press)."""
        ...


@dataclass(frozen=True, slots=True)
class Campaign:
    """A campaign as stored: its definition plus what the evangelist did with it in chat."""

    config: CampaignConfig
    status: str
    version: int
    origin: str

    @property
    def active(self) -> bool:
        return self.status == "active" and not self.config.paused


class NudgeService:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        organisation: OrganisationConfig,
        *,
        platforms: Sequence[str],
        on_enqueued: Callable[[], None] = lambda: None,
    ) -> None:
        self.db = database
        self.clock = clock
        self.org = organisation
        self.platforms = list(platforms)
        self.on_enqueued = on_enqueued
        self.links: LinkPicker | None = None
        """Set when the learning library is wired: nudges using {link} carry a pick."""
        holidays = frozenset(organisation.questions.holidays)
        self.rules = Rules.from_config(organisation.nudges, holidays)
        self.teams = organisation.audience_groups()
        self.lookahead = self.rules.per + MAX_DELAY
        self._working_days = {
            p.id: frozenset(WEEKDAYS.index(d) for d in p.working_hours.days)
            for p in organisation.people
            if p.working_hours is not None
        }

    # -- campaigns -------------------------------------------------------------------------

    async def sync_campaigns(self, session: AsyncSession, now: datetime) -> None:
        """Make the stored campaigns match the organisation file (chat-made ones stay as they are).

        A changed definition bumps the version and drops what was planned from the old one.
        """
        stored = {row.key: row for row in (await session.scalars(select(CampaignRow))).all()}
        for config in self.org.campaigns:
            definition = config.model_dump(mode="json")
            row = stored.pop(config.id, None)
            if row is None:
                session.add(
                    CampaignRow(
                        key=config.id,
                        origin="file",
                        definition=definition,
                        status="active",
                        version=1,
                        created_by=config.owner,
                        created_at=now,
                        updated_at=now,
                    )
                )
                continue
            if row.definition != definition or row.status == "removed":
                row.definition, row.origin, row.updated_at = definition, "file", now
                row.version += 1
                if row.status == "removed":
                    row.status = "active"
                await self.drop_planned(session, campaign=config.id)
        for row in stored.values():
            if row.origin == "file" and row.status != "removed":
                row.status, row.updated_at = "removed", now
                row.version += 1
                await self.drop_planned(session, campaign=row.key)

    async def campaigns(self, session: AsyncSession) -> dict[str, Campaign]:
        rows = (await session.scalars(select(CampaignRow).order_by(CampaignRow.key))).all()
        found = {row.key: _campaign(row) for row in rows}
        return {key: campaign for key, campaign in found.items() if campaign is not None}

    async def campaign(self, session: AsyncSession, key: str) -> Campaign | None:
        row = await session.get(CampaignRow, key)
        return _campaign(row) if row is not None else None

    async def save_campaign(
        self, session: AsyncSession, config: CampaignConfig, *, by: str, now: datetime
    ) -> None:
        """Store a campaign made in chat (the organisation file's campaigns win on their ids)."""
        session.add(
            CampaignRow(
                key=config.id,
                origin="chat",
                definition=config.model_dump(mode="json"),
                status="active",
                version=1,
                created_by=by,
                created_at=now,
                updated_at=now,
            )
        )

    async def set_status(
        self, session: AsyncSession, key: str, status: str, now: datetime
    ) -> CampaignRow | None:
        row = await session.get(CampaignRow, key)
        if row is None:
            return None
        if row.status != status:
            row.status, row.updated_at = status, now
            row.version += 1
            if status != "active":
                await self.drop_planned(session, campaign=key)
        return row

    async def drop_planned(
        self,
        session: AsyncSession,
        *,
        campaign: str | None = None,
        person_id: int | None = None,
        before: datetime | None = None,
    ) -> None:
        """Forget nudges planned but not sent (they are planned again from the current state)."""
        query = delete(NudgeRow).where(NudgeRow.status == PLANNED)
        if campaign is not None:
            query = query.where(NudgeRow.campaign_key == campaign)
        if person_id is not None:
            query = query.where(NudgeRow.person_id == person_id)
        if before is not None:
            query = query.where(NudgeRow.send_at < before)
        await session.execute(query)

    # -- people ----------------------------------------------------------------------------

    async def recipients(
        self, session: AsyncSession, now: datetime, person_ids: Iterable[int] | None = None
    ) -> tuple[dict[int, Recipient], dict[str, set[tuple[str, date]]]]:
        """Everyone in the organisation file (or just `person_ids`) as the planner sees them,
        and the campaign slots already planned or sent for each."""
        wanted = None if person_ids is None else sorted(set(person_ids))

        def only(query: Any, column: Any) -> Any:
            return query if wanted is None else query.where(column.in_(wanted))

        people = (
            await session.execute(
                only(
                    select(
                        PersonRow.id,
                        PersonRow.key,
                        PersonRow.name,
                        PersonRow.timezone,
                        PersonRow.roles,
                        PersonRow.away_until,
                    ).where(PersonRow.in_directory.is_(True)),
                    PersonRow.id,
                )
            )
        ).all()
        teams: dict[int, set[str]] = defaultdict(set)
        for person_id, team in await session.execute(
            only(
                select(TeamMemberRow.person_id, TeamRow.key)
                .join(TeamRow, TeamRow.id == TeamMemberRow.team_id)
                .where(TeamMemberRow.is_member.is_(True)),
                TeamMemberRow.person_id,
            )
        ):
            teams[person_id].add(team)
        prefs = {
            p.person_id: p
            for p in (
                await session.scalars(
                    only(select(NudgePreferenceRow), NudgePreferenceRow.person_id)
                )
            ).all()
        }
        implied: dict[int, Stage] = {}
        for person_id, kind in await session.execute(
            only(
                select(ParticipationRow.person_id, ParticipationRow.kind)
                .where(ParticipationRow.kind.in_(list(IMPLIED_STAGE)))
                .distinct(),
                ParticipationRow.person_id,
            )
        ):
            stage = IMPLIED_STAGE[kind]
            if person_id not in implied or stage.rank > implied[person_id].rank:
                implied[person_id] = stage
        sent: dict[int, list[datetime]] = defaultdict(list)
        taken: dict[int, set[tuple[str, date]]] = defaultdict(set)
        since = now - self.lookahead - timedelta(days=2)
        for person_id, campaign, day, at, status in await session.execute(
            only(
                select(
                    NudgeRow.person_id,
                    NudgeRow.campaign_key,
                    NudgeRow.slot_day,
                    NudgeRow.send_at,
                    NudgeRow.status,
                ).where(NudgeRow.send_at >= since, NudgeRow.test.is_(False)),
                NudgeRow.person_id,
            )
        ):
            taken[person_id].add((campaign, day))
            if status in COUNTED:
                sent[person_id].append(as_utc(at))
        last: dict[int, dict[str, datetime]] = defaultdict(dict)
        for person_id, campaign, at in await session.execute(
            only(
                select(NudgeRow.person_id, NudgeRow.campaign_key, func.max(NudgeRow.send_at))
                .where(NudgeRow.status.in_(COUNTED), NudgeRow.test.is_(False))
                .group_by(NudgeRow.person_id, NudgeRow.campaign_key),
                NudgeRow.person_id,
            )
        ):
            last[person_id][campaign] = as_utc(at)

        found: dict[int, Recipient] = {}
        for person_id, key, name, zone_name, roles, away_until in people:
            zone = _zone(zone_name)
            pref = prefs.get(person_id)
            stage = Stage(pref.stage) if pref is not None else Stage.WATCH
            if person_id in implied and implied[person_id].rank > stage.rank:
                stage = implied[person_id]
            away: tuple[tuple[date, date], ...] = ()
            if away_until is not None and as_utc(away_until) > now:
                last_day = (as_utc(away_until) - timedelta(microseconds=1)).astimezone(zone)
                away = ((now.astimezone(zone).date(), last_day.date()),)
            state = PersonState(
                key=key,
                zone=zone,
                working_days=self._working_days.get(key, frozenset(range(5))),
                opted_out=pref is not None and pref.opted_out_at is not None,
                paused_until=as_utc(pref.paused_until)
                if pref is not None and pref.paused_until is not None
                else None,
                stopped=frozenset(pref.stopped or ()) if pref is not None else frozenset(),
                away=away,
                sent=sorted(sent.get(person_id, ())),
            )
            found[person_id] = Recipient(
                state=state,
                name=name,
                stage=stage,
                teams=frozenset(teams.get(person_id, ())),
                roles=frozenset(r for r in roles.split(",") if r),
                last_by_campaign=dict(last.get(person_id, {})),
            )
        slots = {found[pid].key: taken[pid] for pid in found if pid in taken}
        return found, slots

    async def stage_of(self, session: AsyncSession, person_id: int) -> Stage:
        """Where one person stands on the ladder: what they told us or did, whichever is
        further (the same rule `recipients` applies to everyone)."""
        told = await session.scalar(
            select(NudgePreferenceRow.stage).where(NudgePreferenceRow.person_id == person_id)
        )
        kinds = await session.scalars(
            select(ParticipationRow.kind)
            .where(
                ParticipationRow.person_id == person_id,
                ParticipationRow.kind.in_(list(IMPLIED_STAGE)),
            )
            .distinct()
        )
        return max(
            [Stage(told or Stage.WATCH.value), *(IMPLIED_STAGE[kind] for kind in kinds)],
            key=lambda stage: stage.rank,
        )

    async def preferences(
        self, session: AsyncSession, person_id: int, now: datetime
    ) -> NudgePreferenceRow:
        """The person's nudge preferences, created on first use (two presses at once create
        one row: the insert ignores a row another transaction just made)."""
        row = await session.get(NudgePreferenceRow, person_id)
        if row is None:
            insert = insert_for(session)
            await session.execute(
                insert(NudgePreferenceRow)
                .values(person_id=person_id, stopped=[], stage=Stage.WATCH.value, updated_at=now)
                .on_conflict_do_nothing(index_elements=["person_id"])
            )
            row = await session.get(NudgePreferenceRow, person_id)
        assert row is not None
        return row

    # -- planning --------------------------------------------------------------------------

    async def plan(self, now: datetime | None = None) -> int:
        """Plan what is due within the horizon; returns how many nudges were added."""
        now = now or self.clock.now()
        async with self.db.transaction() as session:
            stored = await self.campaigns(session)
            active = [c for c in stored.values() if c.active]
            if not active:
                return 0
            people, taken = await self.recipients(session, now)
        configs = [c.config for c in active]
        versions = {c.config.id: c.version for c in active}
        ids = {r.key: pid for pid, r in people.items()}
        planned = await asyncio.to_thread(
            plan_people,
            self.rules,
            configs,
            list(people.values()),
            now,
            now + self.lookahead,
            teams=self.teams,
            taken=taken,
        )
        near = [p for p in planned if p.send_at < now + HORIZON]
        added = 0
        for start in range(0, len(near), PLAN_BATCH):
            batch = near[start : start + PLAN_BATCH]
            async with self.db.transaction() as session:
                added += await self._insert(session, batch, ids, versions, now)
        if added:
            log.info("planned %s nudge(s) due in the next %s", added, HORIZON)
        return added

    async def _insert(
        self,
        session: AsyncSession,
        planned: Sequence[PlannedNudge],
        ids: dict[str, int],
        versions: dict[str, int],
        now: datetime,
    ) -> int:
        if not planned:
            return 0
        insert = insert_for(session)
        values = [
            {
                "key": p.key,
                "campaign_key": p.campaign,
                "campaign_version": versions[p.campaign],
                "person_id": ids[p.person],
                "slot_day": p.day,
                "send_at": p.send_at,
                "variant": p.variant,
                "stage": p.stage.value,
                "status": PLANNED,
                "test": False,
                "planned_at": now,
            }
            for p in planned
        ]
        result = await session.execute(
            insert(NudgeRow).values(values).on_conflict_do_nothing(index_elements=["key"])
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    # -- sending ---------------------------------------------------------------------------

    async def send_due(self, now: datetime | None = None, limit: int = 2000) -> int:
        """Send the nudges that are due; returns how many went to the outbox."""
        now = now or self.clock.now()
        async with self.db.transaction() as session:
            due = list(
                (
                    await session.scalars(
                        select(NudgeRow.id)
                        .where(NudgeRow.status == PLANNED, NudgeRow.send_at <= now)
                        .order_by(NudgeRow.send_at, NudgeRow.id)
                        .limit(limit)
                    )
                ).all()
            )
        sent = 0
        for start in range(0, len(due), SEND_BATCH):
            async with self.db.transaction() as session:
                sent += await self._send_batch(session, due[start : start + SEND_BATCH], now)
            if sent:
                self.on_enqueued()
        return sent

    async def _send_batch(self, session: AsyncSession, ids: list[int], now: datetime) -> int:
        claimed = list(
            (
                await session.scalars(
                    update(NudgeRow)
                    .where(NudgeRow.id.in_(ids), NudgeRow.status == PLANNED)
                    .values(status=SENT, sent_at=now)
                    .returning(NudgeRow.id)
                )
            ).all()
        )
        if not claimed:
            return 0
        rows = (
            await session.scalars(
                select(NudgeRow)
                .where(NudgeRow.id.in_(claimed))
                .execution_options(populate_existing=True)
            )
        ).all()
        campaigns = await self.campaigns(session)
        people, _ = await self.recipients(session, now, {r.person_id for r in rows})
        sent = 0
        for row in rows:
            sent += await self._send_one(session, row, campaigns, people.get(row.person_id), now)
        return sent

    async def _send_one(
        self,
        session: AsyncSession,
        row: NudgeRow,
        campaigns: dict[str, Campaign],
        person: Recipient | None,
        now: datetime,
    ) -> int:
        campaign = campaigns.get(row.campaign_key)
        if campaign is None or person is None:
            return self._skip(row, "campaign or person removed")
        if campaign.version != row.campaign_version:
            # Planned from an older definition: planned again from the current one.
            await session.delete(row)
            return 0
        if not campaign.active:
            return self._skip(row, f"campaign {campaign.status}")
        state = person.state
        state.sent = [at for at in state.sent if at != as_utc(row.send_at)]
        reason = refusal(self.rules, state, campaign.config.id, now)
        if reason is not None:
            later = None
            if reason not in PERSON_REASONS:
                # Late (the service was down) or the day changed: wait for their next window,
                # as long as the campaign's slot is still worth acting on.
                expires = as_utc(row.send_at) + MAX_DELAY
                later = next_allowed(self.rules, state, campaign.config.id, now, expires)
            if later is not None and later > now:
                row.status, row.sent_at, row.send_at = PLANNED, None, later
                return 0
            return self._skip(row, reason)
        address = await directory.address_of(session, row.person_id, self.platforms)
        if address is None:
            return self._skip(row, "not reachable on any platform")
        if campaign.config.uses_link and self.links is not None:
            pick = await self.links.pick(
                session, row.person_id, Stage(row.stage), now, nudge_id=row.id
            )
            if pick is None:
                return self._skip(row, "no library link they have not had yet")
            row.link_id = pick.link_id
        message = await self.render(session, row, campaign.config, person.name)
        await outbox.enqueue(
            session, key=row.key, address=address, message=message, now=now, person_id=row.person_id
        )
        return 1

    def _skip(self, row: NudgeRow, reason: str) -> int:
        row.status, row.sent_at, row.reason = SKIPPED, None, reason[:100]
        return 0

    async def render(
        self, session: AsyncSession, row: NudgeRow, campaign: CampaignConfig, name: str
    ) -> OutgoingMessage:
        stage = Stage(row.stage)
        variants = {v.id: v for v in campaign.variants(stage)}
        variant = variants.get(row.variant) or next(iter(variants.values()), None)
        if variant is None:  # the campaign no longer has words for this stage
            variant = campaign.variants(next(iter(campaign.messages)))[0]
        pick = None
        if row.link_id is not None and self.links is not None:
            pick = await self.links.pick_of(session, row.link_id)
        values = self.fill_for(campaign, name, pick)
        text = messages.fill(variant.text, campaign, stage, values)
        return messages.nudge_message(row.id, text, campaign, test=row.test, pick=pick)

    def fill_for(
        self, campaign: CampaignConfig, name: str, pick: messages.LinkPick | None = None
    ) -> messages.Fill:
        source = self.org.sources[0] if self.org.sources else None
        page = campaign.page or (source.name if source and source.name else "our page")
        url = campaign.url or (_page_url(source) if source is not None else None) or ""
        link = pick.markup if pick is not None else ""
        return messages.Fill(name=name, page=page, post=url, link=link)

    async def test_send(
        self,
        session: AsyncSession,
        campaign: CampaignConfig,
        person_id: int,
        stage: Stage,
        now: datetime,
    ) -> bool:
        """Send the campaign's nudge to `person_id` now, outside the policy and the figures."""
        address = await directory.address_of(session, person_id, self.platforms)
        if address is None:
            return False
        if not campaign.variants(stage):
            stage = next(iter(campaign.messages))
        row = NudgeRow(
            key=f"nudge-test:{campaign.id}:{person_id}:{now.isoformat()}",
            campaign_key=campaign.id,
            campaign_version=0,
            person_id=person_id,
            slot_day=now.date(),
            send_at=now,
            variant=campaign.variants(stage)[0].id,
            stage=stage.value,
            status=SENT,
            test=True,
            planned_at=now,
            sent_at=now,
        )
        session.add(row)
        await session.flush()
        if campaign.uses_link and self.links is not None:
            # A look at what they would get, without giving it to them.
            pick = await self.links.pick(session, person_id, stage, now, nudge_id=None)
            row.link_id = pick.link_id if pick is not None else None
        person = await session.get(PersonRow, person_id)
        message = await self.render(session, row, campaign, person.name if person else "there")
        return await outbox.enqueue(
            session, key=row.key, address=address, message=message, now=now, person_id=person_id
        )

    async def run_due(self) -> None:
        """The scheduler's job: plan, then send what is due."""
        await self.plan()
        await self.send_due()


def _campaign(row: CampaignRow) -> Campaign | None:
    try:
        config = CampaignConfig.model_validate(row.definition)
    except ValueError:
        log.exception("stored campaign %s no longer validates; it is skipped", row.key)
        return None
    return Campaign(config, row.status, row.version, row.origin)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError):
        return ZoneInfo("UTC")


def _page_url(source: Any) -> str | None:
    """A link to a brand page, from what its source config says about it."""
    kind = getattr(source, "kind", None)
    if kind == "facebook_page":
        return f"https://www.facebook.com/{source.page_id}"
    if kind == "youtube":
        return f"https://www.youtube.com/channel/{source.channel_id}"
    if kind == "rss":
        return str(source.url)
    return None


def owner_name(org: OrganisationConfig, campaign: CampaignConfig) -> str:
    """Who runs a campaign, for "Why am I getting this?"."""
    owner = org.person(campaign.owner) if campaign.owner else None
    if owner is None:
        evangelists = [p for p in org.people if Role.EVANGELIST in p.roles]
        owner = evangelists[0] if evangelists else None
    return owner.name if owner is not None else "our social media team"
