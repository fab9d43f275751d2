"""Sign-in is throttled per account and per address; a refused try costs no password hash."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import pytest
from freezegun import freeze_time
from prometheus_client.parser import text_string_to_metric_families

from reminders import staff as staff_module
from reminders.app import create_app
from reminders.throttle import (
    ACCOUNT_LIMIT,
    ADDRESS_LIMIT,
    LONGEST_DELAY,
    WINDOW,
    delay_after,
    judge,
)
from tests.api.conftest import METRICS_TOKEN
from tests.conftest import NOW
from tests.web.conftest import PASSWORD, Site, TestClient, csrf

EMAIL = "sam@riverside.example"
# More than the longest growing delay between two tries (8 s after the fourth failure).
PAUSE = timedelta(seconds=20)


class Visitor:
    """One browser at the sign-in page: a client with its sign-in cookie and form token."""

    def __init__(self, site: Site) -> None:
        self.client = TestClient(create_app(site.rt), follow_redirects=False)
        self.token = csrf(self.client)

    def sign_in(self, email: str, password: str) -> Any:
        form = {"csrf_token": self.token, "email": email, "password": password}
        return self.client.post("/clinic/sign-in", data=form)


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each password hash computed for a sign-in, counted."""
    counted: list[str] = []
    real = staff_module.verify_password

    def verify(password: str, stored: str) -> bool:
        counted.append(stored)
        return real(password, stored)

    monkeypatch.setattr(staff_module, "verify_password", verify)
    return counted


def test_the_sixth_wrong_password_in_15_minutes_answers_429_and_the_right_one_waits(
    any_data: Site, hashes: list[str]
) -> None:
    any_data.clinic("Riverside Dermatology", email=EMAIL)
    with freeze_time(NOW, real_asyncio=True) as clock:
        visitor = Visitor(any_data)
        codes = []
        for _ in range(ACCOUNT_LIMIT):
            codes.append(visitor.sign_in(EMAIL, "not the password at all").status_code)
            clock.tick(PAUSE)
        sixth = visitor.sign_in(EMAIL, "not the password at all")
        right = visitor.sign_in(EMAIL, PASSWORD)
        assert codes == [400] * ACCOUNT_LIMIT
        assert (sixth.status_code, right.status_code) == (429, 429)
        assert "Too many failed sign-ins. Signing in is locked for" in right.text
        assert len(hashes) == ACCOUNT_LIMIT  # the refused tries hashed nothing
        # From another address too: the account is locked, not the browser.
        other = TestClient(
            create_app(any_data.rt), follow_redirects=False, client=("203.0.113.9", 5000)
        )
        form = {"csrf_token": csrf(other), "email": EMAIL, "password": PASSWORD}
        assert other.post("/clinic/sign-in", data=form).status_code == 429
        # The lockout ends 15 minutes after the first of the five failures.
        clock.move_to(NOW + WINDOW - timedelta(seconds=1))
        assert visitor.sign_in(EMAIL, PASSWORD).status_code == 429
        clock.move_to(NOW + WINDOW + timedelta(seconds=1))
        assert visitor.sign_in(EMAIL, PASSWORD).status_code == 303


def test_a_try_right_after_a_failure_waits_a_growing_delay(any_data: Site) -> None:
    any_data.clinic("Riverside Dermatology", email=EMAIL)
    with freeze_time(NOW, real_asyncio=True) as clock:
        visitor = Visitor(any_data)
        assert visitor.sign_in(EMAIL, "wrong password one").status_code == 400
        too_soon = visitor.sign_in(EMAIL, PASSWORD)
        assert too_soon.status_code == 429
        assert "Wait 1 second." in too_soon.text
        clock.tick(timedelta(seconds=1))
        assert visitor.sign_in(EMAIL, "wrong password two").status_code == 400
        assert "Wait 2 seconds." in visitor.sign_in(EMAIL, PASSWORD).text
        clock.tick(timedelta(seconds=2))
        assert visitor.sign_in(EMAIL, PASSWORD).status_code == 303


def test_an_address_that_fails_on_many_accounts_is_locked_for_all(any_data: Site) -> None:
    any_data.clinic("Riverside Dermatology", email=EMAIL)
    with freeze_time(NOW, real_asyncio=True) as clock:
        visitor = Visitor(any_data)
        for n in range(ADDRESS_LIMIT):
            response = visitor.sign_in(f"guess{n}@riverside.example", "wrong password")
            assert response.status_code == 400
            clock.tick(LONGEST_DELAY + timedelta(seconds=1))
        assert visitor.sign_in(EMAIL, PASSWORD).status_code == 429


def test_failures_and_lockouts_are_counted_in_metrics_and_logged_masked(
    any_data: Site, caplog: pytest.LogCaptureFixture
) -> None:
    from pydantic import SecretStr

    any_data.clinic("Riverside Dermatology", email=EMAIL)
    any_data.rt.settings = any_data.rt.settings.model_copy(
        update={"metrics_token": SecretStr(METRICS_TOKEN)}
    )

    with caplog.at_level(logging.INFO), freeze_time(NOW, real_asyncio=True) as clock:
        visitor = Visitor(any_data)

        def counts() -> tuple[float, float]:
            text = visitor.client.get(
                "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
            ).text
            values = {
                sample.name: sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
            }
            return (
                values["reminders_sign_in_failures_total"],
                values["reminders_sign_in_lockouts_total"],
            )

        assert counts() == (0, 0)  # each app counts its own sign-ins
        for _ in range(ACCOUNT_LIMIT):
            visitor.sign_in(EMAIL, "not the password at all")
            clock.tick(PAUSE)
        visitor.sign_in(EMAIL, PASSWORD)
        assert counts() == (ACCOUNT_LIMIT, 1)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "s***@riverside.example" in logged and "locked out" in logged
    assert EMAIL not in logged and PASSWORD not in logged


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def test_the_delays_grow_and_the_limit_locks_until_the_window_passes() -> None:
    assert [delay_after(n).total_seconds() for n in range(6)] == [0, 1, 2, 4, 8, 16]
    assert judge([], limit=5, now=NOW).allowed
    assert not judge([at(0)], limit=5, now=at(0.5)).allowed
    assert judge([at(0)], limit=5, now=at(1)).allowed
    five = [at(n * 20) for n in range(5)]
    locked = judge(five, limit=5, now=at(100))
    assert (locked.allowed, locked.locked) == (False, True)
    assert locked.wait == WINDOW - timedelta(seconds=100)
    # Failures older than the window no longer count.
    assert judge(five, limit=5, now=at(15 * 60 + 100)).allowed
