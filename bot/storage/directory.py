"""People, their identities and teams: synced from the organisation file, resolved from events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config.organisation import OrganisationConfig
from bot.core.clock import as_utc
from bot.core.types import Actor, Address, Identity, Person, Platform, Role
from bot.storage.models import IdentityRow, PersonRow, TeamChannelRow, TeamMemberRow, TeamRow


def to_person(row: PersonRow, teams: tuple[str, ...] = ()) -> Person:
    return Person(
        id=row.id,
        key=row.key,
        name=row.name,
        email=row.email,
        timezone=row.timezone,
        roles=frozenset(Role(r) for r in row.roles.split(",") if r),
        identities=tuple(Identity(i.platform, i.external_id) for i in row.identities),
        teams=teams,
        known=row.in_directory,
    )


async def sync_organisation(session: AsyncSession, org: OrganisationConfig, now: datetime) -> None:
    """Make the people and teams tables match the organisation file.

    People who left the file stay (their history matters) but lose their directory status and
    identities that the file no longer gives them.
    """
    rows = {r.key: r for r in (await session.scalars(select(PersonRow))).all()}
    for person in org.people:
        row = rows.get(person.id)
        if row is None:
            row = PersonRow(key=person.id, created_at=now, identities=[])
            session.add(row)
            rows[person.id] = row
        row.name = person.name
        row.email = person.email
        row.timezone = person.timezone
        row.roles = ",".join(sorted(r.value for r in person.roles))
        row.in_directory = True
        row.updated_at = now
        wanted = {
            "slack": person.slack,
            "teams": person.teams,
            "console": person.console or person.id,
            "email": person.email,
        }
        await _sync_identities(session, row, {k: v for k, v in wanted.items() if v})
    listed = {p.id for p in org.people}
    for key, row in rows.items():
        if key not in listed and row.in_directory:
            row.in_directory = False
            row.updated_at = now
    await session.flush()
    await _sync_teams(session, org, {k: r.id for k, r in rows.items()})


async def _sync_identities(session: AsyncSession, row: PersonRow, wanted: dict[str, str]) -> None:
    current = {i.platform: i for i in row.identities}
    for platform, external_id in wanted.items():
        identity = current.get(platform)
        if identity is not None and identity.external_id == external_id:
            continue
        # The identity may belong to a stand-in person the bot created before the file named
        # them; move it over rather than fail on the unique constraint.
        existing = await session.scalar(
            select(IdentityRow).where(
                IdentityRow.platform == platform, IdentityRow.external_id == external_id
            )
        )
        if identity is not None:
            row.identities.remove(identity)
        if existing is not None:
            existing.person = row
        else:
            row.identities.append(IdentityRow(platform=platform, external_id=external_id))
    for platform, identity in current.items():
        if platform not in wanted and identity in row.identities:
            row.identities.remove(identity)
    await session.flush()


async def _sync_teams(
    session: AsyncSession, org: OrganisationConfig, person_ids: dict[str, int]
) -> None:
    existing = {t.key: t for t in (await session.scalars(select(TeamRow))).all()}
    for team in org.teams:
        row = existing.get(team.id)
        if row is None:
            row = TeamRow(key=team.id, name=team.name)
            session.add(row)
            await session.flush()
        row.name = team.name
        row.parent_key = team.parent
        await session.execute(delete(TeamMemberRow).where(TeamMemberRow.team_id == row.id))
        await session.execute(delete(TeamChannelRow).where(TeamChannelRow.team_id == row.id))
        roles: dict[str, tuple[bool, bool]] = {}
        for key in team.members:
            roles[key] = (False, True)
        for key in team.leaders:
            roles[key] = (True, key in team.members)
        for key, (leader, member) in roles.items():
            session.add(
                TeamMemberRow(
                    team_id=row.id, person_id=person_ids[key], is_leader=leader, is_member=member
                )
            )
        for platform in ("slack", "teams", "console"):
            for channel in getattr(team.channels, platform):
                session.add(TeamChannelRow(team_id=row.id, platform=platform, channel=channel))
    listed = {t.id for t in org.teams}
    for key, row in existing.items():
        if key not in listed:
            await session.delete(row)
    await session.flush()


async def person_by_key(session: AsyncSession, key: str) -> Person | None:
    row = await session.scalar(select(PersonRow).where(PersonRow.key == key))
    return None if row is None else to_person(row, await _teams_of(session, row.id))


async def person_by_identity(
    session: AsyncSession, platform: str, external_id: str
) -> Person | None:
    row = await session.scalar(
        select(PersonRow)
        .join(IdentityRow)
        .where(IdentityRow.platform == platform, IdentityRow.external_id == external_id)
    )
    return None if row is None else to_person(row, await _teams_of(session, row.id))


async def resolve_actor(session: AsyncSession, actor: Actor, now: datetime) -> Person:
    """The person behind a platform user; people not in the file get a stand-in record.

    A stand-in lets the bot welcome and answer someone the organisation file does not list yet;
    the file takes the identity over once it names them.
    """
    person = await person_by_identity(session, actor.platform.value, actor.user_id)
    if person is not None:
        return person
    if actor.email:
        row = await session.scalar(select(PersonRow).where(PersonRow.email == actor.email.lower()))
        if row is not None:
            row.identities.append(
                IdentityRow(platform=actor.platform.value, external_id=actor.user_id)
            )
            await session.flush()
            return to_person(row, await _teams_of(session, row.id))
    row = PersonRow(
        key=f"{actor.platform.value}:{actor.user_id}"[:100],
        name=actor.display_name or actor.user_id,
        email=None,
        timezone=_valid_zone(actor.timezone),
        roles=Role.EMPLOYEE.value,
        in_directory=False,
        created_at=now,
        updated_at=now,
        identities=[IdentityRow(platform=actor.platform.value, external_id=actor.user_id)],
    )
    session.add(row)
    await session.flush()
    return to_person(row)


async def _teams_of(session: AsyncSession, person_id: int) -> tuple[str, ...]:
    keys = await session.scalars(
        select(TeamRow.key)
        .join(TeamMemberRow, TeamMemberRow.team_id == TeamRow.id)
        .where(TeamMemberRow.person_id == person_id)
        .order_by(TeamRow.key)
    )
    return tuple(keys.all())


async def claim_welcome(session: AsyncSession, person_id: int, now: datetime) -> bool:
    """Mark a person welcomed; True only the first time ever (a conditional UPDATE)."""
    result = await session.execute(
        update(PersonRow)
        .where(PersonRow.id == person_id, PersonRow.welcomed_at.is_(None))
        .values(welcomed_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def mark_blocked(
    session: AsyncSession, platform: str, external_id: str, now: datetime
) -> None:
    await session.execute(
        update(IdentityRow)
        .where(IdentityRow.platform == platform, IdentityRow.external_id == external_id)
        .values(blocked_at=now)
    )


async def clear_blocked(session: AsyncSession, platform: str, external_id: str) -> None:
    await session.execute(
        update(IdentityRow)
        .where(
            IdentityRow.platform == platform,
            IdentityRow.external_id == external_id,
            IdentityRow.blocked_at.is_not(None),
        )
        .values(blocked_at=None)
    )


async def channels_of(session: AsyncSession, person_id: int, platform: str) -> list[str]:
    channels = await session.scalars(
        select(TeamChannelRow.channel)
        .join(TeamMemberRow, TeamMemberRow.team_id == TeamChannelRow.team_id)
        .where(TeamMemberRow.person_id == person_id, TeamChannelRow.platform == platform)
        .distinct()
        .order_by(TeamChannelRow.channel)
    )
    return list(channels.all())


def _valid_zone(name: str | None) -> str:
    if not name:
        return "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return name


async def is_known_identity(session: AsyncSession, platform: str, external_id: str) -> bool:
    found = await session.scalar(
        select(IdentityRow.id).where(
            IdentityRow.platform == platform, IdentityRow.external_id == external_id
        )
    )
    return found is not None


async def address_of(
    session: AsyncSession, person_id: int, platforms: Sequence[str]
) -> Address | None:
    """Where to reach a person: the first of `platforms` they are on and haven't blocked."""
    rows = (
        await session.scalars(select(IdentityRow).where(IdentityRow.person_id == person_id))
    ).all()
    by_platform = {r.platform: r for r in rows if r.blocked_at is None}
    for name in platforms:
        identity = by_platform.get(name)
        if identity is not None:
            return Address.direct(Platform(name), identity.external_id)
    return None


STATUS_AWAY_DEFAULT = timedelta(days=14)
"""How long an out-of-office status without an expiry holds (it is cleared when it changes)."""


async def set_away_from_status(
    session: AsyncSession,
    person_id: int,
    platform: str,
    away: bool,
    until: datetime | None,
    now: datetime,
) -> None:
    """Record or clear an absence a platform status announced (see `PersonRow.away_source`)."""
    row = await session.get(PersonRow, person_id)
    if row is None:
        return
    told_us = (
        row.away_source == "command" and row.away_until is not None and as_utc(row.away_until) > now
    )
    if away and not told_us:
        row.away_until = until if until is not None and until > now else now + STATUS_AWAY_DEFAULT
        row.away_source = platform
    elif not away and row.away_source == platform:
        row.away_until, row.away_source = None, None
