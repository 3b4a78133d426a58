"""Importing links from a file or an address: YAML, CSV, RSS, Atom, or an OPML list of feeds.

Nothing a document holds can stop an import: a bad row, a broken feed in an OPML list or a
whole unreadable document becomes a rejection with where and why, and everything else is
added. Links are stored in chunks, each in its own transaction, so what was added stays added.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bot.core.clock import Clock
from bot.core.sources import SourceError
from bot.sources.http import fetch
from bot.storage.database import Database
from content_library import store
from content_library.candidates import LinkCandidate, Parsed, Rejection
from content_library.canonical import InvalidLink, canonical_url
from content_library.parsing import (
    MAX_DOCUMENT_BYTES,
    MAX_LINKS,
    parse_document,
    parse_feed_links,
)

log = logging.getLogger(__name__)

STORE_CHUNK = 500
FEED_CONCURRENCY = 4
"""Feeds of an OPML list read at once."""
MAX_FEEDS = 500
"""Feeds one OPML import reads (each may be 5 MB)."""

Progress = Callable[[str, int, int], None]
"""(what, done, total): called as an import moves on (the CLI draws a bar with it)."""


@dataclass
class ImportReport:
    added: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    readable: bool = True
    """False when the file or address itself could not be read or understood at all."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "duplicates": self.duplicates,
            "rejected": [r.to_dict() for r in self.rejected],
        }


class Importer:
    def __init__(self, database: Database, clock: Clock, http: aiohttp.ClientSession) -> None:
        self.db = database
        self.clock = clock
        self.http = http

    async def run(
        self,
        target: str,
        *,
        added_by: str | None = None,
        status: str = store.ACTIVE,
        progress: Progress | None = None,
    ) -> ImportReport:
        """Import `target` (a path, or an http/https address)."""
        report = ImportReport()
        parsed = await self._read(target, report)
        if parsed is None:
            report.readable = False
            return report
        report.rejected.extend(parsed.rejected)
        if parsed.feeds:
            await self._read_feeds(parsed, report, progress)
        if not parsed.links and parsed.rejected and not parsed.feeds:
            report.readable = False
        await self._store(
            parsed.links, f"import:{_label(target)}", added_by, status, report, progress
        )
        return report

    async def _read(self, target: str, report: ImportReport) -> Parsed | None:
        if "://" in target or target.lower().startswith(("javascript:", "data:")):
            return await self._read_url(target, report)
        return await asyncio.to_thread(_read_file, Path(target), report)

    async def _read_url(self, target: str, report: ImportReport) -> Parsed | None:
        try:
            url = canonical_url(target)
        except InvalidLink as exc:
            report.rejected.append(Rejection(target, str(exc)))
            return None
        try:
            answer = await fetch(self.http, url)
        except SourceError as exc:
            report.rejected.append(Rejection(url, f"could not be read: {exc}"))
            return None
        if not 200 <= answer.status < 300:
            report.rejected.append(Rejection(url, f"answered HTTP {answer.status}"))
            return None
        # Parsing a large document takes a while: off the event loop, so the service stays live.
        return await asyncio.to_thread(
            parse_document,
            answer.body,
            url,
            name=url,
            content_type=answer.headers.get("Content-Type"),
        )

    async def _read_feeds(
        self, parsed: Parsed, report: ImportReport, progress: Progress | None
    ) -> None:
        """Read every feed an OPML list names, a few at a time; a bad one is a rejection."""
        gate = asyncio.Semaphore(FEED_CONCURRENCY)
        feeds = parsed.feeds[:MAX_FEEDS]
        if len(parsed.feeds) > MAX_FEEDS:
            report.rejected.append(
                Rejection(
                    "the OPML list",
                    f"{len(parsed.feeds) - MAX_FEEDS:,} feed(s) after the first {MAX_FEEDS} "
                    "were not read; split the list",
                )
            )
        done, room, dropped = 0, MAX_LINKS - len(parsed.links), 0

        async def one(url: str) -> Parsed:
            nonlocal done, room, dropped
            async with gate:
                result = await self._feed(url)
            # All the feeds together may hold no more than one document: keep memory bounded.
            kept = result.links[: max(room, 0)]
            dropped += len(result.links) - len(kept)
            room -= len(kept)
            result.links = kept
            done += 1
            if progress is not None:
                progress("feeds", done, len(feeds))
            return result

        for result in await asyncio.gather(*(one(url) for url in feeds)):
            parsed.links.extend(result.links)
            report.rejected.extend(result.rejected)
        if dropped:
            report.rejected.append(
                Rejection(
                    "the OPML list",
                    f"{dropped:,} entries were not imported: one import takes at most "
                    f"{MAX_LINKS:,} links",
                )
            )

    async def _feed(self, url: str) -> Parsed:
        try:
            answer = await fetch(self.http, url)
        except SourceError as exc:
            return Parsed(rejected=[Rejection(url, f"the feed could not be read: {exc}")])
        if not 200 <= answer.status < 300:
            return Parsed(rejected=[Rejection(url, f"the feed answered HTTP {answer.status}")])
        return await asyncio.to_thread(parse_feed_links, answer.body, url)

    async def _store(
        self,
        links: list[LinkCandidate],
        source: str,
        added_by: str | None,
        status: str,
        report: ImportReport,
        progress: Progress | None,
    ) -> None:
        for start in range(0, len(links), STORE_CHUNK):
            chunk = links[start : start + STORE_CHUNK]
            async with self.db.transaction() as session:
                added = await store.add_links(
                    session,
                    chunk,
                    source=source,
                    added_by=added_by,
                    now=self.clock.now(),
                    status=status,
                )
            report.added += added.added
            report.duplicates += added.duplicates
            if progress is not None:
                progress("links", min(start + STORE_CHUNK, len(links)), len(links))
        # Duplicates across chunks: add_links sees the earlier chunk's rows as known, so each
        # URL still counts once as added and otherwise as a duplicate.


def _read_file(path: Path, report: ImportReport) -> Parsed | None:
    where = path.name or str(path)
    limit = MAX_DOCUMENT_BYTES // (1024 * 1024)
    try:
        size = path.stat().st_size
        if size > MAX_DOCUMENT_BYTES:
            report.rejected.append(
                Rejection(
                    where, f"the file is {size / 1024 / 1024:.1f} MB; the limit is {limit} MB"
                )
            )
            return None
        # Devices, pipes and /proc files say they are empty: never read more than the limit.
        with path.open("rb") as file:
            body = file.read(MAX_DOCUMENT_BYTES + 1)
        if len(body) > MAX_DOCUMENT_BYTES:
            report.rejected.append(Rejection(where, f"the file is larger than {limit} MB"))
            return None
    except FileNotFoundError:
        report.rejected.append(Rejection(where, f"no such file: {path}"))
        return None
    except OSError as exc:
        report.rejected.append(Rejection(where, f"could not be read: {exc.strerror or exc}"))
        return None
    return parse_document(body, where, name=path.name)


def _label(target: str) -> str:
    return target if "://" in target else (Path(target).name or target)
