"""The learning library in the running bot: the link of the week with its thread, personal picks
inside nudges (never twice, under the nudge policy, over a simulated year), feedback buttons,
the experiment of the week, suggested links from a subscribed feed, and link health.

A frozen clock drives the jobs; people press the buttons the console shows them (the same
`ButtonPress` events Slack and Teams produce).
"""

from __future__ import annotations

import itertools
import json
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from sqlalchemy import delete, func, select

from bot.app import Evangelist, build
from bot.config.organisation import OrganisationConfig, parse_organisation
from bot.core.clock import FrozenClock, as_utc
from bot.core.types import (
    FORM_OPEN_ACTION,
    Actor,
    Address,
    ButtonPress,
    IncomingMessage,
    MessageRef,
    Platform,
)
from bot.platforms.console.platform import ConsoleEntry
from bot.storage.models import (
    AuditRow,
    LinkFeedbackRow,
    LinkRow,
    LinkShareRow,
    NudgeRow,
    ParticipationRow,
    PersonRow,
)
from content_library import store
from content_library.candidates import LinkCandidate
from content_library.checker import CheckResult, Health
from tests.conftest import make_settings
from tests.fakes.feed_server import FakeFeedServer, rss_feed, rss_item

# Monday 2 March 2026, 08:00 UTC (08:00 in London): before the 10:00 link of the week.
MONDAY_MORNING = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

ORG = """
organisation: {name: Northfield University, timezone: Europe/London}
people:
  - {id: ada, name: Ada Okafor, timezone: Europe/London, roles: [evangelist]}
  - {id: tom, name: Tom Becker, timezone: Europe/London}
  - {id: noah, name: Noah Brown, timezone: America/New_York}
  - {id: mia, name: Mia Schulz, timezone: Europe/Berlin}
teams:
  - {id: admissions, name: Admissions, members: [tom, noah, mia]}
topics:
  - {id: video, name: Video, experts: [{person: tom}]}
nudges: {max_nudges: 1, per_days: 7, min_gap_hours: 48}
campaigns:
  - id: picks
    name: A pick from the library
    owner: ada
    audience: {teams: [admissions]}
    cadence: {day: tue, at: "10:30"}
    messages:
      watch: ["Hi {first_name}! Something worth five minutes: {link}"]
library:
  weekly:
    day: mon
    at: "10:00"
    channels: {console: ["#learning"]}
    prompt: Which of these would you try first?
"""


@pytest.fixture
def org() -> OrganisationConfig:
    return parse_organisation(ORG)


@pytest.fixture
async def library_bot(
    database_url: str, org: OrganisationConfig
) -> AsyncIterator[tuple[Evangelist, FrozenClock]]:
    clock = FrozenClock(MONDAY_MORNING)
    bot = build(make_settings(database_url), clock=clock, organisation=org, console=True)
    await bot.prepare()
    try:
        yield bot, clock
    finally:
        assert bot.library is not None
        await bot.library.close()
        await bot.db.close()


_events = itertools.count(1)


async def add_links(bot: Evangelist, *links: LinkCandidate) -> list[int]:
    async with bot.db.transaction() as session:
        added = await store.add_links(
            session, links, source="test", added_by="ada", now=bot.clock.now()
        )
    assert bot.library is not None
    bot.library.changed()
    return list(added.ids)


def link(n: int, **fields: object) -> LinkCandidate:
    values: dict[str, object] = {"title": f"Lesson {n}", **fields}
    return LinkCandidate(url=f"https://learn.example.org/{n}", where="test", **values)  # type: ignore[arg-type]


def channel(bot: Evangelist, name: str) -> list[ConsoleEntry]:
    assert bot.console is not None
    return [e for e in bot.console.entries.values() if e.conversation == name]


def inbox(bot: Evangelist, who: str) -> list[ConsoleEntry]:
    assert bot.console is not None
    return [e for e in bot.console.entries.values() if e.conversation == f"dm:{who}"]


async def press(
    bot: Evangelist, who: str, entry: ConsoleEntry, action: str, value: str | None = None
) -> str:
    """Press the button `action` on `entry` as `who`; returns the text of the bot's answer."""
    if value is None:
        value = next(b.value for b in entry.message.buttons if b.action == action)
    assert bot.console is not None
    before = set(bot.console.entries)
    event = ButtonPress(
        f"press-{next(_events)}",
        Actor(Platform.CONSOLE, who),
        action,
        value,
        Address.direct(Platform.CONSOLE, who),
        MessageRef(Platform.CONSOLE, entry.conversation, entry.message_id),
    )
    assert await bot.chat.handle(event)
    await bot.dispatcher.drain()
    return _answer(bot, who, before)


async def say(bot: Evangelist, who: str, text: str) -> str:
    assert bot.console is not None
    before = set(bot.console.entries)
    event = IncomingMessage(
        f"say-{next(_events)}",
        Actor(Platform.CONSOLE, who),
        text,
        Address.direct(Platform.CONSOLE, who),
    )
    assert await bot.chat.handle(event)
    await bot.dispatcher.drain()
    return _answer(bot, who, before)


def _answer(bot: Evangelist, who: str, before: set[str]) -> str:
    new = [e for e in inbox(bot, who) if e.message_id not in before]
    return "\n".join(" ".join((e.message.text, *e.message.sections)) for e in new)


async def weekly(bot: Evangelist) -> int:
    assert bot.library is not None
    posted = await bot.library.post_weekly()
    await bot.dispatcher.drain()
    # The thread reply waits for its parent's reference: one more round delivers it.
    await bot.dispatcher.drain()
    return posted


async def count(bot: Evangelist, model: type, **where: object) -> int:
    async with bot.db.transaction() as session:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return int(await session.scalar(query) or 0)


# -- the link of the week --------------------------------------------------------------------


async def test_the_link_of_the_week_is_posted_once_with_its_prompt_in_the_thread(
    library_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, clock = library_bot
    first, second = await add_links(
        bot,
        link(1, experiment="Reply to one comment on our page this week."),
        link(2, summary="How short videos travel."),
    )
    assert await weekly(bot) == 0  # 08:00: not yet
    assert channel(bot, "#learning") == []

    clock.advance(hours=2)  # Monday 10:00 in London
    assert await weekly(bot) == 1
    post, prompt = channel(bot, "#learning")
    assert "Link of the week" in post.message.sections[0]
    assert "https://learn.example.org/1" in post.message.sections[0]  # the one with an experiment
    assert any("Reply to one comment" in s for s in post.message.sections)
    assert [b.action for b in post.message.buttons] == [
        "library.open",
        "library.up",
        "library.down",
        "library.tried",
        FORM_OPEN_ACTION,
    ]
    assert post.message.buttons[0].url == "https://learn.example.org/1"
    assert prompt.thread == post.message_id
    assert "Which of these would you try first?" in prompt.message.text

    clock.advance(hours=3)
    assert await weekly(bot) == 0  # once a week, however often the job runs
    assert len(channel(bot, "#learning")) == 2

    clock.advance(days=7)
    assert await weekly(bot) == 1
    assert "https://learn.example.org/2" in channel(bot, "#learning")[2].message.sections[0]
    clock.advance(days=7)
    assert await weekly(bot) == 0  # nothing left that was never featured
    async with bot.db.transaction() as session:
        featured = (
            await session.scalars(select(LinkShareRow.link_id).where(LinkShareRow.kind == "weekly"))
        ).all()
    assert sorted(featured) == [first, second]


async def test_broken_links_leave_circulation_and_reach_the_weekly_summary(
    library_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, clock = library_bot
    assert bot.library is not None
    gone, flaky, moved = await add_links(bot, link(1, experiment="x"), link(2), link(3))
    await bot.library.record_checks(
        [
            (
                gone,
                CheckResult(
                    "https://learn.example.org/1", Health.BROKEN, 404, None, "HTTP 404", 0.1
                ),
            ),
            (
                flaky,
                CheckResult(
                    "https://learn.example.org/2", Health.UNREACHABLE, None, None, "timed out", 1.0
                ),
            ),
            (
                moved,
                CheckResult(
                    "https://learn.example.org/3",
                    Health.REDIRECTED,
                    200,
                    "https://new.example.org/3",
                    None,
                    0.1,
                ),
            ),
        ]
    )
    async with bot.db.transaction() as session:
        health = {
            r.id: (r.health, r.failures, r.final_url)
            for r in (await session.scalars(select(LinkRow))).all()
        }
    assert health == {
        gone: ("broken", 0, None),
        flaky: ("unchecked", 1, None),  # one timeout is not enough to drop a link
        moved: ("redirected", 0, "https://new.example.org/3"),
    }

    clock.advance(hours=2)
    assert await weekly(bot) == 1
    post = channel(bot, "#learning")[0]
    # The broken link had the experiment, but it is out: the moved one goes, at its new address.
    assert "https://new.example.org/3" in post.message.sections[0]

    for _ in range(2):  # two more timeouts in a row: broken
        await bot.library.record_checks(
            [
                (
                    flaky,
                    CheckResult(
                        "https://learn.example.org/2",
                        Health.UNREACHABLE,
                        None,
                        None,
                        "timed out",
                        1.0,
                    ),
                )
            ]
        )
    assert await bot.library.send_summary() == 1
    await bot.dispatcher.drain()
    (summary,) = inbox(bot, "ada")
    text = "\n".join(summary.message.sections)
    assert "Broken, out of circulation (2)" in text
    assert "HTTP 404" in text and "timed out" in text
    assert await bot.library.send_summary() == 0  # once a week


# -- personal picks inside nudges -------------------------------------------------------------


async def test_picks_never_repeat_over_a_year_and_keep_to_the_nudge_policy(
    library_bot: tuple[Evangelist, FrozenClock],
) -> None:
    """52 weeks of a weekly pick campaign for three people and 30 links (10 more arrive in
    week 40): nobody gets a link twice, nobody gets more than the policy allows, Mia (opted
    out in week 10) gets nothing after it, and Tom's video topic comes first for him."""
    bot, clock = library_bot
    assert bot.nudges is not None
    await add_links(bot, *(link(n, topics=("video",) if n <= 5 else ()) for n in range(1, 31)))
    tuesdays = [datetime(2026, 3, 3, 10, 31, tzinfo=UTC) + timedelta(weeks=w) for w in range(52)]
    for week, tuesday in enumerate(tuesdays):
        if week == 10:
            assert "no more nudges" in (await say(bot, "mia", "nudges off")).lower()
        if week == 40:
            await add_links(bot, *(link(n) for n in range(31, 41)))
        for at in (tuesday - timedelta(hours=22), tuesday, tuesday + timedelta(hours=6)):
            clock.set(max(at, clock.now()))
            await bot.nudges.plan()
            await bot.nudges.send_due()
            await bot.dispatcher.drain()

    async with bot.db.transaction() as session:
        sent = (
            await session.execute(
                select(
                    NudgeRow.person_id,
                    NudgeRow.sent_at,
                    NudgeRow.link_id,
                    NudgeRow.status,
                    NudgeRow.reason,
                ).order_by(NudgeRow.send_at)
            )
        ).all()
        urls = dict((await session.execute(select(LinkRow.id, LinkRow.url))).all())
        shares = (
            await session.execute(
                select(LinkShareRow.person_id, LinkShareRow.link_id, LinkShareRow.nudge_id)
            )
        ).all()
        keys = dict((await session.execute(select(PersonRow.id, PersonRow.key))).all())
    by_person: dict[str, list[int]] = defaultdict(list)
    times: dict[str, list[datetime]] = defaultdict(list)
    skipped: Counter[str] = Counter()
    for person_id, sent_at, link_id, status, reason in sent:
        if status == "sent":
            assert link_id is not None
            by_person[keys[person_id]].append(link_id)
            times[keys[person_id]].append(as_utc(sent_at))
        elif status == "skipped":
            skipped[reason] += 1
    for who, links in by_person.items():
        assert len(links) == len(set(links)), f"{who} got a link twice"
        gaps = [b - a for a, b in zip(times[who], times[who][1:], strict=False)]
        # One a week: the week the clocks go forward is an hour short (10:30 stays 10:30).
        week = timedelta(days=7) - timedelta(hours=1)
        assert all(gap >= week for gap in gaps), f"{who}: more than one a week"
        assert sum(gap < timedelta(days=7) for gap in gaps) <= 1
    # 30 links, then 10 more in week 40: Tom and Noah get 30 picks, run out, then get 10 more.
    assert len(by_person["tom"]) == len(by_person["noah"]) == 40
    assert len(by_person["mia"]) == 10  # weeks 0-9, then opted out
    assert skipped["no library link they have not had yet"] > 0
    # Every pick is recorded once, for the person and nudge that carried it.
    ids = {key: person_id for person_id, key in keys.items()}
    assert sorted((p, link_id) for p, link_id, _ in shares) == sorted(
        (ids[who], link_id) for who, links in by_person.items() for link_id in links
    )
    # Tom knows video: his first five picks are the five video links.
    assert sorted(urls[i] for i in by_person["tom"][:5]) == sorted(
        f"https://learn.example.org/{n}" for n in range(1, 6)
    )


async def test_a_pick_carries_its_link_and_feedback_buttons(
    library_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, clock = library_bot
    assert bot.nudges is not None
    (only,) = await add_links(bot, link(7, title="How to reply well"))
    clock.set(datetime(2026, 3, 3, 10, 31, tzinfo=UTC))
    await bot.nudges.plan(datetime(2026, 3, 2, 12, 0, tzinfo=UTC))
    await bot.nudges.send_due()
    await bot.dispatcher.drain()
    (nudge,) = [e for e in inbox(bot, "tom") if (e.key or "").startswith("nudge:")]
    assert "[How to reply well](https://learn.example.org/7)" in nudge.message.text
    assert [b.action for b in nudge.message.buttons][:4] == [
        "library.open",
        "library.up",
        "library.down",
        "nudge.done",
    ]
    assert "Opening https://learn.example.org/7" in await press(bot, "tom", nudge, "library.open")
    await press(bot, "tom", nudge, "library.open")
    assert "helpful" in (await press(bot, "tom", nudge, "library.up")).lower()
    assert "Already noted" in await press(bot, "tom", nudge, "library.up")
    assert "fewer like this" in await press(bot, "tom", nudge, "library.down")
    async with bot.db.transaction() as session:
        tom = await session.scalar(select(PersonRow.id).where(PersonRow.key == "tom"))
        feedback = await session.get(LinkFeedbackRow, (only, tom))
    assert feedback is not None and (feedback.opens, feedback.vote) == (2, -1)
    # Done still settles the nudge and keeps the pick in the redrawn message.
    await press(
        bot,
        "tom",
        nudge,
        "nudge.done",
        value=next(b.value for b in nudge.message.buttons if b.action == "nudge.done"),
    )
    assert await count(bot, ParticipationRow, kind="link_opened") == 1


# -- the experiment of the week ---------------------------------------------------------------


async def test_i_tried_it_counts_once_and_a_note_is_shared_only_when_asked(
    library_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, clock = library_bot
    await add_links(bot, link(1, experiment="Answer one question on our page."))
    clock.advance(hours=2)
    await weekly(bot)
    post, _prompt = channel(bot, "#learning")

    answer = await press(bot, "tom", post, "library.tried")
    assert "Nice one, Tom" in answer
    assert "Already noted" in await press(bot, "tom", post, "library.tried")
    assert await count(bot, ParticipationRow, kind="experiment_tried") == 1

    private = json.dumps({"note": "Short answers get more likes.", "share": "no"})
    assert "Saved for you" in await press(bot, "noah", post, "library.note", private)
    assert len(channel(bot, "#learning")) == 2

    shared = json.dumps({"note": "A question with a link gets answered faster.", "share": "yes"})
    assert "Shared in this week's thread" in await press(bot, "tom", post, "library.note", shared)
    await bot.dispatcher.drain()
    note = channel(bot, "#learning")[-1]
    assert note.thread == post.message_id
    assert "Tom Becker" in note.message.sections[0]
    assert "A question with a link gets answered faster." in note.message.sections[1]


# -- curation ---------------------------------------------------------------------------------


async def test_a_subscribed_feed_fills_the_suggested_queue_for_the_evangelist(
    library_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, clock = library_bot
    assert bot.library is not None
    async with FakeFeedServer() as feed:
        feed.set_feed(
            rss_feed(
                [
                    rss_item(
                        "1",
                        "Writing for the feed",
                        "Short posts win.",
                        link="https://blog.example.com/a?utm_source=rss",
                    ),
                    rss_item(
                        "2", "Reply kindly", "Tone matters.", link="https://blog.example.com/b"
                    ),
                ]
            )
        )
        assert "only the evangelist" in await say(bot, "tom", f"library subscribe {feed.feed_url}")
        assert "Subscribed" in await say(bot, "ada", f"library subscribe {feed.feed_url}")
        assert await bot.library.poll_feeds() == 2
        assert await bot.library.poll_feeds() == 0  # not due again yet
        clock.advance(hours=7)
        assert await bot.library.poll_feeds() == 0  # due, unchanged (a 304)
        assert feed.not_modified == 1

    listing = await say(bot, "ada", "library suggested")
    assert "2 suggestion(s) waiting" in listing
    suggestions = [e for e in inbox(bot, "ada") if e.message.text.startswith("Suggested:")]
    assert len(suggestions) == 2
    by_title = {e.message.text: e for e in suggestions}
    approve = by_title["Suggested: Writing for the feed"]
    link_id = approve.message.buttons[0].value
    assert "Added to the library" in await press(bot, "ada", approve, "library.approve")
    # The pressed message now says what was done, without buttons; a late second press on
    # another copy of it changes nothing.
    assert approve.message.buttons == () and "Added to the library" in approve.message.text
    assert "already handled" in await press(bot, "ada", approve, "library.dismiss", link_id)
    assert "Dismissed" in await press(
        bot, "ada", by_title["Suggested: Reply kindly"], "library.dismiss"
    )
    async with bot.db.transaction() as session:
        statuses = dict((await session.execute(select(LinkRow.url, LinkRow.status))).all())
    assert statuses == {
        "https://blog.example.com/a": "active",
        "https://blog.example.com/b": "dismissed",
    }
    assert "1" in await say(bot, "ada", "library")


async def test_a_big_feed_offers_its_newest_items_once_and_then_only_new_ones(
    library_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, clock = library_bot
    assert bot.library is not None

    def items(numbers: range, *, newest_first: bool = True) -> str:
        return rss_feed(
            rss_item(str(n), f"Post {n}", "Text.", link=f"https://blog.example.com/{n}")
            for n in (reversed(numbers) if newest_first else numbers)
        )

    async with FakeFeedServer() as feed:
        feed.set_feed(items(range(1, 26)))
        await say(bot, "ada", f"library subscribe {feed.feed_url}")
        assert await bot.library.poll_feeds() == 20  # the 20 newest of 25
        # One new post, and the feed now lists oldest first (some do): the new one is offered,
        # not the 5 old ones left out the first time, although they now come first.
        feed.set_feed(items(range(1, 27), newest_first=False))
        clock.advance(hours=7)
        assert await bot.library.poll_feeds() == 1
        feed.set_feed("<html><body>gone</body></html>", content_type="text/html")
        clock.advance(hours=7)
        assert await bot.library.poll_feeds() == 0
    async with bot.db.transaction() as session:
        urls = set((await session.scalars(select(LinkRow.url))).all())
    assert urls == {f"https://blog.example.com/{n}" for n in range(6, 27)}
    assert "HTML page" in await say(bot, "ada", "library feeds")  # the last error is shown


async def test_library_commands_add_search_and_remove(
    library_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, _clock = library_bot
    assert "Added #1" in await say(
        bot, "ada", "library add https://Learn.Example.org:443/x?utm_medium=chat#top Writing tips"
    )
    assert "already in the library (#1)" in await say(
        bot, "ada", "library add https://learn.example.org/x"
    )
    assert "can't add" in await say(bot, "ada", "library add javascript:alert(1)")
    # As Slack writes a link someone typed in a message: `<url|label>`, with `&` escaped.
    slack_style = "library add <https://learn.example.org/q?b=2&amp;a=1|the q page> Queries"
    assert "[Queries](https://learn.example.org/q?a=1&b=2)" in await say(bot, "ada", slack_style)
    assert "only the evangelist" in await say(bot, "tom", "library add https://learn.example.org/y")
    found = await say(bot, "tom", "library search writing")
    assert "#1" in found and "Writing tips" in found
    assert "Nothing in the library matches" in await say(bot, "tom", "library search 100%_nothing")
    form = json.dumps(
        {
            "url": "https://learn.example.org/z",
            "title": "Video basics",
            "topics": "Video, reels",
            "level": "share",
            "experiment": "Film ten seconds.",
        }
    )
    assert bot.console is not None
    entry = inbox(bot, "ada")[-1]
    assert "Added #3" in await press(bot, "ada", entry, "library.add", form)
    async with bot.db.transaction() as session:
        added = await session.get(LinkRow, 3)
    assert added is not None and (added.topics, added.level, added.experiment) == (
        ["video", "reels"],
        "share",
        "Film ten seconds.",
    )
    assert "Removed #1" in await say(bot, "ada", "library remove 1")
    assert "already out of the library" in await say(bot, "ada", "library remove 1")
    assert "Nothing in the library matches" in await say(bot, "tom", "library search writing")
    # Adding a removed link again brings it back.
    assert "is back in the library" in await say(
        bot, "ada", "library add https://learn.example.org/x"
    )
    assert "#1" in await say(bot, "tom", "library search writing")
    async with bot.db.transaction() as session:
        logged = (
            await session.execute(select(AuditRow.action, AuditRow.target).order_by(AuditRow.id))
        ).all()
    # (Tom's refused `library add` is logged too, as every refusal is.)
    assert [tuple(row) for row in logged if row[0] != "library"] == [
        ("library.add", "link:1"),
        ("library.add", "link:2"),
        ("library.add", "link:3"),
        ("library.remove", "link:1"),
        ("library.add", "link:1"),
    ]


# -- link checks ------------------------------------------------------------------------------


@pytest.fixture
async def site() -> AsyncIterator[tuple[str, list[str]]]:
    """A local web site: /ok answers, /gone is 404, /moved redirects to /ok."""
    seen: list[str] = []

    async def answer(request: web.Request) -> web.StreamResponse:
        seen.append(request.path)
        if request.path == "/moved":
            raise web.HTTPMovedPermanently("/ok")
        if request.path == "/ok":
            return web.Response(text="fine")
        raise web.HTTPNotFound()

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    server = web.TCPSite(runner, "127.0.0.1", 0)
    await server.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


async def test_link_checks_reach_only_public_addresses_unless_allowed(
    database_url: str, site: tuple[str, list[str]]
) -> None:
    base, seen = site
    links = [
        LinkCandidate(url=f"{base}/ok", where="test"),
        LinkCandidate(url=f"{base}/gone", where="test"),
        LinkCandidate(url=f"{base}/moved", where="test"),
    ]
    for private, expected in (
        (False, {"ok": "broken", "gone": "broken", "moved": "broken"}),
        (True, {"ok": "ok", "gone": "broken", "moved": "redirected"}),
    ):
        check = (
            f"  check: {{private_addresses: {str(private).lower()}, host_interval_seconds: 0}}\n"
        )
        org = parse_organisation(ORG.replace("library:\n", "library:\n" + check))
        bot = build(
            make_settings(database_url),
            clock=FrozenClock(MONDAY_MORNING),
            organisation=org,
            console=True,
        )
        await bot.prepare()
        try:
            assert bot.library is not None
            async with bot.db.transaction() as session:
                await session.execute(delete(LinkRow))
            await add_links(bot, *links)
            assert await bot.library.check_due() == 3
            assert await bot.library.check_due() == 0  # checked: not due for a week
            async with bot.db.transaction() as session:
                found = {
                    r.url.rsplit("/", 1)[1]: (r.health, r.check_error, r.final_url)
                    for r in (await session.scalars(select(LinkRow))).all()
                }
        finally:
            assert bot.library is not None
            await bot.library.close()
            await bot.db.close()
        assert {name: health for name, (health, _, _) in found.items()} == expected
        if not private:
            assert seen == []  # not one request to the private address
            assert all("private or local" in (error or "") for _, error, _ in found.values())
        else:
            assert found["moved"][2] == f"{base}/ok"
            assert sorted(seen) == ["/gone", "/moved", "/ok", "/ok"]
