"""The consent ledger: every opt-in and opt-out, and what it changes at once.

An opt-out belongs to the number or the address, not to one enrolment: the service texts
from one sender and emails from one address for every clinic, so a STOP, a carrier's
unsubscribe or an email link stops that contact wherever it is enrolled, and a contact that
opted out carries its opt-out into every later enrolment until the patient opts in again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

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


def opted_out(patient: Patient, channel: Channel) -> bool:
    return patient.sms_opted_out if channel == Channel.sms else patient.email_opted_out


def _contact_column(channel: Channel) -> Any:
    return col(Patient.phone) if channel == Channel.sms else col(Patient.email)


def contact_of(patient: Patient, channel: Channel) -> str | None:
    """The number (SMS) or the address (email) the patient is reached at."""
    return patient.phone if channel == Channel.sms else patient.email


def sharing(session: Session, *, channel: Channel, contact: str) -> list[Patient]:
    """Every patient enrolled with this number or address, at any clinic, latest first."""
    return list(
        session.exec(
            select(Patient)
            .where(_contact_column(channel) == contact)
            .order_by(col(Patient.id).desc())
        ).all()
    )


def opt_out_contact(
    session: Session,
    *,
    channel: Channel,
    contact: str,
    source: str,
    now: datetime,
    detail: str = "",
) -> list[Patient]:
    """Opt a number or an address out wherever it is enrolled; the patients it newly stopped."""
    stopped = []
    for patient in sharing(session, channel=channel, contact=contact):
        if not opted_out(patient, channel):
            opt_out(
                session, patient=patient, channel=channel, source=source, now=now, detail=detail
            )
            stopped.append(patient)
    return stopped


def opt_in_contact(
    session: Session, *, channel: Channel, contact: str, source: str, ctx: Context
) -> list[Patient]:
    """Opt a number or an address back in wherever it is enrolled; the patients it resumed."""
    resumed = []
    for patient in sharing(session, channel=channel, contact=contact):
        if opted_out(patient, channel):
            opt_in(session, patient=patient, channel=channel, source=source, ctx=ctx)
            resumed.append(patient)
    return resumed


CARRIED_OVER = "carried_over"
_CARRIED_DETAIL = {
    Channel.sms: "this number opted out of texts earlier; none are sent until the patient "
    "texts START",
    Channel.email: "this address unsubscribed from email earlier",
}


def carry_opt_outs(session: Session, *, patient: Patient, now: datetime) -> list[Channel]:
    """Opt a patient out of each channel whose number or address opted out in another
    enrolment, at any clinic; the channels carried over. Recorded in the ledger, so staff
    see why nothing is sent."""
    carried = []
    for channel in Channel:
        contact = contact_of(patient, channel)
        if contact is None or opted_out(patient, channel):
            continue
        flag = col(Patient.sms_opted_out if channel == Channel.sms else Patient.email_opted_out)
        earlier = session.exec(
            select(Patient.id)
            .where(_contact_column(channel) == contact, flag, col(Patient.id) != patient.id)
            .limit(1)
        ).first()
        if earlier is not None:
            opt_out(
                session,
                patient=patient,
                channel=channel,
                source=CARRIED_OVER,
                now=now,
                detail=_CARRIED_DETAIL[channel],
            )
            carried.append(channel)
    return carried


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
    """Opt a patient's address out of email from their link, wherever it is enrolled;
    recorded once, however often the link is used."""
    if patient.email_opted_out:
        return False
    if patient.email is None:  # the address was removed since the email went out
        opt_out(session, patient=patient, channel=Channel.email, source="link", now=now)
        return True
    opt_out_contact(session, channel=Channel.email, contact=patient.email, source="link", now=now)
    return True
