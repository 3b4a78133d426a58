"""Facebook Pages and Instagram: signed webhook notifications and Graph API polling.

Both arrive at the desk as `SourceItem`s with the same `external_id` (the Graph object id), so an
item seen by webhook and again by polling is tracked once. Facts and their sources are in
PLATFORM-FACTS.md §D.1-D.3; items marked [U] there are treated defensively here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from yarl import URL

from bot.config.organisation import FacebookPageSourceConfig, InstagramSourceConfig
from bot.core.sources import ItemAction, ItemKind, PollResult, SourceError, SourceItem
from bot.sources.http import HttpAnswer, fetch, retry_after_seconds

__all__ = [
    "FacebookPageSource",
    "InstagramSource",
    "MalformedPayload",
    "parse_notification",
    "verify_signature",
]

log = logging.getLogger(__name__)

MetaSourceConfig = FacebookPageSourceConfig | InstagramSourceConfig

PAGE_SIZE = 25
MAX_LIST_PAGES = 8
"""Pages followed per listing (feed, media, one post's comments) in one poll."""
MIN_HEADROOM = 10.0
"""Below this percentage of rate budget left, a poll stops calling and returns what it has."""
OVERLAP = timedelta(minutes=10)
"""Each poll re-reads this much before the previous one: Graph may list a comment a little after
its created_time, and the desk drops duplicates by external_id."""
TITLE_CHARS = 80

# Throttling codes from the rate-limiting overview (§D.2): 4 app, 17 user, 32 page, 613 custom,
# 80001 Pages BUC; 80002 is Instagram's BUC code [U].
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, 80001, 80002})
TOKEN_INVALID_CODE = 190
NOT_FOUND_CODE = 100

# The comments edge hides some comments by default; filter=stream lists all of them, replies
# included, and reverse_chronological lets a poll stop at the first comment it already saw (§D.2).
FEED_FIELDS = "id,message,from,created_time,permalink_url,comments.summary(true).limit(0)"
COMMENT_FIELDS = "id,message,from,created_time,parent{id},permalink_url,comment_count"
_COMMENT_QUERY = {
    "fields": COMMENT_FIELDS,
    "filter": "stream",
    "order": "reverse_chronological",
    "limit": str(PAGE_SIZE),
}
IG_MEDIA_FIELDS = "id,caption,permalink,timestamp,comments_count"
IG_REPLY_FIELDS = "id,text,username,timestamp,from,media{id,permalink}"
IG_COMMENT_FIELDS = "id,text,username,timestamp,from,replies{id,text,username,timestamp,from}"

_VERBS = {
    "add": ItemAction.ADD,
    "unhide": ItemAction.ADD,
    "edited": ItemAction.EDIT,
    "edit": ItemAction.EDIT,
    "remove": ItemAction.REMOVE,
    "hide": ItemAction.REMOVE,
}
_POST_ITEMS = frozenset({"post", "status", "photo", "video", "share"})


# -- webhooks ----------------------------------------------------------------------------------


def verify_signature(app_secret: str, raw_body: bytes, header: str | None) -> bool:
    """Check `X-Hub-Signature-256: sha256=<hex>` against the raw request bytes.

    Meta signs the bytes it sent (with unicode escaped), so re-encoded JSON would not match: the
    caller must pass the body exactly as received (§D.1).
    """
    if not app_secret or not header:
        return False
    scheme, sep, received = header.strip().partition("=")
    if scheme != "sha256" or not sep:
        return False
    expected = hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), received.lower().encode())


class MalformedPayload(ValueError):
    """A webhook body that is not shaped like a Meta notification (answered with 400)."""


def parse_notification(
    payload: object,
    sources: Sequence[MetaSourceConfig],
    *,
    usernames: Mapping[str, str] | None = None,
) -> list[SourceItem]:
    """Translate one decoded webhook POST into items for the configured sources.

    `usernames` maps an Instagram source id to the account's own username, when known, so that
    the account's replies are flagged `by_page`. Notifications for pages or accounts that are not
    configured, fields and items we do not track are skipped, not rejected: Meta would retry a
    rejected delivery.
    """
    body = _require_dict(payload, "the notification")
    kind = body.get("object")
    entries = body.get("entry")
    if not isinstance(kind, str):
        raise MalformedPayload("'object' must be a string")
    if not isinstance(entries, list):
        raise MalformedPayload("'entry' must be a list")
    if kind not in ("page", "instagram"):
        log.info("Meta notification for object %r ignored", kind)
        return []
    known = _sources_by_platform_id(kind, sources)
    items: list[SourceItem] = []
    for entry in entries:
        items.extend(_parse_entry(kind, _require_dict(entry, "an entry"), known, usernames or {}))
    return items


def _sources_by_platform_id(
    kind: str, sources: Sequence[MetaSourceConfig]
) -> dict[str, MetaSourceConfig]:
    known: dict[str, MetaSourceConfig] = {}
    for source in sources:
        if not source.enabled:
            continue
        if kind == "page" and isinstance(source, FacebookPageSourceConfig):
            known[source.page_id] = source
        elif kind == "instagram" and isinstance(source, InstagramSourceConfig):
            known[source.account_id] = source
    return known


def _parse_entry(
    kind: str,
    entry: dict[str, Any],
    known: Mapping[str, MetaSourceConfig],
    usernames: Mapping[str, str],
) -> list[SourceItem]:
    entry_id = _str_id(entry.get("id"))
    if entry_id is None:
        raise MalformedPayload("an entry has no 'id'")
    changes = entry.get("changes", [])
    if not isinstance(changes, list):
        raise MalformedPayload(f"'changes' of entry {entry_id} must be a list")
    source = known.get(entry_id)
    if source is None:
        log.warning("Meta notification for unknown %s id %s skipped", kind, entry_id)
        return []
    sent_at = _to_datetime(entry.get("time"))
    items = []
    for change in changes:
        field, value = _change_parts(change, entry_id)
        item = _change_item(source, field, value, sent_at, usernames)
        if item is not None:
            items.append(item)
    return items


def _change_parts(change: object, entry_id: str) -> tuple[str, dict[str, Any]]:
    change = _require_dict(change, f"a change of entry {entry_id}")
    field = change.get("field")
    if not isinstance(field, str):
        raise MalformedPayload(f"a change of entry {entry_id} has no 'field'")
    return field, _require_dict(change.get("value"), f"the value of a {field!r} change")


def _change_item(
    source: MetaSourceConfig,
    field: str,
    value: dict[str, Any],
    sent_at: datetime | None,
    usernames: Mapping[str, str],
) -> SourceItem | None:
    if isinstance(source, FacebookPageSourceConfig) and field == "feed":
        return _feed_item(source, value)
    if isinstance(source, InstagramSourceConfig) and field == "comments":
        return _ig_webhook_item(source, value, sent_at, usernames.get(source.id))
    log.debug("Meta %r change for source %s ignored", field, source.id)
    return None


def _feed_item(source: FacebookPageSourceConfig, value: dict[str, Any]) -> SourceItem | None:
    item, verb = value.get("item"), value.get("verb")
    action = _VERBS.get(verb) if isinstance(verb, str) else None
    if action is None or not (item == "comment" or item in _POST_ITEMS):
        return None  # reactions, likes, blocks, ...: nothing a question depends on
    post_id = _str_id(value.get("post_id"))
    if post_id is None:
        raise MalformedPayload(f"a feed {item!r} change has no 'post_id'")
    author = _Author.of(value.get("from"), source.page_id)
    common = {
        "source_id": source.id,
        "text": _text(value.get("message")),
        "action": action,
        "posted_at": _to_datetime(value.get("created_time")),
        "thread_id": post_id,
        **author.fields(),
    }
    if item != "comment":
        # `link` in a feed change is the attached content (the shared page, the photo), not the
        # post, so only permalink_url is taken as the post's address.
        url = _str(value.get("permalink_url")) or _post_url(post_id)
        return SourceItem(external_id=post_id, kind=ItemKind.POST, url=url, **common)
    comment_id = _str_id(value.get("comment_id"))
    if comment_id is None:
        raise MalformedPayload("a feed comment change has no 'comment_id'")
    parent_id = _str_id(value.get("parent_id")) or post_id
    kind = ItemKind.COMMENT if parent_id == post_id else ItemKind.REPLY
    url = _str(value.get("permalink_url")) or _comment_url(post_id, comment_id)
    return SourceItem(external_id=comment_id, kind=kind, parent_id=parent_id, url=url, **common)


def _ig_webhook_item(
    source: InstagramSourceConfig,
    value: dict[str, Any],
    sent_at: datetime | None,
    own_username: str | None,
) -> SourceItem:
    comment_id = _str_id(value.get("id"))
    if comment_id is None:
        raise MalformedPayload("an Instagram comments change has no 'id'")
    media_id = _str_id(_dict(value.get("media")).get("id"))  # absent for album comments (§D.3)
    parent_id = _str_id(value.get("parent_id"))
    sender = _dict(value.get("from"))
    author = _Author.ig(sender.get("id"), sender.get("username"), source.account_id, own_username)
    # The comments field carries no creation time; the entry's time is when the comment was made
    # as far as the notification can tell.
    return SourceItem(
        source_id=source.id,
        external_id=comment_id,
        text=_text(value.get("text")),
        kind=ItemKind.REPLY if parent_id else ItemKind.COMMENT,
        parent_id=parent_id or media_id,
        thread_id=media_id,
        posted_at=sent_at,
        **author.fields(),
    )


# -- shared translation helpers ----------------------------------------------------------------


@dataclass(frozen=True)
class _Author:
    id: str | None
    name: str | None
    by_page: bool

    @classmethod
    def of(cls, raw: object, page_id: str) -> _Author:
        """A Facebook `from{id,name}`; the page is the author when the ids match (§D.1 [U])."""
        sender = _dict(raw)
        author_id = _str_id(sender.get("id"))
        return cls(author_id, _str(sender.get("name")), author_id == page_id)

    @classmethod
    def ig(cls, raw_id: object, username: object, account_id: str, own: str | None) -> _Author:
        author_id, name = _str_id(raw_id), _str(username)
        by_page = author_id == account_id or (own is not None and name == own)
        return cls(author_id, name, by_page)

    def fields(self) -> dict[str, Any]:
        return {"author_id": self.id, "author_name": self.name, "by_page": self.by_page}


def _require_dict(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedPayload(f"{what} must be a JSON object")
    return value


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _str_id(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text or None


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _to_datetime(value: object) -> datetime | None:
    """Unix seconds (int, or digits in a string) or ISO 8601 (Graph writes `+0000`), as UTC."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    try:
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.strip())
            return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def _post_url(post_id: str) -> str:
    return f"https://www.facebook.com/{post_id}"


def _comment_url(post_id: str, comment_id: str) -> str:
    return f"https://www.facebook.com/{post_id}?comment_id={comment_id}"


def _title(text: str) -> str | None:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first[: TITLE_CHARS - 1] + "…" if len(first) > TITLE_CHARS else (first or None)


# -- Graph API calls ---------------------------------------------------------------------------


class _BudgetSpent(Exception):
    """The rate budget fell below MIN_HEADROOM: stop calling for this poll."""


@dataclass(frozen=True)
class _Usage:
    headroom: float | None
    regain_seconds: float | None


def _read_usage(headers: Mapping[str, str]) -> _Usage:
    """Headroom from `X-App-Usage` and `X-Business-Use-Case-Usage` (percent used, §D.2)."""
    used: list[float] = []
    regain: float | None = None
    app = _json_header(headers.get("X-App-Usage"))
    used.extend(_percentages(app))
    for entries in _dict(_json_header(headers.get("X-Business-Use-Case-Usage"))).values():
        for entry in entries if isinstance(entries, list) else []:
            used.extend(_percentages(entry))
            minutes = _dict(entry).get("estimated_time_to_regain_access")
            if isinstance(minutes, int | float) and minutes > 0:
                regain = max(regain or 0.0, float(minutes) * 60)
    headroom = max(0.0, 100.0 - max(used)) if used else None
    return _Usage(headroom, regain)


def _json_header(value: str | None) -> object:
    if not value:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


def _percentages(raw: object) -> list[float]:
    usage = _dict(raw)
    keys = ("call_count", "total_cputime", "total_time")
    return [float(usage[k]) for k in keys if isinstance(usage.get(k), int | float)]


class _Graph:
    """One poll's conversation with the Graph API: counts calls and watches the rate budget."""

    def __init__(
        self, http: aiohttp.ClientSession, base_url: str, token: str, token_env: str
    ) -> None:
        self._http = http
        self._base = base_url if base_url.endswith("/") else base_url + "/"
        self._origin = URL(self._base).origin()
        self._token = token
        self._token_env = token_env
        self.calls = 0
        self.usage = _Usage(None, None)
        self.truncated = False

    async def get(
        self, path: str, params: Mapping[str, str], *, missing_ok: bool = False
    ) -> dict[str, Any] | None:
        """GET `{base}{path}`; None when `missing_ok` and the object does not exist."""
        # Graph takes the token as a query parameter; it must never reach a log line.
        query = {**params, "access_token": self._token}
        return await self._call(self._base + path, query, missing_ok)

    async def pages(
        self, path: str, params: Mapping[str, str], *, missing_ok: bool = False
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
        """Yield each page's `data`, following `paging.next` as Graph returns it."""
        body = await self.get(path, params, missing_ok=missing_ok)
        for number in range(1, MAX_LIST_PAGES + 1):
            if body is None:
                return
            yield _rows(body)
            next_url = self._next_link(body)
            if next_url is None:
                return
            if number == MAX_LIST_PAGES:
                # What lies beyond the cap is unread, so the poll must not claim it saw it.
                self.truncated = True
                log.warning("Graph listing %s has more than %d pages", path, MAX_LIST_PAGES)
                return
            body = await self._call(next_url, None, missing_ok)

    def _next_link(self, body: dict[str, Any]) -> str | None:
        link = _str(_dict(body.get("paging")).get("next"))
        if link is None:
            return None
        if URL(link).origin() != self._origin:
            # The next link carries the token; never send it anywhere but the Graph host. What it
            # pointed at stays unread, so the poll must not move its cursor past it.
            self.truncated = True
            log.warning("Graph paging link to another host ignored")
            return None
        return link

    async def _call(
        self, url: str, params: Mapping[str, str] | None, missing_ok: bool
    ) -> dict[str, Any] | None:
        if self.usage.headroom is not None and self.usage.headroom < MIN_HEADROOM:
            raise _BudgetSpent
        self.calls += 1
        answer = await fetch(self._http, url, params=params)
        usage = _read_usage(answer.headers)
        if usage.headroom is not None:
            self.usage = usage
        return self._check(answer, usage, missing_ok)

    def _check(self, answer: HttpAnswer, usage: _Usage, missing_ok: bool) -> dict[str, Any] | None:
        body = _lenient_json(answer.body)
        error = _dict(body).get("error")
        if answer.status == 200 and isinstance(body, dict) and error is None:
            return body
        code, message = _error_code(error)
        if answer.status == 429 or code in RATE_LIMIT_CODES:
            raise SourceError(
                f"Graph API rate limit reached (code {code}): {message}",
                rate_limited=True,
                retry_after=usage.regain_seconds or retry_after_seconds(answer.headers),
                # Throttled is no budget left, whether or not a usage header came along.
                rate_headroom=usage.headroom if usage.headroom is not None else 0.0,
            )
        if code == NOT_FOUND_CODE and missing_ok:
            return None
        permanent = _permanent_reason(code, message, self._token_env)
        if permanent is not None:
            raise SourceError(permanent, permanent=True)
        detail = f" (code {code}: {message})" if code is not None else ""
        raise SourceError(
            f"Graph API answered HTTP {answer.status}{detail}",
            retry_after=retry_after_seconds(answer.headers),
        )


def _rows(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The objects in a Graph list's `data`, ignoring anything that is not one."""
    data = body.get("data")
    return [row for row in data if isinstance(row, dict)] if isinstance(data, list) else []


def _lenient_json(body: bytes) -> object:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def _error_code(error: object) -> tuple[int | None, str]:
    fields = _dict(error)
    message = _str(fields.get("message")) or "no message"
    return _int(fields.get("code")), message[:300]


def _permanent_reason(code: int | None, message: str, token_env: str) -> str | None:
    if code == TOKEN_INVALID_CODE:
        return (
            f"Meta rejected the access token ({message}). Create a new Page access token, put it "
            f"in {token_env} and restart Evangelist."
        )
    if code == 10 or (code is not None and 200 <= code < 300):
        return (
            f"The Meta access token lacks a permission ({message}). Grant the app the Page "
            f"permissions in the setup guide (e.g. pages_read_engagement; Instagram: "
            f"instagram_basic, instagram_manage_comments), then put a new token in {token_env}."
        )
    if code == NOT_FOUND_CODE:
        return f"Graph API cannot read this page or account ({message}); check its id."
    return None


# -- polling -----------------------------------------------------------------------------------


def _cursor_since(cursor: Mapping[str, Any], now: datetime, lookback_days: int) -> int:
    value = cursor.get("since")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    return int((now - timedelta(days=lookback_days)).timestamp())


def _newer(item: SourceItem, since: int) -> bool:
    return item.posted_at is None or item.posted_at.timestamp() >= since


@dataclass
class _Poll:
    """What a poll gathered so far; survives a poll cut short by the rate budget."""

    since: int
    items: list[SourceItem]
    complete: bool = False
    cut_short: bool = False

    def result(self, graph: _Graph, now: datetime, extra: Mapping[str, Any]) -> PollResult:
        # Only a listing read to its end may move the cursor; else the next poll starts over.
        since = int((now - OVERLAP).timestamp()) if self.complete else self.since
        return PollResult(
            items=self.items,
            cursor={"since": since, **extra},
            calls=graph.calls,
            rate_headroom=graph.usage.headroom,
            retry_after=graph.usage.regain_seconds if self.cut_short else None,
        )


class FacebookPageSource:
    """Polls a Facebook Page's feed, the comments on recent posts and replies to open questions.

    Posts from the last `lookback_days` are listed on every poll, so a new comment on an older
    post is still found; comments are read newest first and only down to the cursor's `since`.
    The cursor is `{"since": unix seconds}`.
    """

    kind = "facebook_page"

    def __init__(
        self,
        config: FacebookPageSourceConfig,
        http: aiohttp.ClientSession,
        base_url: str,
        token: str,
    ) -> None:
        self.id = config.id
        self._config = config
        self._http = http
        self._base_url = base_url
        self._token = token

    async def poll(
        self, cursor: Mapping[str, Any], now: datetime, watch: Sequence[str] = ()
    ) -> PollResult:
        graph = _Graph(self._http, self._base_url, self._token, self._config.access_token_env)
        state = _Poll(_cursor_since(cursor, now, self._config.lookback_days), [])
        try:
            await self._read_feed(graph, state, now)
            state.complete = not graph.truncated
            for external_id in watch:
                await self._read_replies(graph, state, external_id)
        except _BudgetSpent:
            state.cut_short = True
            log.warning(
                "source %s: rate budget below %.0f%%, poll cut short", self.id, MIN_HEADROOM
            )
        return state.result(graph, now, {})

    async def _read_feed(self, graph: _Graph, state: _Poll, now: datetime) -> None:
        window = now - timedelta(days=self._config.lookback_days)
        params = {
            "fields": FEED_FIELDS,
            "since": str(int(window.timestamp())),
            "limit": str(PAGE_SIZE),
        }
        async with aclosing(graph.pages(f"{self._config.page_id}/feed", params)) as pages:
            async for posts in pages:
                for raw in posts:
                    await self._read_post(graph, state, raw)

    async def _read_post(self, graph: _Graph, state: _Poll, raw: dict[str, Any]) -> None:
        post = self._post_item(raw)
        if post is None:
            return
        if _newer(post, state.since):
            state.items.append(post)
        if post.reply_count != 0:  # None: the summary was missing, so look anyway
            await self._read_comments(graph, state, post)

    async def _read_comments(self, graph: _Graph, state: _Poll, post: SourceItem) -> None:
        path = f"{post.external_id}/comments"
        async with aclosing(graph.pages(path, _COMMENT_QUERY, missing_ok=True)) as pages:
            async for comments in pages:
                for raw in comments:
                    item = self._comment_item(raw, post.external_id, post.external_id)
                    if item is None:
                        continue
                    if not _newer(item, state.since):
                        return  # newest first: the rest was read by an earlier poll
                    state.items.append(_with_title(item, post.text))

    async def _read_replies(self, graph: _Graph, state: _Poll, external_id: str) -> None:
        body = await graph.get(f"{external_id}/comments", _COMMENT_QUERY, missing_ok=True)
        if body is None:
            log.info("source %s: watched item %s is gone or unreadable", self.id, external_id)
            return
        for raw in _rows(body):
            item = self._comment_item(raw, None, external_id)
            if item is not None:
                state.items.append(item)

    def _post_item(self, raw: dict[str, Any]) -> SourceItem | None:
        post_id = _str_id(raw.get("id"))
        if post_id is None:
            return None
        summary = _dict(_dict(raw.get("comments")).get("summary"))
        return SourceItem(
            source_id=self.id,
            external_id=post_id,
            text=_text(raw.get("message")),
            kind=ItemKind.POST,
            url=_str(raw.get("permalink_url")) or _post_url(post_id),
            posted_at=_to_datetime(raw.get("created_time")),
            thread_id=post_id,
            reply_count=_int(summary.get("total_count")),
            **_Author.of(raw.get("from"), self._config.page_id).fields(),
        )

    def _comment_item(
        self, raw: dict[str, Any], post_id: str | None, replied_to: str
    ) -> SourceItem | None:
        """A comment from a comments edge; `replied_to` is the object whose edge was read."""
        comment_id = _str_id(raw.get("id"))
        if comment_id is None:
            # v11+: comment ids need the MODERATE task on the Page (§D.2).
            log.warning("source %s: a comment came without an id (MODERATE task?)", self.id)
            return None
        parent_id = _str_id(_dict(raw.get("parent")).get("id"))
        default_url = _comment_url(post_id, comment_id) if post_id else None
        return SourceItem(
            source_id=self.id,
            external_id=comment_id,
            text=_text(raw.get("message")),
            kind=ItemKind.REPLY if parent_id else ItemKind.COMMENT,
            url=_str(raw.get("permalink_url")) or default_url,
            posted_at=_to_datetime(raw.get("created_time")),
            parent_id=parent_id or replied_to,
            thread_id=post_id if post_id else (None if parent_id else replied_to),
            reply_count=_int(raw.get("comment_count")),
            **_Author.of(raw.get("from"), self._config.page_id).fields(),
        )


def _with_title(item: SourceItem, context: str) -> SourceItem:
    return replace(item, title=_title(context))


class InstagramSource:
    """Polls an Instagram professional account's recent media, their comments and replies.

    Comments are filtered by time rather than cut off, because the order Graph lists them in is
    not documented for Instagram. The cursor is `{"since": unix seconds, "username": str}`; the
    account's own username is looked up once and kept there.
    """

    kind = "instagram"

    def __init__(
        self,
        config: InstagramSourceConfig,
        http: aiohttp.ClientSession,
        base_url: str,
        token: str,
    ) -> None:
        self.id = config.id
        self._config = config
        self._http = http
        self._base_url = base_url
        self._token = token

    async def poll(
        self, cursor: Mapping[str, Any], now: datetime, watch: Sequence[str] = ()
    ) -> PollResult:
        graph = _Graph(self._http, self._base_url, self._token, self._config.access_token_env)
        state = _Poll(_cursor_since(cursor, now, self._config.lookback_days), [])
        username = _str(cursor.get("username"))
        try:
            username = username or await self._username(graph)
            await self._read_media(graph, state, now, username)
            state.complete = not graph.truncated
            for comment_id in watch:
                await self._read_replies(graph, state, comment_id, username)
        except _BudgetSpent:
            state.cut_short = True
            log.warning(
                "source %s: rate budget below %.0f%%, poll cut short", self.id, MIN_HEADROOM
            )
        return state.result(graph, now, {"username": username} if username else {})

    async def _username(self, graph: _Graph) -> str | None:
        body = await graph.get(self._config.account_id, {"fields": "username"})
        return _str(_dict(body).get("username"))

    async def _read_media(
        self, graph: _Graph, state: _Poll, now: datetime, username: str | None
    ) -> None:
        window = now - timedelta(days=self._config.lookback_days)
        params = {"fields": IG_MEDIA_FIELDS, "limit": str(PAGE_SIZE)}
        path = f"{self._config.account_id}/media"
        async with aclosing(graph.pages(path, params)) as pages:
            async for media_page in pages:
                for raw in media_page:
                    posted = _to_datetime(raw.get("timestamp"))
                    if posted is not None and posted < window:
                        return  # media are listed newest first
                    if _int(raw.get("comments_count")) != 0:
                        await self._read_comments(graph, state, raw, username)

    async def _read_comments(
        self, graph: _Graph, state: _Poll, media: dict[str, Any], username: str | None
    ) -> None:
        media_id = _str_id(media.get("id"))
        if media_id is None:
            return
        context = _Media(media_id, _str(media.get("permalink")), _text(media.get("caption")))
        params = {"fields": IG_COMMENT_FIELDS, "limit": str(PAGE_SIZE)}
        async with aclosing(graph.pages(f"{media_id}/comments", params, missing_ok=True)) as pages:
            async for comments in pages:
                for raw in comments:
                    for item in self._thread_items(raw, context, username):
                        if _newer(item, state.since):
                            state.items.append(item)

    def _thread_items(
        self, raw: dict[str, Any], media: _Media, username: str | None
    ) -> list[SourceItem]:
        comment = self._item(raw, media, None, username)
        if comment is None:
            return []
        replies = _rows(_dict(raw.get("replies")))
        found = [self._item(r, media, comment.external_id, username) for r in replies]
        return [comment, *(r for r in found if r is not None)]

    async def _read_replies(
        self, graph: _Graph, state: _Poll, comment_id: str, username: str | None
    ) -> None:
        params = {"fields": IG_REPLY_FIELDS, "limit": str(PAGE_SIZE)}
        body = await graph.get(f"{comment_id}/replies", params, missing_ok=True)
        if body is None:
            log.info("source %s: watched comment %s is gone or unreadable", self.id, comment_id)
            return
        for reply in _rows(body):
            media = _dict(reply.get("media"))
            context = _Media(_str_id(media.get("id")), _str(media.get("permalink")), "")
            item = self._item(reply, context, comment_id, username)
            if item is not None:
                state.items.append(item)

    def _item(
        self, raw: dict[str, Any], media: _Media, parent_id: str | None, username: str | None
    ) -> SourceItem | None:
        comment_id = _str_id(raw.get("id"))
        if comment_id is None:
            return None
        sender = _dict(raw.get("from"))
        name = raw.get("username") or sender.get("username")
        author = _Author.ig(sender.get("id"), name, self._config.account_id, username)
        return SourceItem(
            source_id=self.id,
            external_id=comment_id,
            text=_text(raw.get("text")),
            kind=ItemKind.REPLY if parent_id else ItemKind.COMMENT,
            url=media.permalink,
            posted_at=_to_datetime(raw.get("timestamp")),
            parent_id=parent_id or media.id,
            thread_id=media.id,
            title=_title(media.caption),
            **author.fields(),
        )


@dataclass(frozen=True)
class _Media:
    id: str | None
    permalink: str | None
    caption: str
