"""The reaper: settles rows whose worker died mid-send (lease expired in `sending`).

SMS: Twilio is asked whether the message went out (its Messages list, filtered by the
recipient and date, matched by body); found -> `sent` with its SID, not found -> back to
`pending`. Email has no such lookup: EMAIL_UNKNOWN_POLICY chooses `resend` (default; the
resend carries the same Message-ID, so mail systems can drop the duplicate) or `mark_sent`.
"""

from __future__ import annotations

import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import select, update
from sqlmodel import col

from reminders.clock import utcnow
from reminders.db import session_scope
from reminders.dispatch import Dispatcher, Job
from reminders.logs import log_context
from reminders.models import SENDING, Clinic, Course, Message, MessageStatus, Patient
from reminders.runtime import Runtime

log = logging.getLogger(__name__)


def reap(runtime: Runtime, dispatcher: Dispatcher, *, limit: int = 200) -> int:
    """Settle every stranded row; returns how many were settled."""
    now = dispatcher.clock()
    token = uuid.uuid4().hex
    with session_scope(runtime.engine) as session:
        stale = (
            select(col(Message.id))
            .where(SENDING, col(Message.lease_until) < now)  # the partial index's own condition
            .limit(limit)
            .cte("stale")
        )
        # Taking the row to `unknown` under a new token fences out the worker that lost it.
        ids = [
            row_id
            for (row_id,) in session.execute(
                update(Message)
                .where(col(Message.id) == stale.c.id)
                .where(col(Message.status) == MessageStatus.sending.value)
                .values(status=MessageStatus.unknown.value, claim_token=token, updated_at=now)
                .returning(col(Message.id))
            )
        ]
    ids += _unknown_ids(runtime, limit)

    def settle(row_id: int) -> int:
        with log_context(outbox_id=row_id):
            try:
                return _settle_unknown(runtime, dispatcher, row_id)
            except Exception:  # the provider may be down: the row stays `unknown`, retried later
                log.exception("reaper: could not settle outbox %s", row_id)
                return 0

    unique = list(dict.fromkeys(ids))
    if not unique:
        return 0
    # Each row may need a provider lookup: ask about several at once, as sends do.
    workers = min(runtime.settings.send_concurrency, len(unique))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return sum(pool.map(settle, unique))


def _unknown_ids(runtime: Runtime, limit: int) -> list[int]:
    """Rows left `unknown` by a reaper that itself died: older than a minute."""
    with session_scope(runtime.engine) as session:
        rows = session.execute(
            select(col(Message.id))
            .where(
                col(Message.status) == MessageStatus.unknown.value,
                col(Message.updated_at) < utcnow() - timedelta(minutes=1),
            )
            .limit(limit)
        )
        return [row_id for (row_id,) in rows]


def _settle_unknown(runtime: Runtime, dispatcher: Dispatcher, row_id: int) -> int:
    with session_scope(runtime.engine) as session:
        found = session.execute(
            select(Message, Patient, Clinic, Course)
            .join(Patient, col(Patient.id) == Message.patient_id)
            .join(Clinic, col(Clinic.id) == Patient.clinic_id)
            .join(Course, col(Course.id) == Message.course_id)
            .where(col(Message.id) == row_id, col(Message.status) == MessageStatus.unknown.value)
        ).first()
    if found is None:
        return 0
    row, patient, clinic, course = found
    job = Job(row, patient, clinic, course)
    sid = None
    transport = dispatcher.transports.get(row.channel)
    find_sent = getattr(transport, "find_sent", None)
    if row.channel == "sms" and find_sent is not None:
        since = (row.lease_until or row.updated_at) - timedelta(
            seconds=runtime.settings.lease_seconds + 60
        )
        # The opt-out line depends on whether it was the course's first SMS: try both.
        bodies = [
            dispatcher.render(job, first=first, now=row.due_at).body for first in (True, False)
        ]
        sid = find_sent(to=patient.phone, body=bodies, since=since)
    elif row.channel == "email" and runtime.settings.email_unknown_policy == "mark_sent":
        sid = row.provider_id or "unknown"
    now = dispatcher.clock()
    values: dict = {"claim_token": None, "lease_until": None, "updated_at": now}
    if sid:
        values |= {"status": MessageStatus.sent.value, "provider_id": sid, "sent_at": now}
        values["last_error"] = "recovered after a worker stopped mid-send"
    else:
        values |= {"status": MessageStatus.pending.value, "send_after": now}
        values["last_error"] = "not confirmed sent after a worker stopped; sending again"
    with session_scope(runtime.engine) as session:
        changed = session.exec(
            update(Message)
            .where(col(Message.id) == row_id, col(Message.status) == MessageStatus.unknown.value)
            .values(**values)
        ).rowcount
    if changed:
        log.info("reaper: outbox %s -> %s", row_id, values["status"])
    return changed or 0
