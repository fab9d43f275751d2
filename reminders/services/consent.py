"""The consent ledger: every opt-in and opt-out, and what it changes at once."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from reminders import lifecycle
from reminders.models import Channel, ConsentEvent, Patient
from reminders.services.common import Context
from reminders.services.courses import live_courses, replan


def record_consent(
    session: Session,
    *,
    patient: Patient,
    channel: Channel,
    opt_in: bool,
    source: str,
    now: datetime,
    detail: str = "",
) -> ConsentEvent:
    """Append to the consent ledger and update the patient's derived state with it."""
    event = ConsentEvent(
        patient_id=patient.id,  # type: ignore[arg-type]
        channel=channel,
        action="opt_in" if opt_in else "opt_out",
        source=source,
        detail=detail[:200],
        at=now,
    )
    session.add(event)
    if channel == Channel.sms:
        patient.sms_opted_out = not opt_in
    else:
        patient.email_opted_out = not opt_in
    session.add(patient)
    return event


def opt_out(
    session: Session,
    *,
    patient: Patient,
    channel: Channel,
    source: str,
    now: datetime,
    detail: str = "",
) -> int:
    """Stop a channel for a patient at once: record it and suppress every pending message."""
    record_consent(
        session,
        patient=patient,
        channel=channel,
        opt_in=False,
        source=source,
        now=now,
        detail=detail,
    )
    return lifecycle.suppress_pending(
        session,
        patient_id=patient.id,  # type: ignore[arg-type]
        channel=channel,
        now=now,
        reason=f"opted out ({source})",
    )


def opt_in(
    session: Session, *, patient: Patient, channel: Channel, source: str, ctx: Context
) -> None:
    """Resume a channel and plan its upcoming messages again (not those that fell due meanwhile)."""
    # Suppressed rows are history to the planner; those still ahead are owed again, so the
    # re-plan below turns the ones still in the plan back to pending.
    lifecycle.reopen(session, patient_id=patient.id, channel=channel, now=ctx.now)  # type: ignore[arg-type]
    record_consent(
        session, patient=patient, channel=channel, opt_in=True, source=source, now=ctx.now
    )
    session.flush()
    for course in live_courses(session, patient_id=patient.id):  # type: ignore[arg-type]
        replan(session, course=course, ctx=ctx)


def consent_history(session: Session, *, patient_id: int) -> list[ConsentEvent]:
    """The patient's consent ledger, oldest first."""
    return list(
        session.exec(
            select(ConsentEvent)
            .where(ConsentEvent.patient_id == patient_id)
            .order_by(col(ConsentEvent.at), col(ConsentEvent.id))
        ).all()
    )


def patient_by_public_id(session: Session, public_id: str) -> Patient | None:
    """The patient an unsubscribe link names, by the opaque id inside its token."""
    return session.exec(select(Patient).where(Patient.public_id == public_id)).first()


def unsubscribe_email(session: Session, *, patient: Patient, now: datetime) -> bool:
    """Opt a patient out of email from their link; recorded once, however often it is used."""
    if patient.email_opted_out:
        return False
    opt_out(session, patient=patient, channel=Channel.email, source="link", now=now)
    return True
