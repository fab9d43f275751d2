"""Sign-in throttling, per account and per client address.

Each failure in the last 15 minutes makes the next try wait longer (1, 2, 4, 8 seconds);
the fifth failure for an account locks it until the oldest of those five is 15 minutes old.
An address gets more room (20 failures), since one office often shares one address; past it,
the address is locked for every account. A refused try is answered before any password is
hashed, so guessing costs the service nothing, and it is not counted: a locked account
cannot be kept locked for ever by more tries.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Session, col, select

from reminders.clock import as_utc
from reminders.models import SignInAttempt
from reminders.privacy import mask_email

log = logging.getLogger(__name__)

WINDOW = timedelta(minutes=15)
ACCOUNT_LIMIT = 5
ADDRESS_LIMIT = 20
LONGEST_DELAY = timedelta(seconds=30)


@dataclass(frozen=True)
class Verdict:
    """Whether a sign-in may be tried now; if not, for how long it must wait and why."""

    allowed: bool
    wait: timedelta = timedelta(0)
    locked: bool = False  # the limit was reached (else only the growing delay applies)

    @property
    def wait_seconds(self) -> int:
        return max(1, math.ceil(self.wait.total_seconds()))


ALLOWED = Verdict(allowed=True)


def delay_after(failures: int) -> timedelta:
    """How long after the latest failure the next try may come: 0, then 1, 2, 4, 8 s..."""
    if failures <= 0:
        return timedelta(0)
    return min(timedelta(seconds=2 ** (failures - 1)), LONGEST_DELAY)


def judge(failures: list[datetime], *, limit: int, now: datetime) -> Verdict:
    """The verdict for one account or address from its failures in the window (pure)."""
    recent = sorted(at for at in failures if now - at < WINDOW)
    if len(recent) >= limit:
        until = recent[-limit] + WINDOW
        return Verdict(allowed=False, wait=until - now, locked=True)
    if recent:
        until = recent[-1] + delay_after(len(recent))
        if until > now:
            return Verdict(allowed=False, wait=until - now)
    return ALLOWED


def _failures(session: Session, *, column: object, value: str, now: datetime) -> list[datetime]:
    rows = session.exec(
        select(SignInAttempt.at).where(
            column == value,  # type: ignore[arg-type]
            col(SignInAttempt.succeeded).is_(False),
            col(SignInAttempt.at) > now - WINDOW,
        )
    ).all()
    return [as_utc(at) for at in rows]


def check(session: Session, *, account: str, address: str, now: datetime) -> Verdict:
    """May this account be tried from this address now? Counted and logged when not."""
    verdicts = [
        judge(
            _failures(session, column=SignInAttempt.account, value=account, now=now),
            limit=ACCOUNT_LIMIT,
            now=now,
        ),
        judge(
            _failures(session, column=SignInAttempt.address, value=address, now=now),
            limit=ADDRESS_LIMIT,
            now=now,
        ),
    ]
    refused = [verdict for verdict in verdicts if not verdict.allowed]
    if not refused:
        return ALLOWED
    verdict = max(refused, key=lambda v: (v.locked, v.wait))
    log.warning(
        "sign-in for %s from %s refused: %s for %d s",
        mask_email(account) or "(no email)",
        address,
        "locked out" if verdict.locked else "too soon after a failure",
        verdict.wait_seconds,
    )
    return verdict


def note(session: Session, *, account: str, address: str, succeeded: bool, now: datetime) -> None:
    """Keep a try that was allowed; a success forgets the account's failures."""
    session.exec(delete(SignInAttempt).where(col(SignInAttempt.at) <= now - WINDOW))  # type: ignore[call-overload]
    if succeeded:
        session.exec(
            delete(SignInAttempt).where(col(SignInAttempt.account) == account)  # type: ignore[call-overload]
        )
    else:
        log.warning("sign-in for %s from %s failed", mask_email(account) or "(no email)", address)
    session.add(
        SignInAttempt(account=account[:254], address=address[:64], succeeded=succeeded, at=now)
    )
