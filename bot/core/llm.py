"""What the core asks of a language model and what it gets back: small, frozen, plain values.

The model is optional and untrusted in both directions: what goes in may carry a stranger's
public comment, and what comes out is only ever text a person reads privately and edits before
anything is posted. See `bot.core.ports.LanguageModel`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DraftRequest:
    """Everything a suggested reply to one public question is written from.

    `question` and `author` come from the public and are untrusted; the rest is ours.
    """

    question: str
    language: str | None
    """The language to answer in (a BCP 47 tag such as "es"), or None for the question's own."""
    source: str
    """Where it was asked, in words: "our Facebook Page"."""
    author: str | None
    topic: str | None
    claimer: str
    """The name of the person who will post the reply as themselves."""
    disclosure: str
    """The line every reply starts with, saying who is answering and how they relate to us."""
    tone: str


@dataclass(frozen=True, slots=True)
class Draft:
    """A suggested reply: starts with the disclosure line, checked and capped by our code."""

    text: str
    language: str | None


@dataclass(frozen=True, slots=True)
class TopicChoice:
    """A topic the model may pick, by its id in the organisation file."""

    id: str
    name: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class Classification:
    """The model's pick among the offered topics; `topic_id` None means none of them fits."""

    topic_id: str | None
    confidence: float
    reason: str
