"""The generic signed JSON webhook: any system can hand questions to the desk.

A request carries two headers:

- `X-Evangelist-Timestamp`: Unix seconds when it was sent (older than 5 minutes is refused, so
  a captured request cannot be replayed later);
- `X-Evangelist-Signature`: `sha256=` + hex HMAC-SHA256, keyed with the source's secret, of
  the timestamp, a dot, and the raw body bytes.

The body is one item or `{"items": [...]}` (at most 100), each with at least `id` and `text`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.core.sources import ItemAction, ItemKind, SourceItem

MAX_ITEMS = 100
MAX_SKEW_SECONDS = 300


class WebhookRejected(ValueError):
    """The request is not acceptable; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class _Item(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=200)
    text: str = Field(max_length=50_000)
    url: str | None = Field(default=None, max_length=1000, pattern=r"^https?://")
    author: str | None = Field(default=None, max_length=200)
    author_id: str | None = Field(default=None, max_length=200)
    posted_at: datetime | None = None
    kind: Literal["post", "comment", "reply"] = "comment"
    action: Literal["add", "edit", "remove"] = "add"
    parent_id: str | None = Field(default=None, max_length=200)
    thread_id: str | None = Field(default=None, max_length=200)
    by_page: bool = False
    title: str | None = Field(default=None, max_length=300)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature a sender computes (also what the README's curl example does)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float
) -> None:
    """Raise `WebhookRejected(403)` unless the request is signed with `secret` and fresh."""
    if not timestamp or not signature:
        raise WebhookRejected(403, "missing X-Evangelist-Timestamp or X-Evangelist-Signature")
    try:
        sent = int(timestamp)
    except ValueError as exc:
        raise WebhookRejected(403, "X-Evangelist-Timestamp is not Unix seconds") from exc
    if abs(now - sent) > MAX_SKEW_SECONDS:
        raise WebhookRejected(403, "the timestamp is more than 5 minutes away from now")
    if not hmac.compare_digest(sign(secret, timestamp, body), signature.strip()):
        raise WebhookRejected(403, "the signature does not match")


def parse(source_id: str, body: bytes) -> list[SourceItem]:
    """Items from a verified body; `WebhookRejected(400)` says what is wrong with it."""
    try:
        data: Any = json.loads(body)
    except ValueError as exc:
        raise WebhookRejected(400, f"the body is not JSON ({exc})") from exc
    raw = data.get("items") if isinstance(data, dict) and "items" in data else [data]
    if not isinstance(raw, list) or not raw:
        raise WebhookRejected(400, 'expected an item object or {"items": [...]}')
    if len(raw) > MAX_ITEMS:
        raise WebhookRejected(400, f"at most {MAX_ITEMS} items per request")
    items = []
    for index, entry in enumerate(raw):
        try:
            item = _Item.model_validate(entry)
        except ValidationError as exc:
            problems = "; ".join(
                f"items[{index}].{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                for e in exc.errors()
            )
            raise WebhookRejected(400, problems) from exc
        items.append(_to_source_item(source_id, item))
    return items


def _to_source_item(source_id: str, item: _Item) -> SourceItem:
    return SourceItem(
        source_id=source_id,
        external_id=item.id,
        text=item.text,
        kind=ItemKind(item.kind),
        action=ItemAction(item.action),
        url=item.url,
        author_id=item.author_id,
        author_name=item.author,
        posted_at=item.posted_at,
        parent_id=item.parent_id,
        thread_id=item.thread_id,
        by_page=item.by_page,
        title=item.title,
    )
