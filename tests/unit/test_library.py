"""The library's pure parts: how picks are ranked, what a check does to a link's health, the
configuration, the messages, and link buttons on each platform."""

from __future__ import annotations

import random
import socket
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from bot.config.organisation import parse_organisation
from bot.core.errors import ConfigurationError
from bot.core.types import Button, OutgoingMessage
from bot.platforms.markup import to_slack, to_teams
from bot.platforms.slack.blocks import render_blocks
from bot.platforms.teams.cards import render_card
from bot.storage.models import LinkRow
from content_library import messages
from content_library.checker import CheckResult, Health
from content_library.guard import PublicResolver, literal_private
from content_library.picks import Candidate, Pool, iso_week, level_fit, score
from content_library.service import apply_check
from nudges.config import CampaignConfig, Stage

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


# -- ranking picks ------------------------------------------------------------------------------


def test_the_next_rung_fits_best_and_far_above_fits_least() -> None:
    fits = {level: level_fit(level, Stage.REACT) for level in (*Stage, None)}
    assert fits[Stage.SHARE] > fits[Stage.REACT] > fits[None] > fits[Stage.WATCH]
    assert fits[Stage.WATCH] > fits[Stage.CREATE] == fits[Stage.COMMENT] == 0.0


def test_a_link_on_the_persons_topic_beats_a_general_one_and_votes_break_ties() -> None:
    on_topic = Candidate(1, frozenset({"video"}), None, 0)
    general = Candidate(2, frozenset(), None, 0)
    off_topic = Candidate(3, frozenset({"finance"}), None, 0)
    loved = Candidate(4, frozenset(), None, 3)
    topics = frozenset({"video", "admissions"})
    ranked = sorted(
        (on_topic, general, off_topic, loved),
        key=lambda c: score(c, Stage.WATCH, topics, 7),
        reverse=True,
    )
    assert [c.id for c in ranked] == [1, 4, 2, 3]


def test_the_spread_between_people_never_outweighs_a_real_difference() -> None:
    better = Candidate(1, frozenset(), Stage.REACT, 0)
    worse = Candidate(2, frozenset(), Stage.WATCH, 0)
    for person in range(200):
        assert score(better, Stage.WATCH, frozenset(), person) > score(
            worse, Stage.WATCH, frozenset(), person
        )


def test_the_pool_scores_every_link_as_score_does_one() -> None:
    rng = random.Random(5)
    topics = ["video", "sport", "alumni", "events"]
    candidates = [
        Candidate(
            id=rng.randrange(1, 10**9),
            topics=frozenset(rng.sample(topics, rng.randint(0, 2))),
            level=rng.choice([None, *Stage]),
            votes=rng.randint(-5, 5),
        )
        for _ in range(500)
    ]
    pool = Pool(candidates)
    for stage in Stage:
        for person in (1, 77, 123_456):
            mine = frozenset(rng.sample(topics, 2))
            vectorised = pool.scores(stage, mine, person)
            one_by_one = [score(c, stage, mine, person) for c in candidates]
            assert vectorised.tolist() == pytest.approx(one_by_one, abs=1e-9)
    given = {candidates[0].id, candidates[1].id}
    best = pool.best(Stage.WATCH, frozenset({"video"}), 9, given, 20)
    expected = sorted(
        (c for c in candidates if c.id not in given),
        key=lambda c: score(c, Stage.WATCH, frozenset({"video"}), 9),
        reverse=True,
    )[:20]
    assert best == [c.id for c in expected]
    everything = {c.id for c in candidates}
    assert pool.best(Stage.WATCH, frozenset(), 9, everything, 20) == []
    assert Pool([]).best(Stage.WATCH, frozenset(), 9, set(), 20) == []


def test_iso_weeks_follow_the_calendar() -> None:
    assert iso_week(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-W01"
    assert iso_week(datetime(2027, 1, 1, tzinfo=UTC)) == "2026-W53"


# -- link health --------------------------------------------------------------------------------


def fresh_link() -> LinkRow:
    return LinkRow(id=1, url="https://example.org/a", health="unchecked", failures=0)


def result(health: Health, status: int | None = 200, final: str | None = None) -> CheckResult:
    return CheckResult("https://example.org/a", health, status, final, "timed out", 0.1)


def test_a_link_that_cannot_be_reached_is_broken_only_after_enough_checks_in_a_row() -> None:
    link = fresh_link()
    for _ in range(2):
        apply_check(link, result(Health.UNREACHABLE, None), NOW, broken_after=3)
    assert (link.health, link.failures, link.check_error) == ("unchecked", 2, "timed out")
    apply_check(link, result(Health.OK), NOW, broken_after=3)
    assert (link.health, link.failures, link.check_error) == ("ok", 0, None)
    for day in range(3):
        apply_check(link, result(Health.UNREACHABLE, None), NOW + timedelta(days=day), 3)
    assert (link.health, link.broken_since) == ("broken", NOW + timedelta(days=2))


def test_a_404_breaks_a_link_at_once_and_a_working_check_brings_it_back() -> None:
    link = fresh_link()
    apply_check(link, result(Health.BROKEN, 404), NOW, broken_after=3)
    assert (link.health, link.http_status, link.broken_since) == ("broken", 404, NOW)
    later = NOW + timedelta(days=7)
    apply_check(link, result(Health.BROKEN, 410), later, broken_after=3)
    assert link.broken_since == NOW  # broken since the first time
    apply_check(
        link, result(Health.REDIRECTED, 200, "https://example.org/new"), later, broken_after=3
    )
    assert (link.health, link.final_url, link.broken_since) == (
        "redirected",
        "https://example.org/new",
        None,
    )
    assert messages.target_of(link) == "https://example.org/new"


# -- configuration ------------------------------------------------------------------------------

BASE = "organisation: {name: Org}\n"


def test_the_library_section_has_sensible_defaults() -> None:
    library = parse_organisation(BASE).library
    assert library.weekly is None and library.feeds == []
    assert (library.check.every_days, library.check.per_host, library.check.broken_after) == (
        7,
        2,
        3,
    )


@pytest.mark.parametrize(
    ("section", "named"),
    [
        ("library: {weekly: {day: someday}}", "library.weekly.day"),
        (
            "library: {feeds: [{url: 'javascript:alert(1)'}]}",
            "library.feeds[0].url: only http and https",
        ),
        ("library: {check: {per_host: 0}}", "library.check.per_host"),
        ("library: {weekly: {channel: ['#x']}}", "library.weekly.channel"),
        (
            "library: {feeds: [{url: 'https://a.example/feed', level: expert}]}",
            "library.feeds[0].level",
        ),
    ],
)
def test_a_bad_library_setting_is_named(section: str, named: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_organisation(BASE + section)
    assert named in str(caught.value) or any(named in p for p in caught.value.problems)


def test_a_campaign_carries_a_pick_when_a_message_uses_link() -> None:
    def campaign(text: str) -> CampaignConfig:
        return CampaignConfig.model_validate(
            {
                "id": "c",
                "name": "C",
                "audience": {"everyone": True},
                "cadence": {"day": "tue"},
                "messages": {"watch": ["Hi"], "react": [text]},
            }
        )

    assert campaign("A pick: {link}").uses_link
    assert not campaign("No pick, only {post} and {{link}} in braces").uses_link


# -- messages and platforms ---------------------------------------------------------------------


def stored_link(**fields: object) -> LinkRow:
    values: dict[str, object] = {
        "id": 12,
        "url": "https://example.org/a",
        "title": "A [good] read",
        "topics": ["video"],
        "level": "share",
        "health": "ok",
        **fields,
    }
    return LinkRow(**values)


def test_the_weekly_post_has_an_experiment_even_when_the_link_has_none() -> None:
    post = messages.weekly_post(stored_link(), "2026-W10")
    assert post.sections[0] == "📚 **Link of the week:** [A (good) read](https://example.org/a)"
    assert messages.DEFAULT_EXPERIMENT in post.sections[-1]
    tried = next(b for b in post.buttons if b.action == messages.TRIED)
    assert tried.value == "12:2026-W10"


def test_a_broken_link_says_why_in_listings() -> None:
    line = messages.link_line(stored_link(health="broken", http_status=404, check_error=None))
    assert line == "#12 [A (good) read](https://example.org/a) · video · share · broken (HTTP 404)"


def test_link_buttons_open_the_link_on_every_platform() -> None:
    message = OutgoingMessage(
        text="x", buttons=(Button("library.open", "Open", "12", url="https://example.org/a"),)
    )
    assert OutgoingMessage.from_dict(message.to_dict()) == message
    assert (
        "url" not in OutgoingMessage(text="x", buttons=(Button("a", "A"),)).to_dict()["buttons"][0]
    )
    (element,) = render_blocks(message)[-1]["elements"]
    assert element["url"] == "https://example.org/a"
    assert element["action_id"].startswith("ev:library.open")  # Slack still sends the press
    (action,) = render_card(message)["actions"]
    assert action == {"type": "Action.OpenUrl", "title": "Open", "url": "https://example.org/a"}


# -- the private-address guard ------------------------------------------------------------------


class FixedResolver(AbstractResolver):
    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port, family=family, proto=0, flags=0)
            for a in self.addresses
        ]

    async def close(self) -> None:
        return None


async def test_names_resolving_to_private_addresses_are_not_reached() -> None:
    mixed = PublicResolver(FixedResolver("10.0.0.5", "93.184.215.14"))
    assert [r["host"] for r in await mixed.resolve("example.org", 443)] == ["93.184.215.14"]
    for addresses in (("127.0.0.1",), ("169.254.169.254",), ("fd00::1", "192.168.1.2")):
        with pytest.raises(OSError, match="private or local"):
            await PublicResolver(FixedResolver(*addresses)).resolve("intranet.example", 80)


@pytest.mark.parametrize(
    ("url", "private"),
    [
        ("http://127.0.0.1:8080/x", True),
        ("http://[::1]/", True),
        ("http://169.254.169.254/latest/meta-data/", True),
        ("http://10.1.2.3/", True),
        ("https://93.184.215.14/", False),
        ("https://example.org/", False),  # a name: the resolver decides
    ],
)
def test_private_addresses_written_out_are_caught_before_any_request(
    url: str, private: bool
) -> None:
    assert literal_private(url) is private


def test_text_from_feeds_cannot_mention_anyone_or_break_a_link() -> None:
    hostile = stored_link(
        title="Ping <@U0ADA0001> and <!channel>",
        summary="<!here> read this",
        url="https://en.wikipedia.org/wiki/Mercury_(planet)",
    )
    post = messages.weekly_post(hostile, "2026-W10")
    (section,) = [s for s in post.sections if "Link of the week" in s]
    slack = to_slack(section)
    assert "<@U0ADA0001>" not in slack and "<!channel>" not in slack
    at = "\uff20"  # the full-width at sign the desk uses for mentions that ping nobody
    link = (
        f"<https://en.wikipedia.org/wiki/Mercury_%28planet%29|Ping {at}U0ADA0001 and {at}channel>"
    )
    assert link in slack
    assert "<!here>" not in to_slack(post.sections[1])
    assert to_teams(section).endswith("(https://en.wikipedia.org/wiki/Mercury_%28planet%29)")
