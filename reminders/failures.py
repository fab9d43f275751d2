"""What a failed send means: decided (reminders/retry.py is the policy), then written once."""

from __future__ import annotations

import logging
import random
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session

from reminders import lifecycle, retry
from reminders.channels.base import DeliveryError, Failure
from reminders.config import Settings
from reminders.db import session_scope
from reminders.jobs import Job
from reminders.models import Channel, MessageStatus, Patient
from reminders.services.consent import contact_of, opt_out_contact
from reminders.services.reachability import mark_unreachable

log = logging.getLogger(__name__)
S = MessageStatus


def record_failure(
    engine: Engine,
    job: Job,
    hold: lifecycle.Hold,
    error: DeliveryError,
    *,
    settings: Settings,
    rng: random.Random,
    now: datetime,
) -> str:
    """Write what a failed send means for its row; the tick report's name for it ("lost" when
    another worker took the row over meanwhile)."""
    row = job.row
    log.warning("outbox %s: %s send failed: %s", row.id, row.channel, error.reason)
    with session_scope(engine) as session:
        if error.failure == Failure.opted_out:
            return _opted_out(session, job, hold, error, now)
        if error.failure == Failure.unreachable:
            return _unreachable(session, job, hold, error, now)
        decision = retry.next_attempt(
            attempts=row.attempts + 1,
            error=error,
            now=now,
            expires_at=row.expires_at,
            rng=rng,
            base=settings.retry_base_seconds,
            cap=settings.retry_cap_seconds,
            max_attempts=settings.max_attempts,
        )
        if isinstance(decision, retry.RetryAt):
            done = lifecycle.retry(session, hold, at=decision.at, reason=error.reason, now=now)
            outcome = "retried"
        elif decision.expired:
            done = lifecycle.end(
                session, hold, S.expired, reason=decision.reason, now=now, attempted=True
            )
            outcome = "expired"
        else:
            done = lifecycle.end(
                session, hold, S.failed, reason=decision.reason, now=now, attempted=True
            )
            outcome = "failed"
        return outcome if done else "lost"


def _opted_out(
    session: Session, job: Job, hold: lifecycle.Hold, error: DeliveryError, now: datetime
) -> str:
    """The provider says the recipient unsubscribed: their STOP, reported late. It belongs to
    the number (or address), so every enrolment of it stops."""
    channel = Channel(job.row.channel)
    target = S.suppressed if channel == Channel.sms else S.failed
    done = lifecycle.end(session, hold, target, reason=error.reason, now=now, attempted=True)
    if not done:
        return "lost"
    contact = contact_of(job.patient, channel)
    if contact:
        opt_out_contact(
            session,
            channel=channel,
            contact=contact,
            source="provider",
            now=now,
            detail=error.reason,
        )
    return "suppressed" if channel == Channel.sms else "failed"


def _unreachable(
    session: Session, job: Job, hold: lifecycle.Hold, error: DeliveryError, now: datetime
) -> str:
    """The number or address cannot receive: the row and every pending message of that
    channel are held until staff fix the contact. Never an opt-out: consent is not touched."""
    channel = Channel(job.row.channel)
    reason = f"held: unreachable ({error.reason})"
    if not lifecycle.end(session, hold, S.held, reason=reason, now=now, attempted=True):
        return "lost"
    patient = session.get(Patient, job.patient.id)
    assert patient is not None
    mark_unreachable(session, patient=patient, channel=channel, reason=error.reason, now=now)
    return "held"
