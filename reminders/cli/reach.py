"""`reminders patient update` (a fixed contact releases what was held for it) and
`reminders worklist` (what needs a person at a clinic, oldest first)."""

from __future__ import annotations

from typing import Annotated

import typer

from reminders.audit import Actor, record
from reminders.cli.base import (
    Format,
    FormatOption,
    clear_errors,
    emit,
    fail,
    patient_app,
    runtime,
)
from reminders.clock import utcnow
from reminders.db import session_scope


@patient_app.command("update")
def patient_update(
    patient_id: Annotated[int, typer.Argument(help="Patient id.")],
    phone: Annotated[str | None, typer.Option(help="The new phone number.")] = None,
    email: Annotated[str | None, typer.Option(help="The new email address.")] = None,
    fmt: FormatOption = Format.text,
) -> None:
    """Change a patient's phone or email. A changed contact is reachable again: what was held
    for it and is still worth sending goes out, and the course is planned again."""
    from reminders.models import Channel, Patient
    from reminders.services import NotFound, update_patient
    from reminders.services.reachability import contact_state

    changes = {k: v for k, v in (("phone", phone), ("email", email)) if v is not None}
    if not changes:
        fail("give --phone or --email")
    rt = runtime()
    now = utcnow()
    with clear_errors(), session_scope(rt.engine) as session:
        patient = session.get(Patient, patient_id)
        if patient is None or patient.erased_at is not None:
            raise NotFound(f"patient {patient_id} not found")
        update_patient(session, patient=patient, changes=changes, source="cli", ctx=rt.context(now))
        record(
            session,
            clinic_id=patient.clinic_id,
            actor=Actor.command_line(),
            action="patient.update",
            now=now,
            patient_id=patient_id,
            detail=", ".join(sorted(changes)),  # the fields, never their values
        )
        result = {
            "id": patient_id,
            "sms": contact_state(patient, Channel.sms).state,
            "email": contact_state(patient, Channel.email).state,
        }
    emit(
        fmt,
        result,
        lambda: f"patient {patient_id} updated (sms: {result['sms']}, email: {result['email']})",
    )
