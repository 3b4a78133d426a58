"""Writing to the outbox and moving rows through their life.

Rows are written inside the caller's transaction, so a message exists exactly when the change
that caused it committed. The dispatcher then claims rows with a conditional UPDATE; a row is
only ever sent by the worker whose claim succeeded.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.clock import as_utc
from bot.core.types import Address, MessageRef, OutgoingMessage
from bot.storage.database import insert_for
from bot.storage.models import OutboxRow

PENDING, CLAIMED, SENDING, SENT, FAILED = "pending", "claimed", "sending", "sent", "failed"


async def enqueue(
    session: AsyncSession,
    *,
    key: str,
    address: Address,
    message: OutgoingMessage,
    now: datetime,
    operation: str = "send",
    person_id: int | None = None,
    update_of: MessageRef | None = None,
    update_of_key: str | None = None,
    thread_of_key: str | None = None,
    after_key: str | None = None,
    attachment: bytes | None = None,
    not_before: datetime | None = None,
    extra: dict[str, Any] | None = None,
) -> bool:
    """Add a message to the outbox; False if a row with this idempotency key already exists.

    An update names the message it changes by its platform reference (`update_of`) or, when
    that message may not have been sent yet, by its outbox key (`update_of_key`).
    """
    payload: dict[str, Any] = {"message": message.to_dict()}
    if update_of is not None:
        payload["update_of"] = update_of.to_dict()
    if update_of_key is not None:
        # Resolved by the dispatcher once the original is sent (see Dispatcher._resolve_update).
        payload["update_of_key"] = update_of_key
    if thread_of_key is not None:
        # A reply under a message that may not be sent yet: the dispatcher puts the parent's
        # reference in the address once it exists (see Dispatcher._resolve_thread).
        payload["thread_of_key"] = thread_of_key
    if after_key is not None:
        # Sent only once the row with this key is (a chart after the words it illustrates).
        payload["after_key"] = after_key
    if extra:
        payload["extra"] = extra
    values = {
        "idempotency_key": key[:300],
        "platform": address.platform.value,
        "operation": operation,
        "address": address.to_dict(),
        "payload": payload,
        "attachment": attachment,
        "person_id": person_id,
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": not_before or now,
        "created_at": now,
        "possible_duplicate": False,
    }
    insert = insert_for(session)
    result = await session.execute(
        insert(OutboxRow)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ClaimedRow:
    id: int
    key: str
    platform: str
    operation: str
    address: Address
    payload: dict[str, Any]
    attachment: bytes | None
    attempts: int
    sending_since: datetime | None


async def claim_due(
    session: AsyncSession,
    *,
    worker: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    platforms: tuple[str, ...],
) -> list[ClaimedRow]:
    """Claim up to `limit` due rows for this worker.

    The UPDATE re-checks `status = 'pending'`, so of two workers selecting the same row only one
    changes it; on PostgreSQL `SKIP LOCKED` keeps them from even waiting on each other.
    """
    due = (
        select(OutboxRow.id)
        .where(
            OutboxRow.status == PENDING,
            OutboxRow.next_attempt_at <= now,
            OutboxRow.platform.in_(platforms),
        )
        .order_by(OutboxRow.next_attempt_at, OutboxRow.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list((await session.scalars(due)).all())
    if not ids:
        return []
    rows = await session.execute(
        update(OutboxRow)
        .where(OutboxRow.id.in_(ids), OutboxRow.status == PENDING)
        .values(status=CLAIMED, claimed_by=worker, lease_until=now + lease)
        .returning(
            OutboxRow.id,
            OutboxRow.idempotency_key,
            OutboxRow.platform,
            OutboxRow.operation,
            OutboxRow.address,
            OutboxRow.payload,
            OutboxRow.attachment,
            OutboxRow.attempts,
            OutboxRow.sending_since,
        )
    )
    claimed = [
        ClaimedRow(r[0], r[1], r[2], r[3], Address.from_dict(r[4]), r[5], r[6], r[7], r[8])
        for r in rows.all()
    ]
    claimed.sort(key=lambda row: row.id)
    return claimed


async def mark_sending(
    session: AsyncSession, row_id: int, worker: str, now: datetime, lease: timedelta
) -> bool:
    """The last write before the platform call: from here on the outcome may be unknown.

    The lease starts again here: a batch claimed long ago (rows wait their turn behind the
    rate limits) must not look abandoned while this very send is in flight, or recovery would
    put it back and it would go twice.
    """
    result = await session.execute(
        update(OutboxRow)
        .where(OutboxRow.id == row_id, OutboxRow.status == CLAIMED, OutboxRow.claimed_by == worker)
        .values(
            status=SENDING,
            sending_since=now,
            lease_until=now + lease,
            attempts=OutboxRow.attempts + 1,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def mark_sent(
    session: AsyncSession, row_id: int, ref: MessageRef | None, now: datetime
) -> None:
    await session.execute(
        update(OutboxRow)
        .where(OutboxRow.id == row_id, OutboxRow.status.in_((SENDING, CLAIMED)))
        .values(
            status=SENT,
            sent_at=now,
            result=ref.to_dict() if ref else None,
            claimed_by=None,
            lease_until=None,
            last_error=None,
        )
    )


async def mark_retry(
    session: AsyncSession, row_id: int, *, at: datetime, error: str, count_attempt: bool = True
) -> None:
    values: dict[str, Any] = {
        "status": PENDING,
        "next_attempt_at": at,
        "claimed_by": None,
        "lease_until": None,
        "sending_since": None,
        "last_error": error[:2000],
    }
    if not count_attempt:
        # A rate limit or a deferral is not the message's fault.
        values["attempts"] = OutboxRow.attempts - 1
    await session.execute(update(OutboxRow).where(OutboxRow.id == row_id).values(**values))


async def release(
    session: AsyncSession, row_ids: list[int], worker: str, *, at: datetime | None = None
) -> None:
    """Give claimed-but-unsent rows back (shutdown, or a destination that is rate limited)."""
    if not row_ids:
        return
    values: dict[str, Any] = {"status": PENDING, "claimed_by": None, "lease_until": None}
    if at is not None:
        values["next_attempt_at"] = at
    await session.execute(
        update(OutboxRow)
        .where(
            OutboxRow.id.in_(row_ids), OutboxRow.status == CLAIMED, OutboxRow.claimed_by == worker
        )
        .values(**values)
    )


async def mark_failed(session: AsyncSession, row_id: int, error: str, now: datetime) -> None:
    await session.execute(
        update(OutboxRow)
        .where(OutboxRow.id == row_id)
        .values(
            status=FAILED, last_error=error[:2000], claimed_by=None, lease_until=None, sent_at=None
        )
    )


async def expired_leases(session: AsyncSession, now: datetime, limit: int = 200) -> list[OutboxRow]:
    """Rows whose worker vanished: claimed (never sent) or sending (outcome unknown)."""
    rows = await session.scalars(
        select(OutboxRow)
        .where(OutboxRow.status.in_((CLAIMED, SENDING)), OutboxRow.lease_until < now)
        .order_by(OutboxRow.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(rows.all())


async def stats(session: AsyncSession, now: datetime) -> dict[str, float]:
    """Counts for /metrics and the evangelist's status view."""
    counts = dict(
        (
            await session.execute(select(OutboxRow.status, func.count()).group_by(OutboxRow.status))
        ).all()
    )
    oldest = await session.scalar(
        select(func.min(OutboxRow.created_at)).where(
            OutboxRow.status.in_((PENDING, CLAIMED, SENDING))
        )
    )
    age = (now - as_utc(oldest)).total_seconds() if oldest else 0.0
    waiting = sum(int(counts.get(s, 0)) for s in (PENDING, CLAIMED, SENDING))
    return {
        "pending": float(waiting),
        "failed": float(counts.get(FAILED, 0)),
        "sent": float(counts.get(SENT, 0)),
        "oldest_pending_age_seconds": max(age, 0.0),
    }


async def release_expired(session: AsyncSession, row_id: int, now: datetime) -> None:
    """A claimed row whose worker died before sending: it never left us, so send it again."""
    await session.execute(
        update(OutboxRow)
        .where(OutboxRow.id == row_id, OutboxRow.status == CLAIMED, OutboxRow.lease_until < now)
        .values(status=PENDING, claimed_by=None, lease_until=None, next_attempt_at=now)
    )


async def requeue_unknown(
    session: AsyncSession, row_id: int, now: datetime, *, possible_duplicate: bool
) -> None:
    """A row whose send had an unknown outcome and was not found on the platform."""
    values: dict[str, Any] = {
        "status": PENDING,
        "claimed_by": None,
        "lease_until": None,
        "sending_since": None,
        "next_attempt_at": now,
    }
    if possible_duplicate:
        values["possible_duplicate"] = True
    await session.execute(
        update(OutboxRow)
        .where(OutboxRow.id == row_id, OutboxRow.status == SENDING, OutboxRow.lease_until < now)
        .values(**values)
    )


async def hold_unknown(session: AsyncSession, row_id: int, *, until: datetime, error: str) -> None:
    """Keep a row whose send may have arrived in `sending` until `until`, then reconcile it."""
    await session.execute(
        update(OutboxRow)
        .where(OutboxRow.id == row_id, OutboxRow.status == SENDING)
        .values(lease_until=until, last_error=error[:2000])
    )


async def find_by_key(session: AsyncSession, key: str) -> OutboxRow | None:
    return await session.scalar(select(OutboxRow).where(OutboxRow.idempotency_key == key[:300]))


async def update_by_key(
    session: AsyncSession, original_key: str, message: OutgoingMessage, now: datetime
) -> bool:
    """Change a message we sent (or are about to send), named by its outbox key."""
    original = await find_by_key(session, original_key)
    if original is None:
        return False
    return await enqueue(
        session,
        key=f"{original_key}:update:{content_digest(message)}",
        address=Address.from_dict(original.address),
        message=message,
        now=now,
        operation="update",
        update_of_key=original_key,
    )


async def update_pressed(
    session: AsyncSession, ref: MessageRef, message: OutgoingMessage, now: datetime
) -> bool:
    """Change a message a button was pressed on (the platform gave us its reference)."""
    return await enqueue(
        session,
        key=f"press:{ref.platform.value}:{ref.channel}:{ref.message_id}:{content_digest(message)}",
        address=Address.to_channel(ref.platform, ref.channel),
        message=message,
        now=now,
        operation="update",
        update_of=ref,
    )


def content_digest(message: OutgoingMessage) -> str:
    """Keys updates by content: the same content for one message is one update, however often."""
    encoded = json.dumps(message.to_dict(), sort_keys=True).encode()
    return hashlib.sha1(encoded, usedforsecurity=False).hexdigest()[:12]
