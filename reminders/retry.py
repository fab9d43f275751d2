"""When to try a failed send again, as a pure function of the failure and the clock."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from reminders.channels.base import DeliveryError


@dataclass(frozen=True)
class RetryAt:
    """Try again at `at` (naive UTC)."""

    at: datetime


@dataclass(frozen=True)
class GiveUp:
    """Stop trying; `expired` says the message would have arrived too late to be useful."""

    reason: str
    expired: bool


def next_attempt(
    *,
    attempts: int,
    error: DeliveryError,
    now: datetime,
    expires_at: datetime,
    rng: random.Random | None = None,
    base: float = 30,
    cap: float = 1800,
    max_attempts: int = 6,
) -> RetryAt | GiveUp:
    """Decide what follows a failed attempt; `attempts` counts the one that just failed."""
    if error.unreachable:
        return GiveUp(reason=f"unreachable: {error.reason}", expired=False)
    if error.permanent:
        return GiveUp(reason=f"permanent: {error.reason}", expired=False)
    if attempts >= max_attempts:
        return GiveUp(reason=f"gave up after {attempts} attempts: {error.reason}", expired=False)
    # Full jitter: spreading retries over the whole window keeps a batch that failed together
    # (a provider outage) from coming back together.
    ceiling = min(cap, base * 2 ** max(0, attempts - 1))
    delay = (rng or random.Random()).uniform(0, ceiling)
    if error.retry_after is not None:
        # The provider's own Retry-After wins over a shorter draw, even past the cap.
        delay = max(delay, error.retry_after)
    # Compared in seconds before building a datetime, so an absurd Retry-After cannot overflow.
    if delay >= (expires_at - now).total_seconds():
        return GiveUp(reason=f"expired before the next attempt: {error.reason}", expired=True)
    return RetryAt(at=now + timedelta(seconds=delay))
