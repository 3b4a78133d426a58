"""`LanguageModel` on OpenAI or any OpenAI-compatible server, through the openai SDK 3.x.

The SDK talks HTTP through httpx2 (PLATFORM-FACTS.md §E); its client is created on first use,
with our timeout per attempt and a bounded number of retries (it honours `Retry-After`). Around
each call: the circuit breaker, the daily token budget (read from the database before the call,
added to from `usage` after it), a metric and, for anything that went wrong, one log line.
Structured answers come back as JSON fitting a strict schema and are validated again here.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

from openai import APITimeoutError, AsyncOpenAI, OpenAIError
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionMessageParam,
    ChatCompletionSystemMessageParam,
    ChatCompletionUserMessageParam,
)
from openai.types.shared_params.response_format_json_schema import (
    JSONSchema,
    ResponseFormatJSONSchema,
)

from bot.config.organisation import LanguageModelConfig
from bot.core.clock import Clock
from bot.core.llm import Classification, Draft, DraftRequest, TopicChoice
from bot.llm import answers, prompts, schemas
from bot.llm.breaker import CircuitBreaker
from bot.llm.usage import UsageLedger
from bot.observability import Metrics
from bot.questions.text import sanitise
from bot.storage.database import Database

log = logging.getLogger(__name__)

T = TypeVar("T")

DRAFT_TOKENS = 700
CLASSIFY_TOKENS = 200
NARRATE_TOKENS = 500
MAX_TOPICS = 100
MAX_EMBED_INPUTS = 256
EMBED_TEXT_LIMIT = 8000


class OpenAIModel:
    """The language model port on an OpenAI-compatible Chat Completions and Embeddings API."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None,
        config: LanguageModelConfig,
        ledger: UsageLedger,
        clock: Clock,
        metrics: Metrics,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("an API key is needed (any non-empty value for servers without keys)")
        self._api_key = api_key
        self.base_url = base_url
        self.config = config
        self.ledger = ledger
        self.metrics = metrics
        self.breaker = breaker or CircuitBreaker(clock)
        self._client: AsyncOpenAI | None = None

    @classmethod
    def build(
        cls,
        *,
        api_key: str,
        base_url: str | None,
        config: LanguageModelConfig,
        database: Database,
        clock: Clock,
        metrics: Metrics,
    ) -> OpenAIModel:
        return cls(
            api_key=api_key,
            base_url=base_url,
            config=config,
            ledger=UsageLedger(database, clock),
            clock=clock,
            metrics=metrics,
        )

    def client(self) -> AsyncOpenAI:
        """The SDK client, made on first use (never at import or build time)."""
        if self._client is None:
            self._client = AsyncOpenAI(
                api_key=self._api_key,
                base_url=self.base_url,
                timeout=self.config.timeout_seconds,
                max_retries=self.config.max_retries,
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    # -- the port ---------------------------------------------------------------------------

    async def draft_reply(self, request: DraftRequest) -> Draft | None:
        return await self._guarded(
            "draft",
            lambda: self._chat(
                "draft",
                prompts.draft_messages(request),
                "draft_reply",
                schemas.DRAFT_SCHEMA,
                DRAFT_TOKENS,
                partial(answers.draft, request=request),
            ),
        )

    async def classify(self, text: str, topics: Sequence[TopicChoice]) -> Classification | None:
        offered = list(topics)[:MAX_TOPICS]
        if not offered:
            return None
        ids = [topic.id for topic in offered]
        return await self._guarded(
            "classify",
            lambda: self._chat(
                "classify",
                prompts.classify_messages(text, offered),
                "topic_choice",
                schemas.classification_schema(ids),
                CLASSIFY_TOKENS,
                partial(answers.classification, topic_ids=ids),
            ),
        )

    async def narrate(self, facts: Mapping[str, Any], purpose: str) -> str | None:
        return await self._guarded(
            "narrate",
            lambda: self._chat(
                "narrate",
                prompts.narrate_messages(facts, purpose),
                "narrative",
                schemas.NARRATIVE_SCHEMA,
                NARRATE_TOKENS,
                answers.narrative,
            ),
        )

    async def embed(self, texts: Sequence[str]) -> list[list[float]] | None:
        if not texts:
            return []
        if len(texts) > MAX_EMBED_INPUTS:
            log.warning(
                "asked to embed %s texts at once; the limit is %s", len(texts), MAX_EMBED_INPUTS
            )
            return None
        return await self._guarded("embed", lambda: self._embed(list(texts)))

    # -- one call ---------------------------------------------------------------------------

    async def _guarded(self, purpose: str, call: Callable[[], Awaitable[T | None]]) -> T | None:
        """Run a call so that nothing escapes: a bug or a database error is logged, not raised."""
        try:
            return await call()
        except Exception:
            log.exception("language model %s failed unexpectedly", purpose)
            self.metrics.llm_calls.labels(purpose, "error").inc()
            return None

    async def _may_call(self, purpose: str) -> bool:
        budget = self.config.daily_token_budget
        if not self.breaker.allow():
            self.metrics.llm_calls.labels(purpose, "circuit_open").inc()
            return False
        spent = await self.ledger.spent_today() if budget else 0
        if not budget or spent >= budget:
            self.metrics.llm_calls.labels(purpose, "over_budget").inc()
            log.info(
                "language model %s skipped: %s of %s tokens spent today", purpose, spent, budget
            )
            return False
        return True

    async def _chat(
        self,
        purpose: str,
        messages: list[prompts.Message],
        schema_name: str,
        schema: dict[str, Any],
        max_tokens: int,
        accept: Callable[[str], T],
    ) -> T | None:
        if not await self._may_call(purpose):
            return None
        response_format = ResponseFormatJSONSchema(
            type="json_schema",
            json_schema=JSONSchema(name=schema_name, schema=schema, strict=True),
        )
        try:
            completion = await self.client().chat.completions.create(
                model=self.config.chat_model,
                messages=_sdk_messages(messages),
                response_format=response_format,
                max_completion_tokens=max_tokens,
            )
        except OpenAIError as exc:
            await self._failed(purpose, exc)
            return None
        prompt_tokens, completion_tokens = _usage(completion)
        try:
            result = accept(_content(completion))
        except (ValueError, TypeError, AttributeError) as exc:
            await self._invalid(purpose, exc, prompt_tokens, completion_tokens)
            return None
        await self._succeeded(purpose, prompt_tokens, completion_tokens)
        return result

    async def _embed(self, texts: list[str]) -> list[list[float]] | None:
        if not await self._may_call("embed"):
            return None
        inputs = [sanitise(text, EMBED_TEXT_LIMIT) or "-" for text in texts]
        try:
            # No encoding_format: the SDK asks for base64 and decodes the float32 itself.
            response = await self.client().embeddings.create(
                model=self.config.embedding_model, input=inputs
            )
        except OpenAIError as exc:
            await self._failed("embed", exc)
            return None
        tokens = response.usage.prompt_tokens if response.usage else 0
        try:
            vectors = answers.vectors(response.data, len(inputs))
        except (ValueError, TypeError, AttributeError) as exc:
            await self._invalid("embed", exc, tokens, 0)
            return None
        await self._succeeded("embed", tokens, 0)
        return vectors

    # -- bookkeeping ------------------------------------------------------------------------

    async def _succeeded(self, purpose: str, prompt_tokens: int, completion_tokens: int) -> None:
        self.breaker.succeeded()
        self.metrics.llm_calls.labels(purpose, "ok").inc()
        self._count_tokens(purpose, prompt_tokens + completion_tokens)
        await self.ledger.record(
            purpose, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )

    async def _invalid(
        self, purpose: str, exc: Exception, prompt_tokens: int, completion_tokens: int
    ) -> None:
        self.breaker.failed()
        self.metrics.llm_calls.labels(purpose, "invalid").inc()
        self._count_tokens(purpose, prompt_tokens + completion_tokens)
        log.warning(
            "language model %s answer refused: %s",
            purpose,
            answers.describe(exc),
            extra={"llm": purpose},
        )
        await self.ledger.record(
            purpose,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            failed=True,
        )

    async def _failed(self, purpose: str, exc: OpenAIError) -> None:
        self.breaker.failed()
        outcome = "timeout" if isinstance(exc, APITimeoutError) else "error"
        self.metrics.llm_calls.labels(purpose, outcome).inc()
        log.warning(
            "language model %s call failed (%s): %s",
            purpose,
            type(exc).__name__,
            str(exc)[:300],
            extra={"llm": purpose},
        )
        await self.ledger.record(purpose, failed=True)

    def _count_tokens(self, purpose: str, tokens: int) -> None:
        if tokens > 0:
            self.metrics.llm_tokens.labels(purpose).inc(tokens)


def _sdk_messages(messages: list[prompts.Message]) -> list[ChatCompletionMessageParam]:
    converted: list[ChatCompletionMessageParam] = []
    for message in messages:
        if message["role"] == "system":
            converted.append(
                ChatCompletionSystemMessageParam(role="system", content=message["content"])
            )
        else:
            converted.append(
                ChatCompletionUserMessageParam(role="user", content=message["content"])
            )
    return converted


def _usage(completion: ChatCompletion) -> tuple[int, int]:
    usage = getattr(completion, "usage", None)
    if usage is None:
        return 0, 0
    return int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0)


def _content(completion: ChatCompletion) -> str:
    if not completion.choices:
        raise answers.InvalidAnswer("no choices in the answer")
    choice = completion.choices[0]
    message = choice.message
    if message.refusal:
        raise answers.InvalidAnswer("the model refused")
    if message.tool_calls or message.function_call:
        raise answers.InvalidAnswer("the model tried to call a tool; none was offered")
    if choice.finish_reason not in ("stop", None):
        raise answers.InvalidAnswer(f"the answer stopped early ({choice.finish_reason})")
    if not message.content:
        raise answers.InvalidAnswer("an empty answer")
    return message.content
