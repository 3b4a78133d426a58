"""The YouTube source against the fake Data API: paging, cursors, replies, quota and errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from bot.config.organisation import YouTubeSourceConfig
from bot.core.sources import ItemKind, SourceError
from bot.sources.youtube import YouTubeSource, daily_quota_plan, seconds_until_quota_reset
from tests.fakes.youtube_api import FakeYouTubeApi

CHANNEL = "UCbrandchannel0000000000"
KEY = "yt-test-key"
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # 02:00 in Los Angeles (PST, UTC-8)
VIDEOS = ("vid-launch", "vid-howto", "vid-faq")


@pytest.fixture
async def youtube() -> AsyncIterator[FakeYouTubeApi]:
    async with FakeYouTubeApi(api_key=KEY) as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def source_for(
    fake: FakeYouTubeApi, http: aiohttp.ClientSession, *, max_pages: int = 3, key: str = KEY
) -> YouTubeSource:
    config = YouTubeSourceConfig(id="yt", kind="youtube", channel_id=CHANNEL, max_pages=max_pages)
    return YouTubeSource(config, http, fake.base_url, key)


def add_threads(fake: FakeYouTubeApi, count: int, *, newest: datetime) -> list[str]:
    """`count` viewer comments a minute apart, the newest at `newest`; ids newest first."""
    return [
        fake.add_thread(
            VIDEOS[n % len(VIDEOS)],
            f"question number {n}?",
            channel_id=CHANNEL,
            published_at=newest - timedelta(minutes=n),
            author_name=f"Viewer {n}",
            author_channel_id=f"UCviewer{n:016d}",
        )
        for n in range(count)
    ]


async def test_a_poll_follows_page_tokens_and_counts_a_unit_per_page(
    youtube: FakeYouTubeApi, http: aiohttp.ClientSession
) -> None:
    ids = add_threads(youtube, 250, newest=NOW - timedelta(minutes=1))

    result = await source_for(youtube, http).poll({}, NOW)

    assert [item.external_id for item in result.items] == ids
    assert (result.calls, result.quota_units, youtube.units_used) == (3, 3, 3)
    first, second, third = youtube.calls_to("commentThreads")
    assert first.params == {
        "part": "snippet,replies",
        "allThreadsRelatedToChannelId": CHANNEL,
        "order": "time",
        "maxResults": "100",
        "textFormat": "plainText",
        "key": KEY,
    }
    assert "pageToken" not in first.params
    assert second.params["pageToken"] and third.params["pageToken"] != second.params["pageToken"]
    json.dumps(result.cursor)  # the cursor is stored as JSON


async def test_a_comment_is_translated_to_a_neutral_item(
    youtube: FakeYouTubeApi, http: aiohttp.ClientSession
) -> None:
    posted = NOW - timedelta(minutes=5)
    comment_id = youtube.add_thread(
        "vid-launch",
        "Does it <b>work</b> offline?",
        channel_id=CHANNEL,
        published_at=posted,
        author_name="Ada",
        author_channel_id="UCada00000000000000000",
    )

    (item,) = (await source_for(youtube, http).poll({}, NOW)).items

    assert item.external_id == comment_id
    assert item.kind is ItemKind.COMMENT
    assert item.text == "Does it <b>work</b> offline?"
    assert (item.parent_id, item.thread_id) == ("vid-launch", "vid-launch")
    assert (item.author_id, item.author_name) == ("UCada00000000000000000", "Ada")
    assert item.posted_at == posted
    assert item.url == f"https://www.youtube.com/watch?v=vid-launch&lc={comment_id}"
    assert (item.reply_count, item.by_page, item.source_id) == (0, False, "yt")


async def test_max_pages_bounds_one_poll(
    youtube: FakeYouTubeApi, http: aiohttp.ClientSession
) -> None:
    add_threads(youtube, 250, newest=NOW)

    result = await source_for(youtube, http, max_pages=2).poll({}, NOW)

    assert len(result.items) == 200
    assert result.quota_units == 2


async def test_the_next_poll_stops_at_the_high_water_mark(
    youtube: FakeYouTubeApi, http: aiohttp.ClientSession
) -> None:
    source = source_for(youtube, http)
    add_threads(youtube, 150, newest=NOW - timedelta(hours=1))
    first = await source.poll({}, NOW)
    assert first.quota_units == 2
    fresh = add_threads(youtube, 2, newest=NOW + timedelta(minutes=20))
    youtube.clear_calls()

    second = await source.poll(first.cursor, NOW + timedelta(minutes=30))

    assert [item.external_id for item in second.items] == fresh
    assert second.quota_units == 1
    assert "pageToken" not in youtube.calls_to("commentThreads")[0].params


async def test_the_next_poll_pages_on_while_everything_is_new(
    youtube: FakeYouTubeApi, http: aiohttp.ClientSession
) -> None:
    source = source_for(youtube, http)
    add_threads(youtube, 10, newest=NOW - timedelta(days=1))
    first = await source.poll({}, NOW)
    fresh = add_threads(youtube, 120, newest=NOW + timedelta(hours=3))

    second = await source.poll(first.cursor, NOW + timedelta(hours=3))

    assert [item.external_id for item in second.items] == fresh
    assert second.quota_units == 2


async def test_a_late_comment_inside_the_overlap_comes_out_once(
    youtube: FakeYouTubeApi, http: aiohttp.ClientSession
) -> None:
    source = source_for(youtube, http)
    add_threads(youtube, 3, newest=NOW)
    first = await source.poll({}, NOW)
    # Listed only now, though dated five minutes before the newest comment already seen.
    late = youtube.add_thread(
        "vid-faq", "late one?", channel_id=CHANNEL, published_at=NOW - timedelta(minutes=5)
    )

    second = await source.poll(first.cursor, NOW + timedelta(minutes=30))
    third = await source.poll(second.cursor, NOW + timedelta(minutes=60))

    assert [item.external_id for item in second.items] == [late]
    assert third.items == []


async def test_replies_come_with_their_thread_and_the_channel_s_own_is_flagged(
    youtube: FakeYouTubeApi, http: aiohttp.ClientSession
) -> None:
    question = youtube.add_thread(
        "vid-howto", "How do I export?", channel_id=CHANNEL, published_at=NOW - timedelta(hours=2)
    )
    fan = youtube.add_reply(question, "Same question", published_at=NOW - timedelta(hours=1))
    answer = youtube.add_reply(
        question,
        "Settings > Export.",
        published_at=NOW - timedelta(minutes=30),
        author_name="Brand",
        author_channel_id=CHANNEL,
    )

    items = (await source_for(youtube, http).poll({}, NOW)).items

    by_id = {item.external_id: item for item in items}
    assert list(by_id) == [question, fan, answer]
    assert by_id[question].reply_count == 2
    for reply_id in (fan, answer):
        reply = by_id[reply_id]
        assert reply.kind is ItemKind.REPLY
        assert (reply.parent_id, reply.thread_id) == (question, "vid-howto")
    assert by_id[answer].by_page and not by_id[fan].by_page
    assert youtube.calls_to("comments") == []


async def test_a_watched_question_outside_the_scan_is_read_with_comments_list(
    youtube: FakeYouTubeApi, http: aiohttp.ClientSession
) -> None:
    source = source_for(youtube, http)
    question = youtube.add_thread(
        "vid-howto", "Is there an API?", channel_id=CHANNEL, published_at=NOW - timedelta(days=3)
    )
    add_threads(youtube, 100, newest=NOW - timedelta(days=2))  # pushes it off the first page
    first = await source.poll({}, NOW)
    answer = youtube.add_reply(
        question, "Yes, see docs.", published_at=NOW + timedelta(hours=1), author_channel_id=CHANNEL
    )
    youtube.clear_calls()

    second = await source.poll(first.cursor, NOW + timedelta(hours=2), watch=[question])

    (call,) = youtube.calls_to("comments")
    assert call.params == {
        "part": "snippet",
        "parentId": question,
        "maxResults": "100",
        "textFormat": "plainText",
        "key": KEY,
    }
    (reply,) = second.items
    assert (reply.external_id, reply.kind, reply.parent_id) == (answer, ItemKind.REPLY, question)
    assert reply.by_page
    assert (second.calls, second.quota_units) == (2, 2)


async def test_a_watched_thread_seen_whole_in_the_scan_costs_nothing_more(
    youtube: FakeYouTubeApi, http: aiohttp.ClientSession
) -> None:
    question = youtube.add_thread(
        "vid-faq", "Pricing?", channel_id=CHANNEL, published_at=NOW - timedelta(minutes=10)
    )
    reply = youtube.add_reply(question, "Free tier.", published_at=NOW - timedelta(minutes=5))

    result = await source_for(youtube, http).poll({}, NOW, watch=[question, reply])

    assert youtube.calls_to("comments") == []
    assert result.quota_units == 1


async def test_a_thread_with_more_replies_than_it_carries_is_read_in_full(
    youtube: FakeYouTubeApi, http: aiohttp.ClientSession
) -> None:
    question = youtube.add_thread(
        "vid-faq", "Roadmap?", channel_id=CHANNEL, published_at=NOW - timedelta(hours=1)
    )
    replies = [
        youtube.add_reply(question, f"+{n}", published_at=NOW - timedelta(minutes=50 - n))
        for n in range(youtube.thread_reply_limit + 2)
    ]

    result = await source_for(youtube, http).poll({}, NOW, watch=[replies[0]])

    (call,) = youtube.calls_to("comments")
    assert call.params["parentId"] == question  # a reply id names its top-level comment
    assert [i.external_id for i in result.items] == [question, *replies]


async def test_a_watched_video_with_comments_disabled_is_skipped(
    youtube: FakeYouTubeApi, http: aiohttp.ClientSession
) -> None:
    old = youtube.add_thread(
        "vid-gone", "Old question?", channel_id=CHANNEL, published_at=NOW - timedelta(days=9)
    )
    youtube.add_reply(old, "Me too", published_at=NOW - timedelta(days=9))
    first = await source_for(youtube, http).poll({}, NOW - timedelta(days=8))
    youtube.thread_reply_limit = 0  # so the scan does not carry the whole thread
    youtube.disable_comments("vid-gone")
    fresh = youtube.add_thread("vid-faq", "New?", channel_id=CHANNEL, published_at=NOW)

    result = await source_for(youtube, http).poll(first.cursor, NOW, watch=[old])

    assert len(youtube.calls_to("comments")) == 1
    assert [item.external_id for item in result.items] == [fresh]


async def test_quota_exceeded_waits_until_midnight_pacific(
    youtube: FakeYouTubeApi, http: aiohttp.ClientSession
) -> None:
    add_threads(youtube, 150, newest=NOW)
    youtube.quota = 1

    with pytest.raises(SourceError) as caught:
        await source_for(youtube, http).poll({}, NOW)

    error = caught.value
    assert error.rate_limited and not error.permanent
    assert error.retry_after == 22 * 3600  # 02:00 PST -> midnight PST
    assert "quotaExceeded" in error.reason
    assert youtube.units_used == 1


@pytest.mark.parametrize(
    ("now", "seconds"),
    [
        (datetime(2026, 3, 2, 10, 0, tzinfo=UTC), 22 * 3600),
        # 23:30 PST on the eve of the spring-forward day.
        (datetime(2026, 3, 8, 7, 30, tzinfo=UTC), 1800),
        # 05:00 PDT on the spring-forward day: the next midnight is 07:00 UTC.
        (datetime(2026, 3, 8, 12, 0, tzinfo=UTC), 19 * 3600),
        # 01:00 PDT on the fall-back day, a 25-hour day.
        (datetime(2026, 11, 1, 8, 0, tzinfo=UTC), 24 * 3600),
    ],
)
def test_the_quota_resets_at_midnight_in_los_angeles(now: datetime, seconds: int) -> None:
    assert seconds_until_quota_reset(now) == seconds


async def test_a_bad_key_is_permanent(youtube: FakeYouTubeApi, http: aiohttp.ClientSession) -> None:
    with pytest.raises(SourceError) as caught:
        await source_for(youtube, http, key="wrong-key").poll({}, NOW)

    assert caught.value.permanent and not caught.value.rate_limited
    assert "keyInvalid" in caught.value.reason
    assert "wrong-key" not in caught.value.reason


async def test_http_429_is_rate_limited_with_retry_after(
    youtube: FakeYouTubeApi, http: aiohttp.ClientSession
) -> None:
    youtube.fail_next("commentThreads", 429, {"Retry-After": "30"})

    with pytest.raises(SourceError) as caught:
        await source_for(youtube, http).poll({}, NOW)

    assert caught.value.rate_limited and caught.value.retry_after == 30


async def test_a_server_error_is_transient(
    youtube: FakeYouTubeApi, http: aiohttp.ClientSession
) -> None:
    youtube.fail_next("commentThreads", 503)

    with pytest.raises(SourceError) as caught:
        await source_for(youtube, http).poll({}, NOW)

    assert not caught.value.permanent and not caught.value.rate_limited
    assert "backendError" in caught.value.reason


def test_daily_quota_plan_for_the_default_settings() -> None:
    plan = daily_quota_plan(poll_minutes=30, pages_per_poll=3, watched=0)

    assert plan == {
        "polls_per_day": 48,
        "units_per_poll": 3,
        "units_per_day": 144,
        "quota": 10_000,
        "fits": True,
        "spare_units": 9_856,
        "max_polls_per_hour": 138,
        "max_watched": 205,
    }


def test_daily_quota_plan_says_when_it_does_not_fit() -> None:
    assert daily_quota_plan(1, 3, 0)["units_per_day"] == 4_320
    busy = daily_quota_plan(poll_minutes=5, pages_per_poll=3, watched=50)
    assert (busy["units_per_day"], busy["fits"]) == (288 * 53, False)
    assert daily_quota_plan(30, 3, 205)["fits"] and not daily_quota_plan(30, 3, 206)["fits"]
    with pytest.raises(ValueError):
        daily_quota_plan(0, 3, 0)
