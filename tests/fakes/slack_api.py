"""A fake Slack Web API server for integration tests.

Point ``slack_sdk``'s ``AsyncWebClient(token="xoxb-...", base_url=fake.base_url)``
at it.  Every call is recorded (see ``FakeHttpServer``); a handful of methods
are stateful (messages per channel, views, modals, uploads) and everything else
answers ``{"ok": true}``.

Slack quirks mirrored here:

* Application errors are HTTP 200 with ``{"ok": false, "error": ...}``; only
  rate limiting (429 + ``Retry-After``) and outages use other statuses.
* ``slack_sdk`` sends most methods as query-string or form parameters, but
  ``chat.*`` and ``views.*`` as JSON bodies, and ``auth.test`` as a POST with
  no body at all.  ``blocks``/``metadata``/``view``/``files`` may arrive as
  JSON values or as JSON-encoded strings; use ``RecordedCall.json_field``.
* Posting to a user id (``U...``/``W...``) delivers a DM; the answer carries
  the DM channel id (here ``"D" + user_id``), not the id that was posted to.
* ``conversations.history`` lists only top-level messages (thread replies are
  in ``conversations.replies``), newest first, and omits message metadata
  unless ``include_all_metadata`` is set.
* A slash command's or interaction's ``response_url`` is not a Web API method:
  it takes a JSON body (``text``/``blocks``, ``response_type``,
  ``replace_original``...) without a token.  Build one with
  ``response_url(token)``; posts to it are recorded as ``RESPONSE_URL_CALL``
  and kept in ``responses[token]``.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from tests.fakes import FakeHttpServer, RecordedCall, build_response

__all__ = [
    "RESPONSE_URL_CALL",
    "UPLOAD_CALL",
    "FakeSlackApi",
    "SlackError",
    "default_user",
    "dm_channel_for",
]

#: Name under which raw uploads to the ``upload_url`` are recorded.
UPLOAD_CALL = "upload"
#: Name under which posts to a ``response_url`` (see ``FakeSlackApi.response_url``) are recorded.
RESPONSE_URL_CALL = "response_url"

_FIRST_TS = 1_700_000_000_000_000  # microseconds; ts strings look like "1700000000.000100"
_TS_STEP = 100
_TRUE_VALUES = {"1", "true", "True", "yes"}

Handler = Callable[[RecordedCall], dict[str, Any]]


class SlackError(Exception):
    """Raised by a method handler to answer ``{"ok": false, "error": <code>}``."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class FakeSlackApi(FakeHttpServer):
    """Fake of ``https://slack.com/api/`` plus the files upload host.

    Preload ``users`` to control ``users.info``; inspect ``messages(channel)``,
    ``ephemerals``, ``views``, ``modals``, ``uploaded`` and ``responses`` after the bot ran.
    """

    def __init__(
        self,
        *,
        team_id: str = "T0001",
        user_id: str = "U0BOT",
        bot_id: str = "B0BOT",
        team: str = "Example",
        user: str = "evangelist",
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(host)
        self.team_id = team_id
        self.user_id = user_id
        self.bot_id = bot_id
        self.team = team
        self.user = user
        self.users: dict[str, dict[str, Any]] = {}
        self.views: dict[str, dict[str, Any]] = {}
        self.modals: list[dict[str, Any]] = []
        """Modals opened with views.open, oldest first."""
        self._used_triggers: set[str] = set()
        self.ephemerals: list[dict[str, Any]] = []
        self.uploaded: dict[str, bytes] = {}
        self.files: dict[str, dict[str, Any]] = {}
        self.responses: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._messages: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._ts = itertools.count()
        self.clock: Callable[[], float] | None = None
        """Real Slack stamps messages with its own time; tests with a frozen clock set this."""
        self._last_micros = 0
        self._ids = itertools.count(1)
        self._handlers: dict[str, Handler] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "conversations.open": self._conversations_open,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "views.publish": self._views_publish,
            "views.open": self._views_open,
            "users.info": self._users_info,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
        }

    @property
    def base_url(self) -> str:
        """Value for ``WebClient(base_url=...)``: ``http://127.0.0.1:PORT/api/``."""
        return f"{self.url}api/"

    # -- test helpers ----------------------------------------------------

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Messages stored in ``channel`` (a user id means its DM), oldest first, with replies."""
        return [dict(m) for m in self._messages.get(dm_channel_for(channel), [])]

    def response_url(self, token: str | None = None) -> str:
        """A ``response_url`` served by this fake, as Slack puts in commands and interactions.

        Posts to it are recorded as ``RESPONSE_URL_CALL`` (``params["token"]`` is ``token``)
        and their JSON bodies collected in ``responses[token]``.  Without a token a fresh one
        is made up.
        """
        token = token or f"R{next(self._ids):08d}"
        return f"{self.url}response/{token}"

    def add_user(self, user_id: str, **fields: Any) -> dict[str, Any]:
        """Store a ``users.info`` user: the default user object updated with ``fields``."""
        user = default_user(user_id)
        profile = {**user["profile"], **fields.pop("profile", {})}
        user.update(fields, profile=profile)
        self.users[user_id] = user
        return user

    # -- routing ---------------------------------------------------------

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/upload/v1/{file_id}", self._upload)
        app.router.add_post("/response/{token}", self._response)

    def _default_fault_body(self, name: str, status: int) -> Any:
        if status == 429:
            return {"ok": False, "error": "ratelimited"}
        return None

    async def _api(self, request: web.Request) -> web.StreamResponse:
        params, body, raw = await _read_api_request(request)
        return await self._serve(
            request,
            name=request.match_info["method"],
            params=params,
            body=body,
            raw_body=raw,
            respond=self._respond_api,
        )

    async def _respond_api(self, call: RecordedCall) -> web.StreamResponse:
        try:
            _check_token(call)
            handler = self._handlers.get(call.name, _ok)
            payload = handler(call)
        except SlackError as err:
            payload = {"ok": False, "error": err.code}
        # Slack reports application errors with HTTP 200 and ok=false.
        return build_response(200, payload)

    # -- auth / users ----------------------------------------------------

    def _auth_test(self, call: RecordedCall) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://example.slack.com/",
            "team": self.team,
            "user": self.user,
            "team_id": self.team_id,
            "user_id": self.user_id,
            "bot_id": self.bot_id,
        }

    def _users_info(self, call: RecordedCall) -> dict[str, Any]:
        user_id = _required(call, "user")
        return {"ok": True, "user": self.users.get(user_id) or default_user(user_id)}

    # -- chat ------------------------------------------------------------

    def _chat_post_message(self, call: RecordedCall) -> dict[str, Any]:
        channel = dm_channel_for(_required(call, "channel", "channel_not_found"))
        if not any(call.params.get(k) for k in ("text", "blocks", "attachments")):
            raise SlackError("no_text")
        message = self._new_message(call)
        thread_ts = message.get("thread_ts")
        if thread_ts is not None:
            self._note_reply(channel, thread_ts, message["ts"])
        self._messages[channel].append(message)
        return {"ok": True, "channel": channel, "ts": message["ts"], "message": dict(message)}

    def _chat_post_ephemeral(self, call: RecordedCall) -> dict[str, Any]:
        channel = dm_channel_for(_required(call, "channel", "channel_not_found"))
        user = _required(call, "user", "user_not_in_channel")
        ephemeral = {**self._new_message(call), "channel": channel, "user": user}
        self.ephemerals.append(ephemeral)
        return {"ok": True, "message_ts": ephemeral["ts"]}

    def _chat_update(self, call: RecordedCall) -> dict[str, Any]:
        channel = _required(call, "channel", "channel_not_found")
        message = self._find_message(channel, _required(call, "ts", "message_not_found"))
        for key in ("text", "blocks", "metadata"):
            if key in call.params:
                message[key] = call.json_field(key)
        message["edited"] = {"user": self.user_id, "ts": self._next_ts()}
        return {
            "ok": True,
            "channel": channel,
            "ts": message["ts"],
            "text": message.get("text", ""),
            "message": dict(message),
        }

    def _chat_delete(self, call: RecordedCall) -> dict[str, Any]:
        channel = _required(call, "channel", "channel_not_found")
        message = self._find_message(channel, _required(call, "ts", "message_not_found"))
        self._messages[channel].remove(message)
        return {"ok": True, "channel": channel, "ts": message["ts"]}

    def _new_message(self, call: RecordedCall) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": "message",
            "ts": self._next_ts(),
            "text": call.params.get("text", ""),
            "user": self.user_id,
            "bot_id": self.bot_id,
            "team": self.team_id,
        }
        for key in ("blocks", "attachments", "metadata"):
            if key in call.params:
                message[key] = call.json_field(key)
        if call.params.get("thread_ts"):
            message["thread_ts"] = str(call.params["thread_ts"])
        return message

    def _note_reply(self, channel: str, thread_ts: str, reply_ts: str) -> None:
        # Slack marks the parent of a thread with thread_ts/reply_count; replies
        # themselves stay out of conversations.history.
        for parent in self._messages.get(channel, []):
            if parent["ts"] == thread_ts:
                parent["thread_ts"] = thread_ts
                parent["reply_count"] = parent.get("reply_count", 0) + 1
                parent["latest_reply"] = reply_ts

    def _find_message(self, channel: str, ts: str) -> dict[str, Any]:
        for message in self._messages.get(channel, []):
            if message["ts"] == ts:
                return message
        raise SlackError("message_not_found")

    def _next_ts(self) -> str:
        micros = _FIRST_TS + _TS_STEP * (next(self._ts) + 1)
        if self.clock is not None:
            micros = max(int(self.clock() * 1_000_000), self._last_micros + _TS_STEP)
            self._last_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    # -- conversations ---------------------------------------------------

    def _conversations_open(self, call: RecordedCall) -> dict[str, Any]:
        if call.params.get("channel"):
            return {"ok": True, "channel": {"id": call.params["channel"]}}
        users = [u for u in str(call.params.get("users", "")).split(",") if u]
        if not users:
            raise SlackError("users_list_not_supplied")
        if len(users) == 1:
            return {"ok": True, "channel": {"id": dm_channel_for(users[0])}}
        return {"ok": True, "channel": {"id": "G" + "".join(sorted(users))}}

    def _conversations_history(self, call: RecordedCall) -> dict[str, Any]:
        channel = _required(call, "channel", "channel_not_found")
        top_level = [
            m for m in self._messages.get(channel, []) if m.get("thread_ts", m["ts"]) == m["ts"]
        ]
        selected = _in_window(top_level, call.params)
        selected.sort(key=lambda m: _ts_key(m["ts"]), reverse=True)
        limit = _int_param(call, "limit", 100)
        with_metadata = _truthy(call.params.get("include_all_metadata"))
        return {
            "ok": True,
            "messages": [_history_view(m, with_metadata) for m in selected[:limit]],
            "has_more": len(selected) > limit,
            "pin_count": 0,
            "response_metadata": {"next_cursor": ""},
        }

    def _conversations_replies(self, call: RecordedCall) -> dict[str, Any]:
        channel = _required(call, "channel", "channel_not_found")
        thread_ts = _required(call, "ts", "thread_not_found")
        thread = [m for m in self._messages.get(channel, []) if m.get("thread_ts") == thread_ts]
        if not any(m["ts"] == thread_ts for m in thread):
            raise SlackError("thread_not_found")
        with_metadata = _truthy(call.params.get("include_all_metadata"))
        return {
            "ok": True,
            "messages": [_history_view(m, with_metadata) for m in _in_window(thread, call.params)],
            "has_more": False,
        }

    # -- views -----------------------------------------------------------

    def _views_publish(self, call: RecordedCall) -> dict[str, Any]:
        user_id = _required(call, "user_id", "invalid_arguments")
        view = call.json_field("view")
        if not isinstance(view, dict):
            raise SlackError("invalid_arguments")
        published = {
            **view,
            "id": f"V{next(self._ids):08d}",
            "team_id": self.team_id,
            "app_id": "A0APP",
            "bot_id": self.bot_id,
        }
        self.views[user_id] = published
        return {"ok": True, "view": published}

    def _views_open(self, call: RecordedCall) -> dict[str, Any]:
        # A trigger_id opens one view, once (the 3-second expiry is not modelled).
        trigger_id = _required(call, "trigger_id", "invalid_trigger_id")
        if trigger_id in self._used_triggers:
            raise SlackError("exchanged_trigger_id")
        view = call.json_field("view")
        if not isinstance(view, dict) or view.get("type") != "modal":
            raise SlackError("invalid_arguments")
        title = (view.get("title") or {}).get("text", "")
        if not title or len(title) > 24:
            raise SlackError("invalid_arguments")  # Slack: "must be less than 25 characters"
        self._used_triggers.add(trigger_id)
        opened = {**view, "id": f"V{next(self._ids):08d}", "team_id": self.team_id}
        opened["state"] = {"values": {}}
        self.modals.append(opened)
        return {"ok": True, "view": opened}

    # -- files (upload v2 flow) ------------------------------------------

    def _files_get_upload_url(self, call: RecordedCall) -> dict[str, Any]:
        filename = _required(call, "filename", "invalid_arguments")
        length = _int_param(call, "length", -1)
        if length < 0:
            raise SlackError("invalid_arguments")
        file_id = f"F{next(self._ids):08d}"
        self.files[file_id] = {"id": file_id, "name": filename, "length": length}
        return {"ok": True, "upload_url": f"{self.url}upload/v1/{file_id}", "file_id": file_id}

    def _files_complete_upload(self, call: RecordedCall) -> dict[str, Any]:
        entries = call.json_field("files")
        if not isinstance(entries, list) or not entries:
            raise SlackError("invalid_arguments")
        completed = []
        for entry in entries:
            info = self.files.setdefault(entry["id"], {"id": entry["id"], "name": entry["id"]})
            info.update(
                title=entry.get("title") or info["name"],
                channel_id=call.params.get("channel_id"),
                initial_comment=call.params.get("initial_comment"),
                thread_ts=call.params.get("thread_ts"),
            )
            completed.append({"id": info["id"], "title": info["title"], "name": info["name"]})
        return {"ok": True, "files": completed}

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        raw = await _read_upload(request)
        return await self._serve(
            request,
            name=UPLOAD_CALL,
            params={"file_id": request.match_info["file_id"], **request.query},
            body=None,
            raw_body=raw,
            respond=self._respond_upload,
        )

    async def _respond_upload(self, call: RecordedCall) -> web.StreamResponse:
        file_id = call.params["file_id"]
        if file_id not in self.files:
            return build_response(404, "Not Found")
        self.uploaded[file_id] = call.raw_body
        # The upload host answers plain text, not JSON; slack_sdk keys off the
        # text/plain content type to accept it.
        return build_response(200, f"OK - {len(call.raw_body)}")

    # -- response_url ------------------------------------------------------

    async def _response(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = _loads_or_none(raw)
        return await self._serve(
            request,
            name=RESPONSE_URL_CALL,
            params={"token": request.match_info["token"], **request.query},
            body=body,
            raw_body=raw,
            respond=self._respond_response_url,
        )

    async def _respond_response_url(self, call: RecordedCall) -> web.StreamResponse:
        # Like incoming webhooks, a response_url reports bad input with a 4xx and a short
        # plain-text reason rather than {"ok": false}.
        body = call.body
        if not isinstance(body, dict):
            return build_response(400, "invalid_payload")
        if not any(body.get(k) for k in ("text", "blocks", "attachments", "delete_original")):
            return build_response(400, "no_text")
        self.responses[call.params["token"]].append(dict(body))
        return build_response(200, {"ok": True})


# -- request parsing -----------------------------------------------------------


async def _read_api_request(request: web.Request) -> tuple[dict[str, Any], Any, bytes]:
    """Merge query string, form fields and a JSON object body into one params dict.

    Parsing is defensive because the same method may arrive form-encoded, as
    JSON, with a JSON content type but an empty body, or as multipart.
    """
    params: dict[str, Any] = dict(request.query)
    if request.content_type.startswith("multipart/"):
        form = await request.post()
        params.update({k: _form_value(v) for k, v in form.items()})
        return params, None, b""
    raw = await request.read()
    body: Any = None
    if raw.strip():
        if request.content_type == "application/json":
            body = _loads_or_none(raw)
            if isinstance(body, dict):
                params.update(body)
        else:
            params.update(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    return params, body, raw


async def _read_upload(request: web.Request) -> bytes:
    # Slack's upload URL takes either the raw bytes or a multipart form with
    # the file in it; slack_sdk sends raw bytes.
    if not request.content_type.startswith("multipart/"):
        return await request.read()
    form = await request.post()
    for value in form.values():
        data = _form_value(value)
        if isinstance(data, bytes):
            return data
    return b""


def _form_value(value: str | bytes | bytearray | web.FileField) -> str | bytes:
    if isinstance(value, web.FileField):
        return value.file.read()
    return value if isinstance(value, str) else bytes(value)


def _loads_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _check_token(call: RecordedCall) -> None:
    # Slack accepts the token as a Bearer header or (legacy) a `token` field.
    header = call.headers.get("Authorization", "")
    token = header[len("Bearer ") :].strip() if header.startswith("Bearer ") else ""
    token = token or str(call.params.get("token", ""))
    if not token:
        raise SlackError("not_authed")
    # Bot and user tokens are xox…; app-level tokens (xapp-…) open Socket Mode connections.
    if not token.startswith(("xox", "xapp-")):
        raise SlackError("invalid_auth")


def _required(call: RecordedCall, key: str, error: str = "invalid_arguments") -> str:
    value = call.params.get(key)
    if value in (None, ""):
        raise SlackError(error)
    return str(value)


def _int_param(call: RecordedCall, key: str, default: int) -> int:
    try:
        return int(call.params.get(key, default))
    except (TypeError, ValueError):
        return default


def _truthy(value: Any) -> bool:
    # slack_sdk turns booleans in query params into "1"/"0"; JSON bodies keep true/false.
    return value is True or str(value) in _TRUE_VALUES


def _ts_key(ts: Any) -> Decimal:
    try:
        return Decimal(str(ts))
    except InvalidOperation:
        return Decimal(0)


def _in_window(messages: list[dict[str, Any]], params: dict[str, Any]) -> list[dict[str, Any]]:
    """Apply ``oldest``/``latest`` (exclusive unless ``inclusive``), oldest first."""
    oldest = _ts_key(params["oldest"]) if params.get("oldest") else None
    latest = _ts_key(params["latest"]) if params.get("latest") else None
    inclusive = _truthy(params.get("inclusive"))

    def keep(message: dict[str, Any]) -> bool:
        ts = _ts_key(message["ts"])
        if oldest is not None and (ts < oldest or (ts == oldest and not inclusive)):
            return False
        return latest is None or ts < latest or (ts == latest and inclusive)

    return [m for m in messages if keep(m)]


def _history_view(message: dict[str, Any], with_metadata: bool) -> dict[str, Any]:
    view = {k: v for k, v in message.items() if k != "metadata"}
    if with_metadata and "metadata" in message:
        view["metadata"] = message["metadata"]
    return view


def _ok(call: RecordedCall) -> dict[str, Any]:
    return {"ok": True}


def dm_channel_for(channel: str) -> str:
    """Map a user id (``U...``/``W...``) to the fake's DM channel id; other ids pass through."""
    if channel[:1] in ("U", "W"):
        return "D" + channel
    return channel


def default_user(user_id: str) -> dict[str, Any]:
    """The ``users.info`` user object served for ids not preloaded in ``FakeSlackApi.users``."""
    name = user_id.lower()
    return {
        "id": user_id,
        "name": name,
        "real_name": f"User {user_id}",
        "tz": "Europe/London",
        "is_bot": False,
        "deleted": False,
        "profile": {
            "email": f"{name}@example.com",
            "display_name": name,
            "real_name": f"User {user_id}",
        },
    }
