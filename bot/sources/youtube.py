"""YouTube comments, polled from the Data API v3 with an API key.

One `commentThreads.list` call with `allThreadsRelatedToChannelId` returns the newest comment
threads of *every* video of the channel, up to 100 threads a page, for 1 quota unit a page
(PLATFORM-FACTS D.4). Polling video by video (`videoId`) would cost 1 unit per video per poll
instead, so the channel-wide filter is what makes the default quota go a long way.

Quota arithmetic, for the default project quota of 10,000 units a day (reset at midnight
Pacific time; every list call costs 1 unit per page, failed calls included):

* The default source settings (a poll every 30 minutes, at most 3 pages) spend at most
  48 polls x 3 pages = 144 units a day, 1.4% of the quota; a quiet channel needs 1 page a poll
  (48 units a day). Even a poll every minute (the shortest the configuration allows) with
  3 pages spends 4,320 units a day.
* 10,000 units a day is about 416 units an hour: 138 polls an hour at 3 pages each (one every
  26 seconds), or 416 polls an hour at 1 page each. Read another way, the quota can read a
  million threads a day, about 41,600 new threads an hour across all the channel's videos.
* Each watched question (an open question whose replies are read with `comments.list`) costs
  1 more unit a poll, unless its thread came back complete in that poll's scan. At 30-minute
  polls with 3 pages, 205 watched questions still fit (48 x (3 + 205) = 9,984 units).

`daily_quota_plan` does this arithmetic for other settings.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from bot.config.organisation import YouTubeSourceConfig
from bot.core.sources import ItemKind, PollResult, SourceError, SourceItem
from bot.sources.http import HttpAnswer, fetch, retry_after_seconds

__all__ = ["YouTubeSource", "daily_quota_plan", "seconds_until_quota_reset"]

PACIFIC = ZoneInfo("America/Los_Angeles")
DEFAULT_DAILY_QUOTA = 10_000
OVERLAP = timedelta(minutes=15)
"""Re-read this far behind the newest comment seen: comments can show up in the list a little
after their `publishedAt`, and ids seen in the window are remembered so none comes out twice."""
RECENT_LIMIT = 1_000
PAGE_SIZE = "100"
QUOTA_REASONS = frozenset({"quotaExceeded", "dailyLimitExceeded"})
RATE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
# A watched question whose video closed its comments, or that was deleted, is simply not read.
WATCH_QUIET_REASONS = frozenset({"commentsDisabled", "commentNotFound", "notFound"})


def seconds_until_quota_reset(now: datetime) -> float:
    """Seconds from `now` to the next midnight Pacific time, when the daily quota resets."""
    now_utc = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    tomorrow = now_utc.astimezone(PACIFIC).date() + timedelta(days=1)
    midnight = datetime.combine(tomorrow, time(0), tzinfo=PACIFIC)
    # Subtract in UTC: two datetimes sharing one ZoneInfo subtract as wall-clock times, which
    # would be an hour off on the days daylight saving time starts or ends.
    return (midnight.astimezone(UTC) - now_utc).total_seconds()


def daily_quota_plan(
    poll_minutes: int, pages_per_poll: int, watched: int, quota: int = DEFAULT_DAILY_QUOTA
) -> dict[str, Any]:
    """Worst-case YouTube quota use of one source: every poll reads all its pages and looks at
    every watched question separately (1 unit each)."""
    if poll_minutes < 1 or pages_per_poll < 1 or watched < 0 or quota < 1:
        raise ValueError("poll_minutes and pages_per_poll must be >= 1, watched >= 0")
    polls_per_day = math.ceil(24 * 60 / poll_minutes)
    units_per_poll = pages_per_poll + watched
    units_per_day = polls_per_day * units_per_poll
    return {
        "polls_per_day": polls_per_day,
        "units_per_poll": units_per_poll,
        "units_per_day": units_per_day,
        "quota": quota,
        "fits": units_per_day <= quota,
        "spare_units": quota - units_per_day,
        "max_polls_per_hour": quota // (24 * units_per_poll),
        "max_watched": max(0, quota // polls_per_day - pages_per_poll),
    }


@dataclass
class _Poll:
    """What one poll has gathered so far."""

    cutoff: datetime | None
    recent: dict[str, str]
    now: datetime
    items: list[SourceItem] = field(default_factory=list)
    emitted: set[str] = field(default_factory=set)
    complete: set[str] = field(default_factory=set)
    """Top-level comment ids whose every reply came back in this poll's scan."""
    high_water: datetime | None = None
    calls: int = 0

    def take(self, item: SourceItem, stamp: datetime | None) -> None:
        """Keep a scanned comment unless it is older than the cutoff or was seen already."""
        stamp = stamp or self.now
        self.high_water = max(self.high_water or stamp, stamp)
        if self.cutoff is not None and stamp < self.cutoff:
            return
        if item.external_id in self.recent:
            return
        self.recent[item.external_id] = stamp.isoformat()
        self.keep(item)

    def keep(self, item: SourceItem) -> None:
        if item.external_id not in self.emitted:
            self.emitted.add(item.external_id)
            self.items.append(item)

    def cursor(self) -> dict[str, Any]:
        high_water = self.high_water
        if high_water is None:
            return {}
        floor = high_water - OVERLAP
        recent = [(i, t) for i, t in self.recent.items() if (_when(t) or floor) >= floor]
        recent.sort(key=lambda pair: pair[1])
        return {"high_water": high_water.isoformat(), "recent": dict(recent[-RECENT_LIMIT:])}


class YouTubeSource:
    """Comments and replies on every video of one YouTube channel (a `BrandSource`).

    Each poll reads comment threads newest first until it reaches what the previous poll had
    seen, then reads the replies of each watched question whose thread it did not see whole.
    """

    kind = "youtube"

    def __init__(
        self, config: YouTubeSourceConfig, http: aiohttp.ClientSession, base_url: str, api_key: str
    ) -> None:
        self.id = config.id
        self._config = config
        self._http = http
        self._base = base_url if base_url.endswith("/") else base_url + "/"
        self._key = api_key

    async def poll(
        self, cursor: Mapping[str, Any], now: datetime, watch: Sequence[str] = ()
    ) -> PollResult:
        high_water = _when(cursor.get("high_water"))
        run = _Poll(
            cutoff=high_water - OVERLAP if high_water else None,
            recent={str(k): str(v) for k, v in _object(cursor.get("recent")).items()},
            now=now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC),
            high_water=high_water,
        )
        await self._scan(run)
        for thread_id in _watched_threads(watch):
            if thread_id not in run.complete:
                await self._read_replies(run, thread_id)
        return PollResult(
            items=run.items, cursor=run.cursor(), calls=run.calls, quota_units=run.calls
        )

    async def _scan(self, run: _Poll) -> None:
        token: str | None = None
        for _ in range(self._config.max_pages):
            params = {
                "part": "snippet,replies",
                "allThreadsRelatedToChannelId": self._config.channel_id,
                "order": "time",
                "maxResults": PAGE_SIZE,
                "textFormat": "plainText",
            }
            page = await self._list(run, "commentThreads", params, token)
            reached_old = False
            for thread in _objects(page.get("items")):
                reached_old = self._take_thread(run, thread) or reached_old
            token = _str(page.get("nextPageToken"))
            # Threads come newest first (order=time): past the cutoff, the rest is known.
            if reached_old or not token:
                return

    def _take_thread(self, run: _Poll, thread: Mapping[str, Any]) -> bool:
        """Take a thread's comments; True when the whole thread is older than the cutoff."""
        snippet = _object(thread.get("snippet"))
        top = _object(snippet.get("topLevelComment"))
        video = _str(snippet.get("videoId")) or _str(_object(top.get("snippet")).get("videoId"))
        top_item = self._item(top, ItemKind.COMMENT, video, video, snippet.get("totalReplyCount"))
        if top_item is None:
            return False
        replies = _objects(_object(thread.get("replies")).get("comments"))
        stamps = [_stamp(top)]
        run.take(top_item, stamps[0])
        for reply in replies:
            parent = _str(_object(reply.get("snippet")).get("parentId")) or top_item.external_id
            item = self._item(reply, ItemKind.REPLY, video, parent)
            if item is not None:
                stamps.append(_stamp(reply))
                run.take(item, stamps[-1])
        # The thread carries only some replies (commentThreads docs); comments.list has them all.
        if len(replies) >= (_count(snippet.get("totalReplyCount")) or 0):
            run.complete.add(top_item.external_id)
        newest = max((s for s in stamps if s is not None), default=None)
        return run.cutoff is not None and newest is not None and newest < run.cutoff

    async def _read_replies(self, run: _Poll, thread_id: str) -> None:
        token: str | None = None
        for _ in range(self._config.max_pages):
            params = {
                "part": "snippet",
                "parentId": thread_id,
                "maxResults": PAGE_SIZE,
                "textFormat": "plainText",
            }
            page = await self._list(run, "comments", params, token, quiet=WATCH_QUIET_REASONS)
            for reply in _objects(page.get("items")):
                snippet = _object(reply.get("snippet"))
                video = _str(snippet.get("videoId"))
                parent = _str(snippet.get("parentId")) or thread_id
                item = self._item(reply, ItemKind.REPLY, video, parent)
                if item is not None:
                    run.keep(item)
            token = _str(page.get("nextPageToken"))
            if not token:
                return

    async def _list(
        self,
        run: _Poll,
        endpoint: str,
        params: dict[str, str],
        token: str | None,
        *,
        quiet: frozenset[str] = frozenset(),
    ) -> Mapping[str, Any]:
        """One list call; an error whose reason is in `quiet` reads as an empty page."""
        if token:
            params = {**params, "pageToken": token}
        # Counted before the answer: Google charges failed calls too (determine_quota_cost).
        run.calls += 1
        answer = await fetch(self._http, self._base + endpoint, params={**params, "key": self._key})
        if 200 <= answer.status < 300:
            return _object(answer.json())
        reason, message = _google_error(answer)
        if reason in quiet:
            return {}
        raise _source_error(answer, reason, message, run.now)

    def _item(
        self,
        comment: Mapping[str, Any],
        kind: ItemKind,
        video: str | None,
        parent: str | None,
        reply_count: Any = None,
    ) -> SourceItem | None:
        comment_id = _str(comment.get("id"))
        if comment_id is None:
            return None
        snippet = _object(comment.get("snippet"))
        author_id = _str(_object(snippet.get("authorChannelId")).get("value"))
        return SourceItem(
            source_id=self.id,
            external_id=comment_id,
            # textOriginal is only guaranteed to the comment's author (comments resource docs);
            # with an API key textDisplay, asked for as plain text, is the dependable one.
            text=_str(snippet.get("textOriginal")) or _str(snippet.get("textDisplay")) or "",
            kind=kind,
            url=f"https://www.youtube.com/watch?v={video}&lc={comment_id}" if video else None,
            author_id=author_id,
            author_name=_str(snippet.get("authorDisplayName")),
            posted_at=_when(snippet.get("publishedAt")),
            parent_id=parent,
            thread_id=video,
            by_page=author_id is not None and author_id == self._config.channel_id,
            reply_count=_count(reply_count),
        )


def _watched_threads(watch: Sequence[str]) -> Iterator[str]:
    """The top-level comment id of each watched id, each once.

    Reply ids look like `<top-level id>.<suffix>` (observed, not documented); replies are one
    level deep, so a watched reply is looked at through its top-level comment.
    """
    seen: set[str] = set()
    for external_id in watch:
        thread_id = external_id.split(".", 1)[0]
        if thread_id and thread_id not in seen:
            seen.add(thread_id)
            yield thread_id


def _google_error(answer: HttpAnswer) -> tuple[str | None, str | None]:
    """`error.errors[0].reason` and `error.message` of Google's error body, when it has one."""
    try:
        error = _object(_object(answer.json()).get("error"))
    except SourceError:
        return None, None
    details = _objects(error.get("errors"))
    reason = _str(details[0].get("reason")) if details else None
    message = _str(error.get("message"))
    return reason, message[:200] if message else None


def _source_error(
    answer: HttpAnswer, reason: str | None, message: str | None, now: datetime
) -> SourceError:
    status = answer.status
    what = f"YouTube answered HTTP {status}"
    what += f" ({reason})" if reason else ""
    what += f": {message}" if message else ""
    if reason in QUOTA_REASONS:
        # The daily quota comes back at midnight Pacific time (determine_quota_cost).
        return SourceError(what, rate_limited=True, retry_after=seconds_until_quota_reset(now))
    if status == 429 or reason in RATE_REASONS:
        return SourceError(what, rate_limited=True, retry_after=retry_after_seconds(answer.headers))
    if status in (400, 401, 403, 404):
        return SourceError(what, permanent=True)
    return SourceError(what)


def _stamp(comment: Mapping[str, Any]) -> datetime | None:
    snippet = _object(comment.get("snippet"))
    stamps = [_when(snippet.get(key)) for key in ("publishedAt", "updatedAt")]
    return max((s for s in stamps if s is not None), default=None)


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _objects(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
