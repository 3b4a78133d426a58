"""From the model's raw answer to core values: parsed against the strict schema, then cleaned.

Every function raises `ValueError` (pydantic's `ValidationError` is one, `InvalidAnswer` too)
when the answer is not one we accept; the caller then answers None and logs `describe(exc)`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from bot.core.llm import Classification, Draft, DraftRequest
from bot.llm import schemas
from bot.llm.safety import clean_text, urls_in, with_disclosure


class InvalidAnswer(ValueError):
    """The answer arrived but is not one we accept."""


def draft(content: str, request: DraftRequest) -> Draft:
    answer = schemas.DraftAnswer.model_validate_json(content)
    allowed = urls_in(request.question, request.disclosure)
    text = with_disclosure(clean_text(answer.reply, allowed_urls=allowed), request.disclosure)
    if text == with_disclosure("", request.disclosure):
        raise InvalidAnswer("nothing left of the reply after cleaning")
    return Draft(text=text, language=answer.language)


def classification(content: str, topic_ids: Sequence[str]) -> Classification:
    answer = schemas.ClassificationAnswer.model_validate_json(content)
    if answer.topic in topic_ids:
        topic: str | None = answer.topic
    elif answer.topic == schemas.NO_TOPIC:
        topic = None
    else:
        raise InvalidAnswer(f"topic {answer.topic[:100]!r} was not offered")
    reason = clean_text(answer.reason, limit=schemas.MAX_REASON_CHARS)
    return Classification(topic, answer.confidence, reason)


def narrative(content: str) -> str:
    answer = schemas.NarrativeAnswer.model_validate_json(content)
    text = clean_text(answer.text, limit=schemas.MAX_NARRATIVE_CHARS)
    if not text:
        raise InvalidAnswer("nothing left of the narrative after cleaning")
    return text


def vectors(data: Sequence[Any], count: int) -> list[list[float]]:
    """Embeddings (items with `index` and `embedding`) in input order, all finite, one size."""
    ordered = sorted(data, key=lambda item: int(item.index))
    if [int(item.index) for item in ordered] != list(range(count)):
        raise InvalidAnswer(f"{len(ordered)} embeddings for {count} texts")
    found = [[float(x) for x in item.embedding] for item in ordered]
    sizes = {len(vector) for vector in found}
    if len(sizes) != 1 or 0 in sizes:
        raise InvalidAnswer(f"embeddings of sizes {sorted(sizes)}")
    if not all(math.isfinite(x) for vector in found for x in vector):
        raise InvalidAnswer("an embedding holds a value that is not a finite number")
    return found


def describe(exc: Exception) -> str:
    """What was wrong, for a log line: never the answer's text (it may quote the public)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        found = [
            f"{'.'.join(map(str, e['loc']))[:100] or 'answer'}: {e['msg']}" for e in errors()[:5]
        ]
        return "; ".join(found)
    return str(exc)[:300]
