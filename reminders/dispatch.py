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
import queue
import random
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import Engine

from reminders import gate, lifecycle
from reminders.careplan import CarePlan
from reminders.channels.base import DeliveryError, Transport
from reminders.clock import utcnow
from reminders.compose import Draft, compose
from reminders.config import Settings
from reminders.db import read_scope, session_scope
from reminders.failures import record_failure
from reminders.jobs import (
    SETTLED_AS,
    Batch,
    Job,
    TickReport,
    courses_with_sms,
    load_jobs,
    reached_recently,
)
from reminders.logs import log_context
from reminders.metrics import WorkerMetrics
from reminders.models import Channel, Message, MessageStatus
from reminders.privacy import mask_contact
from reminders.recorder import Recorder
from reminders.render import Renderer
from reminders.timing import to_local

log = logging.getLogger(__name__)


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
    metrics: WorkerMetrics = field(default_factory=WorkerMetrics)
    # Kept from tick to tick: the sending threads, and (in the transports) their connections.
    _senders: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)
    _ahead: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)

    def tick(self, *, limit: int | None = None) -> TickReport:
        """Handle what is due, batch after batch, until a batch comes back short of `limit`.

        While one batch is sent, the next is claimed, loaded and decided: the sending threads
        never wait on the database. The next batch's caps see what this one is sending.
        """
        report = TickReport()
        size = limit or self.settings.batch_size
        batch: Batch | None = self._prepare(size, carried=None)
        while batch is not None:
            report.claimed += batch.claimed
            for _row_id, status, _reason, _at in batch.settled:
                report.add(SETTLED_AS[status])
            ahead = None
            if batch.claimed == size and not self.stopping():
                ahead = self._ahead_thread().submit(self._prepare, size, carried=batch)
            self._send(batch.jobs, batch.token, report)
            batch = ahead.result() if ahead is not None else None
            if batch is not None and batch.claimed == 0:
                batch = None
        return report

    def close(self) -> None:
        """Stop the sending threads and close the transports' connections (the worker stops)."""
        for pool in (self._ahead, self._senders):
            if pool is not None:
                pool.shutdown(wait=True)
        self._ahead = self._senders = None
        for transport in self.transports.values():
            transport.close()

    def _ahead_thread(self) -> ThreadPoolExecutor:
        if self._ahead is None:
            self._ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="claim")
        return self._ahead

    def _sending_threads(self) -> ThreadPoolExecutor:
        if self._senders is None:
            self._senders = ThreadPoolExecutor(
                max_workers=self.settings.send_concurrency, thread_name_prefix="send"
            )
        return self._senders

    def _prepare(self, size: int, *, carried: Batch | None) -> Batch:
        """Claim up to `size` due rows, load them, decide each, and record the ones settled."""
        token = uuid.uuid4().hex
        now = self.clock()
        lease_until = now + timedelta(seconds=self.settings.lease_seconds)
        with session_scope(self.engine) as session:
            ids = lifecycle.claim(
                session, now=now, limit=size, lease_until=lease_until, token=token
            )
        self.metrics.claimed.set(len(ids))
        if not ids:
            return Batch(token, 0, [], [], {}, set())
        with read_scope(self.engine) as session:
            jobs = load_jobs(session, ids)
            reached = reached_recently(session, {job.patient.id for job in jobs}, now)
            sms_started = courses_with_sms(session, {job.course.id for job in jobs})
        if carried is not None:
            # What the batch before is sending now is not recorded yet: count it all the same.
            for patient_id in {job.patient.id for job in jobs} & carried.reached.keys():
                reached[patient_id] = {**carried.reached[patient_id], **reached[patient_id]}  # type: ignore[index]
            sms_started |= carried.sms_started
        to_send, settled = self._decide(jobs, reached, sms_started, now=now)
        with session_scope(self.engine) as session:
            lifecycle.settle_many(session, token=token, outcomes=settled, now=now)
        self.metrics.settled(jobs, settled)
        return Batch(token, len(ids), to_send, settled, reached, sms_started)

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
                job.outgoing = compose(
                    Draft.of(row),
                    patient=job.patient,
                    clinic=job.clinic,
                    first=first,
                    now=now,
                    settings=self.settings,
                    renderer=self.renderer,
                )
            except Exception as exc:  # a template bug must be visible, never a silent loss
                log.exception("render failed for outbox %s", row.id)
                settled.append((row.id, MessageStatus.failed, f"render error: {exc}", None))  # type: ignore[arg-type]
                continue
            if first:
                sms_started.add(job.course.id)  # type: ignore[arg-type]
            seen[row.key] = to_local(now, facts.zone).date()
            to_send.append(job)
        return to_send, settled

    def _send(self, jobs: list[Job], token: str, report: TickReport) -> None:
        """Send every job, one patient's messages in order, several patients at once."""
        groups: dict[int, list[Job]] = defaultdict(list)
        for job in jobs:
            groups[job.patient.id].append(job)  # type: ignore[index]
        if not groups:
            return
        recorder = Recorder(self.engine, token, self.clock)
        # Each sending thread takes the next patient's messages until none is left: a few
        # tasks a batch rather than one a patient, and no thread idles while work waits.
        waiting: queue.SimpleQueue[list[Job]] = queue.SimpleQueue()
        for group in groups.values():
            waiting.put(group)

        def sender() -> list[str]:
            outcomes: list[str] = []
            while True:
                try:
                    group = waiting.get_nowait()
                except queue.Empty:
                    return outcomes
                outcomes += self._send_group(group, token, recorder)

        workers = min(self.settings.send_concurrency, len(groups))
        try:
            tasks = [self._sending_threads().submit(sender) for _ in range(workers)]
            for task in tasks:
                for outcome in task.result():
                    if outcome != "accepted":  # counted when recorded, below
                        report.add(outcome)
        finally:
            recorder.flush()
        report.sent += recorder.recorded
        report.lost += recorder.lost

    def _send_group(self, jobs: list[Job], token: str, recorder: Recorder) -> list[str]:
        """Send one patient's messages in order; failures are recorded at once, successes in
        small groups (see Recorder)."""
        outcomes: list[str] = []
        unreachable: set[str] = set()  # channels a send in this group found unreachable
        for job in jobs:
            if job.row.channel in unreachable:
                with session_scope(self.engine) as session:
                    claim = lifecycle.Hold(job.row.id, token)  # type: ignore[arg-type]
                    reason = "held: unreachable (found by an earlier send)"
                    held = lifecycle.end(
                        session,
                        claim,
                        MessageStatus.held,
                        reason=reason,
                        now=self.clock(),
                        attempted=False,
                    )
                outcomes.append("held" if held else "lost")
                if held:
                    self.metrics.outcome(job.row.channel, "held")
                continue
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
                self.metrics.outcome(job.row.channel, "deferred")
                continue
            outcomes.append(self._send_one(job, token, recorder))
            if outcomes[-1] == "held":
                unreachable.add(job.row.channel)
        return outcomes

    def _send_one(self, job: Job, token: str, recorder: Recorder) -> str:
        row, outgoing = job.row, job.outgoing
        assert outgoing is not None
        with log_context(outbox_id=row.id, course_id=row.course_id):
            try:
                with self.metrics.provider_request(row.channel):
                    receipt = self.transports[row.channel].send(outgoing)
            except Exception as exc:  # an unexpected bug is retried like a transient failure
                if not isinstance(exc, DeliveryError):
                    log.exception("send crashed for outbox %s", row.id)
                    exc = DeliveryError(type(exc).__name__, permanent=False, code="crash")
                hold = lifecycle.Hold(row.id, token)  # type: ignore[arg-type]
                outcome = record_failure(
                    self.engine,
                    job,
                    hold,
                    exc,
                    settings=self.settings,
                    rng=self.rng,
                    now=self.clock(),
                )
                self.metrics.failed_send(row.channel, exc, outcome)
                return outcome
            self.metrics.accepted(row, now=self.clock())
            if self.after_send is not None:
                self.after_send(row)
            recorder.sent(row.id, receipt.provider_id)  # type: ignore[arg-type]
            to = mask_contact(outgoing.to)
            log.info(
                "sent outbox %s (%s %s to %s, %s)",
                row.id,
                row.channel,
                row.key,
                to,
                receipt.provider_id,
            )
            return "accepted"
