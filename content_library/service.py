"""The learning library in the service: the weekly post, the evangelist's summary, link checks,
subscribed feeds, and what people do with links (open, vote, try).

Every job here is safe to run twice: the weekly post and the summary are outbox rows with
keys that name the week, link checks only write what they found, and feed items collapse on
their canonical URL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import aiohttp
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config.base import WEEKDAYS
from bot.config.organisation import OrganisationConfig
from bot.core.clock import Clock
from bot.core.types import Address, OutgoingMessage, Platform
from bot.delivery import outbox
from bot.storage import directory, participation
from bot.storage.database import Database, insert_for
from bot.storage.models import LibraryFeedRow, LinkRow, LinkShareRow, PersonRow
from content_library import messages, store
from content_library.checker import CheckLimits, CheckResult, Health, LinkChecker
from content_library.feeds import FeedPoller
from content_library.guard import PRIVATE, PublicResolver, literal_private
from content_library.picks import Picker, iso_week

log = logging.getLogger(__name__)

SETTLE = timedelta(days=3)
"""How long a shared link has before it can be called "least opened"."""
SUMMARY_AT = time(9, 0)
"""Local time (organisation time zone) the evangelist's weekly summary goes out."""


class LibraryService:
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
        self.config = organisation.library
        self.platforms = list(platforms)
        self.on_enqueued = on_enqueued
        self.zone = ZoneInfo(organisation.organisation.timezone)
        self.picker = Picker(organisation)
        self._http: aiohttp.ClientSession | None = None
        self._check_http: aiohttp.ClientSession | None = None

    @property
    def http(self) -> aiohttp.ClientSession:
        """One HTTP session for checks, feeds and imports, made on first use (never at import)."""
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                headers={"User-Agent": "Evangelist-Library/1.0 (self-hosted)"}
            )
        return self._http

    async def close(self) -> None:
        for session in (self._http, self._check_http):
            if session is not None:
                await session.close()

    def changed(self) -> None:
        """Something in the library changed in this process: picks read it again."""
        self.picker.forget()

    # -- subscribed feeds ------------------------------------------------------------------

    async def sync_feeds(self, session: AsyncSession, now: datetime) -> None:
        """The file's feeds are subscribed (chat-made subscriptions stay as they are)."""
        from content_library.canonical import canonical_url

        rows = {row.url: row for row in (await session.scalars(select(LibraryFeedRow))).all()}
        wanted = {canonical_url(feed.url): feed for feed in self.config.feeds}
        for url, feed in wanted.items():
            row = rows.get(url)
            level = feed.level.value if feed.level else None
            if row is None:
                session.add(
                    LibraryFeedRow(
                        url=url,
                        origin="file",
                        topics=list(feed.topics),
                        level=level,
                        active=True,
                        cursor={},
                        added_at=now,
                    )
                )
            else:
                row.topics, row.level, row.active = list(feed.topics), level, True
        for url, row in rows.items():
            if row.origin == "file" and url not in wanted:
                row.active = False

    async def poll_feeds(self) -> int:
        """Read the subscribed feeds that are due; returns how many links were suggested."""
        poller = FeedPoller(self.db, self.clock, self.http, timedelta(hours=self.config.poll_hours))
        suggested = await poller.poll_due()
        if suggested:
            self.changed()
        return suggested

    # -- link checks -----------------------------------------------------------------------

    def checker(self) -> LinkChecker:
        """A checker whose requests reach public addresses only (unless configured)."""
        check = self.config.check
        if self._check_http is None or self._check_http.closed:
            resolver = None if check.private_addresses else PublicResolver()
            self._check_http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(resolver=resolver)
            )
        limits = CheckLimits(
            concurrency=check.concurrency,
            per_host=check.per_host,
            host_interval=check.host_interval_seconds,
            timeout=check.timeout_seconds,
            budget=50 * 60.0,
        )
        return LinkChecker(self._check_http, limits)

    async def check_due(self, limit: int | None = None) -> int:
        """Check the links not checked for `check.every_days`; returns how many were checked."""
        now = self.clock.now()
        since = now - timedelta(days=self.config.check.every_days)
        async with self.db.transaction() as session:
            due = (
                await session.execute(
                    select(LinkRow.id, LinkRow.url)
                    .where(
                        LinkRow.status.in_((store.ACTIVE, store.SUGGESTED)),
                        or_(LinkRow.last_checked_at.is_(None), LinkRow.last_checked_at < since),
                    )
                    .order_by(LinkRow.last_checked_at.is_not(None), LinkRow.last_checked_at)
                    .limit(limit or self.config.check.batch)
                )
            ).all()
        if not due:
            return 0
        ids = {url: link_id for link_id, url in due}
        refused = [
            CheckResult(url, Health.BROKEN, None, None, PRIVATE, 0.0)
            for url in ids
            if not self.config.check.private_addresses and literal_private(url)
        ]
        wanted = [url for url in ids if url not in {r.url for r in refused}]
        results = [*refused, *await self.checker().check_all(wanted)]
        await self.record_checks([(ids[r.url], r) for r in results if r.url in ids])
        return len(results)

    async def record_checks(self, results: Sequence[tuple[int, CheckResult]]) -> None:
        """Write what the checks found; enough failures in a row make a link broken."""
        now = self.clock.now()
        newly_broken = 0
        async with self.db.transaction() as session:
            ids = [link_id for link_id, _ in results]
            links = {
                link.id: link
                for link in (await session.scalars(select(LinkRow).where(LinkRow.id.in_(ids))))
            }
            for link_id, result in results:
                link = links.get(link_id)
                if link is None:
                    continue
                was_broken = link.health == store.BROKEN
                apply_check(link, result, now, self.config.check.broken_after)
                newly_broken += link.health == store.BROKEN and not was_broken
        if newly_broken:
            log.warning("%s library link(s) are broken and left circulation", newly_broken)
        self.changed()

    # -- the link of the week --------------------------------------------------------------

    def weekly_due(self, now: datetime) -> bool:
        """Whether this week's post time (organisation time zone) has come."""
        weekly = self.config.weekly
        return weekly is not None and self._reached(now, weekly.day, weekly.at)

    def _reached(self, now: datetime, day: str, at: time) -> bool:
        """Whether `day` at `at` of the current ISO week (organisation time) is past; a service
        that was down at that moment catches up later in the same week, never the next."""
        local = now.astimezone(self.zone)
        start = local.date() - timedelta(days=local.weekday())
        moment = start + timedelta(days=WEEKDAYS.index(day))
        return local >= datetime.combine(moment, at, tzinfo=self.zone)

    async def post_weekly(self, now: datetime | None = None) -> int:
        """Post this week's link to the configured channels, once; returns posts written."""
        now = now or self.clock.now()
        weekly = self.config.weekly
        if weekly is None or not self.weekly_due(now):
            return 0
        week = iso_week(now.astimezone(self.zone))
        targets = [(p, c) for p, c in weekly.channels.by_platform() if p in self.platforms]
        if not targets:
            return 0
        posted = 0
        async with self.db.transaction() as session:
            link = await self.link_of_week(session, week)
            if link is None:
                return 0
            for platform, channel in targets:
                posted += await self._post(session, link, week, platform, channel, now)
        if posted:
            self.changed()
            self.on_enqueued()
        return posted

    async def link_of_week(self, session: AsyncSession, week: str) -> LinkRow | None:
        """The link already posted this week, or the best one never featured."""
        chosen = await session.scalar(
            select(LinkShareRow.link_id).where(
                LinkShareRow.kind == "weekly", LinkShareRow.week == week
            )
        )
        if chosen is not None:
            return await session.get(LinkRow, chosen)
        featured = select(LinkShareRow.link_id).where(LinkShareRow.kind == "weekly")
        figures = {f.link.id: f.helpful - f.not_for_me for f in await store.figures(session)}
        candidates = (
            await session.scalars(
                select(LinkRow).where(
                    LinkRow.status == store.ACTIVE,
                    LinkRow.health.in_(store.SHAREABLE),
                    LinkRow.id.not_in(featured),
                )
            )
        ).all()
        if not candidates:
            return None
        return max(
            candidates,
            key=lambda link: (
                link.experiment is not None,
                link.health != store.UNCHECKED,
                figures.get(link.id, 0),
                -link.id,
            ),
        )

    async def _post(
        self,
        session: AsyncSession,
        link: LinkRow,
        week: str,
        platform: str,
        channel: str,
        now: datetime,
    ) -> int:
        key = weekly_key(week, platform, channel)
        result = await session.execute(
            insert_for(session)(LinkShareRow)
            .values(
                key=key,
                link_id=link.id,
                kind="weekly",
                platform=platform,
                channel=channel,
                week=week,
                shared_at=now,
            )
            .on_conflict_do_nothing(index_elements=["key"])
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            return 0  # posted already (by this process or another replica)
        where = Address.to_channel(Platform(platform), channel)
        await outbox.enqueue(
            session, key=key, address=where, message=messages.weekly_post(link, week), now=now
        )
        await outbox.enqueue(
            session,
            key=f"{key}:prompt",
            address=Address.in_thread(Platform(platform), channel, ""),
            message=messages.thread_prompt(self.config.weekly.prompt if self.config.weekly else ""),
            now=now,
            thread_of_key=key,
        )
        return 1

    # -- the evangelist's summary ----------------------------------------------------------

    async def send_summary(self, now: datetime | None = None) -> int:
        """Once a week, tell each evangelist what is broken, waiting, loved and ignored."""
        now = now or self.clock.now()
        if not self._reached(now, self.config.summary_day, SUMMARY_AT):
            return 0
        week = iso_week(now.astimezone(self.zone))
        sent = 0
        async with self.db.transaction() as session:
            # The job runs every few minutes all week: once everyone has this week's summary,
            # nothing more is read.
            due = []
            for person in self.org.evangelists():
                person_id = await session.scalar(
                    select(PersonRow.id).where(PersonRow.key == person.id)
                )
                key = f"library-summary:{week}:{person_id}"
                if person_id is not None and await outbox.find_by_key(session, key) is None:
                    due.append((person_id, key))
            if not due:
                return 0
            counts = await store.counts(session)
            if not counts[store.ACTIVE] and not counts[store.SUGGESTED]:
                return 0
            message = await self.summary(session, week, counts)
            for person_id, key in due:
                address = await directory.address_of(session, person_id, self.platforms)
                if address is None:
                    continue
                sent += await outbox.enqueue(
                    session,
                    key=key,
                    address=address,
                    message=message,
                    now=now,
                    person_id=person_id,
                )
        if sent:
            self.on_enqueued()
        return sent

    async def summary(
        self, session: AsyncSession, week: str, counts: dict[str, int] | None = None
    ) -> OutgoingMessage:
        """The library's week for the evangelist (`counts` when the caller has them)."""
        counts = counts if counts is not None else await store.counts(session)
        broken = (
            await session.scalars(
                select(LinkRow)
                .where(LinkRow.status == store.ACTIVE, LinkRow.health == store.BROKEN)
                .order_by(LinkRow.broken_since.desc())
                .limit(10)
            )
        ).all()
        figures = await store.figures(session)
        helpful = sorted(
            ((f.link, f.helpful) for f in figures if f.helpful > 0), key=lambda x: -x[1]
        )
        # Links shared in the last few days had no fair chance to be opened yet.
        settled = [f for f in figures if f.first_shared < self.clock.now() - SETTLE]
        unopened = sorted(
            ((f.link, f.opens, f.shares) for f in settled), key=lambda x: (x[1] / x[2], -x[2])
        )
        return messages.summary(counts, broken, helpful, unopened, week)

    async def run_due(self) -> None:
        """The scheduler's job: the weekly post and the evangelist's summary, when due."""
        await self.post_weekly()
        await self.send_summary()

    # -- what people do with links ---------------------------------------------------------

    async def opened(
        self, session: AsyncSession, link_id: int, person_id: int, now: datetime
    ) -> None:
        row = await store.feedback(session, link_id, person_id, now)
        row.opens += 1
        row.first_opened_at = row.first_opened_at or now
        row.updated_at = now
        await participation.record(
            session, person_id=person_id, kind="link_opened", reference=f"link:{link_id}", at=now
        )

    async def vote(
        self, session: AsyncSession, link_id: int, person_id: int, vote: int, now: datetime
    ) -> bool:
        """Record 👍 (+1) or 👎 (-1); False when it was already their vote."""
        row = await store.feedback(session, link_id, person_id, now)
        if row.vote == vote:
            return False
        # Not `changed()`: a vote nudges scores a little, and the pool is read again within
        # a minute anyway; reading it after every press would cost more than it brings.
        row.vote, row.voted_at, row.updated_at = vote, now, now
        return True

    async def tried(
        self, session: AsyncSession, link_id: int, week: str, person_id: int, now: datetime
    ) -> bool:
        """'I tried it': a participation event, once per person and week."""
        return await participation.record(
            session,
            person_id=person_id,
            kind="experiment_tried",
            reference=f"experiment:{week}:link:{link_id}",
            at=now,
        )


def apply_check(link: LinkRow, result: CheckResult, now: datetime, broken_after: int) -> None:
    """What one check means for a link's health (pure: the row is only assigned to)."""
    link.last_checked_at = now
    link.http_status = result.status
    if result.health is Health.UNREACHABLE:
        link.failures += 1
        link.check_error = (result.error or "could not be reached")[:200]
        if link.failures >= broken_after and link.health != store.BROKEN:
            link.health, link.broken_since = store.BROKEN, now
        return
    link.failures = 0
    if result.health is Health.BROKEN:
        link.check_error = (result.error or f"HTTP {result.status}")[:200]
        if link.health != store.BROKEN:
            link.health, link.broken_since = store.BROKEN, now
        return
    link.check_error, link.broken_since = None, None
    if result.health is Health.REDIRECTED and result.final_url:
        link.health, link.final_url = store.REDIRECTED, result.final_url[:2000]
    else:
        link.health, link.final_url = store.OK, None


def weekly_key(week: str, platform: str, channel: str) -> str:
    return f"library-weekly:{week}:{platform}:{channel}"
