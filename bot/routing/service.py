"""Keeps the desk's router trained: at start, and again when answers or declines accumulate.

Training runs in a worker thread; until the first one finishes, and whenever one fails, the
desk keeps the classifier it has (the keyword classifier at first), so routing never stops.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from bot.config.organisation import OrganisationConfig
from bot.routing.build import RouterChoice, make_router
from bot.routing.encoders import MemoEncoder
from bot.routing.router import RouterSettings, TopicRouter
from bot.routing.training import examples_from_history, examples_from_organisation, fingerprint
from bot.storage.database import Database

log = logging.getLogger(__name__)


class RoutingService:
    def __init__(self, db: Database, organisation: OrganisationConfig, desk: Any) -> None:
        self.db = db
        self.organisation = organisation
        self.desk = desk
        config = organisation.routing
        embedding_model = (
            organisation.language_model.embedding_model
            if organisation.language_model is not None
            else RouterChoice.embedding_model
        )
        self.choice = RouterChoice(
            config.router, config.model_path, config.model_sha256, embedding_model
        )
        self.settings = RouterSettings(min_confidence=config.min_confidence)
        self.router: Any = None
        self._fingerprint: int | None = None
        self._lock = asyncio.Lock()
        self._memo: MemoEncoder | None = None

    async def retrain(self) -> bool:
        """Train on the configuration and history; True if a new router took over."""
        async with self._lock:
            examples = examples_from_organisation(self.organisation)
            async with self.db.transaction() as session:
                examples += await examples_from_history(session, self.organisation)
            if not any(e.topic is not None and not e.negative for e in examples):
                return False
            mark = fingerprint(examples) ^ hash(self.choice)
            if mark == self._fingerprint:
                return False
            try:
                router = await asyncio.to_thread(self._train, examples)
            except Exception:
                log.exception("training the topic router failed; keeping the current one")
                return False
            self.router = router
            self.desk.classifier = router
            self._fingerprint = mark
            log.info(
                "topic router %s trained on %s examples in %.1f s",
                router.name,
                len(examples),
                router.fit_seconds,
            )
            return True

    async def run(self) -> None:
        """Retrain forever (cancelled when the service stops); a failure waits for next time."""
        every = self.organisation.routing.retrain_minutes * 60
        while True:
            try:
                await self.retrain()
            except Exception:
                log.exception("topic router retraining failed")
            await asyncio.sleep(every)

    def _train(self, examples: list[Any]) -> TopicRouter | Any:
        router = make_router(self.choice, self.settings)
        if not isinstance(router, TopicRouter) or router.encoder is None:
            return router.fit(examples)
        encoder = router.encoder
        # Only training goes through the memo: questions at routing time are new texts.
        if self._memo is None or self._memo.inner is not encoder:
            self._memo = MemoEncoder(encoder)
        router.encoder = self._memo
        try:
            router.fit(examples)
        finally:
            router.encoder = encoder
            self._memo.keep_only([e.text for e in examples])
        return router
