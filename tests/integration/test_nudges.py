"""Nudges in the running bot: planned into our tables, claimed, sent once, answered by buttons.

A frozen clock drives the jobs; people press the buttons the console shows them (the same
`ButtonPress` events Slack and Teams produce, see test_nudge_platforms.py for those entry
points), and what the bot sent is read back from the console platform.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.app import Evangelist, build
from bot.config.organisation import OrganisationConfig, parse_organisation
from bot.core.clock import FrozenClock, as_utc
from bot.core.types import Actor, Address, ButtonPress, IncomingMessage, MessageRef, Platform
from bot.platforms.console.platform import ConsoleEntry
from bot.storage.models import (
    AuditRow,
    CampaignRow,
    NudgePreferenceRow,
    NudgeRow,
    OutboxRow,
    ParticipationRow,
)
from tests.conftest import make_settings

# Monday 2 March 2026, 12:00 UTC. The campaign asks on Tuesdays at 10:30 local time.
MONDAY_NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
TUESDAY_LONDON = datetime(2026, 3, 3, 10, 30, tzinfo=UTC)
TUESDAY_NEW_YORK = datetime(2026, 3, 3, 15, 30, tzinfo=UTC)

ORG = """
organisation: {name: Northfield University, timezone: Europe/London}
people:
  - {id: ada, name: Ada Okafor, timezone: Europe/London, roles: [evangelist]}
  - {id: tom, name: Tom Becker, timezone: Europe/London}
  - {id: noah, name: Noah Brown, timezone: America/New_York}
  - {id: mia, name: Mia Schulz, timezone: Europe/Berlin, roles: [leader]}
teams:
  - {id: admissions, name: Admissions, members: [tom, noah]}
sources:
  - {id: page, kind: facebook_page, page_id: "111", name: our Facebook Page, poll_minutes: 0}
nudges: {max_nudges: 1, per_days: 7, min_gap_hours: 48}
campaigns:
  - id: react
    name: One reaction a week
    goal: More of us react to the page
    owner: ada
    audience: {teams: [admissions]}
    cadence: {day: tue, at: "10:30"}
    messages:
      watch:
        - {id: a, text: "Hi {first_name}! Could you {step} on {page} this week? {post}"}
        - {id: b, text: "{first_name}, two minutes: {step} on {page}. {post}"}
      react: ["Thanks {first_name}! Next small step: {step}. {post}"]
"""


@pytest.fixture
def org() -> OrganisationConfig:
    return parse_organisation(ORG)


@pytest.fixture
async def nudge_bot(
    database_url: str, org: OrganisationConfig
) -> AsyncIterator[tuple[Evangelist, FrozenClock]]:
    clock = FrozenClock(MONDAY_NOON)
    bot = build(make_settings(database_url), clock=clock, organisation=org, console=True)
    await bot.prepare()
    try:
        yield bot, clock
    finally:
        await bot.db.close()


_events = itertools.count(1)


def inbox(bot: Evangelist, who: str) -> list[ConsoleEntry]:
    assert bot.console is not None
    return [e for e in bot.console.entries.values() if e.conversation == f"dm:{who}"]


def nudges_in(bot: Evangelist, who: str) -> list[ConsoleEntry]:
    """The nudges `who` received (answered ones included), by their outbox keys."""
    return [e for e in inbox(bot, who) if (e.key or "").startswith(("nudge:", "nudge-test:"))]


async def press(bot: Evangelist, who: str, entry: ConsoleEntry, action: str) -> str:
    """Press `action` on a message `who` sees; every press is a new event (a real double click
    is two platform events). Returns the text of the bot's answer."""
    # A second click comes from the message as it was: every nudge button carries the nudge's
    # id, and "Why am I getting this?" stays on the message after an answer.
    value = entry.message.buttons[0].value
    before = set(bot.console.entries) if bot.console else set()
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
    before = set(bot.console.entries) if bot.console else set()
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


async def tick(bot: Evangelist) -> tuple[int, int]:
    """One run of the planning and sending jobs, then delivery."""
    assert bot.nudges is not None
    planned = await bot.nudges.plan()
    sent = await bot.nudges.send_due()
    await bot.dispatcher.drain()
    return planned, sent


async def advance(bot: Evangelist, clock: FrozenClock, **delta: float) -> None:
    """Move time on as the scheduler would see it: the jobs run now (after whatever the test
    just did) and then at least every 4 hours."""
    target = clock.now() + timedelta(**delta)
    await tick(bot)
    while clock.now() < target:
        clock.advance(min(timedelta(hours=4), target - clock.now()))
        await tick(bot)


async def rows(bot: Evangelist) -> list[NudgeRow]:
    async with bot.db.transaction() as session:
        return list((await session.scalars(select(NudgeRow).order_by(NudgeRow.id))).all())


async def outbox_count(bot: Evangelist, prefix: str = "nudge:") -> int:
    async with bot.db.transaction() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(OutboxRow)
                .where(OutboxRow.idempotency_key.like(f"{prefix}%"))
            )
            or 0
        )


# -- planning and sending --------------------------------------------------------------------


async def test_nudges_arrive_at_the_campaign_time_in_each_persons_zone(
    nudge_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, clock = nudge_bot
    planned, sent = await tick(bot)
    # Only Tom's Tuesday 10:30 (London) is within the next 24 hours; Noah's is 27.5 hours away.
    assert (planned, sent) == (1, 0)
    (tom,) = await rows(bot)
    assert as_utc(tom.send_at) == TUESDAY_LONDON and tom.status == "planned"

    clock.advance(hours=22, minutes=31)  # Tuesday 10:31 London
    planned, sent = await tick(bot)
    assert sent == 1
    (message,) = nudges_in(bot, "tom")
    text = message.message.text
    assert text.startswith(("Hi Tom!", "Tom, two minutes")), text
    assert "react to one post" in text and "our Facebook Page" in text
    assert "https://www.facebook.com/111" in text
    assert [b.action for b in message.message.buttons] == [
        "nudge.done",
        "nudge.later",
        "nudge.pause",
        "nudge.stop",
        "nudge.why",
    ]
    assert nudges_in(bot, "noah") == [] and nudges_in(bot, "ada") == []  # not in the audience

    clock.advance(hours=5)  # 15:31 UTC: 10:31 in New York
    await tick(bot)
    (noah,) = nudges_in(bot, "noah")
    assert noah.message.text.startswith(("Hi Noah!", "Noah, two minutes"))
    by_person = {r.person_id: r for r in await rows(bot)}
    assert len(by_person) == 2
    assert {as_utc(r.send_at) for r in by_person.values()} == {TUESDAY_LONDON, TUESDAY_NEW_YORK}


async def test_repeated_jobs_send_each_due_nudge_once(
    nudge_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, clock = nudge_bot
    await advance(bot, clock, days=1, hours=4)  # Tuesday 16:00 UTC: both were due
    for _ in range(3):
        await tick(bot)
    assert len(nudges_in(bot, "tom")) == 1 and len(nudges_in(bot, "noah")) == 1
    assert await outbox_count(bot) == 2
    assert [r.status for r in await rows(bot)] == ["sent", "sent"]
    # The cap: next Tuesday is exactly 7 days on, allowed; nothing sooner.
    await advance(bot, clock, days=6, hours=18)  # Tuesday 10:00 UTC a week on
    assert len(nudges_in(bot, "tom")) == 1
    clock.advance(minutes=31)
    await tick(bot)
    assert len(nudges_in(bot, "tom")) == 2


async def test_a_late_nudge_waits_for_the_persons_window(
    nudge_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, clock = nudge_bot
    await tick(bot)  # Tom's planned for Tuesday 10:30 London
    clock.advance(days=1, hours=8)  # the service was down: Tuesday 20:00 London, after hours
    assert bot.nudges is not None
    assert await bot.nudges.send_due() == 0
    (tom,) = [r for r in await rows(bot) if r.status == "planned"]
    # Not sent at night: moved to Wednesday 10:00 London, when his window opens.
    assert as_utc(tom.send_at) == datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
    clock.advance(hours=14, minutes=1)
    await tick(bot)
    assert len(nudges_in(bot, "tom")) == 1


# -- the buttons -------------------------------------------------------------------------------


async def _tom_nudged(bot: Evangelist, clock: FrozenClock) -> ConsoleEntry:
    await tick(bot)
    await advance(bot, clock, hours=22, minutes=31)  # Tuesday 10:31 London
    (entry,) = nudges_in(bot, "tom")
    return entry


async def test_done_records_participation_once_and_moves_tom_up_the_ladder(
    nudge_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, clock = nudge_bot
    entry = await _tom_nudged(bot, clock)
    answer = await press(bot, "tom", entry, "nudge.done")
    assert "Thank you, Tom!" in answer and "new step for you: **react**" in answer
    assert "watch ✓ · **react** · share" in answer
    again = await press(bot, "tom", entry, "nudge.done")  # the double click
    assert "Already noted" in again
    async with bot.db.transaction() as session:
        events = (await session.scalars(select(ParticipationRow))).all()
        prefs = await session.get(NudgePreferenceRow, entry_person(bot, "tom"))
    assert [(e.kind, e.details) for e in events] == [
        ("nudge_done", {"campaign": "react", "step": "react"}),
        ("ladder_up", {"from": "watch", "to": "react"}),  # for the leaders' digests
    ]
    assert prefs is not None and prefs.stage == "react"
    (row,) = [r for r in await rows(bot) if r.response]
    assert row.response == "done"
    # The pressed message now shows the answer instead of the buttons.
    updated = bot.console.entries[entry.message_id] if bot.console else None
    assert updated is not None and "Done" in (updated.message.context or "")
    assert [b.action for b in updated.message.buttons] == ["nudge.why"]
    # Next week the message asks for the next step up.
    await advance(bot, clock, days=7)
    latest = nudges_in(bot, "tom")[-1]
    assert latest.message.text.startswith("Thanks Tom! Next small step: share one post")


def entry_person(bot: Evangelist, key: str) -> int:
    assert bot.organisation is not None
    return [p.id for p in bot.organisation.people].index(key) + 1


async def test_not_now_has_no_penalty(nudge_bot: tuple[Evangelist, FrozenClock]) -> None:
    bot, clock = nudge_bot
    entry = await _tom_nudged(bot, clock)
    answer = await press(bot, "tom", entry, "nudge.later")
    assert "No problem, Tom" in answer
    assert "Already noted" in await press(bot, "tom", entry, "nudge.later")
    # Doing it after all still counts.
    assert "Thank you, Tom!" in await press(bot, "tom", entry, "nudge.done")
    await advance(bot, clock, days=7)
    assert len(nudges_in(bot, "tom")) == 2


async def test_pause_two_weeks_holds_every_campaign_then_resumes(
    nudge_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, clock = nudge_bot
    entry = await _tom_nudged(bot, clock)
    answer = await press(bot, "tom", entry, "nudge.pause")
    assert "Paused until Tuesday 17 March" in answer
    again = await press(bot, "tom", entry, "nudge.pause")
    assert "Paused until Tuesday 17 March" in again  # same end, not extended
    await advance(bot, clock, days=14, minutes=-1)
    assert len(nudges_in(bot, "tom")) == 1  # the Tuesdays 10 and 17 March 10:30 fall in it
    # The pause ends at 10:31 on the 17th, a minute after that day's slot: held back by the
    # pause, that nudge goes as soon as the pause is over, and the next Tuesday's as usual.
    await advance(bot, clock, minutes=1)
    assert [e.key for e in nudges_in(bot, "tom")][-1] == "nudge:react:tom:2026-03-17"
    await advance(bot, clock, days=7)
    assert len(nudges_in(bot, "tom")) == 3


async def test_stop_ends_one_campaign_and_opt_out_is_only_undone_by_the_person(
    nudge_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, clock = nudge_bot
    entry = await _tom_nudged(bot, clock)
    answer = await press(bot, "tom", entry, "nudge.stop")
    assert "no more nudges from “One reaction a week”" in answer
    await advance(bot, clock, days=7)
    assert len(nudges_in(bot, "tom")) == 1
    # Noah opts out altogether; nobody else has a command that can undo it.
    assert "no more nudges from any campaign" in await say(bot, "noah", "nudges off")
    assert "Nudges are on" in await say(bot, "ada", "nudges on")  # Ada's own, not Noah's
    await advance(bot, clock, days=7)
    noah_before = len(nudges_in(bot, "noah"))
    await advance(bot, clock, days=7)
    assert len(nudges_in(bot, "noah")) == noah_before
    assert "Welcome back!" in await say(bot, "noah", "nudges on")
    await advance(bot, clock, days=7)
    assert len(nudges_in(bot, "noah")) == noah_before + 1


async def test_why_names_the_campaign_its_owner_and_the_way_out(
    nudge_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, clock = nudge_bot
    entry = await _tom_nudged(bot, clock)
    answer = await press(bot, "tom", entry, "nudge.why")
    assert "**One reaction a week**, run by Ada Okafor" in answer
    assert "More of us react to the page" in answer
    assert "at most one nudge a week from all campaigns together, only 10:00 to 16:00" in answer
    assert "`nudges off`" in answer


async def test_someone_elses_nudge_cannot_be_answered(
    nudge_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, clock = nudge_bot
    entry = await _tom_nudged(bot, clock)
    answer = await press(bot, "noah", entry, "nudge.done")
    assert "can't find that nudge" in answer
    assert all(r.response is None for r in await rows(bot))


# -- what the person and the evangelist say ---------------------------------------------------


async def test_a_pause_said_in_chat_is_checked_again_at_send_time(
    nudge_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, clock = nudge_bot
    await tick(bot)  # Tom's Tuesday nudge is planned
    answer = await say(bot, "tom", "nudges pause 3 days")
    assert "Paused until Thursday 05 March" in answer
    await advance(bot, clock, days=1)
    assert nudges_in(bot, "tom") == []
    settings = await say(bot, "tom", "nudges")
    assert "paused until Thursday 05 March" in settings and "**watch** · react" in settings


async def test_out_of_office_holds_nudges(nudge_bot: tuple[Evangelist, FrozenClock]) -> None:
    bot, clock = nudge_bot
    await tick(bot)
    assert "no questions or nudges until" in await say(bot, "tom", "away until 2026-03-05")
    await advance(bot, clock, days=1, hours=4)
    assert nudges_in(bot, "tom") == []
    # Back on Thursday: the Tuesday nudge, planned before he went away, goes when he is back.
    await advance(bot, clock, days=2)
    assert len(nudges_in(bot, "tom")) == 1


async def test_ladder_told_by_the_person_changes_what_they_are_asked(
    nudge_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, clock = nudge_bot
    answer = await say(bot, "tom", "ladder react")
    assert "Nudges will now suggest share one post" in answer
    entry = await _tom_nudged(bot, clock)
    assert entry.message.text.startswith("Thanks Tom! Next small step: share one post")


async def test_the_evangelist_lists_previews_tests_and_pauses_campaigns(
    nudge_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, clock = nudge_bot
    entry = await _tom_nudged(bot, clock)
    await press(bot, "tom", entry, "nudge.done")
    listing = await say(bot, "ada", "campaign list")
    assert "**One reaction a week** (`react`, active" in listing
    assert "sent 1, done 1" in listing and "response 100%" in listing
    stats = await say(bot, "ada", "campaign stats react")
    assert "watch / a:" in stats and "watch / b:" in stats and "react / a:" in stats
    preview = await say(bot, "ada", "campaign preview react noah")
    assert "Preview for Noah Brown" in preview and "Variant a: Hi Noah!" in preview
    assert "Variant b: Noah, two minutes" in preview

    test = await say(bot, "ada", "campaign test react")
    assert "isn't counted anywhere" in test
    (sample,) = nudges_in(bot, "ada")
    assert "Test send" in (sample.message.context or "")
    assert "Thank you, Ada!" in await press(bot, "ada", sample, "nudge.done")
    assert "sent 1, done 1" in await say(bot, "ada", "campaign list")  # the test isn't counted

    assert "is paused" in await say(bot, "ada", "campaign pause react")
    await advance(bot, clock, days=7)
    assert len(nudges_in(bot, "tom")) == 1
    assert "running again" in await say(bot, "ada", "campaign resume react")
    assert "has ended" in await say(bot, "ada", "campaign end react")
    assert "can't be resumed" in await say(bot, "ada", "campaign resume react")
    async with bot.db.transaction() as session:
        actions = (await session.scalars(select(AuditRow.action))).all()
    assert {"campaign.test", "campaign.pause", "campaign.resume", "campaign.end"} <= set(actions)


async def test_only_the_evangelist_runs_campaigns(
    nudge_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, _ = nudge_bot
    for who in ("tom", "mia"):
        answer = await say(bot, who, "campaign pause react")
        assert "only the evangelist can manage campaigns" in answer
    async with bot.db.transaction() as session:
        row = await session.get(CampaignRow, "react")
    assert row is not None and row.status == "active"


async def test_editing_a_campaign_changes_only_the_future(
    database_url: str, nudge_bot: tuple[Evangelist, FrozenClock]
) -> None:
    bot, clock = nudge_bot
    await advance(bot, clock, days=1, hours=4)  # both sent on Tuesday
    # Monday 16:00: both of next Tuesday's nudges are planned (New York's is at 14:30 UTC now
    # that its clocks went forward on the 8th: still 10:30 there).
    await advance(bot, clock, days=6)
    before = await rows(bot)
    assert [r.status for r in before] == ["sent", "sent", "planned", "planned"]
    await bot.db.close()

    edited = parse_organisation(ORG.replace('day: tue, at: "10:30"', 'day: wed, at: "11:00"'))
    restarted = build(make_settings(database_url), clock=clock, organisation=edited, console=True)
    await restarted.prepare()
    try:
        after = await rows(restarted)
        assert [(r.id, r.status) for r in after] == [(before[0].id, "sent"), (before[1].id, "sent")]
        async with restarted.db.transaction() as session:
            campaign = await session.get(CampaignRow, "react")
        assert campaign is not None and campaign.version == 2
        await advance(restarted, clock, days=1)
        tom = entry_person(restarted, "tom")
        (planned,) = [
            r for r in await rows(restarted) if r.status == "planned" and r.person_id == tom
        ]
        # Wednesday 11 March, 11:00 London.
        assert as_utc(planned.send_at) == datetime(2026, 3, 11, 11, 0, tzinfo=UTC)
        assert planned.campaign_version == 2
    finally:
        await restarted.db.close()


# -- crashes -------------------------------------------------------------------------------------


def dies_on_the_second_call(real: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """`real`, except that its second call fails as if the process died at that point."""
    calls = 0

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ConnectionError("the process died here")
        return await real(*args, **kwargs)

    return wrapper


async def plan_both(bot: Evangelist, clock: FrozenClock) -> None:
    """Plan as the scheduler would (a day ahead), then stop at Tuesday 15:45 UTC, both due."""
    assert bot.nudges is not None
    assert await bot.nudges.plan() == 1  # Monday noon: Tom's
    clock.advance(hours=22)
    assert await bot.nudges.plan() == 1  # Tuesday 10:00 UTC: Noah's
    clock.advance(hours=5, minutes=45)  # 15:45 in London, 10:45 in New York


async def test_a_crash_while_sending_loses_nothing_and_sends_nothing_twice(
    database_url: str,
    nudge_bot: tuple[Evangelist, FrozenClock],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bot, clock = nudge_bot
    assert bot.nudges is not None
    await plan_both(bot, clock)
    import nudges.service as service_module

    real = service_module.outbox.enqueue
    monkeypatch.setattr(service_module.outbox, "enqueue", dies_on_the_second_call(real))
    with pytest.raises(ConnectionError):
        await bot.nudges.send_due()
    monkeypatch.setattr(service_module.outbox, "enqueue", real)
    # The batch's transaction rolled back whole: both nudges are still planned, none queued.
    assert [r.status for r in await rows(bot)] == ["planned", "planned"]
    assert await outbox_count(bot) == 0
    await bot.db.close()

    restarted = build(
        make_settings(database_url), clock=clock, organisation=bot.organisation, console=True
    )
    await restarted.prepare()
    try:
        await tick(restarted)
        await tick(restarted)
        assert await outbox_count(restarted) == 2
        assert len(nudges_in(restarted, "tom")) == 1 and len(nudges_in(restarted, "noah")) == 1
    finally:
        await restarted.db.close()


async def test_a_crash_after_the_commit_is_delivered_by_the_next_process(
    database_url: str, nudge_bot: tuple[Evangelist, FrozenClock]
) -> None:
    bot, clock = nudge_bot
    assert bot.nudges is not None
    await plan_both(bot, clock)
    assert await bot.nudges.send_due() == 2  # committed to the outbox, then the process dies
    await bot.db.close()

    restarted = build(
        make_settings(database_url), clock=clock, organisation=bot.organisation, console=True
    )
    await restarted.prepare()
    try:
        await tick(restarted)
        assert len(nudges_in(restarted, "tom")) == 1 and len(nudges_in(restarted, "noah")) == 1
        assert await outbox_count(restarted) == 2
    finally:
        await restarted.db.close()


async def test_planning_twice_or_on_two_processes_plans_once(
    database_url: str, nudge_bot: tuple[Evangelist, FrozenClock]
) -> None:
    bot, clock = nudge_bot
    other = build(
        make_settings(database_url), clock=clock, organisation=bot.organisation, console=True
    )
    try:
        assert bot.nudges is not None and other.nudges is not None
        clock.advance(hours=22)  # Tuesday 10:00 UTC: both are within a day
        counts = [await bot.nudges.plan(), await other.nudges.plan(), await bot.nudges.plan()]
        assert counts == [2, 0, 0]
        sent = [await bot.nudges.send_due(), await other.nudges.send_due()]
        clock.advance(hours=5, minutes=45)
        sent += [await other.nudges.send_due(), await bot.nudges.send_due()]
        assert sum(sent) == 2
        assert await outbox_count(bot) == 2
    finally:
        await other.db.close()


async def test_a_crash_in_the_middle_of_planning_is_finished_by_the_next_run(
    nudge_bot: tuple[Evangelist, FrozenClock], monkeypatch: pytest.MonkeyPatch
) -> None:
    bot, clock = nudge_bot
    assert bot.nudges is not None
    import nudges.service as service_module

    clock.advance(hours=22)  # Tuesday 10:00 UTC: Tom's and Noah's nudges are within a day
    monkeypatch.setattr(service_module, "PLAN_BATCH", 1)
    real = service_module.NudgeService._insert
    monkeypatch.setattr(service_module.NudgeService, "_insert", dies_on_the_second_call(real))
    with pytest.raises(ConnectionError):
        await bot.nudges.plan()
    assert len(await rows(bot)) == 1  # the first batch committed, the second did not
    monkeypatch.setattr(service_module.NudgeService, "_insert", real)
    assert await bot.nudges.plan() == 1  # the rest; the first is not planned twice
    await advance(bot, clock, hours=6)
    assert len(nudges_in(bot, "tom")) == 1 and len(nudges_in(bot, "noah")) == 1
    assert await outbox_count(bot) == 2
