"""A fake Bot Framework Connector (REST API v3, as used by Microsoft Teams) for integration tests.

Put ``fake.service_url`` in an activity's / conversation reference's
``serviceUrl`` and run the real botbuilder ``CloudAdapter`` with auth disabled
(empty app id/password): outgoing calls then land here and are recorded under
the connector operation names used by ``ConnectorClient.conversations``
(``create_conversation``, ``send_to_conversation``, ``reply_to_activity``,
``update_activity``, ``delete_activity``, ``get_conversation_members``,
``get_conversation_member``, ``get_conversation_paged_members``) plus
``upload_attachment``; anything else is recorded as ``unknown`` and gets 404.

Errors use the connector's ``{"error": {"code", "message"}}`` envelope with
the codes from Microsoft's table "Status codes from bot conversational APIs":
https://learn.microsoft.com/en-us/microsoftteams/platform/bots/build-conversational-capability#status-codes-from-bot-conversational-apis

Wire behaviour of botbuilder-python 4.17 worth knowing (pinned by ``test_fakes.py``):

* ``CloudAdapter.continue_conversation`` + ``TurnContext.send_activity`` is
  recorded as ``reply_to_activity``, not ``send_to_conversation``: the
  continuation activity gets a random ``uuid1`` id which ``send_activity``
  copies into ``replyToId``.  Activities are stored either way; use
  ``activities()`` rather than counting one route.
* ``ConversationParameters.tenant_id`` is serialised as ``"tenantID"``, and
  the activity sent from a ``create_conversation`` callback has no
  ``recipient``.
* No ``Authorization`` header is sent when the app id is empty.
* The connector client is msrest over ``requests`` (run in a thread pool),
  whose urllib3 retry policy silently retries PUT/DELETE/GET on 408/5xx and on
  dropped connections, but never POST (sends, replies, creates).

How a blocked user surfaces: every connector call answering outside its
success codes raises ``botbuilder.schema.ErrorResponseException`` (also
exported as ``botframework.connector.models.ErrorResponseException``; a
subclass of ``msrest.exceptions.HttpOperationError``).  It propagates out of
``TurnContext.send_activity`` / ``CloudAdapter.continue_conversation`` /
``create_conversation`` unless ``adapter.on_turn_error`` is set.  Attributes:

* ``exc.response`` is the ``requests.Response``: ``exc.response.status_code``
  is ``403``, ``exc.response.text`` (a property) the raw body,
  ``exc.response.headers`` the headers.
* ``exc.error`` is the body deserialised as ``ErrorResponse``.  With the
  ``{"error": {...}}`` envelope, ``exc.error.error.code`` is e.g.
  ``"ConversationBlockedByUser"`` and ``str(exc)`` is ``"(code) message"``.
  With the documented MessageWritesBlocked body there is no ``error`` key:
  ``exc.error.error`` is ``None``, the fields land in
  ``exc.error.additional_properties`` (``{"errorCode": 209, "message": ...}``)
  and ``str(exc)`` is only ``"Operation returned an invalid status code
  'Forbidden'"``.  So classify "blocked" as status 403 and (code
  ``ConversationBlockedByUser`` or ``"MessageWritesBlocked"`` in
  ``exc.response.text``).
* A dropped connection raises ``msrest.exceptions.ClientRequestError``
  instead (its ``inner_exception`` is the ``requests`` ``ConnectionError``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from aiohttp import web

from tests.fakes import FakeHttpServer, RecordedCall, Responder, build_response

__all__ = [
    "CONVERSATION_BLOCKED_BY_USER_BODY",
    "MESSAGE_WRITES_BLOCKED_BODY",
    "BlockStyle",
    "FakeBotConnector",
    "error_body",
]

BlockStyle = Literal["MessageWritesBlocked", "ConversationBlockedByUser"]

# The 403 a proactive send gets once the user blocked or uninstalled the bot,
# byte for byte as Microsoft's example shows it (note: NOT the usual
# {"error": {...}} envelope; the details are a JSON string inside "message"):
# https://learn.microsoft.com/en-us/microsoftteams/platform/bots/how-to/conversations/send-proactive-messages#understand-who-blocked-muted-or-uninstalled-a-bot
MESSAGE_WRITES_BLOCKED_BODY: str = json.dumps(
    {
        "errorCode": 209,
        "message": (
            '{\r\n  "subCode": "MessageWritesBlocked",\r\n'
            '  "details": "Thread is blocked from message writes.",\r\n'
            '  "errorCode": null,\r\n  "errorSubCode": null\r\n}'
        ),
    },
    separators=(",", ":"),
)

# The same situation as listed in the status-code table (403,
# ConversationBlockedByUser) in the connector's standard error envelope:
# https://learn.microsoft.com/en-us/microsoftteams/platform/bots/build-conversational-capability#status-codes-from-bot-conversational-apis
CONVERSATION_BLOCKED_BY_USER_BODY: dict[str, Any] = {
    "error": {
        "code": "ConversationBlockedByUser",
        "message": "User blocked the conversation with the bot.",
    }
}

_JSON = {"Content-Type": "application/json; charset=utf-8"}

# Default bodies for fail_next(status=...), from the status-code table above.
_FAULT_CODES: dict[int, tuple[str, str]] = {
    400: ("BadArgument", "Invalid request payload."),
    401: ("BotNotRegistered", "No registration found for this bot."),
    403: ("NotEnoughPermissions", "Bot doesn't have required permissions."),
    404: ("ConversationNotFound", "Conversation not found."),
    412: ("PreconditionFailed", "Precondition failed, please try again."),
    413: ("MessageSizeTooBig", "Message size too large."),
    429: ("Throttled", "Too many requests."),
    500: ("ServiceError", "Internal server error."),
    502: ("ServiceError", "Service dependency issue."),
}

RequestHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_CONVERSATION = "/v3/conversations/{conversation_id}"
_ACTIVITY = _CONVERSATION + "/activities/{activity_id}"


def error_body(code: str, message: str) -> dict[str, Any]:
    """The connector's standard error envelope."""
    return {"error": {"code": code, "message": message}}


class FakeBotConnector(FakeHttpServer):
    """Fake of a Teams ``serviceUrl`` (``https://smba.trafficmanager.net/...``).

    Preload ``members[conversation_id]`` for the member routes; inspect
    ``activities()``, ``activity()``, ``conversations`` and ``attachments``;
    await ``wait_for_activities()`` for activities to be stored.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__(host)
        self.members: dict[str, list[dict[str, Any]]] = {}
        self.conversations: dict[str, dict[str, Any]] = {}
        self.attachments: dict[str, dict[str, Any]] = {}
        self._sent: list[tuple[str, dict[str, Any]]] = []
        self._current: dict[tuple[str, str], dict[str, Any] | None] = {}
        self._one_on_one: dict[tuple[str, str], str] = {}
        self._blocked: dict[str, BlockStyle] = {}
        self._counter = itertools.count(1)

    @property
    def service_url(self) -> str:
        """Value for ``serviceUrl``: ``http://127.0.0.1:PORT/``."""
        return self.url

    # -- test helpers ----------------------------------------------------

    def activities(self, conversation_id: str | None = None) -> list[dict[str, Any]]:
        """Activity bodies sent or replied (oldest first), each with the ``id`` the fake assigned.

        These are the bodies as posted; later updates/deletes show in ``activity()``.
        """
        return [
            dict(body)
            for conv, body in self._sent
            if conversation_id is None or conv == conversation_id
        ]

    async def wait_for_activities(
        self,
        conversation_id: str | None = None,
        count: int = 1,
        # Same convention as FakeHttpServer.wait_for.
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[dict[str, Any]]:
        """Wait until at least ``count`` activities were stored (in ``conversation_id``, if given).

        Unlike ``wait_for``, which wakes when a request *arrives*, this wakes once the fake has
        accepted and stored the activity, whichever route carried it (send, reply or create).
        Returns ``activities(conversation_id)``; raises ``TimeoutError`` listing the calls.
        """

        def enough() -> bool:
            return len(self.activities(conversation_id)) >= count

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(enough), timeout)
            except TimeoutError:
                where = f" in {conversation_id!r}" if conversation_id is not None else ""
                raise TimeoutError(
                    f"{type(self).__name__}: waited {timeout}s for {count} activit(y/ies){where}, "
                    f"got {len(self.activities(conversation_id))}. "
                    f"Received: {self.describe_calls()}"
                ) from None
        return self.activities(conversation_id)

    def activity(self, conversation_id: str, activity_id: str) -> dict[str, Any] | None:
        """Current state of one activity (after updates); ``None`` if deleted or unknown."""
        current = self._current.get((conversation_id, activity_id))
        return dict(current) if current is not None else None

    def block_user(self, conversation_id: str, style: BlockStyle = "MessageWritesBlocked") -> None:
        """Make writes to ``conversation_id`` (and re-creating it) answer 403 as for a blocked bot.

        ``style`` picks which documented body is returned: the literal
        ``MessageWritesBlocked`` example (default) or the
        ``ConversationBlockedByUser`` error envelope.
        """
        self._blocked[conversation_id] = style

    def unblock_user(self, conversation_id: str) -> None:
        """Undo ``block_user``."""
        self._blocked.pop(conversation_id, None)

    # -- routing ---------------------------------------------------------

    def _add_routes(self, app: web.Application) -> None:
        routes = [
            ("POST", "/v3/conversations", "create_conversation", self._create_conversation),
            ("POST", _CONVERSATION + "/activities", "send_to_conversation", self._send),
            ("POST", _ACTIVITY, "reply_to_activity", self._send),
            ("PUT", _ACTIVITY, "update_activity", self._update),
            ("DELETE", _ACTIVITY, "delete_activity", self._delete),
            ("GET", _CONVERSATION + "/members", "get_conversation_members", self._members),
            (
                "GET",
                _CONVERSATION + "/members/{member_id}",
                "get_conversation_member",
                self._member,
            ),
            (
                "GET",
                _CONVERSATION + "/pagedmembers",
                "get_conversation_paged_members",
                self._paged_members,
            ),
            ("POST", _CONVERSATION + "/attachments", "upload_attachment", self._attachment),
        ]
        for method, path, name, respond in routes:
            app.router.add_route(method, path, self._endpoint(name, respond))
        app.router.add_route("*", "/{tail:.*}", self._endpoint("unknown", self._unknown))

    def _endpoint(self, name: str, respond: Responder) -> RequestHandler:
        async def handle(request: web.Request) -> web.StreamResponse:
            raw = await request.read()
            body = _loads_or_none(raw)
            # aiohttp percent-decodes match_info, so ids like "a:1xyz" or
            # "19:abc@thread.tacv2;messageid=123" arrive raw whatever the
            # client's quoting was.
            params = dict(request.match_info)
            params.update(request.query)
            return await self._serve(
                request, name=name, params=params, body=body, raw_body=raw, respond=respond
            )

        return handle

    def _default_fault_body(self, name: str, status: int) -> Any:
        if status in _FAULT_CODES:
            return error_body(*_FAULT_CODES[status])
        return None

    # -- responders ------------------------------------------------------

    async def _create_conversation(self, call: RecordedCall) -> web.StreamResponse:
        params = call.body if isinstance(call.body, dict) else {}
        conversation_id = self._conversation_id_for(params)
        if conversation_id in self._blocked:
            return self._blocked_response(conversation_id)
        self.conversations[conversation_id] = params
        result: dict[str, Any] = {"id": conversation_id, "serviceUrl": self.service_url}
        activity = params.get("activity")
        if isinstance(activity, dict):
            result["activityId"] = self._store(conversation_id, activity)
            await self._notify_stored()
        return build_response(201, result, _JSON)

    async def _send(self, call: RecordedCall) -> web.StreamResponse:
        conversation_id = call.params["conversation_id"]
        if conversation_id in self._blocked:
            return self._blocked_response(conversation_id)
        if not isinstance(call.body, dict) or not call.body.get("type"):
            return build_response(400, error_body("BadArgument", "Activity type is required."))
        activity_id = self._store(conversation_id, call.body)
        await self._notify_stored()
        return build_response(200, {"id": activity_id}, _JSON)

    async def _update(self, call: RecordedCall) -> web.StreamResponse:
        conversation_id, activity_id = call.params["conversation_id"], call.params["activity_id"]
        if conversation_id in self._blocked:
            return self._blocked_response(conversation_id)
        if self._current.get((conversation_id, activity_id)) is None:
            return _activity_not_found()
        body = call.body if isinstance(call.body, dict) else {}
        self._current[(conversation_id, activity_id)] = {**body, "id": activity_id}
        return build_response(200, {"id": activity_id}, _JSON)

    async def _delete(self, call: RecordedCall) -> web.StreamResponse:
        key = (call.params["conversation_id"], call.params["activity_id"])
        if self._current.get(key) is None:
            return _activity_not_found()
        self._current[key] = None
        return build_response(200, None)

    async def _members(self, call: RecordedCall) -> web.StreamResponse:
        members = self._members_of(call.params["conversation_id"])
        if members is None:
            return _conversation_not_found()
        return build_response(200, members, _JSON)

    async def _member(self, call: RecordedCall) -> web.StreamResponse:
        members = self._members_of(call.params["conversation_id"]) or []
        for member in members:
            if member.get("id") == call.params["member_id"]:
                return build_response(200, member, _JSON)
        # The code is what Microsoft's Teams samples check for; the status is
        # not documented (users report 400, 404 would also be plausible).
        return build_response(
            400, error_body("MemberNotFoundInConversation", "The member was not found.")
        )

    async def _paged_members(self, call: RecordedCall) -> web.StreamResponse:
        members = self._members_of(call.params["conversation_id"])
        if members is None:
            return _conversation_not_found()
        return build_response(200, {"members": members, "continuationToken": None}, _JSON)

    async def _attachment(self, call: RecordedCall) -> web.StreamResponse:
        attachment_id = f"att-{next(self._counter)}"
        self.attachments[attachment_id] = call.body if isinstance(call.body, dict) else {}
        return build_response(200, {"id": attachment_id}, _JSON)

    async def _unknown(self, call: RecordedCall) -> web.StreamResponse:
        return build_response(404, error_body("NotFound", f"No fake route for {call.path}"))

    # -- state -----------------------------------------------------------

    def _conversation_id_for(self, params: dict[str, Any]) -> str:
        channel_id = (params.get("channelData") or {}).get("channel", {}).get("id")
        if params.get("isGroup") and channel_id:
            # Starting a thread in a Teams channel yields "<channel>;messageid=<root>".
            return f"{channel_id};messageid={next(self._counter)}"
        members = params.get("members") or []
        if params.get("isGroup") or len(members) != 1:
            return f"a:conv-{next(self._counter)}"
        # Teams hands back the same 1:1 conversation id every time the bot
        # "creates" a conversation with the same user.
        key = ((params.get("bot") or {}).get("id", ""), members[0].get("id", ""))
        if key not in self._one_on_one:
            self._one_on_one[key] = f"a:conv-{next(self._counter)}"
        return self._one_on_one[key]

    def _members_of(self, conversation_id: str) -> list[dict[str, Any]] | None:
        if conversation_id in self.members:
            return self.members[conversation_id]
        if conversation_id in self.conversations:
            return list(self.conversations[conversation_id].get("members") or [])
        return None

    def _store(self, conversation_id: str, activity: dict[str, Any]) -> str:
        activity_id = f"act-{next(self._counter)}"
        stored = {**activity, "id": activity_id}
        self._sent.append((conversation_id, stored))
        self._current[(conversation_id, activity_id)] = dict(stored)
        return activity_id

    async def _notify_stored(self) -> None:
        """Wake ``wait_for_activities`` (the base class only notifies when a call arrives)."""
        async with self._changed:
            self._changed.notify_all()

    def _blocked_response(self, conversation_id: str) -> web.Response:
        if self._blocked[conversation_id] == "ConversationBlockedByUser":
            return build_response(403, CONVERSATION_BLOCKED_BY_USER_BODY)
        return build_response(403, MESSAGE_WRITES_BLOCKED_BODY, _JSON)


def _conversation_not_found() -> web.Response:
    return build_response(404, error_body("ConversationNotFound", "Conversation not found."))


def _activity_not_found() -> web.Response:
    return build_response(
        404, error_body("ActivityNotFoundInConversation", "Conversation not found.")
    )


def _loads_or_none(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None
