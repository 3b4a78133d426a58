"""Subscribed feeds: new items become suggestions the evangelist approves or dismisses.

A feed is read with conditional GETs (an unchanged feed costs a 304 and no parsing). A feed
that fails is recorded on its row and tried again at its next turn; it never stops the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta

import aiohttp
from sqlalchemy import or_, select

from bot.core.clock import Clock
from bot.core.sources import SourceError
from bot.sources.http import fetch
from bot.sources.rss import conditional_headers
from bot.storage.database import Database
from bot.storage.models import LibraryFeedRow
from content_library import store
from content_library.candidates import LinkCandidate
from content_library.parsing import parse_feed_links
from nudges.config import Stage

log = logging.getLogger(__name__)

MAX_NEW = 20
"""Suggestions one reading of one feed may add: a newly subscribed feed with 200 entries
offers its 20 newest, not a queue nobody will get through."""
SEEN_MAX = 2_000
"""Entry links remembered per feed (more than any feed lists at once)."""


class FeedPoller:
    def __init__(
        self, database: Database, clock: Clock, http: aiohttp.ClientSession, every: timedelta
    ) -> None:
        self.db = database
        self.clock = clock
        self.http = http
        self.every = every

    async def poll_due(self) -> int:
        now = self.clock.now()
        async with self.db.transaction() as session:
            due = (
                await session.scalars(
                    select(LibraryFeedRow).where(
                        LibraryFeedRow.active.is_(True),
                        or_(
                            LibraryFeedRow.polled_at.is_(None),
                            LibraryFeedRow.polled_at <= now - self.every,
                        ),
                    )
                )
            ).all()
            feeds = [(f.id, f.url, dict(f.cursor or {}), list(f.topics), f.level) for f in due]
        suggested = 0
        for feed_id, url, cursor, topics, level in feeds:
            suggested += await self.poll_one(feed_id, url, cursor, topics, level)
        return suggested

    async def poll_one(
        self,
        feed_id: int,
        url: str,
        cursor: dict[str, object],
        topics: list[str],
        level: str | None,
    ) -> int:
        now = self.clock.now()
        try:
            answer = await fetch(self.http, url, headers=conditional_headers(cursor))
            if answer.status == 304:
                parsed = None
            elif not 200 <= answer.status < 300:
                raise SourceError(f"the feed answered HTTP {answer.status}")
            else:
                parsed = await asyncio.to_thread(parse_feed_links, answer.body, url)
                if not parsed.links and parsed.rejected:
                    raise SourceError(parsed.rejected[0].reason)
        except SourceError as exc:
            log.warning("library feed %s could not be read: %s", url, exc)
            async with self.db.transaction() as session:
                row = await session.get(LibraryFeedRow, feed_id)
                if row is not None:
                    row.polled_at, row.last_error = now, str(exc)[:300]
            return 0
        # Feeds list their newest entries first. Every entry of the document counts as seen,
        # offered or not: older entries left out of a first reading never trickle in later.
        # (Links already in the library also collapse on their canonical URL.)
        seen = set(_seen(cursor))
        current = parsed.links if parsed else []
        fresh = [c for c in current if c.url not in seen]
        links = [_tagged(c, topics, level) for c in fresh][:MAX_NEW]
        async with self.db.transaction() as session:
            added = await store.add_links(
                session, links, source=f"feed:{url}", added_by=None, now=now, status=store.SUGGESTED
            )
            row = await session.get(LibraryFeedRow, feed_id)
            if row is not None:
                row.polled_at, row.last_error = now, None
                if answer.status != 304:
                    remembered = [*_seen(cursor), *(c.url for c in fresh)][-SEEN_MAX:]
                    row.cursor = {**_validators(answer.headers), "seen": remembered}
        if added.added:
            log.info("library feed %s suggested %s new link(s)", url, added.added)
        return added.added


def _seen(cursor: Mapping[str, object]) -> list[str]:
    value = cursor.get("seen")
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _validators(headers: Mapping[str, str]) -> dict[str, str]:
    found = {"etag": headers.get("ETag"), "last_modified": headers.get("Last-Modified")}
    return {key: value for key, value in found.items() if value}


def _tagged(candidate: LinkCandidate, topics: list[str], level: str | None) -> LinkCandidate:
    """A feed item with the subscription's topics and level."""
    return replace(
        candidate,
        topics=tuple(dict.fromkeys((*candidate.topics, *topics)))[:10],
        level=candidate.level or (Stage(level) if level else None),
    )
