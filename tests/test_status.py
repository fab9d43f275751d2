"""`reminders status` as a health check."""

from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import update
from typer.testing import CliRunner

from reminders.cli import app
from reminders.config import get_settings
from reminders.db import session_scope
from reminders.migrations import upgrade
from reminders.models import Message
from reminders.worker import heartbeat
from tests.conftest import NOW, make_runtime
from tests.helpers import add_clinic, add_patient, receive


@pytest.fixture
def status(sqlite_url, monkeypatch):  # type: ignore[no-untyped-def]
    upgrade(sqlite_url)
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    from reminders.db import make_engine

    engine = make_engine(sqlite_url)
    rt = make_runtime(engine)

    def run(at):  # type: ignore[no-untyped-def]
        with freeze_time(at):
            return CliRunner().invoke(app, ["status"], catch_exceptions=False)

    yield rt, run
    engine.dispose()
    get_settings.cache_clear()


def test_status_is_healthy_with_a_live_worker_and_nothing_overdue(status) -> None:
    rt, run = status
    add_patient(rt, add_clinic(rt, NOW), NOW, start_date=(NOW + timedelta(days=1)).date())
    with freeze_time(NOW):
        heartbeat(rt, "w1", NOW, now=NOW, ticked=True)
    result = run(NOW + timedelta(seconds=30))
    assert result.exit_code == 0, result.stdout
    assert "live workers:       1" in result.stdout and "healthy" in result.stdout


def test_status_fails_when_no_worker_has_been_seen_for_a_minute(status) -> None:
    rt, run = status
    with freeze_time(NOW):
        heartbeat(rt, "w1", NOW, now=NOW, ticked=True)
    result = run(NOW + timedelta(seconds=61))
    assert result.exit_code == 1
    assert "live workers:       0" in result.stdout and "UNHEALTHY" in result.stdout


def test_status_fails_when_a_message_is_overdue(status) -> None:
    rt, run = status
    add_patient(rt, add_clinic(rt, NOW), NOW)
    with session_scope(rt.engine) as session:
        session.execute(
            update(Message)
            .where(Message.key == "welcome")
            .values(send_after=NOW - timedelta(minutes=6))
        )
    with freeze_time(NOW):
        heartbeat(rt, "w1", NOW, now=NOW, ticked=True)
    result = run(NOW)
    assert result.exit_code == 1
    assert "overdue (> 5 min):  1" in result.stdout


def test_status_shows_replies_unread_for_more_than_a_business_day_and_stays_healthy(
    status,
) -> None:
    rt, run = status
    patient, _course = add_patient(rt, add_clinic(rt, NOW), NOW)
    # NOW is a Monday 14:00 in New York: one text on the Friday before, 14:00, one at NOW.
    friday = NOW - timedelta(days=3)
    for at in (friday, NOW):
        receive(rt, phone=patient.phone or "", body="A question", at=at)
    with freeze_time(NOW):
        heartbeat(rt, "w1", NOW, now=NOW, ticked=True)
    # Friday 14:00 + 24 weekday hours is Monday 14:00: overdue from then, not before.
    before = run(NOW - timedelta(minutes=1))
    assert "replies overdue:    0" in before.stdout
    after = run(NOW + timedelta(seconds=30))
    assert "unread replies:     2" in after.stdout
    assert "replies overdue:    1 (unread > 1 business day)" in after.stdout
    assert after.exit_code == 0 and "healthy" in after.stdout
