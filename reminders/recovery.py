"""The reaper: settles rows whose worker died mid-send (lease expired in `sending`).

SMS: the provider is asked whether the message went out (Twilio's Messages list, filtered by
the recipient, matched by body); found -> `sent` with its SID, not found -> back to
`pending`. Email has no such lookup: EMAIL_UNKNOWN_POLICY chooses `resend` (default; the
resend carries the same Message-ID, so mail systems can drop the duplicate) or `mark_sent`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select
from sqlmodel import col

from reminders import lifecycle
from reminders.channels.base import Transport
from reminders.compose import Draft, compose
from reminders.db import read_scope, session_scope
from reminders.logs import log_context
from reminders.models import Clinic, Message, MessageStatus, Patient
from reminders.runtime import Runtime

log = logging.getLogger(__name__)

# A row a reaper took to `unknown` and then left (it died too) is picked up after this.
ABANDONED_AFTER = timedelta(minutes=1)


class Senders(Protocol):
    """What the reaper needs of a worker: its transports and its clock."""

    @property
    def transports(self) -> Mapping[str, Transport]: ...

    @property
    def clock(self) -> Callable[[], datetime]: ...


def reap(runtime: Runtime, senders: Senders, *, limit: int = 200) -> int:
    """Settle every stranded row; returns how many were settled."""
    now = senders.clock()
    with session_scope(runtime.engine) as session:
        ids = lifecycle.lose_leases(session, now=now, limit=limit, token=uuid.uuid4().hex)
    ids += _abandoned(runtime, now=now, limit=limit)

    def settle(row_id: int) -> int:
        with log_context(outbox_id=row_id):
            try:
                return _settle_unknown(runtime, senders, row_id)
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


def _abandoned(runtime: Runtime, *, now: datetime, limit: int) -> list[int]:
    """Rows left `unknown` by a reaper that itself died."""
    with read_scope(runtime.engine) as session:
        rows = session.execute(
            select(col(Message.id))
            .where(
                col(Message.status) == MessageStatus.unknown.value,
                col(Message.updated_at) < now - ABANDONED_AFTER,
            )
            .limit(limit)
        )
        return [row_id for (row_id,) in rows]


def _settle_unknown(runtime: Runtime, senders: Senders, row_id: int) -> int:
    with read_scope(runtime.engine) as session:
        found = session.execute(
            select(Message, Patient, Clinic)
            .join(Patient, col(Patient.id) == Message.patient_id)
            .join(Clinic, col(Clinic.id) == Patient.clinic_id)
            .where(col(Message.id) == row_id, col(Message.status) == MessageStatus.unknown.value)
        ).first()
    if found is None:
        return 0
    row, patient, clinic = found
    settings = runtime.settings
    sid = None
    if row.channel == "sms":
        since = (row.lease_until or row.updated_at) - timedelta(seconds=settings.lease_seconds + 60)
        # The opt-out line depends on whether it was the course's first SMS: try both.
        draft = Draft.of(row)
        bodies = [
            compose(
                draft,
                patient=patient,
                clinic=clinic,
                first=first,
                now=row.due_at,
                settings=settings,
                renderer=runtime.renderer,
            ).body
            for first in (True, False)
        ]
        sid = senders.transports[row.channel].find_sent(
            to=patient.phone or "", body=bodies, since=since
        )
    elif settings.email_unknown_policy == "mark_sent":
        sid = row.provider_id or "unknown"
    now = senders.clock()
    with session_scope(runtime.engine) as session:
        changed = lifecycle.settle_unknown(session, row_id=row_id, provider_id=sid, now=now)
    if changed:
        log.info("reaper: outbox %s -> %s", row_id, "sent" if sid else "pending")
    return int(changed)
