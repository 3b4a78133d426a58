"""A fake YouTube Data API v3 serving `commentThreads.list` and `comments.list`.

Point a source at ``fake.base_url`` (``http://127.0.0.1:PORT/youtube/v3/``). Calls are recorded
under the resource name (``"commentThreads"``, ``"comments"``).

YouTube behaviour mirrored here:

* Every request needs ``key``; a wrong or missing one answers 400 with reason ``keyInvalid``
  in Google's error body ``{"error": {"code", "message", "errors": [{"domain", "reason",
  "message"}]}}``.
* Each list call costs 1 unit, per page. Once ``quota`` units are spent every call answers
  403 ``quotaExceeded`` until ``reset_quota()``.
* ``order=time`` lists threads newest first; pages hold ``maxResults`` (1-100, default 20)
  and carry an opaque ``nextPageToken`` while more remain.
* A thread carries at most ``thread_reply_limit`` of its replies (the API returns "not
  necessarily all" of them); ``comments.list?parentId=`` returns them all, oldest first.
* Reply ids are ``<top-level id>.<suffix>``; the thread id equals its top-level comment id.
* A video with comments disabled answers 403 ``commentsDisabled``.
"""

from __future__ import annotations

import html
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.fakes import FakeHttpServer, RecordedCall, build_response

__all__ = ["FakeYouTubeApi", "google_error", "timestamp"]


def google_error(
    code: int, reason: str, message: str, domain: str = "youtube.api"
) -> dict[str, Any]:
    """An error body in Google's JSON API format."""
    detail = {"domain": domain, "reason": reason, "message": message}
    return {"error": {"code": code, "message": message, "errors": [detail]}}


def timestamp(value: datetime) -> str:
    """YouTube's timestamp format: UTC, seconds, a trailing Z."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, domain: str = "youtube.api") -> None:
        super().__init__(message)
        self.body = google_error(code, reason, message, domain)
        self.code = code


@dataclass
class _Comment:
    id: str
    video_id: str
    channel_id: str
    text: str
    author_name: str
    author_channel_id: str
    published_at: datetime
    updated_at: datetime
    parent_id: str | None = None
    replies: list[_Comment] = field(default_factory=list)


class FakeYouTubeApi(FakeHttpServer):
    """The two comment-reading endpoints, with paging, API key checks and a quota counter."""

    def __init__(
        self, *, api_key: str = "yt-test-key", quota: int = 10_000, thread_reply_limit: int = 5
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.quota = quota
        self.units_used = 0
        self.thread_reply_limit = thread_reply_limit
        self.disabled_videos: set[str] = set()
        self._threads: list[_Comment] = []
        self._comments: dict[str, _Comment] = {}
        self._ids = itertools.count(1)

    @property
    def base_url(self) -> str:
        """The value for YOUTUBE_API_BASE_URL."""
        return f"{self.url}youtube/v3/"

    # -- test helpers ----------------------------------------------------

    def add_thread(
        self,
        video_id: str,
        text: str,
        *,
        channel_id: str,
        published_at: datetime,
        author_name: str = "A Viewer",
        author_channel_id: str = "UCviewer0000000000000000",
        updated_at: datetime | None = None,
        comment_id: str | None = None,
    ) -> str:
        """Add a top-level comment on `video_id` of `channel_id`; returns its (thread) id."""
        comment = _Comment(
            id=comment_id or f"Ugz{next(self._ids):08d}AaABAg",
            video_id=video_id,
            channel_id=channel_id,
            text=text,
            author_name=author_name,
            author_channel_id=author_channel_id,
            published_at=published_at,
            updated_at=updated_at or published_at,
        )
        self._threads.append(comment)
        self._comments[comment.id] = comment
        return comment.id

    def add_reply(
        self,
        parent_id: str,
        text: str,
        *,
        published_at: datetime,
        author_name: str = "A Viewer",
        author_channel_id: str = "UCviewer0000000000000000",
        comment_id: str | None = None,
    ) -> str:
        """Add a reply to the top-level comment `parent_id`; returns the reply's id."""
        parent = self._comments[parent_id]
        reply = _Comment(
            id=comment_id or f"{parent_id}.{next(self._ids):08d}",
            video_id=parent.video_id,
            channel_id=parent.channel_id,
            text=text,
            author_name=author_name,
            author_channel_id=author_channel_id,
            published_at=published_at,
            updated_at=published_at,
            parent_id=parent_id,
        )
        parent.replies.append(reply)
        self._comments[reply.id] = reply
        return reply.id

    def disable_comments(self, video_id: str) -> None:
        self.disabled_videos.add(video_id)

    def reset_quota(self) -> None:
        """What midnight Pacific time does."""
        self.units_used = 0

    # -- routing ---------------------------------------------------------

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_get("/youtube/v3/{resource}", self._handle)

    def _default_fault_body(self, name: str, status: int) -> Any:
        if status == 403:
            return google_error(403, "quotaExceeded", "quota exceeded", "youtube.quota")
        if status == 429:
            return google_error(429, "rateLimitExceeded", "rate limit exceeded", "usageLimits")
        if status >= 500:
            return google_error(status, "backendError", "backend error", "global")
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(
            request,
            name=request.match_info["resource"],
            params=dict(request.query),
            body=None,
            raw_body=b"",
            respond=self._respond,
        )

    async def _respond(self, call: RecordedCall) -> web.StreamResponse:
        try:
            self._authorise(call)
            if call.name == "commentThreads":
                return build_response(200, self._comment_threads(call.params))
            if call.name == "comments":
                return build_response(200, self._replies(call.params))
            raise _ApiError(404, "notFound", f"{call.name} is not served by this fake", "global")
        except _ApiError as err:
            return build_response(err.code, err.body)

    def _authorise(self, call: RecordedCall) -> None:
        if call.params.get("key") != self.api_key:
            message = "API key not valid. Please pass a valid API key."
            raise _ApiError(400, "keyInvalid", message, "usageLimits")
        if self.units_used >= self.quota:
            message = "The request cannot be completed because you have exceeded your quota."
            raise _ApiError(403, "quotaExceeded", message, "youtube.quota")
        # Charged before the request is looked at: invalid requests cost a unit too.
        self.units_used += 1

    # -- resources -------------------------------------------------------

    def _comment_threads(self, params: dict[str, Any]) -> dict[str, Any]:
        parts = set(params.get("part", "").split(","))
        if "allThreadsRelatedToChannelId" in params:
            channel = params["allThreadsRelatedToChannelId"]
            threads = [t for t in self._threads if t.channel_id == channel]
        elif "videoId" in params:
            self._check_enabled(params["videoId"])
            threads = [t for t in self._threads if t.video_id == params["videoId"]]
        else:
            raise _ApiError(
                400, "missingRequiredParameter", "No filter selected.", "youtube.parameter"
            )
        threads.sort(key=lambda t: t.published_at, reverse=True)
        page, total, token = _page(threads, params)
        plain = params.get("textFormat") == "plainText"
        return {
            "kind": "youtube#commentThreadListResponse",
            **({"nextPageToken": token} if token else {}),
            "pageInfo": {"totalResults": total, "resultsPerPage": len(page)},
            "items": [self._thread(t, parts, plain) for t in page],
        }

    def _replies(self, params: dict[str, Any]) -> dict[str, Any]:
        parent = self._comments.get(params.get("parentId", ""))
        if parent is None:
            raise _ApiError(
                404, "commentNotFound", "The comment could not be found.", "youtube.comment"
            )
        self._check_enabled(parent.video_id)
        page, total, token = _page(parent.replies, params)
        plain = params.get("textFormat") == "plainText"
        return {
            "kind": "youtube#commentListResponse",
            **({"nextPageToken": token} if token else {}),
            "pageInfo": {"totalResults": total, "resultsPerPage": len(page)},
            "items": [_comment(c, plain) for c in page],
        }

    def _thread(self, top: _Comment, parts: set[str], plain: bool) -> dict[str, Any]:
        thread: dict[str, Any] = {
            "kind": "youtube#commentThread",
            "etag": f"etag-{top.id}",
            "id": top.id,
            "snippet": {
                "channelId": top.channel_id,
                "videoId": top.video_id,
                "topLevelComment": _comment(top, plain),
                "canReply": top.video_id not in self.disabled_videos,
                "totalReplyCount": len(top.replies),
                "isPublic": True,
            },
        }
        shown = top.replies[: self.thread_reply_limit]
        if "replies" in parts and shown:
            thread["replies"] = {"comments": [_comment(c, plain) for c in shown]}
        return thread

    def _check_enabled(self, video_id: str) -> None:
        if video_id in self.disabled_videos:
            message = "The video identified by the videoId parameter has disabled comments."
            raise _ApiError(403, "commentsDisabled", message, "youtube.commentThread")


def _page(rows: list[Any], params: dict[str, Any]) -> tuple[list[Any], int, str | None]:
    size = int(params.get("maxResults", "20"))
    if not 1 <= size <= 100:
        raise _ApiError(400, "invalidParameter", "maxResults must be 1-100", "youtube.parameter")
    token = params.get("pageToken")
    start = 0
    if token:
        if not token.startswith("CDIQ") or not token[4:].isdigit():
            raise _ApiError(
                400, "invalidPageToken", "The page token is invalid.", "youtube.parameter"
            )
        start = int(token[4:])
    end = start + size
    return rows[start:end], len(rows), f"CDIQ{end}" if end < len(rows) else None


def _comment(comment: _Comment, plain: bool) -> dict[str, Any]:
    snippet: dict[str, Any] = {
        "channelId": comment.channel_id,
        "videoId": comment.video_id,
        "authorDisplayName": comment.author_name,
        "authorProfileImageUrl": "https://yt3.ggpht.com/fake",
        "authorChannelUrl": f"http://www.youtube.com/channel/{comment.author_channel_id}",
        "authorChannelId": {"value": comment.author_channel_id},
        "textDisplay": comment.text if plain else html.escape(comment.text),
        "textOriginal": comment.text,
        "canRate": True,
        "viewerRating": "none",
        "likeCount": 0,
        "publishedAt": timestamp(comment.published_at),
        "updatedAt": timestamp(comment.updated_at),
    }
    if comment.parent_id:
        snippet["parentId"] = comment.parent_id
    return {
        "kind": "youtube#comment",
        "etag": f"etag-{comment.id}",
        "id": comment.id,
        "snippet": snippet,
    }
