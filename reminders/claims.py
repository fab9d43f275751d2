"""Claims: the one statement that hands due rows to a worker, and the fenced result writes.

A claim moves due rows from `pending` to `sending` with a lease and a fresh claim token, in
one statement (`FOR UPDATE SKIP LOCKED` on PostgreSQL; on SQLite the engine begins every
transaction with BEGIN IMMEDIATE, a single writer). Every result is then written only where
the row still carries that token, so a worker that lost its lease cannot overwrite another's
result.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, update
from sqlmodel import Session, col, select

from reminders.db import is_postgres
from reminders.models import PENDING, Message, MessageStatus


def claim(
    session: Session, *, now: datetime, limit: int, lease_until: datetime, token: str
) -> list[int]:
    """Move up to `limit` due pending rows to `sending` under `token`, in one statement."""
    due = (
        select(col(Message.id))
        # The literal matches the partial index's own WHERE; SQLite ignores a partial index
        # for a bound `status = ?`, and the claim would then scan every pending row.
        .where(PENDING, col(Message.send_after) <= now)
        .order_by(col(Message.send_after))
        .limit(limit)
    )
    if is_postgres(session.get_bind()):  # type: ignore[arg-type]
        # Rows another worker is claiming right now are skipped, not waited for.
        due = due.with_for_update(skip_locked=True)
    # A CTE is evaluated once; PostgreSQL may re-run a plain `IN (subquery ... LIMIT)` and
    # then claim more rows than asked for.
    chosen = due.cte("due")
    statement = (
        update(Message)
        .where(col(Message.id) == chosen.c.id)
        .where(col(Message.status) == MessageStatus.pending.value)
        .values(
            status=MessageStatus.sending.value,
            claim_token=token,
            lease_until=lease_until,
            updated_at=now,
        )
        .returning(col(Message.id))
    )
    return [row_id for (row_id,) in session.execute(statement)]


def finish(
    session: Session,
    row: Message,
    token: str,
    *,
    status: MessageStatus,
    now: datetime,
    error: str | None = None,
    provider_id: str | None = None,
    sent_at: datetime | None = None,
    send_after: datetime | None = None,
    attempted: bool = False,
) -> bool:
    """Record a result, only if this claim still holds the row (fencing by claim token)."""
    values: dict = {
        "status": status.value,
        "claim_token": None,
        "lease_until": None,
        "updated_at": now,
        "last_error": error[:300] if error else None,
    }
    if attempted:
        values["attempts"] = Message.attempts + 1
    if provider_id is not None:
        values["provider_id"] = provider_id
    if sent_at is not None:
        values["sent_at"] = sent_at
    if send_after is not None:
        values["send_after"] = send_after
    result = session.exec(
        update(Message)
        .where(
            col(Message.id) == row.id,
            col(Message.claim_token) == token,
            col(Message.status) == MessageStatus.sending.value,
        )
        .values(**values)
    )
    return (result.rowcount or 0) == 1


def settle(
    session: Session, row: Message, token: str, status: MessageStatus, reason: str, now: datetime
) -> bool:
    return finish(session, row, token, status=status, now=now, error=reason)


def release(
    session: Session, row: Message, token: str, at: datetime, reason: str, now: datetime
) -> bool:
    """Give a claimed row back to pending, to be sent at `at`; not an attempt."""
    return finish(
        session,
        row,
        token,
        status=MessageStatus.pending,
        now=now,
        error=f"deferred: {reason}",
        send_after=at,
    )


def finish_sent(
    session: Session, token: str, sent: list[tuple[int, str | None, datetime]], now: datetime
) -> int:
    """Record many accepted sends at once, each only if this claim still holds its row.

    Returns how many rows changed; the others were taken over after their lease ran out.
    """
    # The table, not the mapped class: an ORM update run with many parameter sets would be
    # taken for a bulk update by primary key, which cannot carry the fencing conditions.
    table = Message.__table__  # type: ignore[attr-defined]
    statement = (
        update(table)
        .where(
            table.c.id == bindparam("row_id"),
            table.c.claim_token == token,
            table.c.status == MessageStatus.sending.value,
        )
        .values(
            status=MessageStatus.sent.value,
            provider_id=bindparam("provider_id"),
            sent_at=bindparam("sent_at"),
            attempts=table.c.attempts + 1,
            claim_token=None,
            lease_until=None,
            last_error=None,
            updated_at=now,
        )
    )
    params = [
        {"row_id": row_id, "provider_id": provider_id, "sent_at": at}
        for row_id, provider_id, at in sent
    ]
    return max(session.exec(statement, params=params).rowcount or 0, 0)  # type: ignore[call-overload]
