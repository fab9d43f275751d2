"""The retry policy called directly: jitter bounds, cap, Retry-After, expiry, attempt limit."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from reminders.channels.base import DeliveryError
from reminders.retry import GiveUp, RetryAt, next_attempt

NOW = datetime(2026, 3, 2, 14, 30)
FAR = NOW + timedelta(days=2)


def transient(retry_after: float | None = None) -> DeliveryError:
    return DeliveryError("twilio 20500 (HTTP 500)", permanent=False, retry_after=retry_after)


def delay_of(decision: RetryAt | GiveUp) -> float:
    assert isinstance(decision, RetryAt), decision
    return (decision.at - NOW).total_seconds()


def test_permanent_error_gives_up_at_once() -> None:
    error = DeliveryError("twilio 21211 (HTTP 400)", permanent=True)

    decision = next_attempt(attempts=1, error=error, now=NOW, expires_at=FAR)

    assert isinstance(decision, GiveUp)
    assert decision.expired is False
    assert "21211" in decision.reason


@pytest.mark.parametrize(("attempts", "ceiling"), [(1, 30), (2, 60), (3, 120), (4, 240)])
def test_delay_stays_within_the_doubling_window(attempts: int, ceiling: float) -> None:
    rng = random.Random(1)

    delays = [
        delay_of(
            next_attempt(
                attempts=attempts, error=transient(), now=NOW, expires_at=FAR, rng=rng, base=30
            )
        )
        for _ in range(200)
    ]

    assert all(0 <= d <= ceiling for d in delays)
    # Full jitter uses the whole window, not just its top.
    assert min(delays) < ceiling * 0.1 and max(delays) > ceiling * 0.9


def test_delay_never_exceeds_the_cap() -> None:
    rng = random.Random(2)

    delays = [
        delay_of(
            next_attempt(
                attempts=15, error=transient(), now=NOW, expires_at=FAR, rng=rng, max_attempts=20
            )
        )
        for _ in range(200)
    ]

    assert max(delays) <= 1800


def test_retry_after_is_a_floor_for_the_delay() -> None:
    rng = random.Random(3)

    delays = [
        delay_of(
            next_attempt(
                attempts=1, error=transient(retry_after=45), now=NOW, expires_at=FAR, rng=rng
            )
        )
        for _ in range(50)
    ]

    assert min(delays) == 45


def test_retry_after_longer_than_the_cap_is_still_honoured() -> None:
    decision = next_attempt(
        attempts=1, error=transient(retry_after=3600), now=NOW, expires_at=FAR, cap=1800
    )

    assert delay_of(decision) == 3600


def test_same_seed_gives_the_same_decision() -> None:
    first = next_attempt(
        attempts=3, error=transient(), now=NOW, expires_at=FAR, rng=random.Random(42)
    )
    second = next_attempt(
        attempts=3, error=transient(), now=NOW, expires_at=FAR, rng=random.Random(42)
    )

    assert first == second


def test_gives_up_after_max_attempts() -> None:
    decision = next_attempt(attempts=6, error=transient(), now=NOW, expires_at=FAR, max_attempts=6)

    assert isinstance(decision, GiveUp)
    assert decision.expired is False
    assert "6 attempts" in decision.reason


def test_one_attempt_short_of_the_limit_still_retries() -> None:
    decision = next_attempt(attempts=5, error=transient(), now=NOW, expires_at=FAR, max_attempts=6)

    assert isinstance(decision, RetryAt)


def test_gives_up_as_expired_when_the_retry_would_land_after_expiry() -> None:
    decision = next_attempt(
        attempts=1,
        error=transient(retry_after=120),
        now=NOW,
        expires_at=NOW + timedelta(seconds=60),
    )

    assert isinstance(decision, GiveUp)
    assert decision.expired is True
    assert "expired" in decision.reason


def test_gives_up_as_expired_when_already_past_expiry() -> None:
    decision = next_attempt(
        attempts=1, error=transient(), now=NOW, expires_at=NOW - timedelta(minutes=1)
    )

    assert isinstance(decision, GiveUp) and decision.expired is True


def test_retry_lands_before_expiry_when_there_is_room() -> None:
    expires_at = NOW + timedelta(minutes=10)

    decision = next_attempt(
        attempts=2, error=transient(), now=NOW, expires_at=expires_at, rng=random.Random(5)
    )

    assert isinstance(decision, RetryAt)
    assert NOW <= decision.at < expires_at
    assert decision.at.tzinfo is None


def test_huge_retry_after_gives_up_as_expired_instead_of_overflowing() -> None:
    decision = next_attempt(attempts=1, error=transient(retry_after=1e300), now=NOW, expires_at=FAR)

    assert isinstance(decision, GiveUp) and decision.expired is True
