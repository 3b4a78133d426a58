"""The language model's token ledger: calls and tokens per UTC day and purpose, in the database.

Every replica reads and adds to the same rows, so the daily budget holds across restarts and
scale-out. The budget is checked before a call, so the day's last call may overshoot it by that
call's size; that is the price of not reserving tokens up front.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from bot.core.clock import Clock
from bot.storage.database import Database, insert_for
from bot.storage.models import LlmUsageRow


class UsageLedger:
    def __init__(self, database: Database, clock: Clock) -> None:
        self.db = database
        self.clock = clock

    def today(self) -> date:
        """The budget's day: the clock's date in UTC (the clock is always UTC)."""
        return self.clock.now().date()

    async def spent_today(self) -> int:
        """Prompt and completion tokens every purpose spent today."""
        async with self.db.transaction() as session:
            total = await session.scalar(
                select(
                    func.coalesce(
                        func.sum(LlmUsageRow.prompt_tokens + LlmUsageRow.completion_tokens), 0
                    )
                ).where(LlmUsageRow.day == self.today())
            )
        return int(total or 0)

    async def record(
        self,
        purpose: str,
        *,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        failed: bool = False,
    ) -> None:
        """Add one call to today's row for `purpose`, creating the row on the day's first call."""
        values = {
            "day": self.today(),
            "purpose": purpose[:40],
            "calls": 1,
            "prompt_tokens": max(0, prompt_tokens),
            "completion_tokens": max(0, completion_tokens),
            "failures": 1 if failed else 0,
        }
        async with self.db.transaction() as session:
            insert = insert_for(session)
            statement = insert(LlmUsageRow).values(**values)
            added = statement.excluded
            await session.execute(
                statement.on_conflict_do_update(
                    index_elements=["day", "purpose"],
                    set_={
                        "calls": LlmUsageRow.calls + added.calls,
                        "prompt_tokens": LlmUsageRow.prompt_tokens + added.prompt_tokens,
                        "completion_tokens": (
                            LlmUsageRow.completion_tokens + added.completion_tokens
                        ),
                        "failures": LlmUsageRow.failures + added.failures,
                    },
                )
            )
