"""One dispatch tick: claim due messages, check them, render, send, record.

Delivery guarantee: a row is claimed (pending -> sending, with a lease and a fresh claim
token) in one short transaction before anything is sent, and every result write is
conditioned on that token. Two workers can never send the same row. A worker that dies
between the provider's acceptance and its commit leaves the row in `sending`; when the
lease runs out the reaper (recovery.py) asks the provider, or applies the email policy.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from reminders import retry
from reminders.careplan import CarePlan
from reminders.channels.base import DeliveryError, OutgoingMessage, Transport
from reminders.claims import claim, finish, finish_sent, release, settle
from reminders.clock import utcnow
from reminders.config import Settings
from reminders.db import session_scope
from reminders.logs import log_context
from reminders.models import Channel, Clinic, Course, CourseStatus, Message, MessageStatus, Patient
from reminders.outbox import zone
from reminders.privacy import mask_contact
from reminders.render import MessageContext, Part, Renderer, count_segments
from reminders.services import opt_out
from reminders.timing import local_instant, next_allowed, seconds_until_quiet, to_local
from reminders.tokens import unsubscribe_token

log = logging.getLogger(__name__)

# Twilio holds a queued message at most this long; shorter when quiet hours come sooner.
MAX_VALIDITY_SECONDS = 4 * 3600
# Not worth handing a message to the provider with less time than this before quiet hours.
MIN_VALIDITY_SECONDS = 300
REACHED = (
    MessageStatus.sent.value,
    MessageStatus.delivered.value,
    MessageStatus.undelivered.value,
)


@dataclass
class TickReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    deferred: int = 0
    expired: int = 0
    suppressed: int = 0
    cancelled: int = 0
    lost: int = 0

    def add(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)


@dataclass
class Job:
    """A claimed row with everything needed to decide about it and send it."""

    row: Message
    patient: Patient
    clinic: Clinic
    course: Course
    outgoing: OutgoingMessage | None = None


@dataclass
class Dispatcher:
    engine: Engine
    settings: Settings
    careplan: CarePlan
    renderer: Renderer
    transports: dict[str, Transport]
    clock: Callable[[], datetime] = utcnow
    worker_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    # Called after the provider accepted a message and before the result is committed.
    after_send: Callable[[Message], None] | None = None
    rng: random.Random = field(default_factory=random.Random)
    stopping: Callable[[], bool] = lambda: False

    def tick(self, *, limit: int | None = None) -> TickReport:
        """Claim and handle one batch of due messages."""
        report = TickReport()
        token = uuid.uuid4().hex
        now = self.clock()
        with session_scope(self.engine) as session:
            ids = claim(
                session,
                now=now,
                limit=limit or self.settings.batch_size,
                lease_until=now + timedelta(seconds=self.settings.lease_seconds),
                token=token,
            )
        report.claimed = len(ids)
        if not ids:
            return report
        with session_scope(self.engine) as session:
            jobs = self._load(session, ids)
            to_send = self._decide(session, jobs, token=token, now=now, report=report)
        groups: dict[int, list[Job]] = defaultdict(list)
        for job in to_send:
            groups[job.patient.id].append(job)  # type: ignore[index]
        workers = min(self.settings.send_concurrency, len(groups)) or 1
        recorder = Recorder(self.engine, token, self.clock)
        try:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for outcomes in pool.map(
                    lambda g: self._send_group(g, token, recorder), groups.values()
                ):
                    for outcome in outcomes:
                        if outcome != "accepted":  # counted when recorded, below
                            report.add(outcome)
        finally:
            recorder.flush()
        report.sent = recorder.recorded
        report.lost += recorder.lost
        for transport in self.transports.values():
            transport.close()
        return report

    def _load(self, session: Session, ids: Sequence[int]) -> list[Job]:
        result = session.execute(
            select(Message, Patient, Clinic, Course)
            .join(Patient, col(Patient.id) == Message.patient_id)
            .join(Clinic, col(Clinic.id) == Patient.clinic_id)
            .join(Course, col(Course.id) == Message.course_id)
            .where(col(Message.id).in_(ids))
        )
        return [Job(row, patient, clinic, course) for row, patient, clinic, course in result]

    def _decide(
        self,
        session: Session,
        jobs: list[Job],
        *,
        token: str,
        now: datetime,
        report: TickReport,
    ) -> list[Job]:
        """Settle what must not be sent now; return the jobs to send, rendered."""
        patients = {job.patient.id for job in jobs}
        reached = _reached_recently(session, patients, now)
        sms_started = _courses_with_sms(session, {job.course.id for job in jobs})
        to_send = []
        jobs.sort(key=lambda j: (j.patient.id, -j.row.priority, j.row.due_at, j.row.channel))
        for job in jobs:
            row, patient, clinic = job.row, job.patient, job.clinic
            tz = zone(patient.timezone)
            quiet = {"quiet_start": clinic.quiet_start, "quiet_end": clinic.quiet_end}
            opted_out = (
                patient.sms_opted_out if row.channel == Channel.sms else patient.email_opted_out
            )
            if job.course.status != CourseStatus.active:
                settle(
                    session, row, token, MessageStatus.cancelled, f"course {job.course.status}", now
                )
                report.add("cancelled")
                continue
            if opted_out:
                settle(session, row, token, MessageStatus.suppressed, "opted out", now)
                report.add("suppressed")
                continue
            if now >= row.expires_at:
                reason = "past its window"
                if row.send_after > row.due_at:
                    reason += " after retries"
                elif now - row.due_at > timedelta(minutes=10):
                    reason += " (the worker was not running when it was due)"
                settle(session, row, token, MessageStatus.expired, reason, now)
                report.add("expired")
                continue
            allowed = next_allowed(now, tz, **quiet)
            if allowed > now:
                release(session, row, token, allowed, "quiet hours", now)
                report.add("deferred")
                continue
            if row.channel == Channel.sms:
                left = seconds_until_quiet(now, tz, **quiet)
                if left < MIN_VALIDITY_SECONDS:
                    resume = next_allowed(now + timedelta(seconds=left + 1), tz, **quiet)
                    release(session, row, token, resume, "too close to quiet hours", now)
                    report.add("deferred")
                    continue
            later = self._over_cap(reached[patient.id], row.key, now, tz, clinic)  # type: ignore[index]
            if later is not None:
                release(session, row, token, later, "frequency cap", now)
                report.add("deferred")
                continue
            first = row.channel == Channel.sms and job.course.id not in sms_started
            try:
                job.outgoing = self.render(job, first=first, now=now)
            except Exception as exc:  # a template bug must be visible, never a silent loss
                log.exception("render failed for outbox %s", row.id)
                settle(session, row, token, MessageStatus.failed, f"render error: {exc}", now)
                report.add("failed")
                continue
            if first:
                sms_started.add(job.course.id)  # type: ignore[arg-type]
            reached[patient.id][row.key] = to_local(now, tz).date()  # type: ignore[index]
            to_send.append(job)
        return to_send

    def _over_cap(
        self, reached: dict[str, date], key: str, now: datetime, tz, clinic: Clinic
    ) -> datetime | None:
        """When the caps allow this message later than now, that time; None when allowed now."""
        today = to_local(now, tz).date()
        others = [day for other, day in reached.items() if other != key]
        week = [day for day in others if today - timedelta(days=6) <= day <= today]
        if others.count(today) < self.careplan.per_day and len(week) < self.careplan.per_week:
            return None
        day = today + timedelta(days=1)
        if len(week) >= self.careplan.per_week:
            # The rolling week frees up the day after its oldest message leaves it.
            day = max(day, sorted(week)[len(week) - self.careplan.per_week] + timedelta(days=7))
        return local_instant(day, clinic.send_time, tz)

    def render(self, job: Job, *, first: bool, now: datetime) -> OutgoingMessage:
        """The message for a claimed row, ready for its channel."""
        row, patient, clinic = job.row, job.patient, job.clinic
        parts = _parts(row)
        base = (self.settings.public_base_url or "").rstrip("/")
        unsubscribe = None
        if base and row.channel == Channel.email:
            unsubscribe = f"{base}/unsubscribe/{unsubscribe_token(patient, self.settings)}"
        context = message_context(clinic, patient, first=first, unsubscribe_url=unsubscribe)
        common = {"outbox_id": row.id, "course_id": row.course_id, "key": row.key}
        if row.channel == Channel.sms:
            body = self.renderer.sms(parts, context)
            tz = zone(patient.timezone)
            left = seconds_until_quiet(
                now, tz, quiet_start=clinic.quiet_start, quiet_end=clinic.quiet_end
            )
            return OutgoingMessage(
                **common,  # type: ignore[arg-type]
                channel="sms",
                to=patient.phone or "",
                body=body,
                segments=count_segments(body).count,
                validity_seconds=min(left, MAX_VALIDITY_SECONDS),
                status_callback=f"{base}/webhooks/twilio/status?outbox={row.id}" if base else None,
            )
        email = self.renderer.email(parts, context)
        domain = urlsplit(base).hostname if base else None
        return OutgoingMessage(
            **common,  # type: ignore[arg-type]
            channel="email",
            to=patient.email or "",
            body=email.text,
            subject=email.subject,
            html=email.html,
            unsubscribe_url=unsubscribe,
            message_id_header=f"<outbox-{row.id}.{row.course_id}@{domain or 'reminders.invalid'}>",
        )

    def _send_group(self, jobs: list[Job], token: str, recorder: Recorder) -> list[str]:
        """Send one patient's messages in order; failures are recorded at once, successes in
        small groups (see Recorder)."""
        outcomes = []
        for job in jobs:
            if self.stopping():
                with session_scope(self.engine) as session:
                    release(
                        session, job.row, token, job.row.send_after, "worker stopping", self.clock()
                    )
                outcomes.append("deferred")
                continue
            outcomes.append(self._send_one(job, token, recorder))
        return outcomes

    def _send_one(self, job: Job, token: str, recorder: Recorder) -> str:
        row, outgoing = job.row, job.outgoing
        assert outgoing is not None
        transport = self.transports[row.channel]
        with log_context(outbox_id=row.id, course_id=row.course_id):
            try:
                receipt = transport.send(outgoing)
            except DeliveryError as error:
                return self._failed(job, token, error)
            except Exception as exc:  # an unexpected bug is retried like a transient failure
                log.exception("send crashed for outbox %s", row.id)
                return self._failed(job, token, DeliveryError(type(exc).__name__, permanent=False))
            if self.after_send is not None:
                self.after_send(row)
            recorder.sent(row.id, receipt.provider_id)  # type: ignore[arg-type]
            log.info(
                "sent outbox %s (%s %s to %s)",
                row.id,
                row.channel,
                row.key,
                mask_contact(outgoing.to),
            )
            return "accepted"

    def _failed(self, job: Job, token: str, error: DeliveryError) -> str:
        row, patient = job.row, job.patient
        now = self.clock()
        log.warning("outbox %s: %s send failed: %s", row.id, row.channel, error.reason)
        with session_scope(self.engine) as session:
            if error.opted_out:
                patient = session.get(Patient, patient.id)  # type: ignore[assignment]
                channel = Channel(row.channel)
                status = (
                    MessageStatus.suppressed if channel == Channel.sms else MessageStatus.failed
                )
                if finish(
                    session, row, token, status=status, now=now, error=error.reason, attempted=True
                ):
                    opt_out(
                        session,
                        patient=patient,
                        channel=channel,
                        source="provider",
                        now=now,
                        detail=error.reason,
                    )
                    return "suppressed" if status == MessageStatus.suppressed else "failed"
                return "lost"
            decision = retry.next_attempt(
                attempts=row.attempts + 1,
                error=error,
                now=now,
                expires_at=row.expires_at,
                rng=self.rng,
                base=self.settings.retry_base_seconds,
                cap=self.settings.retry_cap_seconds,
                max_attempts=self.settings.max_attempts,
            )
            if isinstance(decision, retry.RetryAt):
                changed = finish(
                    session,
                    row,
                    token,
                    status=MessageStatus.pending,
                    now=now,
                    error=error.reason,
                    send_after=decision.at,
                    attempted=True,
                )
                return "retried" if changed else "lost"
            status = MessageStatus.expired if decision.expired else MessageStatus.failed
            changed = finish(
                session, row, token, status=status, now=now, error=decision.reason, attempted=True
            )
            return ("expired" if decision.expired else "failed") if changed else "lost"


class Recorder:
    """Records accepted sends in small groups: one transaction for many rows.

    A commit per message would make the database, not the provider, the limit (on SQLite
    every sending thread queues for the one writer). A group is written when it reaches
    GROUP_SIZE or has waited GROUP_WAIT seconds, and at the end of the tick. Until then those
    rows are `sending`, exactly as between a send and its commit: if the worker dies, the
    reaper settles them when their lease runs out.
    """

    GROUP_SIZE = 50
    GROUP_WAIT = 0.2

    def __init__(self, engine: Engine, token: str, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.token = token
        self.clock = clock
        self.recorded = 0
        self.lost = 0
        self._pending: list[tuple[int, str | None, datetime]] = []
        self._oldest = 0.0
        self._lock = threading.Lock()

    def sent(self, row_id: int, provider_id: str | None) -> None:
        with self._lock:
            if not self._pending:
                self._oldest = time.monotonic()
            self._pending.append((row_id, provider_id, self.clock()))
            due = (
                len(self._pending) >= self.GROUP_SIZE
                or time.monotonic() - self._oldest >= self.GROUP_WAIT
            )
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
            if not batch:
                return
            with session_scope(self.engine) as session:
                changed = finish_sent(session, self.token, batch, self.clock())
            self.recorded += changed
            if changed < len(batch):
                # Another worker took these rows over after their lease ran out.
                self.lost += len(batch) - changed
                log.warning("%d sends recorded after their lease was lost", len(batch) - changed)


def message_context(
    clinic: Clinic, patient: Patient, *, first: bool, unsubscribe_url: str | None
) -> MessageContext:
    """What every template of a message may say about its sender and its reader."""
    return MessageContext(
        clinic=clinic.name,
        help_contact=clinic.help_contact,
        first_name=patient.first_name,
        locale=patient.locale,
        ipledge=patient.ipledge and clinic.ipledge_enabled,
        first=first,
        unsubscribe_url=unsubscribe_url,
    )


def _parts(row: Message) -> list[Part]:
    """The templates of the items merged into this row, primary first, as planned."""
    return [Part(template, params) for template, params in json.loads(row.parts)]


def _reached_recently(
    session: Session, patients: Collection[int | None], now: datetime
) -> dict[int, dict[str, date]]:
    """Per patient, the local day each message key reached them in the last week."""
    reached: dict[int, dict[str, date]] = defaultdict(dict)
    if not patients:
        return reached
    rows = session.execute(
        select(
            col(Message.patient_id),
            col(Message.key),
            col(Message.sent_at),
            col(Patient.timezone),
        )
        .join(Patient, col(Patient.id) == Message.patient_id)
        .where(
            col(Message.patient_id).in_(patients),
            col(Message.sent_at) >= now - timedelta(days=8),
            col(Message.status).in_(REACHED),
        )
    )
    for patient_id, key, sent_at, tz in rows:
        day = to_local(sent_at, zone(tz)).date()
        known = reached[patient_id].get(key)
        reached[patient_id][key] = min(day, known) if known else day
    return reached


def _courses_with_sms(session: Session, courses: Collection[int | None]) -> set[int]:
    """Courses that already sent an SMS (the opt-out line goes only in the first)."""
    rows = session.execute(
        select(col(Message.course_id))
        .where(
            col(Message.course_id).in_(courses),
            col(Message.channel) == Channel.sms.value,
            col(Message.status).in_(
                (*REACHED, MessageStatus.sending.value, MessageStatus.unknown.value)
            ),
            col(Message.sent_at).is_not(None),
        )
        .distinct()
    )
    return {course_id for (course_id,) in rows}
