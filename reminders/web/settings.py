"""The clinic's settings page (admins): the help phone patients are given, who hears of replies."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from reminders.audit import record_by
from reminders.db import read_scope, session_scope
from reminders.deps import NowDep, RuntimeDep
from reminders.runtime import Runtime
from reminders.services import get_clinic, update_clinic
from reminders.validation import InvalidInput
from reminders.web.pages import Errors, Values, errors_by_field, form_page, redirect
from reminders.web.security import PREFIX, AdminDep, FormDep, Staff, field

router = APIRouter(prefix=PREFIX, include_in_schema=False)

FIELDS = ("help_contact", "notify_email")


def _page(request: Request, staff: Staff, rt: Runtime, values: Values, errors: Errors) -> Response:
    minutes = round(rt.settings.reply_notify_interval / 60)
    return form_page(
        request,
        "settings.html",
        title="Clinic settings",
        staff=staff,
        values=values,
        errors=errors,
        notify_minutes=minutes,
    )


@router.get("/settings")
def settings_form(request: Request, staff: AdminDep, rt: RuntimeDep) -> Response:
    with read_scope(rt.engine) as session:
        clinic = get_clinic(session, staff.clinic_id)
        values = {"help_contact": clinic.help_contact, "notify_email": clinic.notify_email or ""}
    return _page(request, staff, rt, values, {})


@router.post("/settings")
def settings_submit(
    request: Request, staff: AdminDep, form: FormDep, rt: RuntimeDep, now: NowDep
) -> Response:
    """Save both fields through the same service as the API and the CLI, or neither."""
    values = {name: field(form, name) for name in FIELDS}
    try:
        with session_scope(rt.engine) as session:
            clinic = get_clinic(session, staff.clinic_id)
            update_clinic(session, clinic=clinic, changes=values)
            record_by(session, staff, "clinic.update", now=now, detail=", ".join(FIELDS))
    except InvalidInput as exc:
        errors = errors_by_field(exc.errors)
        return _page(request, staff, rt, values, errors)
    return redirect(request, f"{PREFIX}/settings", flash="The clinic settings are saved.")
