"""What the provider tells us: patients' texts and delivery reports.

A text is handled in two steps, so that a STOP is never lost: `record_text` keeps it by its
MessageSid in a short transaction of its own, then `receive_text` applies it (consent, the
clinic's inbox) exactly once. A replayed webhook finds its MessageSid recorded and changes
nothing; a text whose second step failed is applied later by the worker
(`apply_unapplied_texts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from reminders import lifecycle
from reminders.channels.base import Delivery, DeliveryReport
from reminders.db import is_postgres
from reminders.inbound import Keyword, classify
from reminders.models import (
    Channel,
    Clinic,
    InboundMessage,
    InboundText,
    Message,
    MessageStatus,
    Patient,
    ReplyKind,
    ReplyState,
)
from reminders.services.clinics import get_clinic
from reminders.services.common import Context, NotFound
from reminders.services.consent import opt_in_contact, opt_out_contact, sharing
from reminders.services.patients import current_course
from reminders.services.reachability import count_report, mark_unreachable

# What each keyword family is, as staff read it.
KIND_OF = {
    Keyword.stop: ReplyKind.opt_out,
    Keyword.start: ReplyKind.opt_in,
    Keyword.help: ReplyKind.help,
    Keyword.other: ReplyKind.message,
}


@dataclass(frozen=True)
class InboundOutcome:
    """What a patient's text did, for the reply: keyword, clinics concerned, whether it changed."""

    keyword: str  # inbound.Keyword
    clinics: list[Clinic]  # each clinic the number is enrolled at, latest enrolment first
    locale: str
    changed: bool  # STOP: newly opted out; START: newly opted in
    opted_out: bool  # the number now receives no SMS from any clinic


def _clean(text: str, limit: int | None = None) -> str:
    # PostgreSQL refuses NUL in text; nothing a patient means is lost with it.
    cleaned = text.replace("\x00", "")
    return cleaned[:limit] if limit else cleaned


def record_text(
    session: Session,
    *,
    message_sid: str,
    phone: str,
    body: str,
    opt_out_type: str | None,
    now: datetime,
) -> int | None:
    """Keep a text by its MessageSid before anything is applied; its id, or None when this
    MessageSid was recorded before (a replayed webhook)."""
    insert = pg_insert if is_postgres(session.get_bind()) else sqlite_insert  # type: ignore[arg-type]
    statement = (
        insert(InboundText)
        .values(
            message_sid=_clean(message_sid, 64),
            phone=_clean(phone, 64),
            body=_clean(body),
            opt_out_type=_clean(opt_out_type, 16) if opt_out_type else None,
            received_at=now,
        )
        # The unique MessageSid decides, not a read before the write: two deliveries of one
        # text at once cannot both be recorded (PostgreSQL makes the second wait and skip).
        .on_conflict_do_nothing(index_elements=["message_sid"])
        .returning(col(InboundText.id))
    )
    return session.execute(statement).scalar_one_or_none()


def answer_to(session: Session, *, message_sid: str) -> str | None:
    """What the text with this MessageSid was answered the first time (None: no answer)."""
    return session.exec(
        select(InboundText.reply).where(InboundText.message_sid == _clean(message_sid, 64))
    ).first()


def remember_answer(session: Session, *, text_id: int, reply: str | None) -> None:
    """Keep the answer given to a text, so that a replay of it is answered the same."""
    session.execute(update(InboundText).where(col(InboundText.id) == text_id).values(reply=reply))


def receive_text(session: Session, *, text_id: int, ctx: Context) -> InboundOutcome | None:
    """Apply a recorded text once, at every clinic where the number is enrolled; None when it
    was applied already or the number is enrolled nowhere.

    STOP opts the number out of SMS wherever it is enrolled (the service sends from one
    number for all clinics); START opts it back in and re-plans. Each text is kept once per
    clinic for its staff: a message to read (unread), or a keyword the service answered.
    """
    # Claimed by a conditional UPDATE, so the request and the worker cannot both apply it.
    claim = (
        update(InboundText)
        .where(col(InboundText.id) == text_id, col(InboundText.applied_at).is_(None))
        .values(applied_at=ctx.now)
    )
    if session.exec(claim).rowcount != 1:  # type: ignore[call-overload]
        return None
    text = session.get(InboundText, text_id)
    assert text is not None
    phone, body = text.phone or "", text.body or ""
    # The inbox keeps the words for staff; the journal keeps only the MessageSid.
    text.phone = text.body = None
    session.add(text)
    patients = sharing(session, channel=Channel.sms, contact=phone) if phone else []
    if not patients:
        return None
    keyword = classify(body, opt_out_type=text.opt_out_type)
    changed = False
    if keyword == Keyword.stop:
        stopped = opt_out_contact(
            session, channel=Channel.sms, contact=phone, source="reply", now=ctx.now
        )
        changed = bool(stopped)
    elif keyword == Keyword.start:
        resumed = opt_in_contact(
            session, channel=Channel.sms, contact=phone, source="reply", ctx=ctx
        )
        changed = bool(resumed)
    latest: dict[int, Patient] = {}
    for patient in patients:
        latest.setdefault(patient.clinic_id, patient)
    answered = keyword != Keyword.other
    for patient in latest.values():
        course = current_course(session, patient_id=patient.id)  # type: ignore[arg-type]
        session.add(
            InboundMessage(
                clinic_id=patient.clinic_id,
                patient_id=patient.id,  # type: ignore[arg-type]
                course_id=course.id if course else None,
                kind=KIND_OF[keyword],
                body=body,
                provider_id=text.message_sid,
                received_at=text.received_at,
                # A keyword was answered by the service itself: nothing is left for staff.
                state=ReplyState.handled if answered else ReplyState.unread,
                handled_at=text.received_at if answered else None,
            )
        )
    session.flush()
    return InboundOutcome(
        keyword=keyword.value,
        clinics=[get_clinic(session, clinic_id) for clinic_id in latest],
        locale=patients[0].locale,
        changed=changed,
        opted_out=all(patient.sms_opted_out for patient in patients),
    )


def apply_unapplied_texts(session: Session, *, ctx: Context, older_than: timedelta) -> int:
    """Apply the texts recorded but not applied for `older_than` (their request failed after
    recording them); how many were applied. They get no answer: the request is long gone."""
    ids = session.exec(
        select(InboundText.id)
        .where(col(InboundText.applied_at).is_(None))
        .where(col(InboundText.received_at) <= ctx.now - older_than)
        .order_by(col(InboundText.received_at))
        .limit(100)
    ).all()
    applied = 0
    for text_id in ids:
        receive_text(session, text_id=text_id, ctx=ctx)  # type: ignore[arg-type]
        applied += 1
    return applied


# A delivery report in the service's words, onto the outbox's states.
_STATUS_OF = {
    Delivery.accepted: MessageStatus.sent,
    Delivery.reached: MessageStatus.delivered,
    Delivery.not_reached: MessageStatus.undelivered,
    Delivery.failed: MessageStatus.failed,
}


def record_delivery(
    session: Session,
    *,
    outbox_id: int,
    report: DeliveryReport,
    now: datetime,
    unreachable_after: int = 3,
) -> bool:
    """Apply one delivery report to an outbox row; True when the row changed.

    Statuses only move forward (reminders/lifecycle.py), and only for the send the row names
    (its provider id); a report that the recipient unsubscribed at the carrier is their STOP,
    honoured like one wherever the number is enrolled. A report that the number cannot
    receive marks it unreachable at once; `unreachable_after` reports in a row that the
    handset could not be reached do too (reachability.py). A replay counts nothing twice.
    """
    row = session.get(Message, outbox_id)
    if row is None:
        raise NotFound(f"outbox {outbox_id} not found")
    target = _STATUS_OF.get(report.delivery)
    # Still in flight at the provider, or a report that names no send: nothing to record.
    if target is None or not report.provider_id:
        return False
    changed = lifecycle.report(
        session,
        row_id=outbox_id,
        target=target,
        provider_id=report.provider_id,
        reason=report.reason,
        now=now,
    )
    patient = session.get(Patient, row.patient_id) if changed else None
    if patient is None or row.channel != Channel.sms:
        return changed
    if report.opted_out and patient.phone:
        opt_out_contact(
            session,
            channel=Channel.sms,
            contact=patient.phone,
            source="provider",
            now=now,
            detail=report.reason or "",
        )
    elif report.unreachable:
        reason = report.reason or "twilio: failed"
        mark_unreachable(session, patient=patient, channel=Channel.sms, reason=reason, now=now)
    elif report.not_reached or target == MessageStatus.delivered:
        count_report(
            session,
            patient=patient,
            reached=target == MessageStatus.delivered,
            limit=unreachable_after,
            reason=report.reason or "",
            now=now,
        )
    return changed
