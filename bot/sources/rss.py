"""RSS and Atom feeds, polled with conditional GETs; every new entry becomes a post.

The cursor keeps the feed's `ETag` and `Last-Modified` (sent back as `If-None-Match` and
`If-Modified-Since`, so an unchanged feed costs a 304 and no parsing), the ids of the entries
seen lately (feeds re-order and re-publish, so "newer than the last poll" is not enough) and the
newest entry date seen.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin
from xml.etree import ElementTree

import aiohttp

from bot.config.organisation import RssSourceConfig
from bot.core.sources import ItemKind, PollResult, SourceError, SourceItem
from bot.sources.http import HttpAnswer, fetch, retry_after_seconds

__all__ = ["FeedEntry", "RssSource", "parse_feed"]

SEEN_LIMIT = 500
"""Ids remembered at least; every id of the current document is kept too, up to SEEN_MAX."""
SEEN_MAX = 5_000
BACKDATED = timedelta(days=7)
"""An unseen entry dated this long before the newest one seen is old content resurfacing (a
feed that changed its id scheme, say), not news: it is recorded but not emitted."""
FUTURE_SLACK = timedelta(days=1)

ATOM = "{http://www.w3.org/2005/Atom}"
RSS1 = "{http://purl.org/rss/1.0/}"
RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
DC = "{http://purl.org/dc/elements/1.1/}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}"

_PROLOG_ITEM = re.compile(r"\s*(?:<\?.*?\?>|<!--.*?-->)", re.S)
_HTML_START = re.compile(r"\s*<(?:!doctype\s+html|html)\b", re.I)
# Entities can only be declared in a DOCTYPE, and a DOCTYPE can only come before the root
# element, after nothing but the XML declaration, processing instructions and comments.
_DECLARATION_START = re.compile(r"\s*<!\s*(?:DOCTYPE|ENTITY)", re.I)


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One RSS item or Atom entry, in neutral terms."""

    id: str
    title: str | None
    summary: str | None
    link: str | None
    posted_at: datetime | None
    author: str | None

    @property
    def text(self) -> str:
        return "\n\n".join(part for part in (self.title, self.summary) if part)


def parse_feed(body: bytes, base_url: str = "") -> list[FeedEntry]:
    """The entries of an RSS 2.0, RSS 1.0 or Atom document, in document order.

    Raises `SourceError` for an HTML page, a document declaring a DTD or entities (entity
    expansion bombs), XML that is not well-formed (naming the line) or another kind of XML.
    """
    refuse_unsafe_xml(body)
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        line, column = exc.position
        raise SourceError(
            f"the feed is not well-formed XML (line {line}, column {column})"
        ) from exc
    if root.tag == "rss":
        channel = root.find("channel")
        items = channel.findall("item") if channel is not None else []
        return _present([_rss_entry(item, "", base_url) for item in items])
    if root.tag == f"{RDF}RDF":
        return _present([_rss_entry(item, RSS1, base_url) for item in root.findall(f"{RSS1}item")])
    if root.tag == f"{ATOM}feed":
        author = _text(root.find(f"{ATOM}author"), f"{ATOM}name")
        entries = root.findall(f"{ATOM}entry")
        return _present([_atom_entry(entry, author, base_url) for entry in entries])
    local = root.tag.rpartition("}")[2]
    raise SourceError(f"the document is not an RSS or Atom feed (its root element is <{local}>)")


class RssSource:
    """One RSS or Atom feed (a `BrandSource`); each entry is emitted once, as a post."""

    kind = "rss"

    def __init__(self, config: RssSourceConfig, http: aiohttp.ClientSession) -> None:
        self.id = config.id
        self._url = config.url
        self._http = http

    async def poll(
        self, cursor: Mapping[str, Any], now: datetime, watch: Sequence[str] = ()
    ) -> PollResult:
        answer = await fetch(self._http, self._url, headers=conditional_headers(cursor))
        if answer.status == 304:
            return PollResult(items=[], cursor=dict(cursor), calls=1)
        _check_status(answer)
        entries = parse_feed(answer.body, self._url)
        fresh = _fresh(entries, cursor)
        now = _utc(now)
        fresh.sort(key=lambda entry: entry.posted_at or now)
        return PollResult(
            items=[self._item(entry) for entry in fresh],
            cursor=_next_cursor(cursor, entries, answer, now),
            calls=1,
        )

    def _item(self, entry: FeedEntry) -> SourceItem:
        return SourceItem(
            source_id=self.id,
            external_id=entry.id,
            text=entry.text,
            kind=ItemKind.POST,
            url=entry.link,
            author_name=entry.author,
            posted_at=entry.posted_at,
            title=entry.title,
        )


def conditional_headers(cursor: Mapping[str, Any]) -> dict[str, str]:
    """If-None-Match / If-Modified-Since from a cursor's `etag` and `last_modified`."""
    headers = {}
    if isinstance(etag := cursor.get("etag"), str):
        headers["If-None-Match"] = etag
    if isinstance(modified := cursor.get("last_modified"), str):
        # Sent back verbatim: the server compares against its own formatting.
        headers["If-Modified-Since"] = modified
    return headers


def _check_status(answer: HttpAnswer) -> None:
    status = answer.status
    if 200 <= status < 300:
        return
    retry_after = retry_after_seconds(answer.headers)
    what = f"the feed answered HTTP {status}"
    if status == 429 or (status == 503 and retry_after is not None):
        raise SourceError(what, rate_limited=True, retry_after=retry_after)
    if 400 <= status < 500 and status != 408:
        raise SourceError(what, permanent=True)
    raise SourceError(what)


def _fresh(entries: list[FeedEntry], cursor: Mapping[str, Any]) -> list[FeedEntry]:
    seen = set(_ids(cursor.get("seen")))
    newest = _iso(cursor.get("newest"))
    floor = newest - BACKDATED if newest else None
    fresh = []
    for entry in entries:
        if entry.id in seen:
            continue
        seen.add(entry.id)
        if floor is None or entry.posted_at is None or entry.posted_at >= floor:
            fresh.append(entry)
    return fresh


def _next_cursor(
    cursor: Mapping[str, Any], entries: list[FeedEntry], answer: HttpAnswer, now: datetime
) -> dict[str, Any]:
    current = list(dict.fromkeys(entry.id for entry in entries))
    in_document = set(current)
    older = [i for i in _ids(cursor.get("seen")) if i not in in_document]
    keep = max(SEEN_LIMIT, min(len(current), SEEN_MAX))
    # A date far in the future would hide every later entry behind the backdating rule.
    dates = [e.posted_at for e in entries if e.posted_at and e.posted_at <= now + FUTURE_SLACK]
    previous = _iso(cursor.get("newest"))
    newest = max([*dates, previous] if previous else dates, default=None)
    state: dict[str, Any] = {
        "etag": answer.headers.get("ETag"),
        "last_modified": answer.headers.get("Last-Modified"),
        "seen": (older + current)[-keep:],
        "newest": newest.isoformat() if newest else None,
    }
    return {key: value for key, value in state.items() if value is not None}


def _rss_entry(item: ElementTree.Element, ns: str, base_url: str) -> FeedEntry:
    title = _text(item, f"{ns}title")
    summary = _text(item, f"{ns}description") or _text(item, f"{CONTENT}encoded")
    link = _text(item, f"{ns}link")
    entry_id = _text(item, "guid") or item.get(f"{RDF}about") or link
    published = _rfc822(_text(item, "pubDate")) or _iso(_text(item, f"{DC}date"))
    return FeedEntry(
        id=entry_id or _digest(title, summary),
        title=title,
        summary=summary,
        link=urljoin(base_url, link) if link else None,
        posted_at=published,
        author=_text(item, "author") or _text(item, f"{DC}creator"),
    )


def _atom_entry(entry: ElementTree.Element, feed_author: str | None, base_url: str) -> FeedEntry:
    title = _text(entry, f"{ATOM}title")
    summary = _text(entry, f"{ATOM}summary") or _text(entry, f"{ATOM}content")
    link = _atom_link(entry)
    published = _iso(_text(entry, f"{ATOM}published")) or _iso(_text(entry, f"{ATOM}updated"))
    return FeedEntry(
        id=_text(entry, f"{ATOM}id") or link or _digest(title, summary),
        title=title,
        summary=summary,
        link=urljoin(base_url, link) if link else None,
        posted_at=published,
        author=_text(entry.find(f"{ATOM}author"), f"{ATOM}name") or feed_author,
    )


def _atom_link(entry: ElementTree.Element) -> str | None:
    links = [link for link in entry.findall(f"{ATOM}link") if link.get("href")]
    # rel defaults to "alternate" (RFC 4287 section 4.2.7.2).
    alternate = [link for link in links if link.get("rel", "alternate") == "alternate"]
    chosen = alternate or links
    return chosen[0].get("href") if chosen else None


def _present(entries: list[FeedEntry]) -> list[FeedEntry]:
    return [entry for entry in entries if entry.text]


def _text(parent: ElementTree.Element | None, tag: str) -> str | None:
    child = parent.find(tag) if parent is not None else None
    if child is None:
        return None
    # itertext: Atom's type="xhtml" content is child elements, not text.
    text = "".join(child.itertext()).strip()
    return text or None


def refuse_unsafe_xml(body: bytes) -> None:
    """Look at the raw document before any parser sees it."""
    markup = _markup_text(body)
    position = 0
    while (item := _PROLOG_ITEM.match(markup, position)) and item.end() > position:
        position = item.end()
    if _HTML_START.match(markup, position):
        raise SourceError("the address answers an HTML page, not a feed")
    if _DECLARATION_START.match(markup, position):
        raise SourceError("the feed declares entities; refusing it")


def _markup_text(body: bytes) -> str:
    """The document as text, good enough to look for markup before parsing it."""
    if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return body.decode("utf-16", "replace")
    # UTF-16 without a byte order mark, told apart by how "<?" is laid out (XML 1.0 app. F).
    if body[:4] == b"\x00<\x00?":
        return body.decode("utf-16-be", "replace")
    if body[:4] == b"<\x00?\x00":
        return body.decode("utf-16-le", "replace")
    # Latin-1 maps bytes one to one, and UTF-8 never uses ASCII bytes inside a character.
    return body.decode("latin-1").removeprefix("\xef\xbb\xbf")


def _digest(title: str | None, summary: str | None) -> str:
    return "sha256:" + hashlib.sha256(f"{title}\n{summary}".encode()).hexdigest()[:32]


def _ids(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _rfc822(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return _utc(parsed)


def _iso(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return _utc(datetime.fromisoformat(value.strip()))
    except ValueError:
        return None


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
