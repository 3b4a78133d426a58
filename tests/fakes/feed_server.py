"""A fake web server publishing one RSS or Atom document, with HTTP conditional requests.

Calls are recorded as ``"feed"``. The document carries an ``ETag`` (by default a hash of the
body) and, when set, a ``Last-Modified``; a request whose ``If-None-Match`` matches the ETag,
or (without ``If-None-Match``, RFC 9110 section 13.1.3) whose ``If-Modified-Since`` is not
older than ``Last-Modified``, gets 304 Not Modified and no body.

``rss_feed``/``rss_item`` and ``atom_feed``/``atom_entry`` build small documents for tests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from xml.sax.saxutils import escape, quoteattr

from aiohttp import web

from tests.fakes import FakeHttpServer, RecordedCall, build_response

__all__ = ["FakeFeedServer", "atom_entry", "atom_feed", "rss_feed", "rss_item"]

AUTO = "auto"


class FakeFeedServer(FakeHttpServer):
    """Serves `body` at `path`, honouring If-None-Match and If-Modified-Since."""

    def __init__(self, path: str = "/feed.xml") -> None:
        super().__init__()
        self.path = "/" + path.lstrip("/")
        self.body: bytes | None = None
        self.content_type = "application/rss+xml; charset=utf-8"
        self.etag: str | None = None
        self.last_modified: datetime | None = None
        self.not_modified = 0
        """How many requests were answered 304."""

    @property
    def feed_url(self) -> str:
        return f"{self.url}{self.path.lstrip('/')}"

    def set_feed(
        self,
        body: str | bytes,
        *,
        content_type: str = "application/rss+xml; charset=utf-8",
        etag: str | None = AUTO,
        last_modified: datetime | None = None,
    ) -> None:
        """Publish `body`. `etag="auto"` derives a strong ETag from it; None sends none."""
        self.body = body.encode() if isinstance(body, str) else body
        self.content_type = content_type
        if etag == AUTO:
            etag = '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'
        self.etag = etag
        self.last_modified = last_modified

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_get(self.path, self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(
            request,
            name="feed",
            params=dict(request.query),
            body=None,
            raw_body=b"",
            respond=self._respond,
        )

    async def _respond(self, call: RecordedCall) -> web.StreamResponse:
        if self.body is None:
            return build_response(404, "no feed here")
        headers = self._validators()
        if self._unchanged(call):
            self.not_modified += 1
            return build_response(304, None, headers)
        return build_response(200, self.body, {**headers, "Content-Type": self.content_type})

    def _validators(self) -> dict[str, str]:
        headers = {}
        if self.etag:
            headers["ETag"] = self.etag
        if self.last_modified:
            headers["Last-Modified"] = format_datetime(self.last_modified, usegmt=True)
        return headers

    def _unchanged(self, call: RecordedCall) -> bool:
        if_none_match = call.headers.get("If-None-Match")
        if if_none_match is not None:
            tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
            current = (self.etag or "").removeprefix("W/")
            return "*" in tags or (bool(current) and current in tags)
        since = call.headers.get("If-Modified-Since")
        if since is None or self.last_modified is None:
            return False
        try:
            return self.last_modified.replace(microsecond=0) <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False


def rss_item(
    guid: str,
    title: str,
    description: str,
    *,
    published: datetime | None = None,
    link: str | None = None,
    author: str | None = None,
) -> str:
    """One RSS 2.0 ``<item>``."""
    parts = [f"<guid isPermaLink='false'>{escape(guid)}</guid>", f"<title>{escape(title)}</title>"]
    parts.append(f"<description>{escape(description)}</description>")
    if link:
        parts.append(f"<link>{escape(link)}</link>")
    if published:
        parts.append(f"<pubDate>{format_datetime(published)}</pubDate>")
    if author:
        parts.append(f"<dc:creator>{escape(author)}</dc:creator>")
    return "<item>" + "".join(parts) + "</item>"


def rss_feed(items: Iterable[str], title: str = "Example blog") -> str:
    """An RSS 2.0 document around `items` (newest first, as feeds list them)."""
    body = "\n".join(items)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">\n'
        f"<channel><title>{escape(title)}</title><link>https://blog.example.com/</link>\n"
        f"{body}\n</channel></rss>\n"
    )


def atom_entry(
    entry_id: str,
    title: str,
    summary: str,
    *,
    updated: datetime,
    link: str | None = None,
    author: str | None = None,
    published: datetime | None = None,
) -> str:
    """One Atom ``<entry>``."""
    parts = [f"<id>{escape(entry_id)}</id>", f"<title>{escape(title)}</title>"]
    parts.append(f"<summary>{escape(summary)}</summary>")
    parts.append(f"<updated>{updated.isoformat()}</updated>")
    if published:
        parts.append(f"<published>{published.isoformat()}</published>")
    if link:
        parts.append(f'<link rel="alternate" type="text/html" href={quoteattr(link)}/>')
        parts.append('<link rel="edit" href="https://blog.example.com/edit/1"/>')
    if author:
        parts.append(f"<author><name>{escape(author)}</name></author>")
    return "<entry>" + "".join(parts) + "</entry>"


def atom_feed(entries: Iterable[str], title: str = "Example news") -> str:
    """An Atom document around `entries`."""
    body = "\n".join(entries)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom">\n'
        f"<title>{escape(title)}</title><id>urn:example:feed</id>"
        "<updated>2026-03-01T00:00:00Z</updated>\n"
        f"{body}\n</feed>\n"
    )
