"""One dispatch tick: claim, load, decide, record the settled rows, send, record the sends.

Delivery guarantee: a row is claimed (pending -> sending, with a lease and a fresh claim
token) in one short transaction before anything is sent, and every result write is
conditioned on that token (reminders/lifecycle.py). Two workers can never send the same row.
A worker that dies between the provider's acceptance and its commit leaves the row in
`sending`; when the lease runs out the reaper (recovery.py) asks the provider, or applies the
email policy.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from reminders import gate, lifecycle, retry
from reminders.careplan import CarePlan
from reminders.channels.base import DeliveryError, Failure, OutgoingMessage, Transport
from reminders.clock import utcnow
from reminders.compose import Draft, compose
from reminders.config import Settings
from reminders.db import read_scope, session_scope
from reminders.jobs import Job, courses_with_sms, load_jobs, reached_recently
from reminders.logs import log_context
from reminders.models import Channel, Message, MessageStatus, Patient
from reminders.privacy import mask_contact
from reminders.recorder import Recorder
from reminders.render import Renderer
from reminders.services import opt_out
from reminders.timing import to_local

log = logging.getLogger(__name__)

# Settled by the gate: the report's name for each way a row can end before a send.
_SETTLED_AS = {
    MessageStatus.cancelled: "cancelled",
    MessageStatus.suppressed: "suppressed",
    MessageStatus.expired: "expired",
    MessageStatus.failed: "failed",
    MessageStatus.pending: "deferred",
}


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
        lease_until = now + timedelta(seconds=self.settings.lease_seconds)
        with session_scope(self.engine) as session:
            ids = lifecycle.claim(
                session,
                now=now,
                limit=limit or self.settings.batch_size,
                lease_until=lease_until,
                token=token,
            )
        report.claimed = len(ids)
        if not ids:
            return report
        with read_scope(self.engine) as session:
            jobs = load_jobs(session, ids)
            reached = reached_recently(session, {job.patient.id for job in jobs}, now)
            sms_started = courses_with_sms(session, {job.course.id for job in jobs})
        to_send, settled = self._decide(jobs, reached, sms_started, now=now)
        with session_scope(self.engine) as session:
            lifecycle.settle_many(session, token=token, outcomes=settled, now=now)
        for _row_id, status, _reason, _at in settled:
            report.add(_SETTLED_AS[status])
        self._send(to_send, token, report)
        for transport in self.transports.values():
            transport.close()
        return report

    def _decide(
        self,
        jobs: list[Job],
        reached: dict[int, dict[str, date]],
        sms_started: set[int],
        *,
        now: datetime,
    ) -> tuple[list[Job], list[tuple[int, MessageStatus, str, datetime | None]]]:
        """The jobs to send, composed, and the rows settled or deferred without a send."""
        to_send: list[Job] = []
        settled: list[tuple[int, MessageStatus, str, datetime | None]] = []
        jobs.sort(key=lambda j: (j.patient.id, -j.row.priority, j.row.due_at, j.row.channel))
        for job in jobs:
            row, channel = job.row, Channel(job.row.channel)
            seen = reached[job.patient.id]  # type: ignore[index]
            facts = gate.facts_for(row, job.patient, job.clinic, job.course, reached=seen)
            decision = gate.decide(facts, now=now, caps=self.careplan.caps)
            if isinstance(decision, gate.Settle):
                settled.append((row.id, decision.status, decision.reason, None))  # type: ignore[arg-type]
                continue
            if isinstance(decision, gate.Defer):
                settled.append((row.id, MessageStatus.pending, decision.reason, decision.until))  # type: ignore[arg-type]
                continue
            first = channel == Channel.sms and job.course.id not in sms_started
            try:
                job.outgoing = self.compose(job, first=first, now=now)
            except Exception as exc:  # a template bug must be visible, never a silent loss
                log.exception("render failed for outbox %s", row.id)
                settled.append((row.id, MessageStatus.failed, f"render error: {exc}", None))  # type: ignore[arg-type]
                continue
            if first:
                sms_started.add(job.course.id)  # type: ignore[arg-type]
            seen[row.key] = to_local(now, facts.zone).date()
            to_send.append(job)
        return to_send, settled

    def compose(self, job: Job, *, first: bool, now: datetime) -> OutgoingMessage:
        """The message for a claimed row, ready for its channel."""
        return compose(
            Draft.of(job.row),
            patient=job.patient,
            clinic=job.clinic,
            first=first,
            now=now,
            settings=self.settings,
            renderer=self.renderer,
        )

    def _send(self, jobs: list[Job], token: str, report: TickReport) -> None:
        """Send every job, one patient's messages in order, several patients at once."""
        groups: dict[int, list[Job]] = defaultdict(list)
        for job in jobs:
            groups[job.patient.id].append(job)  # type: ignore[index]
        if not groups:
            return
        recorder = Recorder(self.engine, token, self.clock)
        try:
            workers = min(self.settings.send_concurrency, len(groups))
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for outcomes in pool.map(
                    lambda group: self._send_group(group, token, recorder), groups.values()
                ):
                    for outcome in outcomes:
                        if outcome != "accepted":  # counted when recorded, below
                            report.add(outcome)
        finally:
            recorder.flush()
        report.sent = recorder.recorded
        report.lost += recorder.lost

    def _send_group(self, jobs: list[Job], token: str, recorder: Recorder) -> list[str]:
        """Send one patient's messages in order; failures are recorded at once, successes in
        small groups (see Recorder)."""
        outcomes = []
        for job in jobs:
            if self.stopping():
                hold = lifecycle.Hold(job.row.id, token)  # type: ignore[arg-type]
                with session_scope(self.engine) as session:
                    lifecycle.defer(
                        session,
                        hold,
                        at=job.row.send_after,
                        reason="worker stopping",
                        now=self.clock(),
                    )
                outcomes.append("deferred")
                continue
            outcomes.append(self._send_one(job, token, recorder))
        return outcomes

    def _send_one(self, job: Job, token: str, recorder: Recorder) -> str:
        row, outgoing = job.row, job.outgoing
        assert outgoing is not None
        with log_context(outbox_id=row.id, course_id=row.course_id):
            try:
                receipt = self.transports[row.channel].send(outgoing)
            except DeliveryError as error:
                return self._failed(job, token, error)
            except Exception as exc:  # an unexpected bug is retried like a transient failure
                log.exception("send crashed for outbox %s", row.id)
                return self._failed(job, token, DeliveryError(type(exc).__name__, permanent=False))
            if self.after_send is not None:
                self.after_send(row)
            recorder.sent(row.id, receipt.provider_id)  # type: ignore[arg-type]
            to = mask_contact(outgoing.to)
            log.info("sent outbox %s (%s %s to %s)", row.id, row.channel, row.key, to)
            return "accepted"

    def _failed(self, job: Job, token: str, error: DeliveryError) -> str:
        """Decide what a failed send means, then write it once."""
        row, now = job.row, self.clock()
        hold = lifecycle.Hold(row.id, token)  # type: ignore[arg-type]
        log.warning("outbox %s: %s send failed: %s", row.id, row.channel, error.reason)
        with session_scope(self.engine) as session:
            if error.failure == Failure.opted_out:
                return self._opted_out(session, job, hold, error, now)
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
                done = lifecycle.retry(session, hold, at=decision.at, reason=error.reason, now=now)
                outcome = "retried"
            elif decision.expired:
                done = lifecycle.expire(
                    session, hold, reason=decision.reason, now=now, attempted=True
                )
                outcome = "expired"
            else:
                done = lifecycle.fail(session, hold, reason=decision.reason, now=now)
                outcome = "failed"
            return outcome if done else "lost"

    def _opted_out(
        self, session: Session, job: Job, hold: lifecycle.Hold, error: DeliveryError, now: datetime
    ) -> str:
        """The provider says the patient unsubscribed: their STOP, reported late."""
        channel = Channel(job.row.channel)
        if channel == Channel.sms:
            done = lifecycle.suppress(session, hold, reason=error.reason, now=now, attempted=True)
        else:
            done = lifecycle.fail(session, hold, reason=error.reason, now=now)
        if not done:
            return "lost"
        patient = session.get(Patient, job.patient.id)
        assert patient is not None
        opt_out(
            session,
            patient=patient,
            channel=channel,
            source="provider",
            now=now,
            detail=error.reason,
        )
        return "suppressed" if channel == Channel.sms else "failed"
