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
from reminders.models import Channel
from reminders.services.consent import contact_of, opt_out_contact

log = logging.getLogger(__name__)


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
            done = lifecycle.expire(session, hold, reason=decision.reason, now=now, attempted=True)
            outcome = "expired"
        else:
            done = lifecycle.fail(session, hold, reason=decision.reason, now=now)
            outcome = "failed"
        return outcome if done else "lost"


def _opted_out(
    session: Session, job: Job, hold: lifecycle.Hold, error: DeliveryError, now: datetime
) -> str:
    """The provider says the recipient unsubscribed: their STOP, reported late. It belongs to
    the number (or address), so every enrolment of it stops."""
    channel = Channel(job.row.channel)
    if channel == Channel.sms:
        done = lifecycle.suppress(session, hold, reason=error.reason, now=now, attempted=True)
    else:
        done = lifecycle.fail(session, hold, reason=error.reason, now=now)
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
