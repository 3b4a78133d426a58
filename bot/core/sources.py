"""What brand-page sources hand to the question desk, and the ports they implement.

Every source (Facebook Page, Instagram, YouTube, RSS/Atom, the signed generic webhook, CSV)
translates its own payloads into `SourceItem`s at the edge. The desk never sees a Graph or
YouTube payload.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


class ItemKind(StrEnum):
    POST = "post"
    """A top-level post (a visitor's post on the page, an RSS entry, a forum thread)."""
    COMMENT = "comment"
    """A comment on a post or video."""
    REPLY = "reply"
    """A reply to a comment."""


class ItemAction(StrEnum):
    ADD = "add"
    EDIT = "edit"
    REMOVE = "remove"
    """Removed or hidden on the platform: an open question about it is closed."""


@dataclass(frozen=True, slots=True)
class SourceItem:
    """One public post, comment or reply seen on a brand page, in neutral terms.

    `external_id` is unique within its source and identical whether the item arrived by webhook,
    by polling or by import, which is what lets the desk track it once.
    """

    source_id: str
    external_id: str
    text: str
    kind: ItemKind = ItemKind.COMMENT
    action: ItemAction = ItemAction.ADD
    url: str | None = None
    author_id: str | None = None
    author_name: str | None = None
    posted_at: datetime | None = None
    parent_id: str | None = None
    """The external id of what this item replies to (a post for a comment, a comment for a
    reply); None for a top-level post."""
    thread_id: str | None = None
    """The post, video or feed entry the conversation hangs off."""
    by_page: bool = False
    """Written by the brand account itself (never a question; a reply by it is an answer)."""
    reply_count: int | None = None
    """How many replies the platform says the item has, when it says (None: unknown)."""
    title: str | None = None
    """Context for people reading it: the RSS entry title, the video title."""


@dataclass(frozen=True, slots=True)
class PollResult:
    """What one poll of a source brought back."""

    items: list[SourceItem]
    cursor: dict[str, Any]
    """The cursor to store and pass to the next poll (JSON-serialisable)."""
    calls: int = 0
    """API requests the poll made (each page counts)."""
    quota_units: int = 0
    """Units of a metered quota the poll spent (YouTube: 1 per commentThreads page)."""
    rate_headroom: float | None = None
    """Percent of the platform's rate budget still free (100 = untouched), when it says."""
    retry_after: float | None = None
    """Seconds the platform asked us to wait before polling again."""
    token_expires_at: datetime | None = None


class SourceError(Exception):
    """A source could not be read. `permanent` means a retry will not help (bad token, gone)."""

    def __init__(
        self,
        reason: str,
        *,
        permanent: bool = False,
        retry_after: float | None = None,
        rate_limited: bool = False,
        rate_headroom: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after
        self.rate_limited = rate_limited
        self.rate_headroom = rate_headroom


class BrandSource(Protocol):
    """A brand page or feed the desk reads by polling.

    `watch` lists the external ids of open questions from this source; a source that can look
    at their replies cheaply does so, which is how answers are noticed without a webhook.
    """

    id: str
    kind: str

    async def poll(
        self, cursor: Mapping[str, Any], now: datetime, watch: Sequence[str] = ()
    ) -> PollResult: ...


@dataclass(frozen=True, slots=True)
class TopicMatch:
    """One topic a question may be about, with a score in [0, 1] and the reasons."""

    topic: str
    score: float
    reasons: tuple[str, ...] = field(default=())


class TopicClassifier(Protocol):
    """Ranks the organisation's topics for a question's text, best first."""

    def rank(self, text: str, limit: int = 3) -> list[TopicMatch]: ...
