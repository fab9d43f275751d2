"""The patient list, the enrolment form and the spreadsheet upload."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from reminders.audit import record_by
from reminders.clock import as_utc
from reminders.db import read_scope, session_scope
from reminders.deps import NowDep, RuntimeDep
from reminders.importer import (
    MAX_BYTES,
    PARTIAL_DEFAULT,
    ImportRefused,
    ImportReport,
    import_file,
)
from reminders.render import LOCALES
from reminders.runtime import Runtime
from reminders.services import enroll, get_clinic
from reminders.timing import local_today
from reminders.validation import CHANNELS, ENROLL_FIELDS, InvalidInput, strip_refused
from reminders.web import queries
from reminders.web.pages import Errors, Values, errors_by_field, form_page, redirect, render
from reminders.web.security import PREFIX, FormDep, Staff, StaffDep, field

router = APIRouter(prefix=PREFIX, include_in_schema=False)

SOURCE = "staff"
IMPORT_PATH = f"{PREFIX}/import"
# Offered while typing; any IANA zone is accepted.
COMMON_ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Puerto_Rico",
    "America/Mexico_City",
    "America/Bogota",
    "Europe/Madrid",
    "Europe/London",
)


@router.get("/patients")
def patient_list(
    request: Request,
    staff: StaffDep,
    rt: RuntimeDep,
    now: NowDep,
    q: str = "",
    status: str = "",
    page: int = 1,
) -> Response:
    """The clinic's patients, newest first, searchable by name, email, chart number or phone
    (any format), filtered by their course or by what needs attention."""
    status = status if status in queries.FILTERS else ""
    page = max(1, min(page, 10_000))
    q = strip_refused(q)[:100]  # PostgreSQL cannot even compare a string holding NUL
    with read_scope(rt.engine) as session:
        rows, total = queries.patient_rows(
            session,
            clinic_id=staff.clinic_id,
            now=now,
            search=q,
            region=get_clinic(session, staff.clinic_id).region,
            show=status or None,
            offset=(page - 1) * queries.PAGE_SIZE,
        )
        # What was looked at, never what was searched for (a name, an email).
        detail = f"{len(rows)} of {total}, page {page}" + (", searched" if q else "")
        record_by(session, staff, "patient.list", now=now, detail=detail)
    return render(
        request,
        "patients.html",
        title="Patients",
        staff=staff,
        rows=rows,
        total=total,
        q=q,
        status=status,
        filters={name: label for name, (label, _) in queries.FILTERS.items()},
        page=page,
        pages=max(1, -(-total // queries.PAGE_SIZE)),
        channel_names=queries.CHANNEL_NAMES,
    )


def _enroll_page(request: Request, staff: Staff, values: Values, errors: Errors) -> Response:
    return form_page(
        request,
        "enroll.html",
        title="Enroll a patient",
        staff=staff,
        values=values,
        errors=errors,
        channels=CHANNELS,
        locales=LOCALES,
        zones=COMMON_ZONES,
    )


def _today(staff: Staff, now: datetime) -> str:
    return local_today(now, staff.clinic_timezone).isoformat()


@router.get("/patients/new")
def enroll_form(request: Request, staff: StaffDep, now: NowDep) -> Response:
    values = {
        "first_name": "",
        "phone": "",
        "email": "",
        "channel": "sms",
        "timezone": staff.clinic_timezone,
        "start_date": _today(staff, now),
        "weeks": "20",
        "locale": "en",
        "ipledge": "",
        "last_name": "",
        "date_of_birth": "",
        "external_id": "",
    }
    return _enroll_page(request, staff, values, {})


@router.post("/patients/new")
def enroll_submit(
    request: Request, staff: StaffDep, form: FormDep, rt: RuntimeDep, now: NowDep
) -> Response:
    """Enroll through the same service as the API; refused input comes back field by field."""
    values = {name: field(form, name) for name in ENROLL_FIELDS}
    try:
        with session_scope(rt.engine) as session:
            clinic = get_clinic(session, staff.clinic_id)
            patient, course = enroll(
                session, clinic=clinic, raw=values, source=SOURCE, ctx=rt.context(now)
            )
            patient_id, name = patient.id, patient.first_name
            returning = as_utc(patient.created_at) < now
            carried = [
                label
                for label, stopped in (
                    ("texts", patient.sms_opted_out),
                    ("emails", patient.email_opted_out),
                )
                if stopped
            ]
            record_by(
                session,
                staff,
                "patient.enroll",
                now=now,
                patient_id=patient_id,
                detail=f"course {course.id}",
            )
    except InvalidInput as exc:  # raised before anything was written; rolled back regardless
        return _enroll_page(request, staff, values, errors_by_field(exc.errors))
    flash = f"{name} is enrolled."
    if returning:
        flash = f"{name} was enrolled before: a new course is added to their record."
    if carried:
        # The contact opted out in an earlier enrolment: say so now, not only on the page.
        flash += f" No {' or '.join(carried)} will be sent: this contact opted out earlier."
    return redirect(request, f"{PREFIX}/patients/{patient_id}", flash=flash)


def _import_page(
    request: Request,
    staff: Staff,
    *,
    report: ImportReport | None = None,
    saved: bool = False,
    partial: bool = False,
    file_error: str | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "import.html",
        title="Import a spreadsheet",
        staff=staff,
        code=status,
        report=report,
        saved=saved,
        partial=partial,
        file_error=file_error,
        max_mib=MAX_BYTES // (1024 * 1024),
    )


@router.get("/import")
def import_form(request: Request, staff: StaffDep) -> Response:
    return _import_page(request, staff, partial=PARTIAL_DEFAULT)


# Every column the importer reads, with two made-up patients: one by SMS, one by email.
TEMPLATE_CSV = (
    "first_name,last_name,external_id,date_of_birth,phone,email,channel,timezone,"
    "start_date,weeks,locale,ipledge\r\n"
    "Ana,Lopez,CH-1001,1999-04-12,(212) 555-0101,,sms,America/New_York,2026-12-01,20,en,no\r\n"
    "Luis,Ortiz,CH-1002,,,luis@example.com,email,America/Chicago,2026-12-01,24,es,no\r\n"
)


@router.get("/import/template.csv")
def import_template(staff: StaffDep) -> Response:
    """A CSV file to fill in: the header names every column, two rows show the formats."""
    return Response(
        TEMPLATE_CSV,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="patients-template.csv"'},
    )


def _import(
    rt: Runtime, staff: Staff, data: bytes, *, partial: bool, now: datetime
) -> ImportReport:
    """Check the whole file, then write it in short batches; ImportRefused when rows were
    refused and the import is all or nothing (then nothing is written)."""
    return import_file(
        rt.engine,
        clinic_id=staff.clinic_id,
        data=data,
        source="import",
        ctx=rt.context(now),
        partial=partial,
        actor=staff.actor,
    )


@router.post("/import")
def import_submit(
    request: Request, staff: StaffDep, form: FormDep, rt: RuntimeDep, now: NowDep
) -> Response:
    """Enroll the rows of a CSV file: all or nothing, unless staff ask to keep the valid rows."""
    partial = field(form, "partial") == "yes"
    upload = form.get("file")
    if upload is None or isinstance(upload, str) or not upload.filename:
        return _import_page(
            request, staff, partial=partial, file_error="Choose a CSV file.", status=422
        )
    data = upload.file.read(MAX_BYTES + 1)  # the form is spooled already; this route is sync
    if len(data) > MAX_BYTES:
        error = f"The file is larger than {MAX_BYTES // (1024 * 1024)} MiB."
        return _import_page(request, staff, partial=partial, file_error=error, status=413)
    try:
        report = _import(rt, staff, data, partial=partial, now=now)
    except InvalidInput as exc:  # the file itself: encoding, header, size
        reasons = "; ".join(str(error) for error in exc.errors)
        return _import_page(request, staff, partial=partial, file_error=reasons, status=422)
    except ImportRefused as refused:
        return _import_page(request, staff, report=refused.report, partial=partial, status=422)
    return _import_page(request, staff, report=report, saved=True, partial=partial)
