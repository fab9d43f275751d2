"""Staff sessions kept on the server: the cookie holds a random token, the table its hash.

A session ends when its user signs out, after SESSION_IDLE_MINUTES without a request, after
SESSION_MAX_HOURS whatever happens, and when the user is disabled or their password changes.
A stolen cookie is worth nothing once its session ended, unlike a signed cookie, which stays
valid until it expires.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_
from sqlmodel import Session, col, select

from reminders.clock import as_utc
from reminders.config import Settings
from reminders.models import StaffSession


@dataclass(frozen=True)
class Lifetime:
    idle: timedelta
    absolute: timedelta

    @classmethod
    def of(cls, settings: Settings) -> Lifetime:
        return cls(
            idle=timedelta(minutes=settings.session_idle_minutes),
            absolute=timedelta(hours=settings.session_max_hours),
        )


def token_hash(token: str) -> str:
    # The token is 256 random bits: a plain hash keeps a copy of the table from being a
    # set of working cookies.
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(
    session: Session,
    *,
    user_id: int,
    address: str,
    now: datetime,
    second_factor_due: bool = False,
) -> tuple[str, StaffSession]:
    """A new session for the user; returns the cookie's token (never stored) and the row."""
    token = secrets.token_urlsafe(32)
    row = StaffSession(
        token_hash=token_hash(token),
        user_id=user_id,
        csrf_token=secrets.token_urlsafe(32),
        second_factor_due=second_factor_due,
        address=address[:64],
        created_at=now,
        last_seen=now,
    )
    session.add(row)
    session.flush()
    return token, row


def expired(row: StaffSession, *, now: datetime, lifetime: Lifetime) -> bool:
    """Whether the session was idle too long or has lived its whole lifetime."""
    return (
        now - as_utc(row.last_seen) > lifetime.idle
        or now - as_utc(row.created_at) > lifetime.absolute
    )


def resume_session(
    session: Session, token: str, *, now: datetime, lifetime: Lifetime
) -> StaffSession | None:
    """The live session of this cookie, seen now; an expired one is deleted and None."""
    row = session.get(StaffSession, token_hash(token))
    if row is None:
        return None
    if expired(row, now=now, lifetime=lifetime):
        session.delete(row)
        return None
    row.last_seen = now
    session.add(row)
    return row


def close_session(session: Session, token: str) -> None:
    """Sign-out: the session's row is deleted, so the cookie means nothing any more."""
    session.exec(delete(StaffSession).where(col(StaffSession.token_hash) == token_hash(token)))  # type: ignore[call-overload]


def end_user_sessions(session: Session, *, user_id: int) -> int:
    """End every session of a user (sign out everywhere, disabled, new password); how many."""
    result = session.exec(delete(StaffSession).where(col(StaffSession.user_id) == user_id))  # type: ignore[call-overload]
    return result.rowcount or 0


def live_sessions(session: Session, *, user_id: int) -> list[StaffSession]:
    query = select(StaffSession).where(StaffSession.user_id == user_id)
    return list(session.exec(query.order_by(col(StaffSession.created_at))).all())


def purge_expired(session: Session, *, now: datetime, lifetime: Lifetime) -> None:
    """Delete every session that can no longer be resumed."""
    session.exec(
        delete(StaffSession).where(  # type: ignore[call-overload]
            or_(
                col(StaffSession.last_seen) < now - lifetime.idle,
                col(StaffSession.created_at) < now - lifetime.absolute,
            )
        )
    )
