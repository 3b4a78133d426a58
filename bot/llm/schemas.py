"""The only answers we accept from the model: strict JSON schemas, checked again by pydantic.

The JSON schemas go to the server as `response_format` (structured outputs, `strict: true`), which
a well-behaved server enforces; the pydantic models are what our code trusts, because a server
may ignore the schema and the model may be steered by the text it reads. Extra fields (an
"action", a "tool"), overlong text, a confidence outside 0..1 or a topic nobody offered make the
whole answer invalid.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

NO_TOPIC = "none"
MAX_REPLY_CHARS = 3000
"""An answer longer than this is refused outright; shorter ones are cut to `DRAFT_LIMIT`."""
MAX_REASON_CHARS = 300
MAX_NARRATIVE_CHARS = 2000


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class DraftAnswer(_Answer):
    reply: str = Field(min_length=1, max_length=MAX_REPLY_CHARS)
    language: str = Field(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}$", max_length=24)


class ClassificationAnswer(_Answer):
    topic: str = Field(min_length=1, max_length=100)
    confidence: float = Field(ge=0.0, le=1.0)
    reason: str = Field(max_length=MAX_REASON_CHARS)


class NarrativeAnswer(_Answer):
    text: str = Field(min_length=1, max_length=MAX_NARRATIVE_CHARS)


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    # Strict mode wants every property required and no others allowed.
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


DRAFT_SCHEMA = _object(
    {
        "reply": {
            "type": "string",
            "description": "The reply, starting with the required first line; plain text.",
        },
        "language": {
            "type": "string",
            "description": "BCP 47 tag of the reply's language, e.g. en, es, pt-BR.",
        },
    }
)

NARRATIVE_SCHEMA = _object(
    {"text": {"type": "string", "description": "A few plain sentences, no links."}}
)


def classification_schema(topic_ids: Sequence[str]) -> dict[str, Any]:
    """The classification schema, with the offered topic ids (and "none") as the only choices."""
    return _object(
        {
            "topic": {"type": "string", "enum": [*topic_ids, NO_TOPIC]},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "reason": {"type": "string", "description": "One short sentence."},
        }
    )
