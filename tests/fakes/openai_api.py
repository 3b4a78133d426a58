"""A fake OpenAI-compatible API (Chat Completions and Embeddings) for language model tests.

Point the SDK at ``fake.base_url`` (``http://127.0.0.1:PORT/v1``). Requests are recorded (see
``FakeHttpServer``) as ``"chat.completions"`` and ``"embeddings"`` with their decoded JSON body;
``messages(call)`` and ``schema_name(call)`` read the parts tests look at.

Chat answers, in this order of precedence:

* ``script(*replies)`` queues answers, one per request;
* ``handler``, when set, answers from the recorded call;
* otherwise a valid default for the schema named in ``response_format``.

A reply is the assistant message's content: a dict or list is JSON-encoded, a ``str`` is sent
as it is (invalid JSON, schema-violating JSON); ``Reply`` also sets the usage, a refusal or the
finish reason. The body follows the documented ``chat.completion`` object, ``usage`` included.

Failures come from ``FakeHttpServer.fail_next``: any status (429 and 5xx get
``retry-after-ms: 1`` unless headers are given, so the SDK's retries wait a millisecond, and an
OpenAI-style ``{"error": {...}}`` body), ``delay`` for slow answers (client timeouts) and
``reset``. With ``api_key`` set, any other bearer token is answered 401. Setting ``gate`` to an
``asyncio.Event`` holds chat answers until the event is set.

Embeddings are deterministic per text, ``dimensions`` long (the request's, else
``self.dimensions``), sent as base64 of little-endian float32 when ``encoding_format`` is
``"base64"`` (what the SDK asks for by default) and as lists of floats for ``"float"``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import struct
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes import FakeHttpServer, RecordedCall, build_response

__all__ = ["CHAT", "EMBEDDINGS", "FakeOpenAI", "Reply", "messages", "schema_name"]

CHAT = "chat.completions"
EMBEDDINGS = "embeddings"
CREATED = 1_772_445_600  # 2026-03-02 10:00 UTC


@dataclass(frozen=True)
class Reply:
    """One scripted chat answer."""

    content: Any
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    refusal: str | None = None
    finish_reason: str = "stop"


Content = Any
"""A dict or list (sent as JSON), a str (sent as it is) or a ``Reply``."""


def messages(call: RecordedCall) -> list[dict[str, Any]]:
    """The chat messages a recorded request sent."""
    return list(call.body.get("messages") or [])


def schema_name(call: RecordedCall) -> str | None:
    """The name of the JSON schema a recorded request asked for."""
    response_format = call.body.get("response_format") or {}
    return (response_format.get("json_schema") or {}).get("name")


def _schema(call: RecordedCall) -> dict[str, Any]:
    response_format = call.body.get("response_format") or {}
    return (response_format.get("json_schema") or {}).get("schema") or {}


def _default_content(call: RecordedCall) -> Any:
    name = schema_name(call)
    if name == "draft_reply":
        return {"reply": "Thanks for asking! (check: the details)", "language": "en"}
    if name == "topic_choice":
        choices = _schema(call)["properties"]["topic"]["enum"]
        return {"topic": choices[0], "confidence": 0.9, "reason": "The default answer."}
    if name == "narrative":
        return {"text": "A quiet week."}
    return {}


class FakeOpenAI(FakeHttpServer):
    """Fake of ``https://api.openai.com/v1`` for ``/chat/completions`` and ``/embeddings``."""

    def __init__(self, *, api_key: str | None = None, host: str = "127.0.0.1") -> None:
        super().__init__(host)
        self.api_key = api_key
        self.replies: deque[Content] = deque()
        self.handler: Callable[[RecordedCall], Content] | None = None
        self.prompt_tokens = 100
        self.completion_tokens = 20
        """Usage reported for answers that do not set their own."""
        self.dimensions = 8
        self.gate: asyncio.Event | None = None
        """While set to an unset event, chat answers wait for it (a model still writing)."""

    @property
    def base_url(self) -> str:
        """What the SDK takes as ``base_url``: ``http://127.0.0.1:PORT/v1``."""
        return f"{self.url}v1"

    def script(self, *replies: Content) -> None:
        """Answer the next chat requests with these, in order."""
        self.replies.extend(replies)

    def fail_next(
        self,
        name: str,
        status: int | None = 429,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        *,
        times: int = 1,
        delay: float = 0.0,
        reset: bool = False,
    ) -> None:
        if headers is None and status is not None and (status == 429 or status >= 500):
            headers = {"retry-after-ms": "1"}
        super().fail_next(name, status, headers, body, times=times, delay=delay, reset=reset)

    # -- routing ---------------------------------------------------------

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)

    def _default_fault_body(self, name: str, status: int) -> Any:
        kinds = {
            400: ("invalid_request_error", "Bad request."),
            401: ("invalid_request_error", "Incorrect API key provided."),
            429: ("rate_limit_exceeded", "Rate limit reached. Please try again later."),
        }
        kind, message = kinds.get(status, ("server_error", "The server had an error."))
        return {"error": {"message": message, "type": kind, "param": None, "code": kind}}

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._receive(request, CHAT, self._answer_chat)

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        return await self._receive(request, EMBEDDINGS, self._answer_embeddings)

    async def _receive(
        self,
        request: web.Request,
        name: str,
        answer: Callable[[RecordedCall], dict[str, Any]],
    ) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None

        async def respond(call: RecordedCall) -> web.StreamResponse:
            if self.api_key is not None and call.authorization != f"Bearer {self.api_key}":
                return build_response(401, self._default_fault_body(name, 401))
            if not isinstance(call.body, dict):
                return build_response(400, self._default_fault_body(name, 400))
            if name == CHAT and self.gate is not None:
                await self.gate.wait()
            return build_response(
                200, answer(call), {"x-request-id": f"req_fake_{len(self.calls)}"}
            )

        return await self._serve(
            request, name=name, params=dict(request.query), body=body, raw_body=raw, respond=respond
        )

    def _answer_chat(self, call: RecordedCall) -> dict[str, Any]:
        if self.replies:
            reply = self.replies.popleft()
        elif self.handler is not None:
            reply = self.handler(call)
        else:
            reply = _default_content(call)
        if not isinstance(reply, Reply):
            reply = Reply(reply)
        content = reply.content
        if not isinstance(content, str) and content is not None:
            content = json.dumps(content, ensure_ascii=False)
        prompt = self.prompt_tokens if reply.prompt_tokens is None else reply.prompt_tokens
        completion = (
            self.completion_tokens if reply.completion_tokens is None else reply.completion_tokens
        )
        return {
            "id": f"chatcmpl-fake{len(self.calls)}",
            "object": "chat.completion",
            "created": CREATED,
            "model": call.body.get("model", "gpt-4o-mini"),
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": None if reply.refusal else content,
                        "refusal": reply.refusal,
                    },
                    "logprobs": None,
                    "finish_reason": reply.finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }

    def _answer_embeddings(self, call: RecordedCall) -> dict[str, Any]:
        inputs = call.body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        size = int(call.body.get("dimensions") or self.dimensions)
        as_base64 = call.body.get("encoding_format", "float") == "base64"
        data = []
        for index, text in enumerate(texts):
            vector = self.vector(str(text), size)
            encoded: Any = (
                base64.b64encode(struct.pack(f"<{size}f", *vector)).decode()
                if as_base64
                else vector
            )
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(len(str(text).split()) for text in texts)
        return {
            "object": "list",
            "data": data,
            "model": call.body.get("model", "text-embedding-3-small"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    @staticmethod
    def vector(text: str, size: int) -> list[float]:
        """The embedding this fake gives `text` (float32-exact, so tests can compare)."""
        rng = random.Random(text)
        values = [rng.uniform(-1.0, 1.0) for _ in range(size)]
        return list(struct.unpack(f"<{size}f", struct.pack(f"<{size}f", *values)))
