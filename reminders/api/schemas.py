"""Request and response bodies of the clinic API.

Request bodies forbid unknown fields, so a misspelt field is refused by name instead of being
ignored. Types and bounds here are a first gate; the service layer applies the same rules as
the command line and the CSV import (phone numbers, zones, dates, duplicates).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from reminders.models import (
    ConsentEvent,
    Course,
    CourseEvent,
    CourseStatus,
    Message,
    MessageStatus,
    Patient,
)
from reminders.render import LOCALES

# No control characters: they have no place in a name or an address, and PostgreSQL refuses NUL.
_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"

Name = Annotated[str, Field(min_length=1, max_length=80, pattern=_PRINTABLE)]
Phone = Annotated[str, Field(max_length=32, pattern=_PRINTABLE, examples=["+12125550101"])]
Email = Annotated[str, Field(max_length=254, pattern=_PRINTABLE, examples=["ana@example.com"])]
Zone = Annotated[str, Field(max_length=64, pattern=_PRINTABLE, examples=["America/New_York"])]
Locale = Annotated[str, Field(json_schema_extra={"enum": list(LOCALES)})]
Weeks = Annotated[int, Field(ge=1, le=104)]
ChannelName = Literal["sms", "email", "both"]
CourseStatusName = Literal["active", "paused", "completed", "cancelled"]
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
    phone: Phone | None = None
    email: Email | None = None
    channel: ChannelName
    timezone: Zone
    start_date: date
    weeks: Weeks = 20
    locale: Locale = "en"
    ipledge: bool = False


class PatientChange(Strict):
    """Fields to change; those left out keep their value. null removes a phone or email."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"timezone": "America/Chicago"}]}
    )

    first_name: Name | None = None
    phone: Phone | None = None
    email: Email | None = None
    channel: ChannelName | None = None
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


class ErrorItem(BaseModel):
    field: str
    reason: str
    row: int | None = Field(default=None, description="CSV row (the header is row 1)")


class ErrorBody(BaseModel):
    """Every error answer: one line for people, and each field with its reason."""

    message: str
    detail: list[ErrorItem]


class CourseOut(BaseModel):
    id: int
    patient_id: int
    status: CourseStatusName
    start_date: date
    weeks: int
    last_dose_date: date | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, course: Course) -> CourseOut:
        return cls.model_validate(
            {
                "id": course.id,
                "patient_id": course.patient_id,
                "status": CourseStatus(course.status).value,
                "start_date": course.start_date,
                "weeks": course.weeks,
                "last_dose_date": course.last_dose_date,
                "created_at": course.created_at,
                "updated_at": course.updated_at,
            }
        )


class PatientOut(BaseModel):
    id: int
    course_id: int | None
    first_name: str
    phone: str | None
    email: str | None
    channel: ChannelName
    timezone: str
    locale: str
    ipledge: bool
    sms_opted_out: bool
    email_opted_out: bool
    created_at: datetime
    course: CourseOut | None

    @classmethod
    def of(cls, patient: Patient, course: Course | None) -> PatientOut:
        return cls.model_validate(
            {
                "id": patient.id,
                "course_id": course.id if course else None,
                "first_name": patient.first_name,
                "phone": patient.phone,
                "email": patient.email,
                "channel": str(patient.channel),
                "timezone": patient.timezone,
                "locale": patient.locale,
                "ipledge": patient.ipledge,
                "sms_opted_out": patient.sms_opted_out,
                "email_opted_out": patient.email_opted_out,
                "created_at": patient.created_at,
                "course": CourseOut.of(course) if course else None,
            }
        )


class PatientPage(BaseModel):
    items: list[PatientOut]
    total: int
    limit: int
    offset: int


class MessageOut(BaseModel):
    id: int
    course_id: int
    key: str
    topics: list[str]
    channel: Literal["sms", "email"]
    status: MessageStatusName
    due_at: datetime
    send_after: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    attempts: int
    error: str | None

    @classmethod
    def of(cls, row: Message) -> MessageOut:
        status = MessageStatus(row.status)
        return cls.model_validate(
            {
                "id": row.id,
                "course_id": row.course_id,
                "key": row.key,
                "topics": [topic for topic in row.topics.split(",") if topic],
                "channel": str(row.channel),
                "status": "planned" if status == MessageStatus.pending else status.value,
                "due_at": row.due_at,
                "send_after": row.send_after,
                "sent_at": row.sent_at,
                "delivered_at": row.delivered_at,
                "attempts": row.attempts,
                "error": row.last_error,
            }
        )


class MessageList(BaseModel):
    items: list[MessageOut]


class ConsentOut(BaseModel):
    id: int
    channel: Literal["sms", "email"]
    action: Literal["opt_in", "opt_out"]
    source: str
    detail: str
    at: datetime

    @classmethod
    def of(cls, event: ConsentEvent) -> ConsentOut:
        return cls.model_validate(
            {
                "id": event.id,
                "channel": str(event.channel),
                "action": event.action,
                "source": event.source,
                "detail": event.detail,
                "at": event.at,
            }
        )


class ConsentList(BaseModel):
    """The append-only ledger, oldest first, and the state derived from it."""

    items: list[ConsentOut]
    sms_opted_out: bool
    email_opted_out: bool


class EventOut(BaseModel):
    id: int
    course_id: int
    type: str
    date: date
    created_at: datetime

    @classmethod
    def of(cls, event: CourseEvent) -> EventOut:
        return cls.model_validate(
            {
                "id": event.id,
                "course_id": event.course_id,
                "type": event.type,
                "date": event.date,
                "created_at": event.created_at,
            }
        )


class ImportedRow(BaseModel):
    row: int
    patient_id: int
    course_id: int


class ImportReportOut(BaseModel):
    enrolled: list[ImportedRow]
    errors: list[ErrorItem]
