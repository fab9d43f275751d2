"""The tables. Instants are aware UTC datetimes; dates are the patient's local calendar dates."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime, time

from sqlalchemy import Column, Index, String, Text, TextClause, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from reminders.clock import utcnow

# Ids are 32-bit database integers: a larger number cannot name a row (and SQLite cannot bind
# it), so an address or a query that holds one is refused before any query.
MAX_ID = 2**31 - 1


class Channel(enum.StrEnum):
    sms = "sms"
    email = "email"


class ChannelChoice(enum.StrEnum):
    sms = "sms"
    email = "email"
    both = "both"

    @property
    def channels(self) -> tuple[Channel, ...]:
        """The channels this choice sends on, SMS first."""
        if self is ChannelChoice.both:
            return (Channel.sms, Channel.email)
        return (Channel(self.value),)


class CourseStatus(enum.StrEnum):
    active = "active"
    paused = "paused"
    completed = "completed"
    cancelled = "cancelled"

    @property
    def word(self) -> str:
        """What staff call the state, on the page and the command line alike."""
        return "stopped" if self is CourseStatus.cancelled else self.value


class MessageStatus(enum.StrEnum):
    pending = "pending"
    sending = "sending"
    unknown = "unknown"
    sent = "sent"
    delivered = "delivered"
    undelivered = "undelivered"
    failed = "failed"
    suppressed = "suppressed"
    held = "held"  # the contact is unreachable: kept, not attempted, until it is fixed
    expired = "expired"
    cancelled = "cancelled"


# Rows in these states reached (or may have reached) the patient: they count against the caps.
SENT_STATUSES = frozenset(
    {
        MessageStatus.sent,
        MessageStatus.delivered,
        MessageStatus.undelivered,
        MessageStatus.sending,
        MessageStatus.unknown,
    }
)


class Clinic(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120)
    # The name SMS use: every SMS names the clinic and must stay within two segments.
    sms_name: str = Field(default="", max_length=20)
    # The phone patients call about anything urgent, in national format; every automatic
    # answer gives it, so it is short (at most 20 characters) to keep replies in budget.
    help_contact: str = Field(default="", max_length=200)
    region: str = Field(default="US", max_length=2)
    timezone: str = Field(default="America/New_York", max_length=64)
    quiet_start: time = Field(default=time(21, 0))
    quiet_end: time = Field(default=time(8, 0))
    send_time: time = Field(default=time(10, 0))
    ipledge_enabled: bool = Field(default=True)
    # The prescriber lets monthly checks during and after the course be taken at home.
    home_tests: bool = Field(default=False)
    lab_reminders: bool = Field(default=True)
    # Staff are told of new replies at this address, at most once per REPLY_NOTIFY_INTERVAL;
    # the last notice went out at `replies_notified_at` and covered replies up to this id.
    notify_email: str | None = Field(default=None, max_length=254)
    replies_notified_at: datetime | None = None
    replies_notified_id: int | None = None
    # Patients whose courses all ended this many days ago are erased; None keeps them.
    retention_days: int | None = None
    created_at: datetime = Field(default_factory=utcnow)


class ApiKey(SQLModel, table=True):
    """One of a clinic's API keys, for one integration; only its hash is kept."""

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="clinic.id", index=True)
    name: str = Field(max_length=80)
    key_hash: str = Field(max_length=64, unique=True)
    # An admin key may also erase patients and read the audit trail.
    admin: bool = Field(default=False)
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


class Patient(SQLModel, table=True):
    # The clinic's chart number names one patient at the clinic; NULLs (no chart number) repeat.
    __table_args__ = (
        UniqueConstraint("clinic_id", "external_id", name="uq_patient_clinic_external_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="clinic.id", index=True)
    # Opaque id for links sent to the patient (unsubscribe): reveals nothing, guesses nothing.
    public_id: str = Field(default_factory=lambda: uuid.uuid4().hex, max_length=32, unique=True)
    first_name: str = Field(max_length=80)
    last_name: str = Field(default="", max_length=80)
    date_of_birth: date | None = None
    external_id: str | None = Field(default=None, max_length=64)
    phone: str | None = Field(default=None, max_length=20, index=True)
    email: str | None = Field(default=None, max_length=254, index=True)
    channel: ChannelChoice = Field(sa_column=Column(String(8), nullable=False))
    timezone: str = Field(max_length=64)
    locale: str = Field(default="en", max_length=8)
    ipledge: bool = Field(default=False)
    consent_at: datetime
    consent_source: str = Field(max_length=20)
    # Derived from the consent ledger, written only together with a ConsentEvent.
    sms_opted_out: bool = Field(default=False)
    email_opted_out: bool = Field(default=False)
    # A contact that cannot receive (a permanent recipient error, or REACH_UNDELIVERED_LIMIT
    # undelivered reports in a row): its messages are held until staff fix the contact. It
    # says the number or address is wrong, never that the patient withdrew consent.
    sms_unreachable_at: datetime | None = None
    sms_unreachable_reason: str | None = Field(default=None, max_length=200)
    email_unreachable_at: datetime | None = None
    email_unreachable_reason: str | None = Field(default=None, max_length=200)
    # Undelivered reports in a row for the phone; a delivered one starts the count again.
    sms_undelivered: int = Field(default=0, sa_column_kwargs={"server_default": text("0")})
    created_at: datetime = Field(default_factory=utcnow)
    # Set when the name, contacts and texts were replaced by a marker (reminders.erasure).
    erased_at: datetime | None = None

    def unreachable(self, channel: Channel) -> str | None:
        """Why the number (SMS) or the address (email) cannot be reached; None if it can."""
        if channel == Channel.sms:
            return (self.sms_unreachable_reason or "") if self.sms_unreachable_at else None
        return (self.email_unreachable_reason or "") if self.email_unreachable_at else None


class Course(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    start_date: date
    weeks: int = Field(default=20)
    last_dose_date: date | None = None
    status: CourseStatus = Field(
        default=CourseStatus.active, sa_column=Column(String(12), nullable=False, index=True)
    )
    # Planning begins here: items due before it (enrolment or resume) are not owed.
    plan_from: datetime = Field(default_factory=utcnow)
    # The outbox holds this course's messages up to here; the planner pass skips the course
    # until the horizon comes closer, so a pass costs what changed, not every course.
    planned_until: datetime | None = Field(default=None, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class CourseEvent(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("course_id", "type", "date", name="uq_event"),)

    id: int | None = Field(default=None, primary_key=True)
    course_id: int = Field(foreign_key="course.id", index=True)
    type: str = Field(max_length=32)
    date: date
    created_at: datetime = Field(default_factory=utcnow)


class ConsentEvent(SQLModel, table=True):
    """Append-only ledger of every opt-in and opt-out."""

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    channel: Channel = Field(sa_column=Column(String(8), nullable=False))
    action: str = Field(max_length=10)  # opt_in | opt_out
    source: str = Field(max_length=20)  # enrollment, import, api, reply, provider, link, staff
    detail: str = Field(default="", max_length=200)
    at: datetime = Field(default_factory=utcnow)


# The conditions of the partial indexes, and of the queries that use them: the claim reads
# pending rows by time, the reaper reads rows in flight by lease.
PENDING = text("status = 'pending'")
SENDING = text("status = 'sending'")


def partial_index(name: str, column: str, *, where: TextClause) -> Index:
    """An index of only the rows `where` holds, on PostgreSQL and SQLite alike."""
    return Index(name, column, postgresql_where=where, sqlite_where=where)


class Message(SQLModel, table=True):
    """The outbox: one row per planned message and channel."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("course_id", "key", "channel", name="uq_outbox_course_key_channel"),
        # The claim query reads only pending rows by time, so history does not slow it down.
        partial_index("ix_outbox_pending_send_after", "send_after", where=PENDING),
        Index("ix_outbox_patient_sent", "patient_id", "sent_at"),
        partial_index("ix_outbox_sending_lease", "lease_until", where=SENDING),
    )

    id: int | None = Field(default=None, primary_key=True)
    course_id: int = Field(foreign_key="course.id", index=True)
    patient_id: int = Field(foreign_key="patient.id")
    key: str = Field(max_length=80)
    channel: Channel = Field(sa_column=Column(String(8), nullable=False))
    topics: str = Field(max_length=200)  # comma separated, primary first
    items: str = Field(max_length=400)  # care-plan item keys merged into this message
    parts: str = Field(sa_column=Column(Text, nullable=False))  # JSON [[template, params], ...]
    priority: int = Field(default=0)
    due_at: datetime
    send_after: datetime
    expires_at: datetime
    status: MessageStatus = Field(
        default=MessageStatus.pending, sa_column=Column(String(12), nullable=False)
    )
    attempts: int = Field(default=0)
    provider_id: str | None = Field(default=None, max_length=64, index=True)
    last_error: str | None = Field(default=None, max_length=300)
    claim_token: str | None = Field(default=None, max_length=36)
    lease_until: datetime | None = None
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class WorkerHeartbeat(SQLModel, table=True):
    worker_id: str = Field(primary_key=True, max_length=80)
    hostname: str = Field(max_length=120)
    pid: int
    started_at: datetime
    last_seen: datetime
    last_tick: datetime | None = None


class ReplyKind(enum.StrEnum):
    """What a patient's text asked for."""

    message = "message"  # anything else: for the clinic's staff to read
    opt_out = "opt_out"
    opt_in = "opt_in"
    help = "help"


class ReplyState(enum.StrEnum):
    unread = "unread"
    handled = "handled"


class InboundMessage(SQLModel, table=True):
    """A text a patient sent, kept for the clinic's staff: the clinic's inbox and timeline.

    The body is stored for staff to read and never written to a log. A message is `unread`
    until a staff member marks it handled; a keyword (STOP, START, HELP) is answered by the
    service itself and is recorded as handled when it arrives, with nobody named.
    """

    __table_args__ = (
        UniqueConstraint("patient_id", "provider_id", name="uq_inbound_patient_provider"),
        Index("ix_inboundmessage_clinic_state", "clinic_id", "state", "received_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="clinic.id", index=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    course_id: int | None = Field(default=None, foreign_key="course.id", index=True)
    kind: ReplyKind = Field(sa_column=Column(String(8), nullable=False))
    body: str = Field(sa_column=Column(Text, nullable=False))
    provider_id: str | None = Field(default=None, max_length=64)
    received_at: datetime = Field(default_factory=utcnow)
    state: ReplyState = Field(
        default=ReplyState.unread, sa_column=Column(String(8), nullable=False)
    )
    handled_at: datetime | None = None
    handled_by: str | None = Field(default=None, max_length=254)  # a staff email, or "api"


# The condition of the partial index on texts not applied yet.
UNAPPLIED = text("applied_at IS NULL")


class InboundText(SQLModel, table=True):
    """Every text the provider delivered, by its MessageSid, kept before anything is applied.

    The unique MessageSid makes a replayed webhook a no-op: it finds its text recorded and
    answers what was answered the first time. A text whose processing failed after it was
    recorded is applied later by the worker. The number and the words are cleared once the
    text is applied (InboundMessage keeps them for staff); the MessageSid stays.
    """

    __table_args__ = (partial_index("ix_inboundtext_unapplied", "received_at", where=UNAPPLIED),)

    id: int | None = Field(default=None, primary_key=True)
    message_sid: str = Field(max_length=64, unique=True)
    phone: str | None = Field(default=None, max_length=64)
    body: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    opt_out_type: str | None = Field(default=None, max_length=16)
    received_at: datetime
    applied_at: datetime | None = None
    reply: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class StaffRole(enum.StrEnum):
    admin = "admin"  # manages the clinic's staff, API keys and settings, reads the audit trail
    staff = "staff"  # enrolls patients and looks after their courses


class StaffUser(SQLModel, table=True):
    """A clinic's staff member, who signs in to the clinic's web pages."""

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="clinic.id", index=True)
    # Stored lower-cased, so that sign-in does not depend on how the address was typed.
    email: str = Field(max_length=254, unique=True)
    password_hash: str = Field(max_length=200)
    role: StaffRole = Field(default=StaffRole.staff, sa_column=Column(String(8), nullable=False))
    disabled_at: datetime | None = None
    # The base32 secret of the user's authenticator app, once a code from it was confirmed.
    totp_secret: str | None = Field(default=None, max_length=64)
    # The last time step whose code was accepted: a code is good for one sign-in only.
    totp_last_step: int | None = None
    created_at: datetime = Field(default_factory=utcnow)


class StaffSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random token; only its hash is kept here."""

    token_hash: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="staffuser.id", index=True)
    csrf_token: str = Field(max_length=64)
    # The password was right and the authenticator code is still to come.
    second_factor_due: bool = Field(default=False)
    address: str = Field(default="", max_length=64)
    created_at: datetime
    last_seen: datetime = Field(index=True)
    flash: str | None = Field(default=None, max_length=300)
    # A secret being enrolled for two-factor sign-in, until a code from it is confirmed.
    totp_pending: str | None = Field(default=None, max_length=64)


class SignInAttempt(SQLModel, table=True):
    """A sign-in try, kept for the throttle's window: per account and per client address."""

    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(max_length=254, index=True)  # the email as typed, lower-cased
    address: str = Field(max_length=64, index=True)
    succeeded: bool
    at: datetime = Field(index=True)


class AuditEvent(SQLModel, table=True):
    """Who saw or changed what, when and from where. Never a message text or a full contact."""

    __table_args__ = (Index("ix_auditevent_clinic_at", "clinic_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="clinic.id")
    at: datetime
    actor_kind: str = Field(max_length=8)  # user | key | cli | system
    actor: str = Field(max_length=254)  # a staff email, an API key's name, an OS user
    action: str = Field(max_length=40)  # e.g. patient.view, course.pause, key.revoke
    patient_id: int | None = Field(default=None, index=True)
    address: str = Field(default="", max_length=64)
    detail: str = Field(default="", max_length=200)
