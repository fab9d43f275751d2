"""Whether a patient's phone or email can be reached, and what follows when it cannot.

A contact is `ok`, `opted_out` (the consent ledger says so: only the patient undoes it) or
`unreachable`: the number or address cannot receive (Twilio 21211, 21214, 21612, 21614, an
SMTP 5.1.1 bounce, or UNREACHABLE_AFTER undelivered reports in a row). That says the contact
is wrong, never that the patient withdrew consent, so it is not written to the ledger. Its
messages wait in the outbox as `held` (with the reason) instead of being tried again and
again; a patient on both channels keeps getting the other one. Staff fixing the contact
(services.patients.update_patient: the API, the CLI and the web form) clears the state and
releases what is still worth sending. Each change is kept in the audit trail, which the
patient's timeline shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from reminders import lifecycle
from reminders.audit import Actor, record_about
from reminders.models import AuditEvent, Channel, Patient

OK, UNREACHABLE, OPTED_OUT = "ok", "unreachable", "opted_out"
# The audit trail's actions for a contact's changes, read back for the timeline.
MARKED, CLEARED = "contact.unreachable", "contact.fixed"
DELIVERY = Actor(kind="system", name="delivery")


@dataclass(frozen=True)
class ContactState:
    """A contact's state; `reason` and `since` when it is unreachable."""

    state: str  # ok | unreachable | opted_out
    reason: str | None = None
    since: datetime | None = None


def _prefix(channel: Channel) -> str:
    return "sms" if channel == Channel.sms else "email"


def contact_state(patient: Patient, channel: Channel) -> ContactState:
    """The state of one of the patient's contacts: an opt-out outranks unreachability."""
    if patient.sms_opted_out if channel == Channel.sms else patient.email_opted_out:
        return ContactState(OPTED_OUT)
    since = getattr(patient, f"{_prefix(channel)}_unreachable_at")
    if since is not None:
        return ContactState(UNREACHABLE, patient.unreachable(channel), since)
    return ContactState(OK)


def mark_unreachable(
    session: Session, *, patient: Patient, channel: Channel, reason: str, now: datetime
) -> int:
    """Mark a contact unreachable and hold its pending messages; how many were held.

    A contact already unreachable keeps its first reason and instant (more holds only)."""
    name = _prefix(channel)
    if getattr(patient, f"{name}_unreachable_at") is None:
        setattr(patient, f"{name}_unreachable_at", now)
        setattr(patient, f"{name}_unreachable_reason", reason[:200])
        session.add(patient)
        detail = f"{name}: {reason}"[:200]
        record_about(session, patient, actor=DELIVERY, action=MARKED, now=now, detail=detail)
    return lifecycle.hold_pending(
        session,
        patient_id=patient.id,  # type: ignore[arg-type]
        channel=channel,
        now=now,
        reason=f"held: {name} unreachable ({reason})",
    )


def count_report(
    session: Session, *, patient: Patient, reached: bool, limit: int, reason: str, now: datetime
) -> bool:
    """Count one SMS delivery report toward unreachability: `reached` starts the count again,
    a report that the handset could not be reached adds one; at `limit` in a row the number
    is marked unreachable. True when this report marked it."""
    if reached:
        if patient.sms_undelivered:
            patient.sms_undelivered = 0
            session.add(patient)
        return False
    patient.sms_undelivered += 1
    session.add(patient)
    if patient.sms_undelivered < limit or patient.sms_unreachable_at is not None:
        return False
    why = f"{patient.sms_undelivered} undelivered in a row, last {reason}"
    mark_unreachable(session, patient=patient, channel=Channel.sms, reason=why, now=now)
    return True


def clear(
    session: Session, *, patient: Patient, channel: Channel, actor: Actor, now: datetime
) -> int:
    """The contact was changed: it is reachable until shown otherwise, and its held messages
    still in their window go out again (the caller re-plans); how many were released."""
    name = _prefix(channel)
    was = getattr(patient, f"{name}_unreachable_at")
    setattr(patient, f"{name}_unreachable_at", None)
    setattr(patient, f"{name}_unreachable_reason", None)
    if channel == Channel.sms:
        patient.sms_undelivered = 0
    session.add(patient)
    released = lifecycle.release(
        session,
        patient_id=patient.id,  # type: ignore[arg-type]
        channel=channel,
        now=now,
    )
    if was is not None:
        detail = f"{name}: changed; {released} held released"
        record_about(session, patient, actor=actor, action=CLEARED, now=now, detail=detail)
    return released


def contacts_changed(
    session: Session,
    *,
    patient: Patient,
    old: dict[Channel, str | None],
    source: str,
    now: datetime,
) -> int:
    """After staff changed a patient's number or address: clear each changed contact's state
    and release its held messages; how many were released."""
    actor = Actor(kind="system", name=source)
    released = 0
    for channel, before in old.items():
        now_contact = patient.phone if channel == Channel.sms else patient.email
        if now_contact != before:
            released += clear(session, patient=patient, channel=channel, actor=actor, now=now)
    return released


def contact_changes(session: Session, *, patient_id: int) -> list[AuditEvent]:
    """When the patient's contacts were found unreachable and changed, oldest first: the
    timeline's entries for them."""
    return list(
        session.exec(
            select(AuditEvent)
            .where(AuditEvent.patient_id == patient_id)
            .where(col(AuditEvent.action).in_((MARKED, CLEARED)))
            .order_by(col(AuditEvent.at), col(AuditEvent.id))
        ).all()
    )
