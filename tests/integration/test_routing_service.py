"""The desk's router kept trained: from the organisation file at first, then from answers and
"Not me — wrong topic" declines, re-encoding only what is new. On the real app, the console
platform and the packaged sentence encoder (wrapped to count what it is asked to encode).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import numpy as np
import pytest

from bot.app import Evangelist, build
from bot.config.organisation import parse_organisation
from bot.core.clock import FrozenClock
from bot.routing import build as routing_build
from bot.routing.encoders import Encoder
from bot.routing.router import TopicRouter
from bot.routing.training import examples_from_organisation
from tests.conftest import make_settings
from tests.integration.test_question_lifecycle import (
    MONDAY_10,
    ORG,
    inbox,
    load,
    press,
    question,
    reply,
    take_in,
)

PARKING = "Where can visitors park their car on campus?"


class Counting:
    """The real encoder, recording every batch of texts it is given."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimensions = inner.dimensions
        self.batches: list[list[str]] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.batches.append(list(texts))
        return self.inner.encode(texts)


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> Counting:
    try:
        real = routing_build.semantic_encoder()
    except Exception as exc:  # pragma: no cover - the model is a dependency
        pytest.fail(f"the packaged sentence encoder did not load: {exc}")
    encoder = Counting(real)
    monkeypatch.setattr(routing_build, "semantic_encoder", lambda *args: encoder)
    return encoder


@pytest.fixture
async def bot(database_url: str, counting: Counting) -> AsyncIterator[Evangelist]:
    org = parse_organisation(ORG + "routing: {router: semantic}\n")
    app = build(
        make_settings(database_url), clock=FrozenClock(MONDAY_10), organisation=org, console=True
    )
    await app.prepare()
    try:
        yield app
    finally:
        await app.db.close()


def encoded(counting: Counting) -> list[str]:
    """Texts the encoder was asked for during training (batches of more than one text)."""
    return [text for batch in counting.batches if len(batch) > 1 for text in batch]


async def test_training_from_config_then_only_new_answers_are_encoded(
    bot: Evangelist, counting: Counting
) -> None:
    assert bot.routing is not None and bot.desk is not None
    configured = [e.text for e in examples_from_organisation(bot.routing.organisation)]

    assert await bot.routing.retrain()
    assert isinstance(bot.desk.classifier, TopicRouter)
    assert sorted(encoded(counting)) == sorted(configured)
    assert not await bot.routing.retrain(), "nothing changed, nothing to learn"

    counting.batches.clear()
    [qid] = await take_in(bot, question("c1", "Can I apply late if my visa was delayed?"))
    await take_in(bot, reply("c1", "r1", author_name="Ravi Menon"))
    assert (await load(bot, qid)).status == "answered"
    counting.batches.clear()

    assert await bot.routing.retrain()
    assert encoded(counting) == [], "one new text is encoded alone; the rest is remembered"
    [[new]] = [batch for batch in counting.batches if batch]
    assert new == "Can I apply late if my visa was delayed?"
    router = bot.desk.classifier
    assert isinstance(router, TopicRouter)
    assert "Can I apply late if my visa was delayed?" in router._texts


async def test_a_trained_router_routes_and_sends_the_uncovered_to_the_evangelist(
    bot: Evangelist,
) -> None:
    assert bot.routing is not None
    await bot.routing.retrain()

    first, second = await take_in(
        bot,
        question("c1", "What is the deadline to send my application for the autumn intake?"),
        question("c2", PARKING),
    )

    assert (await load(bot, first)).topic_key == "admissions"
    uncovered = await load(bot, second)
    assert uncovered.topic_key is None
    assert [e.message.text for e in inbox(bot, "ada")], "the evangelist has the uncovered one"


async def test_a_wrong_topic_decline_teaches_the_router(bot: Evangelist) -> None:
    assert bot.routing is not None and bot.desk is not None
    await bot.routing.retrain()
    text = "Does the research office help with my application to a PhD programme?"
    [qid] = await take_in(bot, question("c1", text))
    q = await load(bot, qid)
    first_topic = q.topic_key
    assert first_topic is not None
    router = bot.desk.classifier
    assert isinstance(router, TopicRouter)
    before = dict(router.decide(text).ranked)[first_topic]

    [who] = [p for p in ("ravi", "mia", "noah", "ada") if inbox(bot, p)]
    await press(bot, who, inbox(bot, who)[-1], "q.topic")
    assert first_topic in (await load(bot, qid)).excluded_topics

    assert await bot.routing.retrain()
    retrained = bot.desk.classifier
    assert isinstance(retrained, TopicRouter) and retrained is not router
    after = dict(retrained.decide(text).ranked)[first_topic]
    assert after < before
