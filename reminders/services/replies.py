"""The clinic's inbox: patients' replies, read and marked handled by staff, and when they are
overdue; and the claim on the notice that tells staff new replies arrived."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from reminders.models import Clinic, InboundMessage, ReplyState
from reminders.paging import page
from reminders.services.common import NotFound
from reminders.timing import business_deadline, zone
from reminders.validation import InvalidInput

STATES = ("unread", "handled", "all")
# A reply waits at most this much weekday time (in the clinic's zone) before it is overdue.
ANSWER_WITHIN = timedelta(hours=24)


def _state_filter(state: str | None) -> str | None:
    """The stored state a filter asks for; None for all."""
    if state is None or state == "all":
        return None
    if state not in STATES:
        raise InvalidInput.one("state", f"{state!r} is not one of {', '.join(STATES)}")
    return state


def list_replies(
    session: Session,
    *,
    clinic_id: int | None,
    state: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[InboundMessage], int]:
    """A page of the clinic's replies, newest first, and how many match (`state`: unread,
    handled or all)."""
    query = select(InboundMessage).where(InboundMessage.clinic_id == clinic_id)
    stored = _state_filter(state)
    if stored is not None:
        query = query.where(InboundMessage.state == stored)
    newest_first = (col(InboundMessage.received_at).desc(), col(InboundMessage.id).desc())
    return page(session, query, order=newest_first, limit=limit, offset=offset)


def patient_replies(session: Session, *, patient_id: int) -> list[InboundMessage]:
    """Every reply of a patient, oldest first, for their timeline."""
    return list(
        session.exec(
            select(InboundMessage)
            .where(InboundMessage.patient_id == patient_id)
            .order_by(col(InboundMessage.received_at), col(InboundMessage.id))
        ).all()
    )


def get_reply(session: Session, *, reply_id: int, clinic_id: int | None) -> InboundMessage:
    """A reply to this clinic; another clinic's reply is not found, like a missing one."""
    reply = session.get(InboundMessage, reply_id)
    if reply is None or reply.clinic_id != clinic_id:
        raise NotFound(f"reply {reply_id} not found")
    return reply


def mark_handled(session: Session, *, reply: InboundMessage, by: str, now: datetime) -> bool:
    """Mark a reply handled by `by` (a staff email, or "api"); False when it already was."""
    changed = session.exec(
        update(InboundMessage)
        .where(col(InboundMessage.id) == reply.id, col(InboundMessage.state) == ReplyState.unread)
        .values(state=ReplyState.handled.value, handled_at=now, handled_by=by[:254])
    ).rowcount  # type: ignore[call-overload]
    session.refresh(reply)
    return changed == 1


def unread_count(session: Session, *, clinic_id: int | None) -> int:
    return session.exec(
        select(func.count())
        .select_from(InboundMessage)
        .where(InboundMessage.clinic_id == clinic_id, InboundMessage.state == ReplyState.unread)
    ).one()


def is_overdue(received_at: datetime, timezone: str, *, now: datetime) -> bool:
    """Whether a reply still unread at `now` waited more than one business day: 24 hours of
    Monday-to-Friday time in the clinic's zone (a Friday evening text is due Monday evening)."""
    return business_deadline(received_at, zone(timezone), hours=24) <= now


def overdue_replies(
    session: Session, *, now: datetime, clinic_id: int | None = None
) -> list[InboundMessage]:
    """Unread replies older than one business day, at one clinic or at all, oldest first."""
    # A business day is at least 24 hours long, so younger replies need no look.
    query = (
        select(InboundMessage, Clinic.timezone)
        .join(Clinic, col(Clinic.id) == InboundMessage.clinic_id)
        .where(InboundMessage.state == ReplyState.unread)
        .where(col(InboundMessage.received_at) <= now - ANSWER_WITHIN)
        .order_by(col(InboundMessage.received_at))
    )
    if clinic_id is not None:
        query = query.where(InboundMessage.clinic_id == clinic_id)
    return [
        reply
        for reply, timezone in session.exec(query).all()
        if is_overdue(reply.received_at, timezone, now=now)
    ]


# -- telling staff ------------------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    """A clinic to tell of new replies: where, how many are unread, and the claim it holds."""

    clinic_id: int
    clinic_name: str
    to: str
    unread: int
    newest_id: int
    previous_at: datetime | None
    previous_id: int | None


def notices_due(session: Session, *, now: datetime, interval: timedelta) -> list[Notice]:
    """Clinics with an address to tell, unread replies newer than their last notice, and no
    notice within `interval`."""
    newest = (
        select(
            col(InboundMessage.clinic_id),
            func.max(InboundMessage.id).label("newest"),
            func.count().label("unread"),
        )
        .where(InboundMessage.state == ReplyState.unread)
        .group_by(col(InboundMessage.clinic_id))
        .subquery()
    )
    rows = session.execute(
        select(Clinic, newest.c.newest, newest.c.unread)
        .join(newest, newest.c.clinic_id == Clinic.id)
        .where(col(Clinic.notify_email).is_not(None))
        .where(newest.c.newest > func.coalesce(Clinic.replies_notified_id, 0))
        .where(
            col(Clinic.replies_notified_at).is_(None)
            | (col(Clinic.replies_notified_at) <= now - interval)
        )
    ).all()
    return [
        Notice(
            clinic_id=clinic.id,
            clinic_name=clinic.name,
            to=clinic.notify_email,
            unread=unread,
            newest_id=newest_id,
            previous_at=clinic.replies_notified_at,
            previous_id=clinic.replies_notified_id,
        )
        for clinic, newest_id, unread in rows
    ]


def claim_notice(session: Session, *, notice: Notice, now: datetime) -> bool:
    """Take the right to send this notice: one statement that only the first worker wins."""
    return _move_notice(
        session,
        notice.clinic_id,
        seen=notice.previous_at,
        to=(now, notice.newest_id),
    )


def release_notice(session: Session, *, notice: Notice, claimed_at: datetime) -> bool:
    """The notice could not be sent: give the claim back, so the next pass tries again."""
    return _move_notice(
        session,
        notice.clinic_id,
        seen=claimed_at,
        to=(notice.previous_at, notice.previous_id),
    )


def _move_notice(
    session: Session,
    clinic_id: int,
    *,
    seen: datetime | None,
    to: Sequence[datetime | int | None],
) -> bool:
    at, newest = to
    statement = (
        update(Clinic)
        .where(col(Clinic.id) == clinic_id)
        .where(col(Clinic.replies_notified_at).is_not_distinct_from(seen))
        .values(replies_notified_at=at, replies_notified_id=newest)
    )
    return session.exec(statement).rowcount == 1  # type: ignore[call-overload]
