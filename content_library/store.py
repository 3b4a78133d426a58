"""The library's tables: adding links (duplicates collapse on the canonical URL), feedback,
and the figures the evangelist reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String, case, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.clock import as_utc
from bot.storage.database import insert_for
from bot.storage.models import LinkFeedbackRow, LinkRow, LinkShareRow
from content_library.candidates import LinkCandidate

ACTIVE, SUGGESTED, DISMISSED, RETIRED = "active", "suggested", "dismissed", "retired"
UNCHECKED, OK, REDIRECTED, BROKEN = "unchecked", "ok", "redirected", "broken"
SHAREABLE = (UNCHECKED, OK, REDIRECTED)
"""Health that keeps a link in circulation (a link not checked yet gets the benefit of the
doubt; a broken one leaves until a check finds it working again)."""
CHUNK = 500
"""URLs looked up or inserted per statement (well under SQLite's 32,766 variables)."""


@dataclass(frozen=True, slots=True)
class Added:
    added: int
    duplicates: int
    ids: tuple[int, ...] = ()
    """The new links' ids, in the order given."""


async def add_links(
    session: AsyncSession,
    candidates: Sequence[LinkCandidate],
    *,
    source: str,
    added_by: str | None,
    now: datetime,
    status: str = ACTIVE,
) -> Added:
    """Store the links the library does not have yet; the rest count as duplicates.

    A URL given twice counts once; a URL another import is adding at the same moment is
    inserted by one of them (`ON CONFLICT DO NOTHING`) and counted as a duplicate by the other.
    """
    first: dict[str, LinkCandidate] = {}
    for candidate in candidates:
        first.setdefault(candidate.url, candidate)
    duplicates = len(candidates) - len(first)
    urls = list(first)
    known: set[str] = set()
    for start in range(0, len(urls), CHUNK):
        chunk = urls[start : start + CHUNK]
        known.update(
            (await session.scalars(select(LinkRow.url).where(LinkRow.url.in_(chunk)))).all()
        )
    fresh = [first[url] for url in urls if url not in known]
    duplicates += len(urls) - len(fresh)
    ids: list[int] = []
    insert = insert_for(session)
    for start in range(0, len(fresh), CHUNK):
        values = [_values(c, source, added_by, now, status) for c in fresh[start : start + CHUNK]]
        # One statement run for many rows (SQLAlchemy batches it as INSERT … VALUES with
        # RETURNING): compiled once and cached, where a multi-row values() is compiled anew.
        result = await session.execute(
            insert(LinkRow)
            .on_conflict_do_nothing(index_elements=["url"])
            .returning(LinkRow.id, LinkRow.url),
            values,
        )
        by_url = {url: link_id for link_id, url in result.all()}
        ids.extend(by_url[v["url"]] for v in values if v["url"] in by_url)
    duplicates += len(fresh) - len(ids)
    return Added(added=len(ids), duplicates=duplicates, ids=tuple(ids))


def _values(
    candidate: LinkCandidate, source: str, added_by: str | None, now: datetime, status: str
) -> dict[str, object]:
    return {
        "url": candidate.url,
        "title": candidate.title,
        "summary": candidate.summary,
        "topics": list(candidate.topics),
        "level": candidate.level.value if candidate.level else None,
        "experiment": candidate.experiment,
        "source": source[:300],
        "added_by": added_by[:100] if added_by else None,
        "added_at": now,
        "status": status,
        "health": UNCHECKED,
        "failures": 0,
    }


async def find(session: AsyncSession, reference: str) -> LinkRow | None:
    """A link by its number ('12', '#12') or its URL (canonicalised first)."""
    from content_library.canonical import InvalidLink, canonical_url

    text = reference.strip().lstrip("#")
    if text.isdigit():
        return await session.get(LinkRow, int(text))
    try:
        url = canonical_url(text.strip("<>"))
    except InvalidLink:
        return None
    return await session.scalar(select(LinkRow).where(LinkRow.url == url))


async def search(session: AsyncSession, words: str, limit: int = 10) -> list[LinkRow]:
    """Active links whose title, summary, URL or topics hold every word (any case)."""
    query = select(LinkRow).where(LinkRow.status == ACTIVE)
    for word in words.lower().split()[:8]:
        pattern = f"%{_escape(word)}%"
        query = query.where(
            or_(
                func.lower(LinkRow.title).like(pattern, escape="\\"),
                func.lower(LinkRow.summary).like(pattern, escape="\\"),
                func.lower(LinkRow.url).like(pattern, escape="\\"),
                func.lower(cast(LinkRow.topics, String)).like(pattern, escape="\\"),
            )
        )
    broken_last = case((LinkRow.health == BROKEN, 1), else_=0)
    rows = await session.scalars(query.order_by(broken_last, LinkRow.id.desc()).limit(limit))
    return list(rows.all())


def _escape(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# -- feedback -------------------------------------------------------------------------------


async def feedback(
    session: AsyncSession, link_id: int, person_id: int, now: datetime
) -> LinkFeedbackRow:
    """The person's feedback row for a link, created on first use (races insert once)."""
    row = await session.get(LinkFeedbackRow, (link_id, person_id))
    if row is None:
        await session.execute(
            insert_for(session)(LinkFeedbackRow)
            .values(link_id=link_id, person_id=person_id, opens=0, updated_at=now)
            .on_conflict_do_nothing(index_elements=["link_id", "person_id"])
        )
        row = await session.get(LinkFeedbackRow, (link_id, person_id))
    assert row is not None
    return row


@dataclass(frozen=True, slots=True)
class LinkFigures:
    link: LinkRow
    shares: int
    first_shared: datetime
    opens: int
    helpful: int
    not_for_me: int


async def figures(session: AsyncSession) -> list[LinkFigures]:
    """Shares (and the first), opens and votes for every active link that was shared."""
    shares = (
        select(
            LinkShareRow.link_id,
            func.count().label("n"),
            func.min(LinkShareRow.shared_at).label("first"),
        )
        .group_by(LinkShareRow.link_id)
        .subquery()
    )
    votes = (
        select(
            LinkFeedbackRow.link_id,
            func.coalesce(func.sum(LinkFeedbackRow.opens), 0).label("opens"),
            func.sum(case((LinkFeedbackRow.vote > 0, 1), else_=0)).label("up"),
            func.sum(case((LinkFeedbackRow.vote < 0, 1), else_=0)).label("down"),
        )
        .group_by(LinkFeedbackRow.link_id)
        .subquery()
    )
    query = (
        select(LinkRow, shares.c.n, shares.c.first, votes.c.opens, votes.c.up, votes.c.down)
        .join(shares, shares.c.link_id == LinkRow.id)
        .outerjoin(votes, votes.c.link_id == LinkRow.id)
        .where(LinkRow.status == ACTIVE)
    )
    return [
        LinkFigures(link, int(n), as_utc(first), int(opens or 0), int(up or 0), int(down or 0))
        for link, n, first, opens, up, down in (await session.execute(query)).all()
    ]


async def counts(session: AsyncSession) -> dict[str, int]:
    """How many links are active, suggested, broken (and active), and unchecked."""
    found: dict[str, int] = {ACTIVE: 0, SUGGESTED: 0, BROKEN: 0, UNCHECKED: 0}
    for status, health, n in await session.execute(
        select(LinkRow.status, LinkRow.health, func.count()).group_by(
            LinkRow.status, LinkRow.health
        )
    ):
        if status in (ACTIVE, SUGGESTED):
            found[status] += n
        if status == ACTIVE and health in (BROKEN, UNCHECKED):
            found[health] += n
    return found
