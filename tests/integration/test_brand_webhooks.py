"""Brand-page webhooks over loopback HTTP: the Meta handshake and notifications, the signed
generic intake, and what is (and is not) stored for each answer.

The app runs with its default platforms (Teams, auth off) and without its dispatcher, so the
DMs a routed question causes stay in the outbox table, where the tests read them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.app import Evangelist, build
from bot.config.organisation import (
    FacebookPageSourceConfig,
    OrganisationConfig,
    parse_organisation,
)
from bot.core.clock import FrozenClock
from bot.sources import webhook
from bot.sources.meta import FacebookPageSource
from bot.storage.models import OutboxRow, PersonRow, QuestionRow
from tests.conftest import make_settings, start_bot
from tests.fakes.graph_api import FakeGraphApi

APP_SECRET = "meta-app-secret-0123456789abcdef"
VERIFY_TOKEN = "verify-token-4242"
REVIEWS_SECRET = "reviews-secret-0123456789abcdef"
PAGE_TOKEN = "page-token-0001"
PAGE = "111"
POST = "111_2001"
VISITOR = ("7100000000000001", "Maria Lopez")
QUESTION = "When is the application deadline for the café course?"

ORG = """
organisation: {name: Northfield University, timezone: Europe/London}
people:
  - {id: ada, name: Ada Okafor, timezone: Europe/London, roles: [evangelist], teams: "29:ada"}
  - {id: ravi, name: Ravi Menon, timezone: Europe/London, roles: [expert], teams: "29:ravi"}
  - {id: mia, name: Mia Schulz, timezone: Europe/Berlin, roles: [expert], teams: "29:mia"}
topics:
  - id: admissions
    name: Admissions
    keywords: [apply, application, deadline, tuition, fees]
    experts: [{person: ravi, weight: 2}, {person: mia}]
    fallback_owner: ada
sources:
  - {id: page, kind: facebook_page, page_id: "111", poll_minutes: 0}
  - {id: ig, kind: instagram, account_id: "1784", poll_minutes: 0}
  - {id: reviews, kind: webhook, secret_env: REVIEWS_SECRET}
"""


@dataclass
class Site:
    bot: Evangelist
    url: str
    http: aiohttp.ClientSession
    clock: FrozenClock


@pytest.fixture
def org() -> OrganisationConfig:
    return parse_organisation(ORG)


@asynccontextmanager
async def open_site(
    database_url: str, clock: FrozenClock, org: OrganisationConfig, **settings: Any
) -> AsyncIterator[Site]:
    """The real aiohttp app on loopback. Its dispatcher stays off: with Teams as the only
    platform it would try to reach the real Bot Connector."""
    options = {"meta_app_secret": APP_SECRET, "meta_verify_token": VERIFY_TOKEN, **settings}
    bot = build(make_settings(database_url, **options), clock=clock, organisation=org)
    running, runner = await start_bot(bot, background=False)
    try:
        async with aiohttp.ClientSession() as http:
            yield Site(bot, running.url, http, clock)
    finally:
        await runner.shutdown()
        await bot.stop()
        await runner.cleanup()


@pytest.fixture
async def site(
    database_url: str,
    clock: FrozenClock,
    org: OrganisationConfig,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Site]:
    monkeypatch.setenv("REVIEWS_SECRET", REVIEWS_SECRET)
    monkeypatch.delenv("REVIEWS_SECRET_FILE", raising=False)
    async with open_site(database_url, clock, org) as running:
        yield running


# -- Meta payloads, as the Webhooks reference documents them ------------------------------------


def feed_comment(
    verb: str,
    comment_id: str,
    message: str | None = QUESTION,
    *,
    at: datetime,
    sender: tuple[str, str] = VISITOR,
) -> dict[str, Any]:
    """A Page `feed` change for a top-level comment (`parent_id` is the post)."""
    value: dict[str, Any] = {
        "item": "comment",
        "verb": verb,
        "comment_id": comment_id,
        "post_id": POST,
        "parent_id": POST,
        "from": {"id": sender[0], "name": sender[1]},
        "created_time": int(at.timestamp()),
    }
    if message is not None:
        value["message"] = message
    entry = {
        "id": PAGE,
        "time": int(at.timestamp()),
        "changes": [{"field": "feed", "value": value}],
    }
    return {"object": "page", "entry": [entry]}


def instagram_comment(comment_id: str, text: str, *, at: datetime) -> dict[str, Any]:
    value = {
        "from": {"id": "232323232", "username": "maria.lopez"},
        "media": {"id": "17900000000000001", "media_product_type": "FEED"},
        "id": comment_id,
        "text": text,
    }
    entry = {
        "id": "1784",
        "time": int(at.timestamp()),
        "changes": [{"field": "comments", "value": value}],
    }
    return {"object": "instagram", "entry": [entry]}


def meta_signature(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def encode(payload: object) -> bytes:
    # Meta escapes non-ASCII characters in what it signs and sends; json.dumps does the same.
    return json.dumps(payload).encode()


async def post_meta(
    site: Site, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    if headers is None:
        headers = {"X-Hub-Signature-256": meta_signature(body)}
    headers = {"Content-Type": "application/json", **headers}
    async with site.http.post(f"{site.url}/webhooks/meta", data=body, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def post_source(
    site: Site,
    body: bytes,
    *,
    source: str = "reviews",
    secret: str = REVIEWS_SECRET,
    sent_at: datetime | None = None,
) -> tuple[int, Any]:
    timestamp = str(int((sent_at or site.clock.now()).timestamp()))
    headers = {
        "Content-Type": "application/json",
        "X-Evangelist-Timestamp": timestamp,
        "X-Evangelist-Signature": webhook.sign(secret, timestamp, body),
    }
    url = f"{site.url}/webhooks/sources/{source}"
    async with site.http.post(url, data=body, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def questions(site: Site) -> list[QuestionRow]:
    async with site.bot.db.transaction() as session:
        return list((await session.scalars(select(QuestionRow).order_by(QuestionRow.id))).all())


async def outbox_count(site: Site) -> int:
    async with site.bot.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(OutboxRow)) or 0)


async def dm_recipients(site: Site) -> list[str]:
    async with site.bot.db.transaction() as session:
        rows = await session.execute(
            select(PersonRow.key)
            .join(OutboxRow, OutboxRow.person_id == PersonRow.id)
            .order_by(OutboxRow.id)
        )
        return list(rows.scalars().all())


# -- the Meta subscription handshake -------------------------------------------------------------


async def handshake(site: Site, token: str, mode: str = "subscribe") -> aiohttp.ClientResponse:
    params = {"hub.mode": mode, "hub.verify_token": token, "hub.challenge": "1158201444"}
    async with site.http.get(f"{site.url}/webhooks/meta", params=params) as resp:
        await resp.read()
        return resp


async def test_meta_handshake_echoes_the_challenge_for_the_right_token(site: Site) -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158"}
    async with site.http.get(f"{site.url}/webhooks/meta", params=params) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/plain"
        assert await resp.text() == "1158"


@pytest.mark.parametrize(("token", "mode"), [("wrong-token", "subscribe"), (VERIFY_TOKEN, "x")])
async def test_meta_handshake_refuses_a_wrong_token_or_mode(
    site: Site, token: str, mode: str
) -> None:
    assert (await handshake(site, token, mode)).status == 403


async def test_meta_handshake_is_404_without_a_verify_token(
    database_url: str, clock: FrozenClock, org: OrganisationConfig
) -> None:
    async with open_site(database_url, clock, org, meta_verify_token=None) as site:
        assert (await handshake(site, VERIFY_TOKEN)).status == 404


# -- Meta notifications --------------------------------------------------------------------------


async def test_feed_comment_added_edited_and_removed(site: Site) -> None:
    now = site.clock.now()
    status, answer = await post_meta(site, encode(feed_comment("add", "2001_3001", at=now)))
    assert (status, answer) == (200, {"items": 1, "new_questions": 1})
    [q] = await questions(site)
    assert (q.source_key, q.external_id, q.status, q.via) == (
        "page",
        "2001_3001",
        "routed",
        "webhook",
    )
    assert q.text == QUESTION and q.author_name == "Maria Lopez"
    assert q.url == f"https://www.facebook.com/{POST}?comment_id=2001_3001"
    assert await dm_recipients(site) == ["ravi"]

    edited = "When is the application deadline for the evening course?"
    status, answer = await post_meta(
        site, encode(feed_comment("edited", "2001_3001", edited, at=now + timedelta(minutes=1)))
    )
    assert (status, answer) == (200, {"items": 1, "new_questions": 0})
    [q] = await questions(site)
    assert q.text == edited and q.status == "routed"

    removed = feed_comment("remove", "2001_3001", None, at=now + timedelta(minutes=2))
    status, answer = await post_meta(site, encode(removed))
    assert (status, answer) == (200, {"items": 1, "new_questions": 0})
    [q] = await questions(site)
    assert q.status == "closed" and q.closed_reason == "removed from the page"


async def test_instagram_comment_is_tracked_under_its_source(site: Site) -> None:
    payload = instagram_comment("17865799348089039", QUESTION, at=site.clock.now())
    status, answer = await post_meta(site, encode(payload))
    assert (status, answer) == (200, {"items": 1, "new_questions": 1})
    [q] = await questions(site)
    assert (q.source_key, q.external_id, q.thread_id) == (
        "ig",
        "17865799348089039",
        "17900000000000001",
    )
    assert q.author_name == "maria.lopez"
    assert await dm_recipients(site) == ["ravi"]


def _altered(body: bytes) -> tuple[bytes, dict[str, str]]:
    signature = meta_signature(body)
    return body.replace(b"deadline", b"deadlime"), {"X-Hub-Signature-256": signature}


def _wrong_secret(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, {"X-Hub-Signature-256": meta_signature(body, "not-the-app-secret")}


def _no_header(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, {}


@pytest.mark.parametrize("tamper", [_wrong_secret, _no_header, _altered])
async def test_a_bad_signature_is_403_and_stores_nothing(site: Site, tamper: Any) -> None:
    body, headers = tamper(encode(feed_comment("add", "2001_3002", at=site.clock.now())))
    status, answer = await post_meta(site, body, headers)
    assert status == 403 and "X-Hub-Signature-256" in answer["error"]
    assert await questions(site) == []
    assert await outbox_count(site) == 0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"object": "page", "entry": [', "malformed notification"),
        (b'{"entry": "x"}', "'object' must be a string"),
        (b'{"object": "page", "entry": "x"}', "'entry' must be a list"),
    ],
)
async def test_a_signed_body_that_is_not_a_notification_is_400_and_logged(
    site: Site, body: bytes, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.web.webhooks"):
        status, answer = await post_meta(site, body)
    assert status == 400 and "malformed notification" in answer["error"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("400" in line and reason in line for line in warnings), warnings
    assert await questions(site) == []


async def test_one_comment_by_webhook_twice_and_by_poll_is_one_question(site: Site) -> None:
    now = site.clock.now()
    body = encode(feed_comment("add", "2001_3003", at=now - timedelta(minutes=5)))
    assert await post_meta(site, body) == (200, {"items": 1, "new_questions": 1})
    # Meta retries deliveries it thinks failed: the very same bytes again.
    assert await post_meta(site, body) == (200, {"items": 1, "new_questions": 0})

    async with FakeGraphApi(token=PAGE_TOKEN) as graph:
        graph.add_post(PAGE, POST, "Open day on Saturday", created_time=now - timedelta(hours=1))
        graph.add_comment(
            POST,
            "2001_3003",
            QUESTION,
            from_id=VISITOR[0],
            from_name=VISITOR[1],
            created_time=now - timedelta(minutes=5),
        )
        config = FacebookPageSourceConfig(id="page", kind="facebook_page", page_id=PAGE)
        polled = await FacebookPageSource(config, site.http, graph.base_url, PAGE_TOKEN).poll(
            {}, now
        )
    assert "2001_3003" in {item.external_id for item in polled.items}
    assert site.bot.desk is not None
    report = await site.bot.desk.take_in(polled.items, via="poll")
    assert report.new == [] and report.failed == 0

    [q] = await questions(site)
    assert q.via == "webhook"
    assert await dm_recipients(site) == ["ravi"]


# -- the signed generic webhook -----------------------------------------------------------------


def review(
    item_id: str, text: str = "Do you offer evening classes for the application?"
) -> dict[str, Any]:
    return {"id": item_id, "text": text, "url": f"https://reviews.example/{item_id}"}


async def test_generic_webhook_takes_a_signed_item(site: Site) -> None:
    status, answer = await post_source(site, encode(review("review-42")))
    [q] = await questions(site)
    assert status == 200
    assert answer == {"items": 1, "new_questions": 1, "question_ids": [q.id], "skipped": {}}
    assert (q.source_key, q.external_id, q.url) == (
        "reviews",
        "review-42",
        "https://reviews.example/review-42",
    )
    assert await dm_recipients(site) == ["ravi"]


async def test_generic_webhook_takes_a_batch(site: Site) -> None:
    body = encode({"items": [review("r-1"), review("r-2", "How much are the tuition fees?")]})
    status, answer = await post_source(site, body)
    assert status == 200 and answer["items"] == 2 and answer["new_questions"] == 2
    assert [q.external_id for q in await questions(site)] == ["r-1", "r-2"]


@pytest.mark.parametrize(
    ("age", "secret", "reason"),
    [
        (timedelta(minutes=5, seconds=1), REVIEWS_SECRET, "5 minutes"),
        (timedelta(minutes=-6), REVIEWS_SECRET, "5 minutes"),
        (timedelta(0), "not-the-secret", "signature does not match"),
    ],
)
async def test_generic_webhook_refuses_stale_or_wrongly_signed_requests(
    site: Site, age: timedelta, secret: str, reason: str
) -> None:
    sent_at = site.clock.now() - age
    status, answer = await post_source(site, encode(review("r-9")), secret=secret, sent_at=sent_at)
    assert status == 403 and reason in answer["error"]
    assert await questions(site) == []
    assert await outbox_count(site) == 0


async def test_generic_webhook_accepts_a_request_just_inside_the_window(site: Site) -> None:
    sent_at = site.clock.now() - timedelta(minutes=5)
    status, _ = await post_source(site, encode(review("r-10")), sent_at=sent_at)
    assert status == 200


@pytest.mark.parametrize("source", ["nope", "page"])
async def test_generic_webhook_unknown_source_is_404(site: Site, source: str) -> None:
    status, answer = await post_source(site, encode(review("r-11")), source=source)
    assert status == 404 and "no webhook source" in answer["error"]


async def test_generic_webhook_without_its_secret_is_503(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REVIEWS_SECRET")
    status, answer = await post_source(site, encode(review("r-12")))
    assert status == 503 and "REVIEWS_SECRET" in answer["error"]
    assert await questions(site) == []


async def test_generic_webhook_names_the_invalid_field(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    body = encode({"items": [{"id": "r-13"}, review("r-14")]})
    with caplog.at_level(logging.WARNING, logger="bot.web.webhooks"):
        status, answer = await post_source(site, body)
    assert status == 400 and "items[0].text" in answer["error"]
    assert "items[0].text" in caplog.text
    assert await questions(site) == [], "a batch with an invalid item is refused whole"


# -- size limit ---------------------------------------------------------------------------------


async def test_a_body_over_the_limit_is_413(
    database_url: str, clock: FrozenClock, org: OrganisationConfig
) -> None:
    async with open_site(database_url, clock, org, max_body_bytes=4096) as site:
        body = encode(feed_comment("add", "2001_3004", "Why? " * 2000, at=clock.now()))
        assert len(body) > 4096
        status, answer = await post_meta(site, body)
        assert status == 413 and answer == {"error": "request body too large"}
        small = encode(feed_comment("add", "2001_3005", at=clock.now()))
        assert (await post_meta(site, small))[0] == 200, "the server keeps serving"
        assert [q.external_id for q in await questions(site)] == ["2001_3005"]
