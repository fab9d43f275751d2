"""Request and response bodies of the clinic API.

Request bodies forbid unknown fields, so a misspelt field is refused by name instead of being
ignored. Types and bounds here are a first gate; the service layer applies the same rules as
the command line and the CSV import (phone numbers, zones, dates, duplicates).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, field_validator

from reminders.importer import ImportReport
from reminders.models import (
    Channel,
    ChannelChoice,
    Course,
    CourseStatus,
    MessageStatus,
    Patient,
    ReplyKind,
    ReplyState,
)
from reminders.render import LOCALES
from reminders.services.courses import end_to_confirm
from reminders.timing import local_today
from reminders.validation import check_text

# The one rule of every path (reminders.validation.check_text): no control or invisible
# formatting characters in any text.
Text = Annotated[str, AfterValidator(check_text)]
Name = Annotated[Text, Field(min_length=1, max_length=80)]
LastName = Annotated[Text, Field(max_length=80)]
ChartNumber = Annotated[
    Text, Field(max_length=64, description="The clinic's chart number, unique at the clinic")
]
Phone = Annotated[Text, Field(max_length=32, examples=["+12125550101"])]
Email = Annotated[Text, Field(max_length=254, examples=["ana@example.com"])]
Zone = Annotated[Text, Field(max_length=64, examples=["America/New_York"])]
Locale = Annotated[Text, Field(json_schema_extra={"enum": list(LOCALES)})]
# Strict: JSON's true is not a number of weeks, nor "20" a number.
Weeks = Annotated[int, Field(ge=1, le=104, strict=True)]
# The outbox status as shown to staff: a pending row is "planned".
MessageStatusName = Literal[
    "planned",
    "sending",
    "unknown",
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "suppressed",
    "held",
    "expired",
    "cancelled",
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnrollIn(Strict):
    """A patient and the start of their course; the fields are the CSV import's columns."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "first_name": "Ana",
                    "phone": "+12125550123",
                    "channel": "sms",
                    "timezone": "America/New_York",
                    "start_date": "2026-03-16",
                    "weeks": 20,
                    "locale": "en",
                    "ipledge": False,
                }
            ]
        },
    )

    first_name: Name
    last_name: LastName = ""
    date_of_birth: date | None = None
    external_id: ChartNumber | None = None
    phone: Phone | None = None
    email: Email | None = None
    channel: ChannelChoice
    timezone: Zone
    start_date: date
    weeks: Weeks = 20
    locale: Locale = "en"
    ipledge: StrictBool = False


class PatientChange(Strict):
    """Fields to change; those left out keep their value. null removes a phone or email."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"timezone": "America/Chicago"}]}
    )

    first_name: Name | None = None
    last_name: LastName | None = None
    date_of_birth: date | None = None
    external_id: ChartNumber | None = None
    phone: Phone | None = None
    email: Email | None = None
    channel: ChannelChoice | None = None
    timezone: Zone | None = None
    locale: Locale | None = None


class CourseChange(Strict):
    """A new start date or planned length (or both)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"weeks": 24}]})

    start_date: date | None = None
    weeks: Weeks | None = None


class CourseEnd(Strict):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"last_dose_date": "2026-08-03"}]}
    )

    last_dose_date: date


class EventIn(Strict):
    """A pregnancy test on its specimen date starts the iPLEDGE countdown."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"type": "pregnancy_test", "date": "2026-03-16"}]},
    )

    type: Literal["pregnancy_test"]
    date: date


class ClinicChange(Strict):
    """The clinic's help phone or the address told of new replies; null stops the notices."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"notify_email": "front-desk@riverside.example"}]},
    )

    help_contact: Annotated[Text, Field(max_length=32, examples=["(212) 555-0100"])] = Field(
        default="", description="The phone patients call about anything urgent"
    )
    notify_email: Email | None = None


class ErrorItem(BaseModel):
    field: str
    reason: str
    row: int | None = Field(default=None, description="CSV row (the header is row 1)")
    patient: str | None = Field(default=None, description="CSV row: its patient's name")


class ErrorBody(BaseModel):
    """Every error answer: one line for people, and each field with its reason."""

    message: str
    detail: list[ErrorItem]


class Out(BaseModel):
    """A response read from a table's row by attribute."""

    model_config = ConfigDict(from_attributes=True)


class CourseOut(Out):
    id: int
    patient_id: int
    status: CourseStatus
    start_date: date
    weeks: int
    last_dose_date: date | None
    end_to_confirm: bool = Field(
        default=False,
        description="The planned end is a week away or past and no last dose is recorded: "
        "confirm the last dose (POST .../end) or extend the course (PATCH weeks)",
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, course: Course, *, today: date) -> CourseOut:
        """The course as staff see it on the patient's `today`."""
        return cls.model_validate(course).model_copy(
            update={"end_to_confirm": end_to_confirm(course, today=today)}
        )


class PatientOut(Out):
    id: int
    first_name: str
    last_name: str
    date_of_birth: date | None
    external_id: str | None
    phone: str | None
    email: str | None
    channel: ChannelChoice
    timezone: str
    locale: str
    ipledge: bool
    sms_opted_out: bool
    email_opted_out: bool
    # Set while the number or address cannot be reached: its messages are held until fixed.
    sms_unreachable_at: datetime | None = None
    sms_unreachable_reason: str | None = None
    email_unreachable_at: datetime | None = None
    email_unreachable_reason: str | None = None
    created_at: datetime
    course_id: int | None = None
    course: CourseOut | None = None

    @classmethod
    def of(cls, patient: Patient, course: Course | None, *, now: datetime) -> PatientOut:
        """The patient with their latest course."""
        today = local_today(now, patient.timezone)
        latest = CourseOut.of(course, today=today) if course else None
        return cls.model_validate(patient).model_copy(
            update={"course_id": latest.id if latest else None, "course": latest}
        )


class PatientPage(BaseModel):
    items: list[PatientOut]
    total: int
    limit: int
    offset: int


class MessageOut(Out):
    id: int
    course_id: int
    key: str
    topics: list[str]
    channel: Channel
    status: MessageStatusName
    due_at: datetime
    send_after: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    attempts: int
    error: str | None = Field(validation_alias="last_error")

    @field_validator("topics", mode="before")
    @classmethod
    def _topics(cls, value: object) -> object:
        # Stored comma separated, primary first.
        return [topic for topic in value.split(",") if topic] if isinstance(value, str) else value

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: object) -> object:
        # Staff read a pending row as "planned": it has not been tried yet.
        return "planned" if value == MessageStatus.pending else value


class MessageList(BaseModel):
    items: list[MessageOut]


class ConsentOut(Out):
    id: int
    channel: Channel
    action: Literal["opt_in", "opt_out"]
    source: str
    detail: str
    at: datetime


class ConsentList(BaseModel):
    """The append-only ledger, oldest first, and the state derived from it."""

    items: list[ConsentOut]
    sms_opted_out: bool
    email_opted_out: bool


class EventOut(Out):
    id: int
    course_id: int
    type: str
    date: date
    created_at: datetime


class ClinicOut(Out):
    id: int
    name: str
    timezone: str
    region: str
    help_contact: str
    notify_email: str | None


class ReplyOut(Out):
    """A patient's text: a message for staff (unread until handled) or a keyword the service
    answered itself (handled when it arrived, `handled_by` null)."""

    id: int
    patient_id: int
    course_id: int | None
    received_at: datetime
    body: str
    kind: ReplyKind
    state: ReplyState
    handled_at: datetime | None
    handled_by: str | None


class ReplyPage(BaseModel):
    items: list[ReplyOut]
    total: int
    limit: int
    offset: int


class ImportedRow(BaseModel):
    row: int
    patient_id: int
    course_id: int


class ImportReportOut(BaseModel):
    enrolled: list[ImportedRow]
    errors: list[ErrorItem]
    already_enrolled: list[ImportedRow] = Field(
        default_factory=list,
        description="Rows whose patient has a live course at the clinic: left as they are",
    )

    @classmethod
    def of(cls, report: ImportReport) -> ImportReportOut:
        return cls(
            enrolled=[ImportedRow(**entry) for entry in report.enrolled],
            errors=[
                ErrorItem(row=e.row, field=e.field, reason=e.reason, patient=e.patient or None)
                for e in report.errors
            ],
            already_enrolled=[ImportedRow(**entry) for entry in report.already_enrolled],
        )


class AuditOut(Out):
    """One entry of the audit trail: never a message text or a full contact."""

    id: int
    at: datetime
    actor_kind: Literal["user", "key", "cli", "system"]
    actor: str = Field(description="A staff email, an API key's name or an OS user")
    action: str = Field(examples=["patient.read", "course.pause", "key.revoke"])
    patient_id: int | None
    address: str = Field(description="The client's address")
    detail: str


class AuditPage(BaseModel):
    """A page of the clinic's audit trail, newest first."""

    items: list[AuditOut]
    total: int
    limit: int
    offset: int
