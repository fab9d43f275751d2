"""Bulk enrolment from a clinic's CSV file, with a per-row report."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlmodel import Session

from reminders.models import Clinic
from reminders.services import Context, enroll
from reminders.validation import ENROLL_FIELDS, InvalidInput

REQUIRED_COLUMNS = ("first_name", "phone", "email", "channel", "timezone", "start_date")
MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 10_000


@dataclass(frozen=True)
class RowError:
    row: int  # the header is row 1
    field: str
    reason: str


@dataclass
class ImportReport:
    enrolled: list[dict[str, int]] = field(default_factory=list)  # row, patient_id, course_id
    errors: list[RowError] = field(default_factory=list)


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


def import_csv(
    session: Session,
    *,
    clinic: Clinic,
    data: bytes,
    source: str,
    ctx: Context,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Enroll every valid row (each in its own savepoint) and report every invalid one."""
    rows = read_rows(decode(data))
    report = ImportReport()
    for index, raw in enumerate(rows):
        number = index + 2
        if progress:
            progress(index + 1, len(rows))
        if isinstance(raw, RowError):
            report.errors.append(raw)
            continue
        if not raw:
            continue
        try:
            with session.begin_nested():
                patient, course = enroll(session, clinic=clinic, raw=raw, source=source, ctx=ctx)
        except InvalidInput as exc:
            for error in exc.errors:
                report.errors.append(RowError(number, error.field, error.reason))
            continue
        report.enrolled.append(
            {"row": number, "patient_id": patient.id, "course_id": course.id}  # type: ignore[dict-item]
        )
    return report


def import_patients(
    session: Session,
    *,
    clinic: Clinic,
    data: bytes,
    source: str,
    ctx: Context,
    partial: bool,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """import_csv, all or nothing unless `partial`: ImportRefused when any row was refused."""
    report = import_csv(
        session, clinic=clinic, data=data, source=source, ctx=ctx, progress=progress
    )
    if report.errors and not partial:
        raise ImportRefused(report)
    return report
