"""`reminders patient update` (a fixed contact releases what was held for it) and
`reminders worklist` (what needs a person at a clinic, oldest first)."""

from __future__ import annotations

from typing import Annotated

import typer

from reminders.cli.base import (
    ClinicOption,
    Format,
    FormatOption,
    PatientArgument,
    app,
    command_scope,
    emit,
    fail,
    patient_app,
)
from reminders.timing import to_local, zone


@patient_app.command("update")
def patient_update(
    patient_id: PatientArgument,
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
    with command_scope() as scope:
        patient = scope.session.get(Patient, patient_id)
        if patient is None or patient.erased_at is not None:
            raise NotFound(f"patient {patient_id} not found")
        ctx = scope.rt.context(scope.now)
        update_patient(scope.session, patient=patient, changes=changes, source="cli", ctx=ctx)
        scope.audit(
            "patient.update",
            clinic_id=patient.clinic_id,
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
    clinic: ClinicOption,
    fmt: FormatOption = Format.text,
) -> None:
    """What needs a person at the clinic, oldest first. Exits 1 when an item is overdue (it
    waited more than one business day; a course to confirm: its planned end has passed), so
    that cron can tell someone."""
    from reminders.services import get_clinic
    from reminders.services.worklist import counts, label, worklist

    with command_scope(read_only=True) as scope:
        found = get_clinic(scope.session, clinic)
        items = worklist(
            scope.session,
            clinic_id=clinic,
            now=scope.now,
            careplan=scope.rt.careplan,
            reply_hours=scope.rt.settings.worklist_reply_hours,
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
