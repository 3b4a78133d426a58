"""Leader digests on Slack and Teams, through the real delivery paths.

The weekly job (`DigestService.run_due`) and the `digest` command queue two outbox rows per
leader: the digest message, then the participation chart once the message is out. The running
dispatcher delivers them to the fake Slack Web API (a Block Kit DM, then the three-step files
upload v2 into the same DM, with the chart's alt text) and to the fake Bot Connector (an
Adaptive Card, then a card with the compact chart inline as a data URI). Commands arrive the way
each platform sends them: a signed, form-encoded `/evangelist digest` slash command and an
Events API `message.im` and a Teams personal-chat message. Tests wait on what the fakes record
or on outbox rows, never for a fixed time; the frozen clock is moved only to make a retry due.

The organisation: Lara leads Alpha (five people, so figures about people are shown); Tom is in
no team. The clock fixture is Monday 2 March 2026, 10:00 in London: week 9 (23 February to
1 March) is complete and Lara's Monday 09:00 has passed, so its digest is due.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import aiohttp
import pytest
from PIL import Image
from sqlalchemy import select

from bot.app import build
from bot.config.organisation import parse_organisation
from bot.core.clock import FrozenClock
from bot.digests import chart, render
from bot.digests.figures import DigestFigures
from bot.storage import participation
from bot.storage.models import DigestRow, OutboxRow, PersonRow
from tests.conftest import (
    BOT_TOKEN,
    SIGNING_SECRET,
    RunningBot,
    make_settings,
    serving,
    slack_headers,
)
from tests.fakes import RecordedCall
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.slack_api import UPLOAD_CALL, FakeSlackApi
from tests.integration.test_question_desk_platforms import (
    CARD,
    POST_MESSAGE,
    TENANT,
    Slack,
    Teams,
    card_of,
    response_to,
    shown,
    words,
)
from tests.integration.test_slack import wait_until

LARA_SLACK, ANN_SLACK, TOM_SLACK = "U0LEAD001", "U0ANN0001", "U0TOM0001"
LARA_TEAMS = "29:1lara"
FORM = "application/x-www-form-urlencoded"
OPEN, GET_URL, COMPLETE = (
    "conversations.open",
    "files.getUploadURLExternal",
    "files.completeUploadExternal",
)
W08 = datetime(2026, 2, 16, tzinfo=UTC)  # Monday 00:00 in London (GMT) is 00:00 UTC
W09 = datetime(2026, 2, 23, tzinfo=UTC)
W10 = datetime(2026, 3, 2, tzinfo=UTC)
TEAMS_MESSAGE_LIMIT = 28_000
"""Teams refuses bot messages much over 28 KB, card JSON included."""

ORG = """
organisation: {name: Northfield University, timezone: Europe/London}
people:
  - {id: lara, name: Lara Lead, email: lara@example.org, timezone: Europe/London,
     slack: U0LEAD001, teams: "29:1lara"}
  - {id: ann, name: Ann One, timezone: Europe/London, slack: U0ANN0001, teams: "29:1ann"}
  - {id: abe, name: Abe Two, timezone: Europe/London, slack: U0ABE0001, teams: "29:1abe"}
  - {id: ava, name: Ava Three, timezone: Europe/London, slack: U0AVA0001, teams: "29:1ava"}
  - {id: al, name: Al Four, timezone: Europe/London, slack: U0AL00001, teams: "29:1al"}
  - {id: amy, name: Amy Five, timezone: Europe/London, slack: U0AMY0001, teams: "29:1amy"}
  - {id: tom, name: Tom Becker, timezone: Europe/London, slack: U0TOM0001, teams: "29:1tom"}
teams:
  - {id: alpha, name: Alpha, leaders: [lara], members: [ann, abe, ava, al, amy]}
"""

_refs = itertools.count(1)


# -- the database ---------------------------------------------------------------------------


async def did(running: RunningBot, key: str, kind: str, at: datetime) -> None:
    """`key` did `kind` at `at` (a participation row, as the desk, nudges and library write)."""
    async with running.bot.db.transaction() as session:
        person = await session.scalar(select(PersonRow.id).where(PersonRow.key == key))
        assert person is not None
        await participation.record(
            session, person_id=person, kind=kind, reference=f"t{next(_refs)}", at=at
        )


async def last_week(running: RunningBot) -> None:
    """Week 9: Ann answered a question, Abe opened a link, Ava did a nudge (3 of 5 active);
    in week 8 only Ann took part."""
    await did(running, "ann", "link_opened", W08 + timedelta(days=1, hours=11))
    await did(running, "ann", "question_answered", W09 + timedelta(days=1, hours=10))
    await did(running, "abe", "link_opened", W09 + timedelta(days=2, hours=14))
    await did(running, "ava", "nudge_done", W09 + timedelta(days=3, hours=9))


async def snapshots(running: RunningBot) -> list[DigestRow]:
    async with running.bot.db.transaction() as session:
        return list((await session.scalars(select(DigestRow).order_by(DigestRow.id))).all())


async def outbox(running: RunningBot) -> list[OutboxRow]:
    async with running.bot.db.transaction() as session:
        return list((await session.scalars(select(OutboxRow).order_by(OutboxRow.id))).all())


async def all_sent(running: RunningBot, count: int | None = None) -> None:
    """Wait until the outbox holds `count` rows (at least one, if None), every one sent."""

    async def done() -> bool:
        rows = await outbox(running)
        enough = len(rows) == count if count is not None else bool(rows)
        return enough and all(r.status == "sent" for r in rows)

    await wait_until(done, f"{count or 'all'} outbox rows to be sent")


async def run_due(running: RunningBot) -> int:
    service = running.bot.digests
    assert service is not None
    return await service.run_due()


async def drain_digests(running: RunningBot) -> None:
    """Wait for the `digest` commands' background work (it queues the DM and the chart)."""
    commands = running.bot.digest_commands
    assert commands is not None
    await commands.drain()


def png_of(data: bytes) -> Image.Image:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == "PNG"
    return image


# -- Slack's side ---------------------------------------------------------------------------


async def slash(slack: Slack, text: str, *, user: str, token: str) -> float:
    """`/evangelist <text>`, form-encoded and signed as Slack sends it; the seconds Slack
    waited for the acknowledgement (it gives up after 3)."""
    fields = {
        "token": "verification-token-unused",
        "team_id": "T0001",
        "team_domain": "example",
        "channel_id": "C0GENERAL",
        "channel_name": "general",
        "user_id": user,
        "user_name": user.lower(),
        "command": "/evangelist",
        "text": text,
        "api_app_id": "A0EVANGELIST",
        "is_enterprise_install": "false",
        "response_url": slack.fake.response_url(token),
        "trigger_id": f"{next(_refs)}.1000000001.{token}",
    }
    body = urlencode(fields)
    started = time.monotonic()
    async with slack.http.post(
        f"{slack.bot.url}/slack/events", data=body, headers=slack_headers(body, content_type=FORM)
    ) as response:
        assert response.status == 200, await response.text()
    return time.monotonic() - started


async def say_in_dm(slack: Slack, user: str, text: str) -> None:
    """A direct message to the bot (`message` with channel_type `im`, the Events API)."""
    ts = f"1772445600.{next(_refs):06d}"
    await slack.event(
        {
            "type": "message",
            "channel": f"D{user}",
            "user": user,
            "text": text,
            "ts": ts,
            "event_ts": ts,
            "channel_type": "im",
        }
    )


def upload_calls(fake: FakeSlackApi) -> list[str]:
    """The digest's Slack calls, in the order they arrived."""
    wanted = {POST_MESSAGE, OPEN, GET_URL, UPLOAD_CALL, COMPLETE}
    return [c.name for c in fake.calls if c.name in wanted]


async def chart_upload(
    fake: FakeSlackApi, *, uploads: int = 1
) -> tuple[RecordedCall, RecordedCall, bytes]:
    """The `uploads`-th chart upload: (getUploadURLExternal, completeUploadExternal, bytes)."""
    completed = await fake.wait_for(COMPLETE, count=uploads)
    asked = fake.calls_to(GET_URL)[uploads - 1]
    done = completed[uploads - 1]
    [entry] = done.json_field("files")
    return asked, done, fake.uploaded[entry["id"]]


@pytest.fixture
async def slack(
    database_url: str, fake_slack: FakeSlackApi, clock: FrozenClock
) -> AsyncIterator[Slack]:
    settings = make_settings(
        database_url,
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_base_url=fake_slack.base_url,
        outbox_poll_seconds=0.05,
    )
    bot = build(settings, clock=clock, organisation=parse_organisation(ORG))
    async with serving(bot) as running, aiohttp.ClientSession() as http:
        yield Slack(running, fake_slack, http)


@pytest.fixture
async def teams(
    database_url: str, fake_connector: FakeBotConnector, clock: FrozenClock
) -> AsyncIterator[Teams]:
    """Teams with authentication off; proactive chats are opened through the fake connector."""
    settings = make_settings(
        database_url,
        outbox_poll_seconds=0.05,
        teams_service_url=fake_connector.service_url,
        teams_tenant_id=TENANT,
    )
    bot = build(settings, clock=clock, organisation=parse_organisation(ORG))
    async with serving(bot) as running, aiohttp.ClientSession() as http:
        yield Teams(running, fake_connector, http)


# -- Slack ------------------------------------------------------------------------------------


async def test_slack_weekly_digest_is_a_dm_then_the_chart_upload(slack: Slack) -> None:
    fake = slack.fake
    await last_week(slack.bot)

    assert await run_due(slack.bot) == 1

    (sent,) = await fake.wait_for(POST_MESSAGE)
    asked, done, png = await chart_upload(fake)
    [snapshot] = await snapshots(slack.bot)
    figures = DigestFigures.from_dict(snapshot.figures)
    assert (snapshot.week, snapshot.scope, figures.people) == ("2026-W09", "Alpha", 5)

    # The words: a DM by user id, Block Kit with the title, the figures and the privacy note.
    assert sent.params["channel"] == LARA_SLACK
    [message] = slack.dm(LARA_SLACK)
    text = shown(message)
    assert message["text"] == render.title(figures)
    assert render.title(figures) == "Participation digest: Alpha, week 09 (23 Feb – 1 Mar 2026)"
    blocks = message["blocks"]
    assert blocks[0]["type"] == "section" and render.title(figures) in blocks[0]["text"]["text"]
    assert "Taking part:* 60% of 5 people (▲ 40 pts on last week" in text
    [context] = [b for b in blocks if b["type"] == "context"]
    assert "recognition on" in context["elements"][0]["text"]
    assert "no digest lists who did not take part" in context["elements"][0]["text"]
    assert "Ann One" not in text  # she did not agree to be named: a number among others
    assert "1 other stepped up too" in text

    # The chart: files upload v2 into that DM, after the words, described for screen readers.
    assert upload_calls(fake) == [POST_MESSAGE, OPEN, GET_URL, UPLOAD_CALL, COMPLETE]
    assert fake.calls_to(OPEN)[0].params["users"] == LARA_SLACK
    assert asked.params["alt_txt"] == chart.alt_text(figures)
    assert asked.params["filename"] == "participation-2026-W09.png"
    assert int(asked.params["length"]) == len(png)
    assert done.params["channel_id"] == f"D{LARA_SLACK}"  # the DM the message went to
    [entry] = done.json_field("files")
    assert entry["title"] == "Participation: Alpha, 2026-W09"
    assert png_of(png).size == chart.SLACK_SIZE
    assert png == chart.render(figures)  # the chart of the stored week, as Slack draws it

    # Once a week: the job runs every few minutes, and sends nothing more.
    await all_sent(slack.bot, 2)
    calls = len(fake.calls)
    assert await run_due(slack.bot) == 0
    assert await slack.bot.drain() == 0
    assert len(fake.calls) == calls and len(await snapshots(slack.bot)) == 1


async def test_slack_digest_command_for_a_leader_and_refused_to_others(
    slack: Slack, clock: FrozenClock
) -> None:
    fake = slack.fake
    clock.set(W10 + timedelta(days=3, hours=12))  # Thursday noon
    await did(slack.bot, "ann", "question_answered", W10 + timedelta(hours=11))
    await did(slack.bot, "abe", "link_opened", W10 + timedelta(days=1, hours=9))

    waited = await slash(slack, "digest", user=LARA_SLACK, token="lara-digest")

    assert waited < 3.0  # Slack's limit for the acknowledgement
    ack = await response_to(fake, "lara-digest", posts=1)
    assert ack["response_type"] == "ephemeral"
    assert ack["text"].startswith("Putting together this week so far for your teams")
    await drain_digests(slack.bot)
    (sent,) = await fake.wait_for(POST_MESSAGE)
    asked, done, png = await chart_upload(fake)
    assert sent.params["channel"] == LARA_SLACK
    [message] = slack.dm(LARA_SLACK)
    assert message["text"] == "Participation digest: Alpha, this week so far (2–8 Mar 2026)"
    assert "Taking part:* 40% of 5 people" in shown(message)
    assert done.params["channel_id"] == f"D{LARA_SLACK}"
    assert "2026-W10" in asked.params["alt_txt"] and "so far" in asked.params["alt_txt"]
    assert png_of(png).size == chart.SLACK_SIZE
    assert upload_calls(fake) == [POST_MESSAGE, OPEN, GET_URL, UPLOAD_CALL, COMPLETE]
    assert await snapshots(slack.bot) == []  # "so far" is not the week's snapshot

    # Tom leads no team: a polite no, nothing computed, nothing uploaded.
    await slash(slack, "digest", user=TOM_SLACK, token="tom-digest")
    refused = await response_to(fake, "tom-digest", posts=2)
    assert refused["text"].startswith("Digests are for team leaders")
    await drain_digests(slack.bot)
    await all_sent(slack.bot, 4)
    assert await slack.bot.drain() == 0
    assert len(fake.calls_to(GET_URL)) == 1 and len(fake.calls_to(POST_MESSAGE)) == 1
    assert slack.dm(TOM_SLACK) == []


async def test_slack_recognition_on_names_them_and_off_does_not(
    slack: Slack, clock: FrozenClock
) -> None:
    fake = slack.fake
    await last_week(slack.bot)

    await say_in_dm(slack, ANN_SLACK, "recognition on")

    (thanks,) = await fake.wait_for(POST_MESSAGE)
    assert thanks.params["channel"] == f"D{ANN_SLACK}"
    assert "may name you" in shown(slack.dm(ANN_SLACK)[0])
    assert await run_due(slack.bot) == 1
    await fake.wait_for(POST_MESSAGE, count=2)
    await chart_upload(fake)
    [weekly] = slack.dm(LARA_SLACK)
    assert "Who stepped up:* Ann One answered 1 public question." in shown(weekly)

    # Ann changes her mind; she answers again this week, and Lara asks how it is going.
    clock.advance(timedelta(hours=1))
    await say_in_dm(slack, ANN_SLACK, "recognition off")
    await fake.wait_for(POST_MESSAGE, count=3)
    assert "will not name you" in shown(slack.dm(ANN_SLACK)[1])
    await did(slack.bot, "ann", "question_answered", clock.now() - timedelta(minutes=5))
    await slash(slack, "digest", user=LARA_SLACK, token="lara-digest")
    await response_to(fake, "lara-digest", posts=1)
    await drain_digests(slack.bot)
    await fake.wait_for(POST_MESSAGE, count=4)
    await chart_upload(fake, uploads=2)
    _, so_far = slack.dm(LARA_SLACK)
    assert "this week so far" in so_far["text"]
    assert "Ann One" not in shown(so_far)
    assert "1 other stepped up too" in shown(so_far)


async def rows_by_key(running: RunningBot) -> dict[str, OutboxRow]:
    return {row.idempotency_key: row for row in await outbox(running)}


async def test_slack_chart_waits_for_its_words_when_they_fail_once(
    slack: Slack, clock: FrozenClock
) -> None:
    fake = slack.fake
    await last_week(slack.bot)
    # Slack's "internal_error": a transient failure, answered HTTP 200 with ok=false.
    fake.fail_next(POST_MESSAGE, status=200, body={"ok": False, "error": "internal_error"})

    assert await run_due(slack.bot) == 1

    words_key, chart_key = "digest:2026-W09:lara", "digest:2026-W09:lara:chart"

    async def both_held() -> bool:
        rows = await rows_by_key(slack.bot)
        return (
            rows[words_key].status == rows[chart_key].status == "pending"
            and "internal_error" in (rows[words_key].last_error or "")
            and "not sent yet" in (rows[chart_key].last_error or "")
        )

    await wait_until(both_held, "the words to be retried and the chart to wait for them")
    assert upload_calls(fake) == [POST_MESSAGE]  # no chart without its words
    assert fake.calls_to(POST_MESSAGE)[0].failed

    clock.advance(timedelta(seconds=5))  # the retry is due (the clock is frozen)

    await chart_upload(fake)
    assert upload_calls(fake) == [POST_MESSAGE, POST_MESSAGE, OPEN, GET_URL, UPLOAD_CALL, COMPLETE]
    [message] = slack.dm(LARA_SLACK)
    assert message["text"].startswith("Participation digest: Alpha, week 09")
    await all_sent(slack.bot, 2)


async def test_slack_chart_is_not_sent_alone_when_its_words_are_refused(slack: Slack) -> None:
    fake = slack.fake
    await last_week(slack.bot)
    # Lara's account was deactivated: Slack refuses the DM for good.
    fake.fail_next(POST_MESSAGE, status=200, body={"ok": False, "error": "account_inactive"})

    assert await run_due(slack.bot) == 1

    async def both_failed() -> bool:
        rows = await outbox(slack.bot)
        return len(rows) == 2 and all(row.status == "failed" for row in rows)

    await wait_until(both_failed, "the words and the chart to fail for good")
    assert upload_calls(fake) == [POST_MESSAGE]
    assert await run_due(slack.bot) == 0  # the week's snapshot is kept: no second try


# -- Teams ------------------------------------------------------------------------------------


@pytest.mark.parametrize("wrote_first", [False, True], ids=["never-wrote", "wrote-first"])
async def test_teams_weekly_digest_is_a_card_then_the_chart_inline(
    teams: Teams, wrote_first: bool
) -> None:
    fake = teams.fake
    await last_week(teams.bot)
    before = 0
    if wrote_first:
        # Lara talked to the bot last week: it knows her one-to-one chat, and writes there.
        hello = teams.activity((LARA_TEAMS, "Lara Lead"), "a:lara", text="hello")
        assert (await teams.post(hello))[0] == 200
        await all_sent(teams.bot)  # the bot's answer
        before = len(fake.activities("a:lara"))
        assert before >= 1

    assert await run_due(teams.bot) == 1

    if wrote_first:
        chat = "a:lara"
        await fake.wait_for_activities(chat, count=before + 2)
        assert fake.calls_to("create_conversation") == []
    else:
        chat = await teams.chat_with(LARA_TEAMS, sent=2)
        assert len(fake.calls_to("create_conversation")) == 1  # the chart reuses the chat
    digest, image = fake.activities(chat)[before:]
    [snapshot] = await snapshots(teams.bot)
    figures = DigestFigures.from_dict(snapshot.figures)

    # The words, as an Adaptive Card.
    card = card_of(digest)
    said = words(digest)
    assert render.title(figures) in said and "60% of 5 people" in said
    assert card["body"][-1]["isSubtle"] is True and "recognition on" in card["body"][-1]["text"]

    # The chart: a card with the compact PNG inline, with its alt text, under Teams' limit.
    (attachment,) = image["attachments"]
    assert attachment["contentType"] == CARD
    [element] = [e for e in card_of(image)["body"] if e["type"] == "Image"]
    assert element["altText"] == chart.alt_text(figures)
    prefix = "data:image/png;base64,"
    assert element["url"].startswith(prefix)
    png = base64.b64decode(element["url"].removeprefix(prefix), validate=True)
    assert len(png) <= chart.TEAMS_MAX_BYTES
    width, height = png_of(png).size
    assert width <= chart.TEAMS_SIZE[0] and height <= chart.TEAMS_SIZE[1]  # Teams: ≤ 1024 px
    assert png == chart.render(figures, compact=True)
    assert len(json.dumps(image).encode()) < TEAMS_MESSAGE_LIMIT
    assert "Participation: Alpha, 2026-W09" in words(image)

    await all_sent(teams.bot, before + 2)  # (and the answer to Lara's hello)
    sent = len(fake.activities())
    assert await run_due(teams.bot) == 0
    assert await teams.bot.drain() == 0
    assert len(fake.activities()) == sent


async def test_teams_digest_command_in_the_personal_chat(teams: Teams, clock: FrozenClock) -> None:
    fake = teams.fake
    clock.set(W10 + timedelta(days=3, hours=12))  # Thursday noon
    await did(teams.bot, "ann", "question_answered", W10 + timedelta(hours=11))
    await did(teams.bot, "abe", "link_opened", W10 + timedelta(days=1, hours=9))

    asked = teams.activity((LARA_TEAMS, "Lara Lead"), "a:lara", text="digest")
    assert (await teams.post(asked))[0] == 200

    await drain_digests(teams.bot)
    sent = await fake.wait_for_activities("a:lara", count=3)
    # The answer goes to the chat it was asked in, the digest to Lara's DM: the same chat here,
    # in either order; the chart always after its words.
    [ack] = [a for a in sent if "Putting together" in words(a)]
    assert "this week so far for your teams" in words(ack)
    digest, image = [a for a in sent if a is not ack]
    assert "Participation digest: Alpha, this week so far (2–8 Mar 2026)" in words(digest)
    assert "Taking part:** 40% of 5 people" in words(digest)
    [element] = [e for e in card_of(image)["body"] if e["type"] == "Image"]
    assert "2026-W10" in element["altText"] and "so far" in element["altText"]
    png = base64.b64decode(element["url"].removeprefix("data:image/png;base64,"))
    assert len(png) <= chart.TEAMS_MAX_BYTES and png_of(png).size[0] <= chart.TEAMS_SIZE[0]
    assert len(json.dumps(image).encode()) < TEAMS_MESSAGE_LIMIT
    assert fake.calls_to("create_conversation") == []  # she wrote: her chat is known
