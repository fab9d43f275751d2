"""The dispatcher: claims, checks, sends and records; never twice, never lost."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest
from sqlalchemy import update
from sqlmodel import Session, select

from reminders.channels.base import DeliveryError
from reminders.db import session_scope
from reminders.dispatch import Dispatcher
from reminders.lifecycle import claim
from reminders.models import ConsentEvent, Message, Patient
from reminders.runtime import Runtime
from reminders.services import opt_out
from tests.conftest import NOW
from tests.fakes.scripted import ScriptedTransport
from tests.helpers import Clock, add_clinic, add_patient, outbox


def dispatcher(
    rt: Runtime, clock: Clock
) -> tuple[Dispatcher, ScriptedTransport, ScriptedTransport]:
    sms, email = ScriptedTransport("sms"), ScriptedTransport("email")
    return (
        Dispatcher(
            engine=rt.engine,
            settings=rt.settings,
            careplan=rt.careplan,
            renderer=rt.renderer,
            transports={"sms": sms, "email": email},
            clock=clock,
            rng=random.Random(7),
        ),
        sms,
        email,
    )


def welcome_due(rt: Runtime) -> Message:
    return outbox(rt, key="welcome")[0]


def test_a_due_message_is_sent_once_and_recorded(any_runtime) -> None:
    add_patient(any_runtime, add_clinic(any_runtime, NOW), NOW)
    clock = Clock(welcome_due(any_runtime).due_at)
    worker, sms, _ = dispatcher(any_runtime, clock)
    assert worker.tick().sent == 1
    assert worker.tick().claimed == 0
    row = welcome_due(any_runtime)
    assert (row.status, row.attempts, row.sent_at) == ("sent", 1, clock.now)
    assert row.provider_id == f"SM{row.id:032d}"
    assert [m.key for m in sms.sent] == ["welcome"]
    assert sms.sent[0].to == "+12125550101"
    assert sms.sent[0].validity_seconds is not None and sms.sent[0].validity_seconds <= 4 * 3600


def test_two_claims_at_once_never_share_a_row(any_runtime) -> None:
    clinic = add_clinic(any_runtime, NOW)
    for n in range(6):
        add_patient(any_runtime, clinic, NOW, first_name=f"P{n}", phone=f"+1212555010{n}")
    later = NOW + timedelta(days=3)
    with session_scope(any_runtime.engine) as first, session_scope(any_runtime.engine) as second:
        a = claim(first, now=later, limit=4, lease_until=later + timedelta(minutes=2), token="a")
        first.commit()
        b = claim(second, now=later, limit=100, lease_until=later + timedelta(minutes=2), token="b")
    assert len(a) == 4 and b and not set(a) & set(b)


def test_a_result_from_a_worker_that_lost_its_lease_changes_nothing(any_runtime) -> None:
    add_patient(any_runtime, add_clinic(any_runtime, NOW), NOW)
    due = welcome_due(any_runtime).due_at
    worker, sms, _ = dispatcher(any_runtime, Clock(due))

    def stolen(message) -> None:
        # Another worker took the row over while this send was in flight.
        with session_scope(any_runtime.engine) as session:
            session.execute(
                update(Message)
                .where(Message.id == message.outbox_id)
                .values(claim_token="someone-else")
            )

    sms.on_send = stolen
    assert worker.tick().lost == 1
    row = welcome_due(any_runtime)
    assert (row.status, row.claim_token, row.sent_at) == ("sending", "someone-else", None)


def test_a_message_due_in_quiet_hours_waits_for_the_morning(runtime) -> None:
    add_patient(runtime, add_clinic(runtime, NOW), NOW)
    row = welcome_due(runtime)
    late = datetime.fromisoformat("2026-03-17T02:30:00+00:00")  # 22:30 in New York
    with session_scope(runtime.engine) as session:
        session.execute(
            update(Message).where(Message.id == row.id).values(send_after=late - timedelta(hours=1))
        )
    worker, sms, _ = dispatcher(runtime, Clock(late))
    assert worker.tick().deferred == 1
    assert not sms.attempts
    row = welcome_due(runtime)
    assert row.status == "pending"
    assert row.send_after == datetime.fromisoformat("2026-03-17T12:00:00+00:00")  # 08:00 EDT


def test_an_sms_near_quiet_hours_gets_a_validity_period_that_ends_before_them(runtime) -> None:
    add_patient(runtime, add_clinic(runtime, NOW), NOW)
    at = datetime.fromisoformat("2026-03-17T00:30:00+00:00")  # 20:30 in New York
    with session_scope(runtime.engine) as session:
        session.execute(update(Message).where(Message.key == "welcome").values(send_after=at))
    worker, sms, _ = dispatcher(runtime, Clock(at))
    assert worker.tick().sent == 1
    assert sms.sent[0].validity_seconds == 30 * 60


def test_a_message_past_its_window_is_expired_not_sent(any_runtime) -> None:
    add_patient(any_runtime, add_clinic(any_runtime, NOW), NOW)
    row = welcome_due(any_runtime)
    worker, sms, _ = dispatcher(any_runtime, Clock(row.expires_at + timedelta(hours=13)))
    worker.tick()
    assert "welcome" not in {m.key for m in sms.attempts}
    row = welcome_due(any_runtime)
    assert row.status == "expired" and "past its window" in row.last_error


def test_an_opted_out_patient_gets_nothing_more(any_runtime) -> None:
    add_patient(any_runtime, add_clinic(any_runtime, NOW), NOW)
    with session_scope(any_runtime.engine) as session:
        patient = session.exec(select(Patient)).one()
        opt_out(session, patient=patient, channel="sms", source="staff", now=NOW)
    worker, sms, _ = dispatcher(any_runtime, Clock(NOW + timedelta(days=7)))
    assert worker.tick().claimed == 0
    assert not sms.attempts
    assert {r.status for r in outbox(any_runtime)} == {"suppressed"}


def test_a_transient_failure_is_retried_later_and_then_sent(any_runtime) -> None:
    add_patient(any_runtime, add_clinic(any_runtime, NOW), NOW)
    clock = Clock(welcome_due(any_runtime).due_at)
    worker, sms, _ = dispatcher(any_runtime, clock)
    sms.fail_next(DeliveryError("HTTP 503", permanent=False), times=2)
    assert worker.tick().retried == 1
    row = welcome_due(any_runtime)
    assert row.status == "pending" and row.attempts == 1 and row.send_after > clock.now
    assert row.last_error == "HTTP 503"
    for _ in range(2):
        clock.now = welcome_due(any_runtime).send_after
        worker.tick()
    row = welcome_due(any_runtime)
    assert (row.status, row.attempts) == ("sent", 3)
    assert len(sms.sent) == 1


def test_retry_after_from_the_provider_is_honoured(runtime) -> None:
    add_patient(runtime, add_clinic(runtime, NOW), NOW)
    clock = Clock(welcome_due(runtime).due_at)
    worker, sms, _ = dispatcher(runtime, clock)
    sms.fail_next(DeliveryError("HTTP 429", permanent=False, retry_after=600))
    worker.tick()
    assert welcome_due(runtime).send_after >= clock.now + timedelta(seconds=600)


def test_a_permanent_failure_ends_failed_after_one_attempt(any_runtime) -> None:
    add_patient(any_runtime, add_clinic(any_runtime, NOW), NOW)
    clock = Clock(welcome_due(any_runtime).due_at)
    worker, sms, _ = dispatcher(any_runtime, clock)
    sms.fail_next(DeliveryError("Twilio 21211: invalid To", permanent=True))
    assert worker.tick().failed == 1
    clock.now += timedelta(hours=2)
    worker.tick()
    row = welcome_due(any_runtime)
    assert (row.status, row.attempts) == ("failed", 1)
    assert "21211" in row.last_error
    assert len(sms.attempts) == 1


def test_a_provider_opt_out_suppresses_every_pending_sms_and_is_recorded(any_runtime) -> None:
    add_patient(any_runtime, add_clinic(any_runtime, NOW), NOW)
    worker, sms, _ = dispatcher(any_runtime, Clock(welcome_due(any_runtime).due_at))
    sms.fail_next(DeliveryError("Twilio 21610: unsubscribed", permanent=True, opted_out=True))
    assert worker.tick().suppressed == 1
    assert {r.status for r in outbox(any_runtime)} == {"suppressed"}
    with Session(any_runtime.engine) as session:
        events = session.exec(select(ConsentEvent).order_by(ConsentEvent.id)).all()
        patient = session.exec(select(Patient)).one()
    assert [(e.channel, e.action, e.source) for e in events][-1] == ("sms", "opt_out", "provider")
    assert patient.sms_opted_out


def test_transient_failures_stop_after_six_attempts(runtime) -> None:
    add_patient(runtime, add_clinic(runtime, NOW), NOW)
    clock = Clock(welcome_due(runtime).due_at)
    worker, sms, _ = dispatcher(runtime, clock)
    sms.fail_next(DeliveryError("HTTP 500", permanent=False), times=10)
    for _ in range(10):
        worker.tick()
        clock.now = max(clock.now, welcome_due(runtime).send_after)
    row = welcome_due(runtime)
    assert (row.status, row.attempts) == ("failed", 6)
    assert "gave up after 6 attempts" in row.last_error


@pytest.mark.parametrize("channel", ["sms", "email"])
def test_the_first_message_lines_go_only_in_the_first_sms(runtime, channel) -> None:
    add_patient(runtime, add_clinic(runtime, NOW), NOW, channel=channel, email="ana@example.com")
    clock = Clock(NOW)
    worker, sms, email = dispatcher(runtime, clock)
    for key in ("welcome", "dry_lips"):
        clock.now = outbox(runtime, key=key)[0].due_at
        worker.tick()
    sent = sms.sent if channel == "sms" else email.sent
    assert [m.key for m in sent] == ["welcome", "dry_lips"]
    first_lines = ["Msg&data rates may apply" in m.body for m in sent]
    assert first_lines == ([True, False] if channel == "sms" else [False, False])
