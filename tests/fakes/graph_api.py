"""A fake Meta Graph API (Facebook Pages and Instagram) for integration tests.

Point a source's ``base_url`` at ``fake.base_url`` (``http://127.0.0.1:PORT/v25.0/``).  Tests
fill it with pages, posts, comments, Instagram media and comments through the ``add_*`` helpers;
every request is recorded (see ``FakeHttpServer``) under the name of its edge (``"feed"``,
``"comments"``, ``"replies"``, ``"media"``) or ``"node"`` for a plain object read.  The object id
a call was made on is ``node_id(call)``.

Graph behaviour mirrored here (PLATFORM-FACTS.md §D.2-D.3):

* The token travels as the ``access_token`` query parameter; a wrong or missing one is answered
  400 with error code 190.
* Lists are cursor-paged: ``paging.cursors.before/after`` and an absolute ``paging.next`` that
  repeats every parameter of the request (token included) with a new ``after``, absent on the
  last page.  ``limit`` is honoured up to ``page_size``.
* ``/{page}/feed`` lists posts newest first and filters on ``since``/``until`` (unix seconds).
* ``/{post}/comments`` lists top-level comments unless ``filter=stream`` (then replies too, flat);
  oldest first unless ``order=reverse_chronological``.  ``/{comment}/comments`` lists replies.
  Replies carry ``parent``; ``comments.summary(true)`` on a post gives ``total_count``.
* Instagram: ``/{account}?fields=username``, ``/{account}/media`` (newest first),
  ``/{media}/comments`` (newest first, ``replies{...}`` expands replies),
  ``/{comment}/replies`` (oldest first).
* Unknown objects are answered 400 with code 100, subcode 33.
* Every answer carries ``X-Business-Use-Case-Usage`` (or ``X-App-Usage``) with the percentages
  set through ``set_usage``; all zero by default.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlencode

from aiohttp import web

from tests.fakes import FakeHttpServer, RecordedCall, build_response

__all__ = ["GRAPH_VERSION", "FakeGraphApi", "graph_error", "node_id"]

GRAPH_VERSION = "v25.0"
BUC_OWNER_ID = "100200300400"

Timestamp = datetime | int


def graph_error(
    code: int,
    message: str,
    *,
    subcode: int | None = None,
    error_type: str = "OAuthException",
    transient: bool = False,
) -> dict[str, Any]:
    """The JSON body Graph answers errors with; use it as ``fail_next(..., body=...)``."""
    error: dict[str, Any] = {
        "message": message,
        "type": error_type,
        "code": code,
        "fbtrace_id": "AfakeTrace0001",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    if transient:
        error["is_transient"] = True
    return {"error": error}


def node_id(call: RecordedCall) -> str:
    """The object id a recorded call was made on (``/v25.0/<id>/<edge>``)."""
    return call.path.split("/")[2]


class _GraphError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body["error"]["message"])
        self.status = status
        self.body = body


_NOT_FOUND_MESSAGE = "Unsupported get request. Object with ID '{}' does not exist."


def _not_found(object_id: str) -> _GraphError:
    return _GraphError(400, graph_error(100, _NOT_FOUND_MESSAGE.format(object_id), subcode=33))


@dataclass
class _Comment:
    id: str
    on: str
    """The post (Facebook) or media (Instagram) the comment hangs off."""
    text: str
    from_id: str
    from_name: str
    created: int
    parent: str | None = None


@dataclass
class _Post:
    id: str
    page: str
    message: str
    from_id: str
    from_name: str
    created: int


@dataclass
class _Media:
    id: str
    account: str
    caption: str
    created: int
    permalink: str


@dataclass
class _UsageStep:
    from_call: int
    headers: dict[str, str] = field(default_factory=dict)


class FakeGraphApi(FakeHttpServer):
    """Fake of ``https://graph.facebook.com/v25.0/`` for Page feeds and Instagram comments."""

    def __init__(
        self, *, token: str = "page-token-0001", page_size: int = 25, host: str = "127.0.0.1"
    ) -> None:
        super().__init__(host)
        self.token = token
        self.page_size = page_size
        self.posts: dict[str, _Post] = {}
        self.comments: dict[str, _Comment] = {}
        self.accounts: dict[str, str] = {}
        self.media: dict[str, _Media] = {}
        self.ig_comments: dict[str, _Comment] = {}
        self.next_link_base: str | None = None
        """Where ``paging.next`` points (default: this fake); set it to check that a client does
        not follow a link off the Graph host."""
        self._pages: set[str] = set()
        self._usage: list[_UsageStep] = []
        self.set_usage()

    @property
    def base_url(self) -> str:
        """The Graph base a source takes: ``http://127.0.0.1:PORT/v25.0/``."""
        return f"{self.url}{GRAPH_VERSION}/"

    # -- test helpers: Facebook ------------------------------------------

    def add_post(
        self,
        page_id: str,
        post_id: str,
        message: str,
        *,
        created_time: Timestamp,
        from_id: str | None = None,
        from_name: str = "Example Page",
    ) -> None:
        """A post on the page's feed; by the page itself unless ``from_id`` says otherwise."""
        self._pages.add(page_id)
        author = from_id or page_id
        self.posts[post_id] = _Post(
            post_id, page_id, message, author, from_name, _unix(created_time)
        )

    def add_page(self, page_id: str) -> None:
        """A page with an empty feed."""
        self._pages.add(page_id)

    def add_comment(
        self,
        post_id: str,
        comment_id: str,
        message: str,
        *,
        from_id: str,
        from_name: str,
        created_time: Timestamp,
        parent_id: str | None = None,
    ) -> None:
        """A comment on a post; with ``parent_id`` a reply to that comment."""
        if post_id not in self.posts:
            raise KeyError(f"no post {post_id}")
        created = _unix(created_time)
        self.comments[comment_id] = _Comment(
            comment_id, post_id, message, from_id, from_name, created, parent_id
        )

    def add_reply(
        self,
        comment_id: str,
        reply_id: str,
        message: str,
        *,
        from_id: str,
        from_name: str,
        created_time: Timestamp,
    ) -> None:
        """A reply to a Facebook comment."""
        parent = self.comments[comment_id]
        self.add_comment(
            parent.on,
            reply_id,
            message,
            from_id=from_id,
            from_name=from_name,
            created_time=created_time,
            parent_id=comment_id,
        )

    def remove(self, object_id: str) -> None:
        """Delete a post, comment, media or Instagram comment (reads then answer code 100)."""
        self.posts.pop(object_id, None)
        self.comments.pop(object_id, None)
        self.media.pop(object_id, None)
        self.ig_comments.pop(object_id, None)

    # -- test helpers: Instagram -----------------------------------------

    def add_ig_account(self, account_id: str, username: str) -> None:
        self.accounts[account_id] = username

    def add_media(
        self,
        account_id: str,
        media_id: str,
        caption: str,
        *,
        timestamp: Timestamp,
        permalink: str | None = None,
    ) -> None:
        link = permalink or f"https://www.instagram.com/p/{media_id}/"
        self.media[media_id] = _Media(media_id, account_id, caption, _unix(timestamp), link)

    def add_ig_comment(
        self,
        media_id: str,
        comment_id: str,
        text: str,
        *,
        username: str,
        timestamp: Timestamp,
        from_id: str | None = None,
        parent_id: str | None = None,
    ) -> None:
        """A comment on a media; with ``parent_id`` a reply to that comment."""
        if media_id not in self.media:
            raise KeyError(f"no media {media_id}")
        author = from_id or f"ig-{username}"
        self.ig_comments[comment_id] = _Comment(
            comment_id, media_id, text, author, username, _unix(timestamp), parent_id
        )

    def add_ig_reply(
        self,
        comment_id: str,
        reply_id: str,
        text: str,
        *,
        username: str,
        timestamp: Timestamp,
        from_id: str | None = None,
    ) -> None:
        parent = self.ig_comments[comment_id]
        self.add_ig_comment(
            parent.on,
            reply_id,
            text,
            username=username,
            timestamp=timestamp,
            from_id=from_id,
            parent_id=comment_id,
        )

    # -- test helpers: rate usage ----------------------------------------

    def set_usage(
        self,
        call_count: int = 0,
        total_cputime: int = 0,
        total_time: int = 0,
        *,
        header: Literal["buc", "app"] = "buc",
        regain_minutes: int = 0,
        from_call: int = 0,
    ) -> None:
        """Report these percentages from the ``from_call``-th request on (0 = the first).

        ``header="buc"`` sends ``X-Business-Use-Case-Usage`` (Page tokens), ``"app"`` sends
        ``X-App-Usage``.  Calling it again with a later ``from_call`` adds a step.
        """
        usage = {"call_count": call_count, "total_cputime": total_cputime, "total_time": total_time}
        if header == "app":
            headers = {"X-App-Usage": json.dumps(usage)}
        else:
            entry = {
                "type": "pages",
                **usage,
                "estimated_time_to_regain_access": regain_minutes,
            }
            headers = {"X-Business-Use-Case-Usage": json.dumps({BUC_OWNER_ID: [entry]})}
        self._usage = [s for s in self._usage if s.from_call < from_call]
        self._usage.append(_UsageStep(from_call, headers))

    def _usage_headers(self) -> dict[str, str]:
        index = len(self.calls) - 1  # the request being answered is already recorded
        steps = [s for s in self._usage if s.from_call <= index]
        return dict(steps[-1].headers) if steps else {}

    # -- routing ---------------------------------------------------------

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_get("/{version}/{node}", self._handle)
        app.router.add_get("/{version}/{node}/{edge}", self._handle)

    def _default_fault_body(self, name: str, status: int) -> Any:
        if status == 429:
            return graph_error(80001, "(#80001) Too many calls to this Page account; retry later.")
        if status >= 500:
            return graph_error(2, "Temporary service problem; retry later.", transient=True)
        return graph_error(1, "An unknown error occurred.")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(
            request,
            name=request.match_info.get("edge", "node"),
            params=dict(request.query),
            body=None,
            raw_body=b"",
            respond=self._respond,
        )

    async def _respond(self, call: RecordedCall) -> web.StreamResponse:
        headers = self._usage_headers()
        try:
            if call.params.get("access_token") != self.token:
                raise _GraphError(400, graph_error(190, "Invalid OAuth access token."))
            payload = self._route(call)
        except _GraphError as err:
            return build_response(err.status, err.body, headers)
        return build_response(200, payload, headers)

    def _route(self, call: RecordedCall) -> dict[str, Any]:
        node = node_id(call)
        routes = {
            "node": self._node,
            "feed": self._feed,
            "comments": self._comments,
            "replies": self._ig_replies,
            "media": self._ig_media,
        }
        handler = routes.get(call.name)
        if handler is None:
            raise _GraphError(400, graph_error(100, f"Unknown path components: /{call.name}"))
        return handler(node, call)

    # -- Facebook --------------------------------------------------------

    def _node(self, node: str, call: RecordedCall) -> dict[str, Any]:
        fields = call.params.get("fields")
        if node in self.accounts:
            full = {"id": node, "username": self.accounts[node]}
            return _project(full, fields, ("id",))
        if node in self.posts:
            return self._post_view(self.posts[node], fields)
        if node in self.comments:
            return self._comment_view(self.comments[node], fields)
        if node in self.media:
            return self._media_view(self.media[node], fields)
        if node in self.ig_comments:
            return self._ig_comment_view(self.ig_comments[node], fields)
        raise _not_found(node)

    def _feed(self, node: str, call: RecordedCall) -> dict[str, Any]:
        if node not in self._pages:
            raise _not_found(node)
        since = _int_param(call, "since", 0)
        until = _int_param(call, "until", 2**62)
        posts = [p for p in self.posts.values() if p.page == node and since <= p.created < until]
        posts.sort(key=lambda p: p.created, reverse=True)
        fields = call.params.get("fields")
        return self._paged(call, [self._post_view(p, fields) for p in posts])

    def _comments(self, node: str, call: RecordedCall) -> dict[str, Any]:
        if node in self.posts:
            found = [c for c in self.comments.values() if c.on == node]
            if call.params.get("filter") != "stream":
                found = [c for c in found if c.parent is None]
        elif node in self.comments:
            found = [c for c in self.comments.values() if c.parent == node]
        elif node in self.media:
            return self._ig_comments(node, call)
        else:
            raise _not_found(node)
        newest_first = call.params.get("order") == "reverse_chronological"
        found.sort(key=lambda c: c.created, reverse=newest_first)
        fields = call.params.get("fields")
        return self._paged(call, [self._comment_view(c, fields) for c in found])

    def _post_view(self, post: _Post, fields: str | None) -> dict[str, Any]:
        top_level = [c for c in self.comments.values() if c.on == post.id and c.parent is None]
        comments: dict[str, Any] = {"data": []}
        if fields and "comments.summary(true)" in fields:
            summary = {"order": "ranked", "total_count": len(top_level), "can_comment": True}
            comments["summary"] = summary
        full = {
            "id": post.id,
            "message": post.message,
            "from": {"id": post.from_id, "name": post.from_name},
            "created_time": _graph_time(post.created),
            "permalink_url": f"https://www.facebook.com/{post.id}",
            "comments": comments,
        }
        return _project(full, fields, ("id", "message", "created_time"))

    def _comment_view(self, comment: _Comment, fields: str | None) -> dict[str, Any]:
        replies = [c for c in self.comments.values() if c.parent == comment.id]
        full: dict[str, Any] = {
            "id": comment.id,
            "message": comment.text,
            "from": {"id": comment.from_id, "name": comment.from_name},
            "created_time": _graph_time(comment.created),
            "permalink_url": f"https://www.facebook.com/{comment.on}?comment_id={comment.id}",
            "comment_count": len(replies),
        }
        if comment.parent is not None:
            full["parent"] = {"id": comment.parent}
        return _project(full, fields, ("id", "message", "created_time", "from"))

    # -- Instagram -------------------------------------------------------

    def _ig_media(self, node: str, call: RecordedCall) -> dict[str, Any]:
        if node not in self.accounts:
            raise _not_found(node)
        media = sorted(
            (m for m in self.media.values() if m.account == node),
            key=lambda m: m.created,
            reverse=True,
        )
        fields = call.params.get("fields")
        return self._paged(call, [self._media_view(m, fields) for m in media])

    def _ig_comments(self, node: str, call: RecordedCall) -> dict[str, Any]:
        found = [c for c in self.ig_comments.values() if c.on == node and c.parent is None]
        found.sort(key=lambda c: c.created, reverse=True)
        fields = call.params.get("fields")
        return self._paged(call, [self._ig_comment_view(c, fields) for c in found])

    def _ig_replies(self, node: str, call: RecordedCall) -> dict[str, Any]:
        if node not in self.ig_comments:
            raise _not_found(node)
        found = sorted(
            (c for c in self.ig_comments.values() if c.parent == node), key=lambda c: c.created
        )
        fields = call.params.get("fields")
        return self._paged(call, [self._ig_comment_view(c, fields) for c in found])

    def _media_view(self, media: _Media, fields: str | None) -> dict[str, Any]:
        count = sum(1 for c in self.ig_comments.values() if c.on == media.id)
        full = {
            "id": media.id,
            "caption": media.caption,
            "permalink": media.permalink,
            "timestamp": _graph_time(media.created),
            "comments_count": count,
            "media_type": "IMAGE",
        }
        return _project(full, fields, ("id",))

    def _ig_comment_view(self, comment: _Comment, fields: str | None) -> dict[str, Any]:
        media = self.media[comment.on]
        replies = sorted(
            (c for c in self.ig_comments.values() if c.parent == comment.id),
            key=lambda c: c.created,
        )
        full: dict[str, Any] = {
            "id": comment.id,
            "text": comment.text,
            "username": comment.from_name,
            "timestamp": _graph_time(comment.created),
            "from": {"id": comment.from_id, "username": comment.from_name},
            "media": {"id": media.id, "permalink": media.permalink},
            "replies": {"data": [_full_reply(r) for r in replies]},
        }
        if comment.parent is not None:
            full["parent_id"] = comment.parent
            del full["replies"]
        return _project(full, fields, ("id", "text", "timestamp"))

    # -- paging ----------------------------------------------------------

    def _paged(self, call: RecordedCall, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        limit = max(1, min(_int_param(call, "limit", self.page_size), self.page_size))
        start = _decode_cursor(call.params.get("after"))
        page = list(rows[start : start + limit])
        body: dict[str, Any] = {"data": page}
        if not page:
            return body
        after = _encode_cursor(start + len(page))
        paging: dict[str, Any] = {"cursors": {"before": _encode_cursor(start), "after": after}}
        if start + len(page) < len(rows):
            query = urlencode({**call.params, "after": after})
            base = (self.next_link_base or self.url).rstrip("/")
            paging["next"] = f"{base}{call.path}?{query}"
        body["paging"] = paging
        return body


def _full_reply(reply: _Comment) -> dict[str, Any]:
    # Nested replies are projected by the parent's `replies{...}` sub-fields.
    return {
        "id": reply.id,
        "text": reply.text,
        "username": reply.from_name,
        "timestamp": _graph_time(reply.created),
        "from": {"id": reply.from_id, "username": reply.from_name},
    }


# -- fields ----------------------------------------------------------------------------------


def _split_fields(spec: str) -> list[tuple[str, str]]:
    """``"id,parent{id},comments.summary(true)"`` -> [(name, modifiers), ...], depth-aware."""
    parts: list[str] = []
    depth, current = 0, ""
    for char in spec:
        if char in "{(":
            depth += 1
        elif char in "})":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    result = []
    for part in (p.strip() for p in parts if p.strip()):
        cut = min((i for i, ch in enumerate(part) if ch in ".{("), default=len(part))
        result.append((part[:cut], part[cut:]))
    return result


def _project(full: Mapping[str, Any], fields: str | None, default: Sequence[str]) -> dict[str, Any]:
    specs = _split_fields(fields) if fields else [(name, "") for name in default]
    out: dict[str, Any] = {}
    for name, modifiers in specs:
        if name not in full:
            continue
        value = full[name]
        if modifiers.startswith("{") and modifiers.endswith("}"):
            value = _project_nested(value, modifiers[1:-1])
        out[name] = value
    return out


def _project_nested(value: Any, fields: str) -> Any:
    if isinstance(value, dict) and isinstance(value.get("data"), list):
        return {**value, "data": [_project(row, fields, ()) for row in value["data"]]}
    if isinstance(value, dict):
        return _project(value, fields, ())
    return value


# -- values ----------------------------------------------------------------------------------


def _unix(value: Timestamp) -> int:
    return int(value.timestamp()) if isinstance(value, datetime) else int(value)


def _graph_time(unix: int) -> str:
    """Graph writes times as ISO 8601 with a ``+0000`` offset."""
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def _int_param(call: RecordedCall, name: str, default: int) -> int:
    raw = call.params.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise _GraphError(400, graph_error(100, f"Invalid parameter {name}")) from None


def _encode_cursor(index: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{index}".encode()).decode().rstrip("=")


def _decode_cursor(raw: str | None) -> int:
    if not raw:
        return 0
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        return int(text.removeprefix("offset:"))
    except ValueError:
        raise _GraphError(400, graph_error(100, "Invalid cursor")) from None
