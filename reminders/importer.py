"""Bulk enrolment from a clinic's CSV file, with a per-row report."""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session

from reminders.audit import Actor, record
from reminders.db import read_scope, session_scope
from reminders.models import Clinic
from reminders.outbox import materialize_many
from reminders.services import Context, get_clinic
from reminders.services.enrollment import (
    ALREADY_ENROLLED,
    Known,
    create_enrollments,
    enrollment_conflict,
    known_patients,
    live_contacts,
    remove_enrollments,
)
from reminders.validation import (
    ENROLL_FIELDS,
    REQUIRED_FIELDS,
    Enrollment,
    InvalidInput,
    validate_enrollment,
)

log = logging.getLogger(__name__)

# `phone` and `email` may be left out of a file whose rows do not need them: each row's
# channel says which contact it needs ("phone: required for channel sms").
REQUIRED_COLUMNS = REQUIRED_FIELDS
# The web page, the API and `reminders import` share this: a file with a refused row
# enrolls nobody until it is corrected (or the valid rows are asked for), so uploading the
# corrected file again is always right.
PARTIAL_DEFAULT = False
MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 10_000


@dataclass(frozen=True)
class RowError:
    row: int  # the header is row 1
    field: str
    reason: str
    patient: str = ""  # the row's first and last name, so staff know whom it was about


@dataclass
class ImportReport:
    enrolled: list[dict[str, int]] = field(default_factory=list)  # row, patient_id, course_id
    errors: list[RowError] = field(default_factory=list)
    # Rows whose patient has a live course at the clinic already: left as they are, so a
    # file imported twice enrolls nobody twice.
    already_enrolled: list[dict[str, int]] = field(default_factory=list)


class ImportRefused(Exception):
    """An all-or-nothing import with refused rows: raised so the caller's transaction rolls back
    every row enrolled before the report was made."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__(f"{len(report.errors)} problems in the file")
        self.report = report


def decode(data: bytes) -> str:
    """UTF-8 text with or without a byte-order mark; anything else is refused."""
    if len(data) > MAX_BYTES:
        raise InvalidInput.one("file", f"larger than {MAX_BYTES // (1024 * 1024)} MiB")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput.one("file", "not UTF-8 text") from None


def read_rows(text: str) -> list[dict[str, str] | RowError]:
    """The data rows (a row of the wrong width is its error already); the header must name
    known columns, each once, with the required ones."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidInput.one("file", "empty, a header row is required") from None
    except csv.Error as exc:
        raise InvalidInput.one("file", f"not valid CSV ({exc})") from None
    columns = [name.strip().lower() for name in header]
    unknown = [name for name in columns if name not in ENROLL_FIELDS]
    if unknown:
        raise InvalidInput.one(unknown[0] or "header", "unknown column")
    duplicated = {name for name in columns if columns.count(name) > 1}
    if duplicated:
        raise InvalidInput.one(sorted(duplicated)[0], "column appears twice")
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise InvalidInput.one(missing[0], "required column is missing")
    rows: list[dict[str, str] | RowError] = []
    try:
        for values in reader:
            if not any(value.strip() for value in values):
                rows.append({})  # a blank line keeps its number but enrolls nobody
                continue
            if len(values) != len(columns):
                reason = f"has {len(values)} fields, not as the header"
                rows.append(RowError(len(rows) + 2, "row", reason))
                continue
            rows.append(dict(zip(columns, (v.strip() for v in values), strict=True)))
            if len(rows) > MAX_ROWS:
                raise InvalidInput.one("file", f"more than {MAX_ROWS} rows")
    except csv.Error as exc:
        raise InvalidInput.one("file", f"not valid CSV at line {reader.line_num} ({exc})") from None
    return rows


# A write batch holds SQLite's only write lock while it runs: this many rows take well under
# 100 ms, so a STOP, an enrolment or a dispatch tick waiting for the lock waits about that.
BATCH_ROWS = 100
BATCH_GAP = 0.03  # seconds between two batches on SQLite, at most


@dataclass(frozen=True)
class Checked:
    """A row that passed every check, waiting to be written."""

    row: int
    data: Enrollment


def _who(raw: dict[str, str]) -> str:
    return " ".join(part for part in (raw.get("first_name"), raw.get("last_name")) if part)[:160]


def import_file(
    engine: Engine,
    *,
    clinic_id: int,
    data: bytes,
    source: str,
    ctx: Context,
    partial: bool,
    actor: Actor,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Enroll every row of a CSV file, with a report naming each refused row and field.

    The whole file is checked first, in a transaction that takes no write lock. Then the rows
    are written in short batches, each its own transaction, so no one waits on the import for
    long. All or nothing unless `partial`: ImportRefused when any row is refused, with nothing
    written; a row that fails while the file is written (another enrolment took its phone in
    the meantime) undoes the batches already written. The new courses are then planned in
    batches too (a course the import could not plan is planned by the worker's next pass).
    Each enrolled row is in the audit trail under `actor`, written with its batch.
    """
    rows = read_rows(decode(data))
    total = len(rows)
    report = ImportReport()
    with read_scope(engine) as session:
        clinic = get_clinic(session, clinic_id)
        checked = _check(session, clinic, rows, now=ctx.now, report=report, progress=progress)
    if report.errors and not partial:
        raise ImportRefused(report)
    written: list[tuple[int, int, int, bool]] = []  # row, patient id, course id, new patient
    pending = list(checked)
    while pending:
        started = time.monotonic()
        try:
            batch = _write_batch(engine, clinic, pending, source=source, actor=actor, now=ctx.now)
        except Exception as failure:
            if not partial:
                _undo(engine, written, clinic=clinic, actor=actor, now=ctx.now)
            if not isinstance(failure, _Refused):
                raise
            refused = failure
            if not partial:
                report.errors[:] = [refused.error]
                raise ImportRefused(report) from None
            report.errors.append(refused.error)
            pending = [item for item in pending if item.row != refused.error.row]
            continue
        written += batch
        pending = pending[len(batch) :]
        if progress:
            progress(total - len(pending), total)
        if pending and engine.dialect.name == "sqlite":
            # SQLite's busy handler is not fair: a STOP waiting for the lock polls it and
            # could keep missing the instant between two batches. A short gap lets it in.
            time.sleep(min(BATCH_GAP, (time.monotonic() - started) / 4))
    report.errors.sort(key=lambda error: error.row)
    report.enrolled = [
        {"row": row, "patient_id": patient, "course_id": course}
        for row, patient, course, _new in written
    ]
    _plan(engine, [course for _, _, course, _ in written], ctx=ctx)
    return report


def _check(
    session: Session,
    clinic: Clinic,
    rows: list[dict[str, str] | RowError],
    *,
    now: datetime,
    report: ImportReport,
    progress: Callable[[int, int], None] | None,
) -> list[Checked]:
    """Every row validated, matched to the clinic's patients (chart number, or phone and
    name), and its contact checked against the clinic and the rest of the file."""
    valid: list[Checked] = []
    names: dict[int, str] = {}
    for index, raw in enumerate(rows):
        number = index + 2
        if isinstance(raw, RowError):
            report.errors.append(raw)
        elif raw:  # a blank line keeps its number but enrolls nobody
            names[number] = _who(raw)
            try:
                enrollment = validate_enrollment(raw, region=clinic.region, now=now)
            except InvalidInput as exc:
                report.errors += [
                    RowError(number, e.field, e.reason, names[number]) for e in exc.errors
                ]
            else:
                valid.append(Checked(number, enrollment))
        if progress and index % 500 == 0:
            progress(0, len(rows))
    clinic_id: int = clinic.id  # type: ignore[assignment]
    known = known_patients(session, clinic_id=clinic_id, enrollments=[i.data for i in valid])
    phones, emails = live_contacts(
        session,
        clinic_id=clinic_id,
        phones={item.data.phone for item in valid if item.data.phone},
        emails={item.data.email for item in valid if item.data.email},
    )
    checked = []
    charts: set[str] = set()
    patients: set[int] = set()
    for item, match in zip(valid, known, strict=True):
        if match is not None and match.live_course_id is not None:
            report.already_enrolled.append(
                {"row": item.row, "patient_id": match.patient_id, "course_id": match.live_course_id}
            )
            continue
        # An earlier row of the same file takes the contact, as an enrolment before it would.
        conflict = enrollment_conflict(item.data, phones=phones, emails=emails)
        if conflict is None and item.data.external_id in charts:
            conflict_field, reason = "external_id", "appears in an earlier row"
        elif conflict is None and match is not None and match.patient_id in patients:
            conflict_field, reason = match.by, "the same patient as an earlier row"
        elif conflict is not None:
            conflict_field, reason = conflict.field, conflict.reason
        else:
            conflict_field = ""
        if conflict_field:
            report.errors.append(RowError(item.row, conflict_field, reason, names[item.row]))
            continue
        phones |= {item.data.phone} if item.data.phone else set()
        emails |= {item.data.email} if item.data.email else set()
        charts |= {item.data.external_id} if item.data.external_id else set()
        patients |= {match.patient_id} if match is not None else set()
        checked.append(item)
    report.errors.sort(key=lambda error: error.row)
    return checked


class _Refused(Exception):
    def __init__(self, error: RowError) -> None:
        super().__init__(str(error))
        self.error = error


def _write_batch(
    engine: Engine,
    clinic: Clinic,
    pending: list[Checked],
    *,
    source: str,
    actor: Actor,
    now: datetime,
) -> list[tuple[int, int, int, bool]]:
    """Write the next BATCH_ROWS rows in one short transaction; (row, patient id, course id,
    whether the patient is new)."""
    batch = pending[:BATCH_ROWS]
    clinic_id: int = clinic.id  # type: ignore[assignment]
    with session_scope(engine) as session:
        # Checked again under the write lock: an enrolment may have come in meanwhile.
        known: list[Known | None] = known_patients(
            session, clinic_id=clinic_id, enrollments=[item.data for item in batch]
        )
        phones, emails = live_contacts(
            session,
            clinic_id=clinic_id,
            phones=[item.data.phone for item in batch if item.data.phone],
            emails=[item.data.email for item in batch if item.data.email],
        )
        for item, match in zip(batch, known, strict=True):
            name = f"{item.data.first_name} {item.data.last_name}".strip()
            if match is not None and match.live_course_id is not None:
                raise _Refused(RowError(item.row, match.by, ALREADY_ENROLLED, name))
            conflict = enrollment_conflict(item.data, phones=phones, emails=emails)
            if conflict is not None:
                raise _Refused(RowError(item.row, conflict.field, conflict.reason, name))
        ids = create_enrollments(
            session,
            clinic=clinic,
            enrollments=[item.data for item in batch],
            known=[match.patient_id if match else None for match in known],
            source=source,
            now=now,
        )
        written = [
            (item.row, patient, course, match is None)
            for item, (patient, course), match in zip(batch, ids, known, strict=True)
        ]
        imported = [
            (patient, f"row {row}, course {course}" + ("" if new else ", a returning patient"))
            for row, patient, course, new in written
        ]
        _record_each(session, "patient.import", imported, clinic=clinic, actor=actor, now=now)
    return written


def _undo(
    engine: Engine,
    written: list[tuple[int, int, int, bool]],
    *,
    clinic: Clinic,
    actor: Actor,
    now: datetime,
) -> None:
    """Remove what an all-or-nothing import wrote before a row failed (nothing was planned);
    the trail keeps the import's entries and says each was undone. A returning patient keeps
    their record (with the details the row gave); only the new course goes."""
    for start in range(0, len(written), 500):
        part = written[start : start + 500]
        with session_scope(engine) as session:
            remove_enrollments(
                session,
                patient_ids=[patient for _, patient, _, new in part if new],
                course_ids=[course for _, _, course, _ in part],
            )
            undone = [
                (patient, f"row {row}: a later row was refused, nothing was kept")
                for row, patient, _course, _new in part
            ]
            _record_each(
                session, "patient.import_undone", undone, clinic=clinic, actor=actor, now=now
            )


def _record_each(
    session: Session,
    action: str,
    entries: list[tuple[int, str]],
    *,
    clinic: Clinic,
    actor: Actor,
    now: datetime,
) -> None:
    """One trail entry of `action` for each (patient id, detail)."""
    for patient_id, detail in entries:
        record(
            session,
            clinic_id=clinic.id,  # type: ignore[arg-type]
            actor=actor,
            action=action,
            now=now,
            patient_id=patient_id,
            detail=detail,
        )


def _plan(engine: Engine, course_ids: list[int], *, ctx: Context) -> None:
    """Plan the imported courses in short batches."""
    for start in range(0, len(course_ids), PLAN_BATCH):
        try:
            with session_scope(engine) as session:
                materialize_many(
                    session,
                    course_ids=course_ids[start : start + PLAN_BATCH],
                    careplan=ctx.careplan,
                    now=ctx.now,
                    horizon=ctx.horizon,
                )
        except Exception:  # the worker's planner pass plans what is left, within minutes
            log.exception("planning imported courses failed; the planner pass will retry")
            return


PLAN_BATCH = 200
