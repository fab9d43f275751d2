"""The audit trail: who saw or changed which patient, when and from where.

Entries name the actor (a staff user's email, an API key's name, the operating-system user
of a command), the action, the patient's id and a short detail such as a course id or a
count. They never hold a message text, a reply, a name or a full contact: the trail is read
by the clinic's admins and kept after a patient is erased.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlmodel import Session, col, select

from reminders.clock import as_utc
from reminders.db import LATER
from reminders.models import AuditEvent, Patient
from reminders.paging import page


@dataclass(frozen=True)
class Actor:
    """Who acts: a signed-in staff user, an API key, a command, or the service itself."""

    kind: str  # user | key | cli | system
    name: str
    address: str = ""

    @classmethod
    def command_line(cls) -> Actor:
        """The operating-system user running a `reminders` command on this machine."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no user name in a bare container
            user = "unknown"
        return cls(kind="cli", name=user, address="local")


SYSTEM = Actor(kind="system", name="retention", address="")


def record(
    session: Session,
    *,
    clinic_id: int,
    actor: Actor,
    action: str,
    now: datetime,
    patient_id: int | None = None,
    detail: str = "",
) -> AuditEvent:
    """Append one entry to the clinic's trail, in the caller's transaction.

    Inside a read-only transaction (read_scope: a page view, an API read) the entry is
    written in a short transaction of its own when the read is done, so that reading never
    holds the database's write lock.
    """
    event = AuditEvent(
        clinic_id=clinic_id,
        at=now,
        actor_kind=actor.kind,
        actor=actor.name[:254],
        action=action,
        patient_id=patient_id,
        address=actor.address[:64],
        detail=detail[:200],
    )
    later = session.info.get(LATER)
    if later is not None:
        later.append(event)
    else:
        session.add(event)
    return event


class SignedIn(Protocol):
    """Someone signed in to one clinic: a staff user on the web, an API key."""

    @property
    def clinic_id(self) -> int: ...

    @property
    def actor(self) -> Actor: ...


def record_by(
    session: Session,
    who: SignedIn,
    action: str,
    *,
    now: datetime,
    patient_id: int | None = None,
    detail: str = "",
) -> AuditEvent:
    """Append what a signed-in user or key did to their clinic's trail: the patient it was
    about, if one, and what else it should say (never a patient's details)."""
    return record(
        session,
        clinic_id=who.clinic_id,
        actor=who.actor,
        action=action,
        now=now,
        patient_id=patient_id,
        detail=detail,
    )


def record_about(
    session: Session, patient: Patient, *, actor: Actor, action: str, now: datetime, detail: str
) -> AuditEvent:
    """Append one entry about a patient to their clinic's trail."""
    return record(
        session,
        clinic_id=patient.clinic_id,
        actor=actor,
        action=action,
        now=now,
        patient_id=patient.id,
        detail=detail,
    )


def trail(
    session: Session,
    *,
    clinic_id: int,
    patient_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[AuditEvent], int]:
    """A page of the clinic's trail, newest first, and how many entries there are."""
    query = select(AuditEvent).where(AuditEvent.clinic_id == clinic_id)
    if patient_id is not None:
        query = query.where(AuditEvent.patient_id == patient_id)
    newest_first = (col(AuditEvent.at).desc(), col(AuditEvent.id).desc())
    return page(session, query, order=newest_first, limit=limit, offset=offset)


def as_dict(event: AuditEvent) -> dict[str, object]:
    """An entry as plain data, for JSON output."""
    return {
        "id": event.id,
        "at": as_utc(event.at).isoformat(),
        "actor_kind": event.actor_kind,
        "actor": event.actor,
        "action": event.action,
        "patient_id": event.patient_id,
        "address": event.address,
        "detail": event.detail,
    }
