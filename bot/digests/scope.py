"""Whom a digest is about: a leader's teams with their sub-teams, and the groups to break into.

Leaders see their own scope and nothing else. The evangelist, who runs the programme for the
whole organisation, gets the organisation as their scope when they lead no team themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.models import PersonRow, TeamMemberRow, TeamRow


@dataclass(frozen=True, slots=True)
class Member:
    id: int
    key: str
    name: str
    zone: str
    consents: bool
    """Agreed to be named in digests."""


@dataclass(frozen=True, slots=True)
class Scope:
    leader: Member | None
    """None for the organisation-wide digest."""
    name: str
    people: frozenset[int]
    groups: tuple[tuple[str, frozenset[int]], ...]
    """Candidate breakdown rows (the privacy rules decide which are shown)."""


@dataclass
class Structure:
    """Teams, memberships and people, read once for any number of scopes."""

    teams: dict[str, tuple[str, str | None]]
    """key → (name, parent key)."""
    members: dict[str, set[int]]
    leads: dict[int, list[str]]
    people: dict[int, Member]
    organisation: str
    _children: dict[str, list[str]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._children = {}
        for key, (_, parent) in sorted(self.teams.items()):
            if parent is not None:
                self._children.setdefault(parent, []).append(key)

    def children(self, key: str) -> list[str]:
        return self._children.get(key, [])

    def subtree(self, key: str) -> list[str]:
        """The team and every team under it (cycles in the file cannot loop us)."""
        found: list[str] = []
        pending = [key]
        while pending:
            current = pending.pop()
            if current in found or current not in self.teams:
                continue
            found.append(current)
            pending.extend(self.children(current))
        return found

    def people_of(self, keys: Iterable[str]) -> frozenset[int]:
        found: set[int] = set()
        for key in keys:
            found |= self.members.get(key, set())
        return frozenset(found & self.people.keys())

    def leaders(self) -> list[Member]:
        return [self.people[i] for i in sorted(self.leads) if i in self.people]

    def scope_of(self, leader: Member) -> Scope:
        """The teams `leader` leads, with their sub-teams; the organisation if they lead none."""
        led = self.leads.get(leader.id, [])
        if not led:
            return self.organisation_scope(leader)
        covered = {k for key in led for k in self.subtree(key)}
        # Teams led directly that are not inside another team they lead.
        tops = sorted(k for k in led if not (set(self._ancestors(k)) & set(led)))
        groups: list[tuple[str, frozenset[int]]] = []
        for top in tops:
            groups.extend(self._groups_under(top))
        names = [self.teams[k][0] for k in tops]
        return Scope(leader, _join(names), self.people_of(covered), tuple(groups))

    def organisation_scope(self, leader: Member | None = None) -> Scope:
        tops = sorted(k for k, (_, parent) in self.teams.items() if parent not in self.teams)
        groups = [(self.teams[k][0], self.people_of(self.subtree(k))) for k in tops]
        return Scope(leader, self.organisation, frozenset(self.people), tuple(groups))

    def _groups_under(self, top: str) -> list[tuple[str, frozenset[int]]]:
        children = self.children(top)
        if not children:
            return [(self.teams[top][0], self.people_of([top]))]
        own = (f"{self.teams[top][0]} (direct)", self.people_of([top]))
        return [own, *((self.teams[c][0], self.people_of(self.subtree(c))) for c in children)]

    def _ancestors(self, key: str) -> list[str]:
        found: list[str] = []
        parent = self.teams.get(key, ("", None))[1]
        while parent is not None and parent in self.teams and parent not in found:
            found.append(parent)
            parent = self.teams[parent][1]
        return found


async def load_structure(session: AsyncSession, organisation: str) -> Structure:
    rows = (await session.scalars(select(TeamRow))).all()
    teams = {row.key: (row.name, row.parent_key) for row in rows}
    keys = {row.id: row.key for row in rows}
    members: dict[str, set[int]] = {}
    leads: dict[int, list[str]] = {}
    for row in await session.scalars(select(TeamMemberRow)):
        team = keys.get(row.team_id)
        if team is None:
            continue
        if row.is_member:
            members.setdefault(team, set()).add(row.person_id)
        if row.is_leader:
            leads.setdefault(row.person_id, []).append(team)
    people = {
        row.id: Member(row.id, row.key, row.name, row.timezone, row.recognition_at is not None)
        for row in await session.execute(
            select(
                PersonRow.id,
                PersonRow.key,
                PersonRow.name,
                PersonRow.timezone,
                PersonRow.recognition_at,
            ).where(PersonRow.in_directory.is_(True))
        )
    }
    return Structure(teams, members, leads, people, organisation)


def _join(names: list[str]) -> str:
    if len(names) <= 1:
        return names[0] if names else ""
    if len(names) > 3:
        return f"{', '.join(names[:2])} and {len(names) - 2} more teams"
    return f"{', '.join(names[:-1])} and {names[-1]}"
