"""Which router to run: chosen by name, each falling back gracefully.

- `semantic`: sentence embeddings from the packaged all-MiniLM-L6-v2 (ONNX Runtime) + words;
- `lexical`: words only (TF-IDF); no model file, no network;
- `openai`: embeddings from the OpenAI-compatible server at `OPENAI_BASE_URL` + words;
- `keyword`: the first, untrained classifier (keywords and example overlap), for comparison;
- `auto` (the default): `semantic` when its model loads, else `lexical`.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.config.organisation import TopicConfig
from bot.core.sources import TopicMatch
from bot.routing.encoders import (
    Encoder,
    EncoderUnavailable,
    MiniLMEncoder,
    RemoteEncoder,
    locate_model,
)
from bot.routing.router import Decision, Example, RouterSettings, TopicRouter

log = logging.getLogger(__name__)

ROUTERS = ("auto", "semantic", "lexical", "openai", "keyword")

_encoder_cache: dict[tuple[str, str], Encoder] = {}


@dataclass(frozen=True)
class RouterChoice:
    name: str
    model_path: str | None = None
    model_sha256: str | None = None
    embedding_model: str = "text-embedding-3-small"


def semantic_encoder(model_path: str | None = None, sha256: str | None = None) -> Encoder:
    """The local sentence encoder, loaded (and checksum-verified) once per process."""
    source = locate_model(model_path, sha256)
    key = (str(source.path), source.sha256)
    cached = _encoder_cache.get(key)
    if cached is None:
        cached = MiniLMEncoder(source)
        _encoder_cache[key] = cached
    return cached


def make_router(
    choice: RouterChoice, settings: RouterSettings | None = None
) -> TopicRouter | KeywordRouter:
    """A fresh, untrained router. Raises EncoderUnavailable only for an explicit `openai`."""
    name = choice.name
    if name not in ROUTERS:
        raise ValueError(f"unknown router {name!r}; choose one of {', '.join(ROUTERS)}")
    if name == "keyword":
        return KeywordRouter()
    if name == "lexical":
        return TopicRouter(None, settings, "lexical")
    if name == "openai":
        key = os.environ.get("OPENAI_API_KEY")
        if not key:
            raise EncoderUnavailable("the openai router needs OPENAI_API_KEY")
        encoder = RemoteEncoder(
            api_key=key, base_url=os.environ.get("OPENAI_BASE_URL"), model=choice.embedding_model
        )
        return TopicRouter(encoder, settings, "openai")
    try:
        return TopicRouter(
            semantic_encoder(choice.model_path, choice.model_sha256), settings, "semantic"
        )
    except EncoderUnavailable as exc:
        if name == "semantic":
            log.warning("semantic router unavailable (%s); using the lexical router", exc)
        else:
            log.info("no embedding model (%s); using the lexical router", exc)
        return TopicRouter(None, settings, "lexical")


class KeywordRouter:
    """The untrained keyword classifier behind the same interface, for side-by-side figures."""

    name = "keyword"

    def __init__(self) -> None:
        self._classifier: Any = None
        self._ids: dict[str, str] = {}
        self.fit_seconds = 0.0
        self.topics: list[str] = []

    def fit(self, examples: Sequence[Example]) -> KeywordRouter:
        from bot.questions.classifier import KeywordClassifier

        grouped: dict[str, list[str]] = defaultdict(list)
        for example in examples:
            if example.topic is not None and not example.negative:
                grouped[example.topic].append(example.text)
        configs = [
            TopicConfig(id=f"t{i}", name=topic, examples=texts)
            for i, (topic, texts) in enumerate(sorted(grouped.items()))
        ]
        self._ids = {config.id: config.name for config in configs}
        self._classifier = KeywordClassifier(configs)
        self.topics = sorted(grouped)
        return self

    def decide(self, text: str) -> Decision:
        if self._classifier is None:
            raise RuntimeError("the router has not been trained")
        ranked = self._classifier.rank(text, limit=5)
        pairs = tuple((self._ids[m.topic], m.score) for m in ranked)
        if not pairs:
            return Decision(None, 0.0, (), "no keyword or example matched")
        return Decision(pairs[0][0], pairs[0][1], pairs, "")

    def decide_many(self, texts: Sequence[str]) -> list[Decision]:
        return [self.decide(text) for text in texts]

    def rank(self, text: str, limit: int = 3) -> list[TopicMatch]:
        return [TopicMatch(t, s) for t, s in self.decide(text).ranked[:limit]]
