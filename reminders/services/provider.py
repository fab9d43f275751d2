"""What the provider tells us: patients' replies and delivery reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from reminders import lifecycle
from reminders.channels.base import Delivery, DeliveryReport
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


# A delivery report in the service's words, onto the outbox's states.
_STATUS_OF = {
    Delivery.accepted: MessageStatus.sent,
    Delivery.reached: MessageStatus.delivered,
    Delivery.not_reached: MessageStatus.undelivered,
    Delivery.failed: MessageStatus.failed,
}


def record_delivery(
    session: Session, *, outbox_id: int, report: DeliveryReport, now: datetime
) -> bool:
    """Apply one delivery report to an outbox row; True when the row changed.

    Statuses only move forward (reminders/lifecycle.py); a report that the recipient
    unsubscribed at the carrier is their STOP, honoured like one.
    """
    row = session.get(Message, outbox_id)
    if row is None:
        raise NotFound(f"outbox {outbox_id} not found")
    target = _STATUS_OF.get(report.delivery)
    if target is None:  # still in flight at the provider: nothing to record
        return False
    changed = lifecycle.report(
        session,
        row_id=outbox_id,
        target=target,
        provider_id=report.provider_id,
        reason=report.reason,
        now=now,
    )
    if changed and report.opted_out:
        patient = session.get(Patient, row.patient_id)
        if patient is not None and not patient.sms_opted_out:
            opt_out(
                session,
                patient=patient,
                channel=Channel.sms,
                source="provider",
                now=now,
                detail=report.reason or "",
            )
    return changed
