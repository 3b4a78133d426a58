"""The expertise table as people read it: in chat (`expertise`) and from the CLI
(`evangelist expertise list`), so both show the same numbers.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config.organisation import OrganisationConfig, TopicConfig
from bot.core.clock import as_utc
from bot.questions import expertise
from bot.storage.models import ExpertiseRow, IdentityRow, PersonRow

_SLACK_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")


@dataclass(frozen=True)
class Standing:
    """One person on one topic, as the router sees them now."""

    person_id: int
    person: str
    name: str
    topic: str
    topic_name: str
    configured: float
    weight: expertise.Weight
    answers: int = 0
    claims: int = 0
    declines: int = 0
    override: float | None = None
    overridden_by: str | None = None
    overridden_at: datetime | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "person": self.person,
            "name": self.name,
            "topic": self.topic,
            "configured": self.configured,
            "learned_score": round(self.weight.score, 4),
            "effective": round(self.weight.value, 4),
            "basis": self.weight.basis,
            "answers": self.answers,
            "claims": self.claims,
            "declines": self.declines,
            "override": self.override,
            "overridden_by": self.overridden_by,
            "overridden_at": as_utc(self.overridden_at).isoformat() if self.overridden_at else None,
            "note": self.note,
        }


async def standings(
    session: AsyncSession,
    org: OrganisationConfig,
    now: datetime,
    *,
    person_id: int | None = None,
    topic_key: str | None = None,
    rule: expertise.Rule = expertise.RULE,
) -> list[Standing]:
    """Configured experts and everyone the desk learned about, filtered to a person or topic."""
    rows = {
        (r.person_id, r.topic_key): r
        for r in await expertise.rows_for(session, topic_key=topic_key, person_id=person_id)
    }
    configured = {
        (e.person, t.id): e.weight
        for t in org.topics
        if topic_key is None or t.id == topic_key
        for e in t.experts
    }
    people = {
        p.id: p
        for p in (
            await session.scalars(
                select(PersonRow).where(
                    or_(
                        PersonRow.key.in_({k for k, _ in configured}),
                        PersonRow.id.in_({i for i, _ in rows}),
                    )
                )
            )
        ).all()
        if person_id is None or p.id == person_id
    }
    by_key = {p.key: p.id for p in people.values()}
    pairs = {(by_key[k], t) for k, t in configured if k in by_key} | set(rows)
    found = [
        _standing(people[pid], org.topic(topic), topic, configured, rows, now, rule)
        for pid, topic in pairs
        if pid in people
    ]
    return sorted(found, key=lambda s: (s.topic, -s.weight.value, s.person))


def _standing(
    person: PersonRow,
    topic: TopicConfig | None,
    topic_key: str,
    configured: dict[tuple[str, str], float],
    rows: dict[tuple[int, str], ExpertiseRow],
    now: datetime,
    rule: expertise.Rule,
) -> Standing:
    row = rows.get((person.id, topic_key))
    weight = configured.get((person.key, topic_key), 0.0)
    evangelist = "evangelist" in person.roles.split(",")
    return Standing(
        person_id=person.id,
        person=person.key,
        name=person.name,
        topic=topic_key,
        topic_name=topic.name if topic else f"{topic_key} (no longer a topic)",
        configured=weight,
        weight=expertise.weigh(weight, row, now, evangelist=evangelist, rule=rule),
        answers=row.answers if row else 0,
        claims=row.claims if row else 0,
        declines=row.declines if row else 0,
        override=row.override if row else None,
        overridden_by=row.overridden_by if row else None,
        overridden_at=row.overridden_at if row else None,
        note=row.note if row else None,
    )


def describe(s: Standing, *, by: str = "topic") -> str:
    """One line: who (or which topic), the effective weight, and what it rests on."""
    head = f"{s.topic_name}" if by == "topic" else f"{s.name} ({s.person})"
    value = "0 (not asked)" if s.weight.value <= 0 else f"{s.weight.value:.2f}"
    if s.weight.basis == "override":
        why = f"set by {s.overridden_by or 'the evangelist'}" + (
            f" on {s.overridden_at:%Y-%m-%d}" if s.overridden_at else ""
        )
        why += f" ({s.note})" if s.note else ""
        why += f"; configured {s.configured:g}, learned score {s.weight.score:.2f}"
    elif s.weight.basis == "configured":
        learned = s.weight.value - s.configured
        why = f"configured {s.configured:g}, learned {learned:+.2f} (score {s.weight.score:.2f})"
    else:
        state = "emerging expert" if s.weight.basis == "emerging" else "not an expert"
        why = f"{state}, learned score {s.weight.score:.2f}"
    counts = f"answers {s.answers}, claims {s.claims}, wrong-topic {s.declines}"
    return f"- **{head}**: weight {value} · {why} · {counts}"


def resolve_topic(org: OrganisationConfig, text: str) -> TopicConfig | None:
    wanted = text.strip().lower()
    return next(
        (t for t in org.topics if t.id == wanted or t.name.lower() == wanted),
        None,
    )


async def resolve_person(session: AsyncSession, text: str) -> PersonRow | None:
    """A person by key, '@key', a Slack or Teams mention, a platform id, email or full name."""
    raw = text.strip()
    mention = _SLACK_MENTION.match(raw)
    if mention:
        raw = mention.group(1)
    raw = raw.removeprefix("<at>").removesuffix("</at>").strip().lstrip("@").strip()
    if not raw:
        return None
    lowered = raw.lower()
    person = await session.scalar(
        select(PersonRow).where(
            or_(PersonRow.key == lowered, PersonRow.email == lowered),
        )
    )
    if person is not None:
        return person
    owner = await session.scalar(
        select(IdentityRow.person_id).where(IdentityRow.external_id == raw).limit(1)
    )
    if owner is not None:
        return await session.get(PersonRow, owner)
    named = (
        await session.scalars(select(PersonRow).where(func.lower(PersonRow.name) == lowered))
    ).all()
    return named[0] if len(named) == 1 else None


def parse_weight(text: str) -> float | None:
    try:
        weight = float(text.replace(",", "."))
    except ValueError:
        return None
    if math.isnan(weight) or not 0 <= weight <= expertise.MAX_OVERRIDE:
        return None
    return weight
