"""What the provider tells us: patients' replies and delivery reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, update
from sqlmodel import Session, col, select

from reminders.inbound import Keyword, classify
from reminders.models import (
    Channel,
    Clinic,
    InboundMessage,
    Message,
    MessageStatus,
    Patient,
)
from reminders.services.clinics import get_clinic
from reminders.services.common import Context, NotFound
from reminders.services.consent import opt_in, opt_out
from reminders.validation import (
    InvalidInput,
)


@dataclass(frozen=True)
class InboundOutcome:
    """What a patient's text did, for the reply: keyword, clinics concerned, whether it changed."""

    keyword: str  # inbound.Keyword
    clinics: list[Clinic]  # each clinic the number is enrolled at, latest enrolment first
    locale: str
    changed: bool  # STOP: newly opted out; START: newly opted in
    opted_out: bool  # the number now receives no SMS from any clinic


def receive_text(
    session: Session,
    *,
    phone: str,
    body: str,
    provider_id: str | None,
    ctx: Context,
    opt_out_type: str | None = None,
) -> InboundOutcome | None:
    """Apply a patient's text at every clinic where the number is enrolled; None if nowhere.

    STOP opts every enrolment of the number out of SMS (the service sends from one number for
    all clinics, so a STOP to it covers them all); START opts back in and re-plans. Each text
    is recorded once per clinic for staff; a repeated webhook (same provider id) changes
    nothing twice, since opting out or in again is skipped when already done.
    """
    patients = list(
        session.exec(
            select(Patient).where(Patient.phone == phone).order_by(col(Patient.id).desc())
        ).all()
    )
    if not patients:
        return None
    keyword = classify(body, opt_out_type=opt_out_type)
    changed = False
    for patient in patients:
        if keyword == Keyword.stop and not patient.sms_opted_out:
            opt_out(session, patient=patient, channel=Channel.sms, source="reply", now=ctx.now)
            changed = True
        elif keyword == Keyword.start and patient.sms_opted_out:
            opt_in(session, patient=patient, channel=Channel.sms, source="reply", ctx=ctx)
            changed = True
    latest: dict[int, Patient] = {}
    for patient in patients:
        latest.setdefault(patient.clinic_id, patient)
    text = body.replace("\x00", "")
    for patient in latest.values():
        seen = (
            provider_id is not None
            and session.exec(
                select(InboundMessage.id).where(
                    InboundMessage.patient_id == patient.id,
                    InboundMessage.provider_id == provider_id,
                )
            ).first()
        )
        if not seen:
            session.add(
                InboundMessage(
                    clinic_id=patient.clinic_id,
                    patient_id=patient.id,  # type: ignore[arg-type]
                    keyword=keyword.value,
                    body=text,
                    provider_id=provider_id,
                    received_at=ctx.now,
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


# Twilio's status callback values, mapped onto the outbox. queued, accepted, scheduled and
# sending only say Twilio holds the message: the worker records `sent` itself.
PROVIDER_STATUSES = {
    "sent": MessageStatus.sent,
    "delivered": MessageStatus.delivered,
    "read": MessageStatus.delivered,
    "undelivered": MessageStatus.undelivered,
    "failed": MessageStatus.failed,
    "canceled": MessageStatus.failed,
}


PROVIDER_IN_FLIGHT = frozenset({"queued", "accepted", "scheduled", "sending"})


# A report moves a row only to a higher rank, so replays and late arrivals never go backwards.
# Rows suppressed, expired or cancelled by us are history and are not in the ranks.
_DELIVERY_RANK = {
    MessageStatus.pending: 0,
    MessageStatus.sending: 1,
    MessageStatus.unknown: 1,
    MessageStatus.sent: 2,
    MessageStatus.delivered: 3,
    MessageStatus.undelivered: 3,
    MessageStatus.failed: 3,
}


# Carrier-side reasons an accepted SMS did not arrive.
UNDELIVERED_CODES = {
    30003: "unreachable handset",
    30004: "message blocked",
    30005: "unknown handset",
    30006: "landline or unreachable carrier",
    30007: "filtered by the carrier",
    30008: "unknown error",
}


RECIPIENT_UNSUBSCRIBED = 21610


def delivery_error(status: str, code: int | None) -> str:
    """The last_error text for a failed delivery, naming the provider's code."""
    if code is None:
        return f"twilio: {status}"
    label = UNDELIVERED_CODES.get(code)
    if code == RECIPIENT_UNSUBSCRIBED:
        label = "recipient unsubscribed"
    return f"twilio {code}: {label}" if label else f"twilio {code}: {status}"


def record_delivery(
    session: Session,
    *,
    outbox_id: int,
    provider_id: str | None,
    status: str,
    error_code: int | None,
    now: datetime,
) -> bool:
    """Apply one delivery report to an outbox row; True when the row changed.

    One conditional UPDATE: the row moves only from a lower rank, and only when the report is
    for the row's own send (a row sent again after a worker died has a new provider id).
    A report that arrives while the worker still holds the row (`sending`) settles it; the
    worker's own write then finds the row gone and leaves it as reported.
    """
    row = session.get(Message, outbox_id)
    if row is None:
        raise NotFound(f"outbox {outbox_id} not found")
    word = status.strip().lower()
    if word in PROVIDER_IN_FLIGHT:
        return False
    target = PROVIDER_STATUSES.get(word)
    if target is None:
        raise InvalidInput.one("MessageStatus", f"{status!r} is not a Twilio message status")
    lower = [s.value for s, rank in _DELIVERY_RANK.items() if rank < _DELIVERY_RANK[target]]
    values: dict[str, Any] = {
        "status": target.value,
        "updated_at": now,
        "claim_token": None,
        "lease_until": None,
        "sent_at": func.coalesce(Message.sent_at, now),
    }
    statement = update(Message).where(col(Message.id) == outbox_id, col(Message.status).in_(lower))
    if provider_id:
        values["provider_id"] = func.coalesce(Message.provider_id, provider_id)
        statement = statement.where(
            or_(col(Message.provider_id).is_(None), col(Message.provider_id) == provider_id)
        )
    if target == MessageStatus.delivered:
        values["delivered_at"] = now
    elif target in (MessageStatus.undelivered, MessageStatus.failed):
        values["last_error"] = delivery_error(word, error_code)
    changed = (session.exec(statement.values(**values)).rowcount or 0) == 1
    if changed and error_code == RECIPIENT_UNSUBSCRIBED:
        # Twilio's 21610 is the recipient's STOP, reported late: honour it like one.
        patient = session.get(Patient, row.patient_id)
        if patient is not None and not patient.sms_opted_out:
            opt_out(
                session,
                patient=patient,
                channel=Channel.sms,
                source="provider",
                now=now,
                detail=delivery_error(word, error_code),
            )
    return changed
