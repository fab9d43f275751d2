"""`reminders patient update` (a fixed contact releases what was held for it) and
`reminders worklist` (what needs a person at a clinic, oldest first)."""

from __future__ import annotations

from typing import Annotated

import typer

from reminders.audit import Actor, record
from reminders.cli.base import (
    Format,
    FormatOption,
    app,
    clear_errors,
    emit,
    fail,
    patient_app,
    runtime,
)
from reminders.clock import utcnow
from reminders.db import read_scope, session_scope
from reminders.timing import to_local, zone


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


@app.command("worklist")
def worklist_command(
    clinic: Annotated[int, typer.Option(help="Clinic id.")],
    fmt: FormatOption = Format.text,
) -> None:
    """What needs a person at the clinic, oldest first. Exits 1 when an item is overdue (it
    waited more than one business day; a course to confirm: its planned end has passed), so
    that cron can tell someone."""
    from reminders.services import get_clinic
    from reminders.services.worklist import counts, label, worklist

    rt = runtime()
    now = utcnow()
    with clear_errors(), read_scope(rt.engine) as session:
        found = get_clinic(session, clinic)
        items = worklist(
            session,
            clinic_id=clinic,
            now=now,
            careplan=rt.careplan,
            reply_hours=rt.settings.worklist_reply_hours,
        )
        tz = zone(found.timezone)
    overdue = sum(item.overdue for item in items)
    data = {
        "items": [item.as_dict() for item in items],
        "counts": counts(items),
        "overdue": overdue,
    }

    def text() -> str:
        if not items:
            return "nothing waits for staff"
        lines = [
            f"{to_local(item.since, tz):%Y-%m-%d %H:%M}  {'OVERDUE ' if item.overdue else ''}"
            f"{item.kind}  patient {item.patient_id}: {item.detail}"
            for item in items
        ]
        summary = ", ".join(label(kind, n) for kind, n in counts(items).items() if n)
        return "\n".join([*lines, f"{len(items)} items ({summary}); {overdue} overdue"])

    emit(fmt, data, text)
    if overdue:
        raise typer.Exit(1)
