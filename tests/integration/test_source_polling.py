"""The source poller job against the fake Graph, YouTube and feed servers, with a frozen clock.

Each test builds the app on the console platform, so the DMs a poll causes (a routed question,
the evangelist's source-health notes) are read back from the console transcript, and runs
`SourcePoller.poll_due()` itself whenever the test says the scheduler would.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import Evangelist, build
from bot.config.organisation import parse_organisation
from bot.core.clock import FrozenClock, as_utc
from bot.core.sources import SourceItem
from bot.platforms.console.platform import ConsoleEntry
from bot.questions.polling import ALERT_AFTER_FAILURES, MAX_BACKOFF, SourcePoller
from bot.storage.models import QuestionRow, SourceRow
from tests.conftest import make_settings
from tests.fakes.feed_server import FakeFeedServer, rss_feed, rss_item
from tests.fakes.graph_api import FakeGraphApi, graph_error, node_id
from tests.fakes.youtube_api import FakeYouTubeApi

PAGE_TOKEN = "page-token-0001"
YOUTUBE_KEY = "yt-test-key"
PAGE = "111"
POST = "111_1"
VISITOR = "7100000000000001"
CHANNEL = "UCnorthfield0000000000000"
QUESTION = "When is the application deadline for autumn?"

ORG = """
organisation: {{name: Northfield University, timezone: Europe/London}}
people:
  - {{id: ada, name: Ada Okafor, timezone: Europe/London, roles: [evangelist]}}
  - {{id: ravi, name: Ravi Menon, timezone: Europe/London, roles: [expert]}}
topics:
  - id: admissions
    name: Admissions
    keywords: [apply, application, deadline, tuition, fees, classes]
    experts: [{{person: ravi}}]
    fallback_owner: ada
sources:
  - {source}
"""
FACEBOOK = '{id: page, kind: facebook_page, page_id: "111", name: our Facebook Page}'


@dataclass
class Desk:
    bot: Evangelist
    poller: SourcePoller
    clock: FrozenClock

    async def poll(self) -> int:
        """One run of the `sources.poll` job, then deliver what it queued."""
        polled = await self.poller.poll_due()
        await self.bot.dispatcher.drain()
        return polled

    async def at(self, when: datetime) -> int:
        self.clock.set(when)
        return await self.poll()

    async def row(self, key: str = "page") -> SourceRow:
        async with self.bot.db.transaction() as session:
            row = await session.get(SourceRow, key)
            assert row is not None
            return row

    async def questions(self) -> list[QuestionRow]:
        async with self.bot.db.transaction() as session:
            rows = await session.scalars(select(QuestionRow).order_by(QuestionRow.id))
            return list(rows.all())

    def inbox(self, who: str) -> list[ConsoleEntry]:
        assert self.bot.console is not None
        entries = self.bot.console.entries.values()
        return [e for e in entries if e.conversation == f"dm:{who}"]

    async def take_in(self, item: SourceItem) -> None:
        assert self.bot.desk is not None
        await self.bot.desk.take_in([item], via="webhook")
        await self.bot.dispatcher.drain()


@asynccontextmanager
async def open_desk(
    database_url: str,
    clock: FrozenClock,
    source: str,
    environ: dict[str, str],
    **settings: Any,
) -> AsyncIterator[Desk]:
    org = parse_organisation(ORG.format(source=source))
    bot = build(
        make_settings(database_url, **settings), clock=clock, organisation=org, console=True
    )
    await bot.prepare()
    assert bot.desk is not None
    poller = SourcePoller(bot.desk, bot.db, clock, bot.settings, environ)
    try:
        yield Desk(bot, poller, clock)
    finally:
        await poller.close()
        await bot.db.close()


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraphApi]:
    async with FakeGraphApi(token=PAGE_TOKEN) as fake:
        yield fake


@pytest.fixture
async def page_desk(
    database_url: str, clock: FrozenClock, graph: FakeGraphApi
) -> AsyncIterator[Desk]:
    environ = {"META_PAGE_ACCESS_TOKEN": PAGE_TOKEN}
    async with open_desk(
        database_url, clock, FACEBOOK, environ, meta_graph_base_url=graph.base_url
    ) as desk:
        yield desk


def when_of(value: datetime | None) -> datetime:
    assert value is not None
    return as_utc(value)


def texts(entries: list[ConsoleEntry]) -> list[str]:
    return [entry.message.text for entry in entries]


def on(graph: FakeGraphApi, name: str, node: str) -> int:
    return sum(1 for call in graph.calls_to(name) if node_id(call) == node)


def visitor_question(graph: FakeGraphApi, comment_id: str, at: datetime) -> None:
    graph.add_comment(
        POST, comment_id, QUESTION, from_id=VISITOR, from_name="Maria Lopez", created_time=at
    )


# -- a Facebook Page, polled ---------------------------------------------------------------------


async def test_a_poll_routes_waits_its_turn_then_sees_the_page_answer(
    page_desk: Desk, graph: FakeGraphApi
) -> None:
    desk, start = page_desk, page_desk.clock.now()
    graph.add_post(PAGE, POST, "Open day on Saturday", created_time=start - timedelta(hours=1))
    visitor_question(graph, "1_c1", start - timedelta(minutes=5))

    assert await desk.poll() == 1
    [asked] = desk.inbox("ravi")
    assert QUESTION in "\n".join(asked.message.sections)
    [q] = await desk.questions()
    assert (q.source_key, q.external_id, q.via, q.status) == ("page", "1_c1", "poll", "routed")
    row = await desk.row()
    assert when_of(row.last_success_at) == start and row.failures == 0
    assert row.cursor == {"since": int((start - timedelta(minutes=10)).timestamp())}
    # The feed, then the comments of its one post that has comments.
    assert row.usage == {"day": "2026-03-02", "calls": 2, "units": 0}
    assert row.items_seen == 2
    assert when_of(row.next_poll_at) == start + timedelta(minutes=15)
    assert row.lease_until is None

    graph.clear_calls()
    assert await desk.poll() == 0, "not due again at the same moment"
    assert await desk.at(start + timedelta(minutes=14, seconds=59)) == 0
    assert graph.calls == []

    later = start + timedelta(minutes=15)
    graph.add_reply(
        "1_c1",
        "1_r1",
        "Hi Maria, it is 30 June.",
        from_id=PAGE,
        from_name="Northfield",
        created_time=later - timedelta(minutes=1),
    )
    assert await desk.at(later) == 1
    assert on(graph, "comments", "1_c1") == 1, "the open question's replies were read"
    [q] = await desk.questions()
    assert q.status == "answered" and q.answer_kind == "page"
    row = await desk.row()
    assert row.usage == {"day": "2026-03-02", "calls": 5, "units": 0}
    assert when_of(row.next_poll_at) == later + timedelta(minutes=15)
    assert len(desk.inbox("ravi")) == 1, "an answer sends nothing new to the expert"


async def test_watched_replies_answer_a_question_the_feed_no_longer_lists(
    page_desk: Desk, graph: FakeGraphApi
) -> None:
    desk, start = page_desk, page_desk.clock.now()
    # The post is older than the poll's look-back: only the watch can see replies under it.
    old = start - timedelta(days=30)
    graph.add_post(PAGE, POST, "Last month's open day", created_time=old)
    visitor_question(graph, "1_c9", start - timedelta(minutes=30))
    await desk.take_in(
        SourceItem(
            source_id="page",
            external_id="1_c9",
            text=QUESTION,
            parent_id=POST,
            thread_id=POST,
            author_name="Maria Lopez",
        )
    )
    graph.add_reply(
        "1_c9",
        "1_r9",
        "Hi Maria, it is 30 June.",
        from_id=PAGE,
        from_name="Northfield",
        created_time=start - timedelta(minutes=2),
    )
    assert await desk.poll() == 1
    assert on(graph, "comments", POST) == 0
    assert on(graph, "comments", "1_c9") == 1
    [q] = await desk.questions()
    assert q.status == "answered" and q.answer_kind == "page"


# -- failures, alerts and recovery ---------------------------------------------------------------


async def test_failures_back_off_alert_once_and_recovery_is_announced(
    page_desk: Desk, graph: FakeGraphApi
) -> None:
    desk, start = page_desk, page_desk.clock.now()
    graph.add_page(PAGE)
    graph.fail_next("feed", 500, times=ALERT_AFTER_FAILURES + 1)
    when = start
    for failures, backoff in enumerate((15, 30, 60, 120), start=1):
        assert await desk.at(when) == 1
        row = await desk.row()
        assert row.failures == failures
        assert "HTTP 500" in (row.last_error or "")
        assert when_of(row.next_poll_at) == when + timedelta(minutes=backoff)
        assert when_of(row.last_error_at) == when
        alerts = [t for t in texts(desk.inbox("ada")) if "can't read" in t]
        assert len(alerts) == (1 if failures >= ALERT_AFTER_FAILURES else 0), failures
        # Polling again before the backoff is over does nothing.
        assert await desk.at(when + timedelta(minutes=backoff - 1)) == 0
        when += timedelta(minutes=backoff)

    [alert] = desk.inbox("ada")
    assert alert.message.text == "I can't read our Facebook Page right now."
    assert "3 attempts in a row" in "\n".join(alert.message.sections)

    assert await desk.at(when) == 1
    row = await desk.row()
    assert row.failures == 0 and row.alerted_at is None
    assert when_of(row.last_success_at) == when
    assert texts(desk.inbox("ada")) == [
        "I can't read our Facebook Page right now.",
        "our Facebook Page works again.",
    ]

    # Healthy from here on: no more notes.
    assert await desk.at(when + timedelta(minutes=15)) == 1
    assert len(desk.inbox("ada")) == 2


async def test_a_source_failing_for_weeks_still_backs_off_six_hours(
    page_desk: Desk, graph: FakeGraphApi
) -> None:
    desk, start = page_desk, page_desk.clock.now()
    graph.add_page(PAGE)
    graph.fail_next("feed", 500, times=2)
    assert await desk.poll() == 1
    # Six-hourly failures for ten days: the doubling must stop growing, not overflow.
    async with desk.bot.db.transaction() as session:
        row = await session.get(SourceRow, "page")
        assert row is not None
        row.failures = 40
    later = start + timedelta(minutes=15)
    assert await desk.at(later) == 1
    row = await desk.row()
    assert row.failures == 41 and row.lease_until is None
    assert when_of(row.next_poll_at) == later + MAX_BACKOFF


async def test_a_rejected_token_alerts_at_once_and_a_new_one_recovers(
    database_url: str, clock: FrozenClock, graph: FakeGraphApi
) -> None:
    graph.add_page(PAGE)
    start = clock.now()
    wrong = {"META_PAGE_ACCESS_TOKEN": "an-expired-token"}
    base = graph.base_url
    async with open_desk(database_url, clock, FACEBOOK, wrong, meta_graph_base_url=base) as desk:
        assert await desk.poll() == 1
        row = await desk.row()
        assert row.failures == 1 and "META_PAGE_ACCESS_TOKEN" in (row.last_error or "")
        [alert] = desk.inbox("ada")
        assert "can't read our Facebook Page" in alert.message.text
        assert "Meta rejected the access token" in "\n".join(alert.message.sections)
        assert await desk.at(start + timedelta(minutes=15)) == 1
        assert (await desk.row()).failures == 2
        assert len(desk.inbox("ada")) == 1, "told once"

    # A new token and a restart: the next poll works and says so.
    right = {"META_PAGE_ACCESS_TOKEN": PAGE_TOKEN}
    clock.set(start + timedelta(minutes=45))
    async with open_desk(database_url, clock, FACEBOOK, right, meta_graph_base_url=base) as desk:
        assert await desk.poll() == 1
        assert (await desk.row()).failures == 0
        [works] = desk.inbox("ada")  # a new console: only what this process sent
        assert works.message.text == "our Facebook Page works again."


def buc_throttled(regain_minutes: int) -> dict[str, str]:
    usage = {
        "type": "pages",
        "call_count": 100,
        "total_cputime": 12,
        "total_time": 15,
        "estimated_time_to_regain_access": regain_minutes,
    }
    return {"X-Business-Use-Case-Usage": json.dumps({"100200300400": [usage]})}


@pytest.mark.parametrize("status", [400, 429])
async def test_throttling_waits_as_long_as_meta_says_and_is_not_a_failure(
    page_desk: Desk, graph: FakeGraphApi, status: int
) -> None:
    desk, start = page_desk, page_desk.clock.now()
    graph.add_page(PAGE)
    body = graph_error(80001, "(#80001) There have been too many calls to this Page account.")
    graph.fail_next("feed", status, buc_throttled(40), body, times=ALERT_AFTER_FAILURES + 1)
    when = start
    for _ in range(ALERT_AFTER_FAILURES + 1):
        assert await desk.at(when) == 1
        row = await desk.row()
        assert row.failures == 0 and row.rate_headroom == 0.0
        assert "rate limit" in (row.last_error or "")
        assert when_of(row.next_poll_at) == when + timedelta(minutes=40)
        assert await desk.at(when + timedelta(minutes=39)) == 0
        when += timedelta(minutes=40)
    assert desk.inbox("ada") == [], "throttling is not trouble to report"
    assert await desk.at(when) == 1
    assert (await desk.row()).rate_headroom == 100.0


# -- YouTube and RSS through the same job --------------------------------------------------------


async def test_a_youtube_channel_is_polled_and_its_own_reply_answers(
    database_url: str, clock: FrozenClock
) -> None:
    source = f"{{id: yt, kind: youtube, channel_id: {CHANNEL}, name: our YouTube channel}}"
    start = clock.now()
    async with FakeYouTubeApi(api_key=YOUTUBE_KEY) as youtube:
        thread = youtube.add_thread(
            "vid00000001",
            QUESTION,
            channel_id=CHANNEL,
            published_at=start - timedelta(minutes=10),
            author_name="Maria Lopez",
        )
        environ = {"YOUTUBE_API_KEY": YOUTUBE_KEY}
        base = youtube.base_url
        async with open_desk(
            database_url, clock, source, environ, youtube_api_base_url=base
        ) as desk:
            assert await desk.poll() == 1
            [q] = await desk.questions()
            assert (q.source_key, q.external_id, q.status) == ("yt", thread, "routed")
            assert len(desk.inbox("ravi")) == 1
            row = await desk.row("yt")
            assert row.usage == {"day": "2026-03-02", "calls": 1, "units": 1}
            assert when_of(row.next_poll_at) == start + timedelta(minutes=30)

            later = start + timedelta(minutes=30)
            youtube.add_reply(
                thread,
                "Hi Maria, it is 30 June.",
                published_at=later - timedelta(minutes=1),
                author_name="Northfield University",
                author_channel_id=CHANNEL,
            )
            assert await desk.at(later) == 1
            [q] = await desk.questions()
            assert q.status == "answered" and q.answer_kind == "page"
            # The thread came back whole in the scan, so watching it cost no extra unit.
            assert (await desk.row("yt")).usage["units"] == 2
            assert youtube.units_used == 2


async def test_an_rss_feed_is_polled_with_conditional_gets(
    database_url: str, clock: FrozenClock
) -> None:
    start = clock.now()
    async with FakeFeedServer() as feed:
        feed.set_feed(
            rss_feed(
                [
                    rss_item(
                        "forum-1",
                        "Evening classes?",
                        "Do you offer evening classes for the application course?",
                        published=start - timedelta(hours=1),
                        link="https://forum.example/1",
                    )
                ]
            )
        )
        source = f"{{id: forum, kind: rss, url: '{feed.feed_url}', name: the forum}}"
        async with open_desk(database_url, clock, source, {}) as desk:
            assert await desk.poll() == 1
            [q] = await desk.questions()
            assert (q.source_key, q.external_id, q.url) == (
                "forum",
                "forum-1",
                "https://forum.example/1",
            )
            assert len(desk.inbox("ravi")) == 1
            row = await desk.row("forum")
            assert row.usage["calls"] == 1 and "etag" in row.cursor

            assert await desk.at(start + timedelta(minutes=30)) == 1
            assert feed.not_modified == 1
            row = await desk.row("forum")
            assert row.usage["calls"] == 2 and row.failures == 0
            assert len(await desk.questions()) == 1
