"""Facebook Page and Instagram polling over real HTTP against the fake Graph API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from bot.config.organisation import FacebookPageSourceConfig, InstagramSourceConfig
from bot.core.sources import BrandSource, ItemKind, PollResult, SourceError, SourceItem
from bot.sources.meta import MAX_LIST_PAGES, FacebookPageSource, InstagramSource
from tests.fakes.graph_api import FakeGraphApi, graph_error, node_id

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
TOKEN = "page-token-0001"
PAGE = "104000000000001"
IG = "17841400000000001"
VISITOR = "7100000000000001"
FIRST_SINCE = int((NOW - timedelta(days=7)).timestamp())
NEXT_SINCE = int((NOW - timedelta(minutes=10)).timestamp())


def ago(**delta: float) -> datetime:
    return NOW - timedelta(**delta)


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraphApi]:
    async with FakeGraphApi(token=TOKEN, page_size=2) as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def page(graph: FakeGraphApi, http: aiohttp.ClientSession) -> FacebookPageSource:
    config = FacebookPageSourceConfig(id="fb-main", kind="facebook_page", page_id=PAGE)
    return FacebookPageSource(config, http, graph.base_url, TOKEN)


@pytest.fixture
def insta(graph: FakeGraphApi, http: aiohttp.ClientSession) -> InstagramSource:
    config = InstagramSourceConfig(id="ig-main", kind="instagram", account_id=IG)
    return InstagramSource(config, http, graph.base_url, TOKEN)


def visitor(graph: FakeGraphApi, post: str, cid: str, text: str, at: datetime) -> None:
    graph.add_comment(post, cid, text, from_id=VISITOR, from_name="Ada", created_time=at)


def seed_page(graph: FakeGraphApi) -> None:
    """Four posts in the 7-day window (two feed pages), one older; six comments on p2."""
    graph.add_post(PAGE, "p1", "Do you ship to Norway?", created_time=ago(hours=1), from_id=VISITOR)
    graph.add_post(PAGE, "p2", "Spring sale starts today\nDetails inside", created_time=ago(days=2))
    graph.add_post(PAGE, "p3", "Nobody comments on this", created_time=ago(days=3))
    graph.add_post(PAGE, "p4", "Meet the team", created_time=ago(days=4))
    graph.add_post(PAGE, "p5", "Last month's news", created_time=ago(days=30))
    for n in range(1, 6):
        visitor(graph, "p2", f"c{n}", f"Question {n}?", ago(days=1, hours=n))
    graph.add_reply(
        "c1", "r1", "Yes it does.", from_id=PAGE, from_name="Brand", created_time=ago(hours=20)
    )
    visitor(graph, "p4", "c41", "Who took the photo?", ago(days=3))
    visitor(graph, "p5", "c51", "Old question", ago(days=29))


def by_id(result: PollResult) -> dict[str, SourceItem]:
    return {item.external_id: item for item in result.items}


def on(graph: FakeGraphApi, name: str, node: str) -> int:
    return sum(1 for call in graph.calls_to(name) if node_id(call) == node)


# -- Facebook Page -----------------------------------------------------------------------------


async def test_page_source_satisfies_the_port(page: FacebookPageSource) -> None:
    source: BrandSource = page
    assert (source.id, source.kind) == ("fb-main", "facebook_page")


async def test_first_poll_reads_feed_and_comments_across_pages(
    graph: FakeGraphApi, page: FacebookPageSource
) -> None:
    seed_page(graph)
    result = await page.poll({}, NOW)
    items = by_id(result)
    assert set(items) == {"p1", "p2", "p3", "p4", "c1", "c2", "c3", "c4", "c5", "r1", "c41"}
    # Feed: 4 posts in the window at 2 a page; p2's 6 comments (replies included) at 2 a page;
    # p3 has no comments and p1's count is zero, so neither is asked for comments.
    assert len(graph.calls_to("feed")) == 2
    assert (on(graph, "comments", "p2"), on(graph, "comments", "p4")) == (3, 1)
    assert on(graph, "comments", "p1") + on(graph, "comments", "p3") == 0
    assert result.calls == len(graph.calls) == 6
    assert all(call.params["access_token"] == TOKEN for call in graph.calls)
    first_feed = graph.calls_to("feed")[0].params
    assert (first_feed["since"], first_feed["limit"]) == (str(FIRST_SINCE), "25")
    assert "after" in graph.calls_to("feed")[1].params
    comment_call = graph.calls_to("comments")[0].params
    assert (comment_call["filter"], comment_call["order"]) == ("stream", "reverse_chronological")
    assert result.cursor == {"since": NEXT_SINCE}
    assert result.rate_headroom == 100.0


async def test_polled_items_carry_kind_author_and_context(
    graph: FakeGraphApi, page: FacebookPageSource
) -> None:
    seed_page(graph)
    items = by_id(await page.poll({}, NOW))
    question, answer, post = items["c1"], items["r1"], items["p1"]
    assert (question.kind, question.parent_id, question.thread_id) == (ItemKind.COMMENT, "p2", "p2")
    assert (question.author_id, question.author_name, question.by_page) == (VISITOR, "Ada", False)
    assert question.posted_at == ago(days=1, hours=1)
    assert question.reply_count == 1
    assert question.title == "Spring sale starts today"
    assert question.url == "https://www.facebook.com/p2?comment_id=c1"
    assert (answer.kind, answer.parent_id, answer.thread_id) == (ItemKind.REPLY, "c1", "p2")
    assert answer.by_page is True
    assert (post.kind, post.text, post.by_page) == (ItemKind.POST, "Do you ship to Norway?", False)
    assert items["p2"].by_page is True


async def test_second_poll_fetches_only_newer_items(
    graph: FakeGraphApi, page: FacebookPageSource
) -> None:
    seed_page(graph)
    first = await page.poll({}, NOW)
    later = NOW + timedelta(minutes=15)
    visitor(graph, "p2", "c6", "Does it apply online?", NOW + timedelta(minutes=5))
    visitor(graph, "p4", "c42", "Are you hiring?", NOW + timedelta(minutes=6))
    graph.add_post(PAGE, "p6", "Open on Sunday?", created_time=NOW + timedelta(minutes=10))
    graph.clear_calls()

    second = await page.poll(first.cursor, later)

    assert set(by_id(second)) == {"c6", "c42", "p6"}
    # Newest first: each post's comments stop at the first one older than the cursor.
    assert (on(graph, "comments", "p2"), on(graph, "comments", "p4")) == (1, 1)
    assert second.cursor == {"since": int((later - timedelta(minutes=10)).timestamp())}


async def test_watched_items_fetch_replies_so_page_answers_are_seen(
    graph: FakeGraphApi, page: FacebookPageSource
) -> None:
    seed_page(graph)
    # p5 is outside the look-back window, so only watching finds the answer to c51.
    graph.add_reply("c51", "r51", "Here you go", from_id=PAGE, from_name="Brand", created_time=NOW)
    graph.add_reply("c51", "r52", "Thanks!", from_id=VISITOR, from_name="Ada", created_time=NOW)

    result = await page.poll({"since": NEXT_SINCE}, NOW, watch=["c51", "gone-404"])

    items = by_id(result)
    assert on(graph, "comments", "c51") == 1
    assert (items["r51"].kind, items["r51"].parent_id, items["r51"].by_page) == (
        ItemKind.REPLY,
        "c51",
        True,
    )
    assert items["r52"].by_page is False
    assert on(graph, "comments", "gone-404") == 1  # a deleted question does not fail the poll
    assert result.cursor == {"since": NEXT_SINCE}


async def test_low_rate_headroom_stops_early_without_skipping(
    graph: FakeGraphApi, page: FacebookPageSource
) -> None:
    seed_page(graph)
    graph.set_usage(call_count=95, total_time=40, regain_minutes=3)

    cut = await page.poll({}, NOW)

    assert cut.calls == len(graph.calls) == 1  # the first feed page, then nothing
    assert set(by_id(cut)) == {"p1", "p2"}
    assert cut.rate_headroom == 5.0
    assert cut.retry_after == 180.0
    assert cut.cursor == {"since": FIRST_SINCE}  # p2's comments were never read

    graph.set_usage(call_count=20)
    resumed = await page.poll(cut.cursor, NOW + timedelta(minutes=15))
    assert {"c1", "c5", "r1", "c41"} <= set(by_id(resumed))
    assert resumed.rate_headroom == 80.0
    assert resumed.cursor == {"since": NEXT_SINCE + 15 * 60}


async def test_headroom_spent_while_watching_still_advances_the_cursor(
    graph: FakeGraphApi, page: FacebookPageSource
) -> None:
    graph.add_page(PAGE)
    graph.set_usage(call_count=92, from_call=1)

    result = await page.poll({"since": FIRST_SINCE}, NOW, watch=["w1", "w2", "w3"])

    assert result.calls == 2  # the feed, one watched item, then the budget says stop
    assert result.rate_headroom == 8.0
    assert result.cursor == {"since": NEXT_SINCE}  # the feed was read in full


async def test_listing_longer_than_the_page_cap_keeps_the_cursor(
    graph: FakeGraphApi, page: FacebookPageSource
) -> None:
    graph.add_post(PAGE, "busy", "Giveaway!", created_time=ago(days=1))
    for n in range(2 * MAX_LIST_PAGES + 1):  # one more than the cap at 2 a page
        visitor(graph, "busy", f"g{n}", "me!", ago(hours=23, minutes=n))

    result = await page.poll({}, NOW)

    assert on(graph, "comments", "busy") == MAX_LIST_PAGES
    assert len(result.items) == 1 + 2 * MAX_LIST_PAGES
    assert result.cursor == {"since": FIRST_SINCE}  # the oldest comment was not read


async def test_paging_link_to_another_host_is_not_followed(
    graph: FakeGraphApi, page: FacebookPageSource
) -> None:
    seed_page(graph)
    graph.next_link_base = "http://192.0.2.1:9/"  # TEST-NET: would leak the token if followed

    result = await page.poll({}, NOW)

    assert len(graph.calls_to("feed")) == 1
    assert {"p1", "p2", "c1"} <= set(by_id(result))
    assert result.cursor == {"since": FIRST_SINCE}


async def test_app_usage_header_is_read_too(graph: FakeGraphApi, page: FacebookPageSource) -> None:
    graph.add_page(PAGE)
    graph.set_usage(call_count=10, total_cputime=35, header="app")
    assert (await page.poll({}, NOW)).rate_headroom == 65.0


async def test_buc_throttling_raises_rate_limited_with_regain_time(
    graph: FakeGraphApi, page: FacebookPageSource
) -> None:
    seed_page(graph)
    usage = {PAGE: [{"type": "pages", "call_count": 100, "estimated_time_to_regain_access": 7}]}
    graph.fail_next(
        "comments",
        429,
        headers={"X-Business-Use-Case-Usage": json.dumps(usage)},
        body=graph_error(80001, "(#80001) Too many calls to this Page account."),
    )
    with pytest.raises(SourceError) as caught:
        await page.poll({}, NOW)
    assert caught.value.rate_limited is True
    assert caught.value.permanent is False
    assert caught.value.retry_after == 420.0
    assert caught.value.rate_headroom == 0.0


async def test_app_throttling_code_takes_retry_after_header(
    graph: FakeGraphApi, page: FacebookPageSource
) -> None:
    graph.add_page(PAGE)
    graph.fail_next(
        "feed",
        400,
        headers={"Retry-After": "120"},
        body=graph_error(4, "(#4) Application request limit reached"),
    )
    with pytest.raises(SourceError) as caught:
        await page.poll({}, NOW)
    assert (caught.value.rate_limited, caught.value.retry_after) == (True, 120.0)


async def test_expired_token_is_permanent_and_says_what_to_do(
    graph: FakeGraphApi, page: FacebookPageSource
) -> None:
    graph.add_page(PAGE)
    graph.fail_next(
        "feed",
        400,
        body=graph_error(190, "Error validating access token: Session has expired.", subcode=463),
    )
    with pytest.raises(SourceError) as caught:
        await page.poll({}, NOW)
    assert caught.value.permanent is True
    assert caught.value.rate_limited is False
    assert "META_PAGE_ACCESS_TOKEN" in caught.value.reason
    assert TOKEN not in caught.value.reason


async def test_wrong_token_is_refused_by_graph_and_permanent(
    graph: FakeGraphApi, http: aiohttp.ClientSession
) -> None:
    graph.add_page(PAGE)
    config = FacebookPageSourceConfig(id="fb-main", kind="facebook_page", page_id=PAGE)
    source = FacebookPageSource(config, http, graph.base_url, "stale-token")
    with pytest.raises(SourceError) as caught:
        await source.poll({}, NOW)
    assert caught.value.permanent is True


@pytest.mark.parametrize("code", [10, 200])
async def test_missing_permission_is_permanent(
    graph: FakeGraphApi, page: FacebookPageSource, code: int
) -> None:
    graph.add_page(PAGE)
    graph.fail_next("feed", 403, body=graph_error(code, "(#10) Permission denied"))
    with pytest.raises(SourceError) as caught:
        await page.poll({}, NOW)
    assert caught.value.permanent is True
    assert "permission" in caught.value.reason


async def test_server_error_is_transient(graph: FakeGraphApi, page: FacebookPageSource) -> None:
    seed_page(graph)
    graph.fail_next("comments", 500)
    with pytest.raises(SourceError) as caught:
        await page.poll({}, NOW)
    assert (caught.value.permanent, caught.value.rate_limited) == (False, False)


async def test_reset_connection_is_transient(graph: FakeGraphApi, page: FacebookPageSource) -> None:
    # aiohttp itself resends an idempotent GET once after a dropped connection, so only a
    # second reset reaches the source.
    graph.add_page(PAGE)
    graph.fail_next("feed", reset=True, times=2)
    with pytest.raises(SourceError) as caught:
        await page.poll({}, NOW)
    assert (caught.value.permanent, caught.value.rate_limited) == (False, False)
    assert [call.failed for call in graph.calls_to("feed")] == [True, True]


async def test_unknown_page_id_is_permanent(graph: FakeGraphApi, page: FacebookPageSource) -> None:
    with pytest.raises(SourceError) as caught:
        await page.poll({}, NOW)
    assert caught.value.permanent is True


# -- Instagram ---------------------------------------------------------------------------------


def seed_instagram(graph: FakeGraphApi) -> None:
    graph.add_ig_account(IG, "examplebrand")
    graph.add_media(IG, "m1", "New colours are in\n#spring", timestamp=ago(days=1))
    graph.add_media(IG, "m2", "Quiet one", timestamp=ago(days=2))
    graph.add_media(IG, "m3", "Old news", timestamp=ago(days=10))
    graph.add_ig_comment(
        "m1", "ic1", "Is the blue one back?", username="curious.cat", timestamp=ago(hours=5)
    )
    graph.add_ig_comment("m1", "ic2", "Love it", username="fan.one", timestamp=ago(hours=4))
    graph.add_ig_reply("ic1", "ir1", "Next week!", username="examplebrand", timestamp=ago(hours=3))
    graph.add_ig_comment("m3", "ic3", "Too old to see", username="fan.two", timestamp=ago(hours=2))


async def test_instagram_source_satisfies_the_port(insta: InstagramSource) -> None:
    source: BrandSource = insta
    assert (source.id, source.kind) == ("ig-main", "instagram")


async def test_instagram_poll_reads_recent_media_comments_and_replies(
    graph: FakeGraphApi, insta: InstagramSource
) -> None:
    seed_instagram(graph)

    result = await insta.poll({}, NOW)

    items = by_id(result)
    assert set(items) == {"ic1", "ic2", "ir1"}
    question, answer = items["ic1"], items["ir1"]
    assert (question.kind, question.parent_id, question.thread_id) == (
        ItemKind.COMMENT,
        "m1",
        "m1",
    )
    assert (question.author_name, question.by_page) == ("curious.cat", False)
    assert question.url == "https://www.instagram.com/p/m1/"
    assert question.title == "New colours are in"
    assert question.posted_at == ago(hours=5)
    assert (answer.kind, answer.parent_id, answer.by_page) == (ItemKind.REPLY, "ic1", True)
    # The username once, media until older than the window (2 pages), comments only on m1.
    assert len(graph.calls_to("node")) == 1
    assert len(graph.calls_to("media")) == 2
    assert [node_id(c) for c in graph.calls_to("comments")] == ["m1"]
    assert result.calls == len(graph.calls) == 4
    assert all(call.params["access_token"] == TOKEN for call in graph.calls)
    assert result.cursor == {"since": NEXT_SINCE, "username": "examplebrand"}


async def test_instagram_second_poll_uses_cached_username_and_only_newer(
    graph: FakeGraphApi, insta: InstagramSource
) -> None:
    seed_instagram(graph)
    first = await insta.poll({}, NOW)
    graph.add_ig_comment("m2", "ic4", "Price?", username="fan.three", timestamp=NOW)
    graph.clear_calls()

    second = await insta.poll(first.cursor, NOW + timedelta(minutes=15))

    assert set(by_id(second)) == {"ic4"}
    assert graph.calls_to("node") == []


async def test_instagram_watch_reads_replies(graph: FakeGraphApi, insta: InstagramSource) -> None:
    seed_instagram(graph)
    graph.add_media(IG, "m0", "Archive", timestamp=ago(days=60))
    graph.add_ig_comment("m0", "ic0", "Still sold?", username="fan.four", timestamp=ago(days=59))
    graph.add_ig_reply("ic0", "ir0", "Yes", username="examplebrand", timestamp=ago(hours=1))
    cursor = {"since": NEXT_SINCE, "username": "examplebrand"}

    result = await insta.poll(cursor, NOW, watch=["ic0"])

    reply = by_id(result)["ir0"]
    assert (reply.kind, reply.parent_id, reply.thread_id, reply.by_page) == (
        ItemKind.REPLY,
        "ic0",
        "m0",
        True,
    )
    assert [node_id(c) for c in graph.calls_to("replies")] == ["ic0"]


async def test_instagram_throttling_is_rate_limited(
    graph: FakeGraphApi, insta: InstagramSource
) -> None:
    seed_instagram(graph)
    graph.fail_next(
        "media", 429, headers={"Retry-After": "60"}, body=graph_error(80002, "Slow down")
    )
    with pytest.raises(SourceError) as caught:
        await insta.poll({}, NOW)
    assert (caught.value.rate_limited, caught.value.retry_after) == (True, 60.0)
    assert caught.value.rate_headroom == 0.0  # throttled without a usage header: none left
