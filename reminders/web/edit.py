"""Changing a patient's details on the page: the same service, rules and audit as the API."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from reminders.audit import record_by
from reminders.db import read_scope, session_scope
from reminders.deps import NowDep, RuntimeDep
from reminders.models import ChannelChoice, Patient
from reminders.services import PATIENT_FIELDS, Conflict, NotFound, get_patient, update_patient
from reminders.validation import InvalidInput
from reminders.web.addresses import path_id
from reminders.web.pages import Errors, Values, errors_by_field, form_page, redirect
from reminders.web.patients import COMMON_ZONES, SOURCE
from reminders.web.security import PREFIX, FormDep, PageNotFound, Staff, StaffDep, field

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _values(patient: Patient) -> dict[str, str]:
    """The form's fields as the record has them."""
    values = {name: getattr(patient, name) for name in PATIENT_FIELDS}
    values["channel"] = ChannelChoice(patient.channel).value
    born = patient.date_of_birth
    values["date_of_birth"] = born.isoformat() if born else ""
    return {name: "" if value is None else str(value) for name, value in values.items()}


def _page(
    request: Request, staff: Staff, patient: Patient, values: Values, errors: Errors
) -> Response:
    return form_page(
        request,
        "edit.html",
        title=f"Edit {patient.first_name}",
        staff=staff,
        values=values,
        errors=errors,
        patient=patient,
        zones=COMMON_ZONES,
    )


def _patient(session: Any, staff: Staff, patient_id: int) -> Patient:
    try:
        patient = get_patient(session, patient_id=patient_id, clinic_id=staff.clinic_id)
    except NotFound:
        raise PageNotFound() from None
    if patient.erased_at is not None:  # nothing is left to correct
        raise PageNotFound()
    return patient


@router.get("/patients/{patient_id}/edit")
def edit_form(
    request: Request, patient_id: str, staff: StaffDep, rt: RuntimeDep, now: NowDep
) -> Response:
    number = path_id(patient_id)
    with read_scope(rt.engine) as session:
        patient = _patient(session, staff, number)
        record_by(session, staff, "patient.view", now=now, patient_id=number, detail="edit form")
        return _page(request, staff, patient, _values(patient), {})


@router.post("/patients/{patient_id}/edit")
def edit_submit(
    request: Request,
    patient_id: str,
    staff: StaffDep,
    form: FormDep,
    rt: RuntimeDep,
    now: NowDep,
) -> Response:
    """Only the fields that changed go to the service, which re-plans what is still to come;
    a channel the patient opted out of stays off (only the patient can opt back in)."""
    number = path_id(patient_id)
    values = {name: field(form, name) for name in PATIENT_FIELDS}
    errors: dict[str, str] = {}
    try:
        with session_scope(rt.engine) as session:
            patient = _patient(session, staff, number)
            before = _values(patient)
            changes = {name: value for name, value in values.items() if value != before[name]}
            if changes:
                update_patient(
                    session, patient=patient, changes=changes, source=SOURCE, ctx=rt.context(now)
                )
                # The names of the fields changed, never their values.
                record_by(
                    session,
                    staff,
                    "patient.update",
                    now=now,
                    patient_id=number,
                    detail=", ".join(sorted(changes)),
                )
    except InvalidInput as exc:
        errors = errors_by_field(exc.errors)
    except Conflict as exc:
        errors = {exc.field: exc.reason[:1].upper() + exc.reason[1:]}
    if errors:
        with read_scope(rt.engine) as session:
            patient = _patient(session, staff, number)
            return _page(request, staff, patient, values, errors)
    flash = (
        "The details are saved; the messages still to come use them."
        if changes
        else "Nothing was changed."
    )
    return redirect(request, f"{PREFIX}/patients/{number}", flash=flash)
