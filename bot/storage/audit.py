"""The audit log of admin actions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.types import Person
from bot.storage.models import AuditRow


def record(
    session: AsyncSession,
    *,
    at: datetime,
    actor: Person | None,
    action: str,
    target: str | None = None,
    outcome: str = "ok",
    details: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditRow(
            at=at,
            actor_person_id=actor.id if actor else None,
            actor=actor.key if actor else "system",
            action=action,
            target=target,
            outcome=outcome,
            details=details,
        )
    )
