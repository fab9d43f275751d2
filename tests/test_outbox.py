"""Materializing the plan into the outbox: idempotent, and never touching history."""

from __future__ import annotations

import io
from datetime import date, timedelta

from sqlalchemy import update
from sqlmodel import Session, func, select

from reminders.channels.console import Console
from reminders.db import session_scope
from reminders.dispatch import Dispatcher
from reminders.models import Course, Message, MessageStatus
from reminders.services import (
    change_course,
    end_course,
    get_course,
    pause_course,
    plan_all,
    resume_course,
)
from tests.conftest import NOW
from tests.helpers import add_clinic, add_patient, outbox


def count_rows(rt) -> int:
    with Session(rt.engine) as session:
        return session.exec(select(func.count()).select_from(Message)).one()


def test_enrolment_plans_the_welcome_and_the_next_week(any_runtime) -> None:
    clinic = add_clinic(any_runtime, NOW)
    add_patient(any_runtime, clinic, NOW)
    rows = outbox(any_runtime)
    assert [r.key for r in rows][:2] == ["welcome", "dry_lips"]
    assert all(r.due_at <= NOW + timedelta(days=7) for r in rows)
    assert all(r.status == MessageStatus.pending for r in rows)


def test_planning_twice_creates_no_extra_rows(any_runtime) -> None:
    clinic = add_clinic(any_runtime, NOW)
    add_patient(any_runtime, clinic, NOW)
    before = count_rows(any_runtime)
    for _ in range(2):
        with session_scope(any_runtime.engine) as session:
            plan_all(session, ctx=any_runtime.context(NOW))
    assert count_rows(any_runtime) == before


def test_a_both_channel_patient_gets_one_row_per_channel(any_runtime) -> None:
    clinic = add_clinic(any_runtime, NOW)
    add_patient(any_runtime, clinic, NOW, channel="both", email="ana@example.com")
    welcome = outbox(any_runtime, key="welcome")
    assert sorted(r.channel for r in welcome) == ["email", "sms"]


def test_a_start_date_change_replans_pending_rows_and_keeps_sent_ones(any_runtime) -> None:
    clinic = add_clinic(any_runtime, NOW)
    _patient, course = add_patient(any_runtime, clinic, NOW)
    with session_scope(any_runtime.engine) as session:
        session.execute(
            update(Message).where(Message.key == "welcome").values(status="sent", sent_at=NOW)
        )
    sent_before = outbox(any_runtime, key="welcome")[0]
    with session_scope(any_runtime.engine) as session:
        found = get_course(session, course_id=course.id)
        change_course(
            session,
            course=found,
            start_date=NOW.date() + timedelta(days=3),
            ctx=any_runtime.context(NOW),
        )
    welcome = outbox(any_runtime, key="welcome")[0]
    assert (welcome.status, welcome.sent_at, welcome.due_at) == (
        "sent",
        sent_before.sent_at,
        sent_before.due_at,
    )
    dry_lips = outbox(any_runtime, key="dry_lips")[0]
    assert dry_lips.status == MessageStatus.pending
    assert dry_lips.due_at.date() == NOW.date() + timedelta(days=5)


def test_pausing_cancels_pending_rows_and_resuming_plans_from_now(any_runtime) -> None:
    clinic = add_clinic(any_runtime, NOW)
    _patient, course = add_patient(any_runtime, clinic, NOW)
    with session_scope(any_runtime.engine) as session:
        pause_course(
            session, course=get_course(session, course_id=course.id), ctx=any_runtime.context(NOW)
        )
    assert {r.status for r in outbox(any_runtime)} == {"cancelled"}
    with session_scope(any_runtime.engine) as session:
        plan_all(session, ctx=any_runtime.context(NOW + timedelta(days=1)))
    assert {r.status for r in outbox(any_runtime)} == {"cancelled"}  # paused plans nothing
    later = NOW + timedelta(days=20)
    with session_scope(any_runtime.engine) as session:
        resume_course(
            session, course=get_course(session, course_id=course.id), ctx=any_runtime.context(later)
        )
    pending = outbox(any_runtime, status="pending")
    assert pending, "resuming plans the coming messages again"
    assert all(r.due_at >= later for r in pending)
    assert "dry_lips" not in {r.key for r in pending}  # due during the pause: not sent late


def test_ending_the_course_moves_the_after_course_messages(any_runtime) -> None:
    clinic = add_clinic(any_runtime, NOW)
    _patient, course = add_patient(any_runtime, clinic, NOW)
    last_dose = NOW.date() + timedelta(days=100)
    at = NOW + timedelta(days=125)
    with session_scope(any_runtime.engine) as session:
        found = get_course(session, course_id=course.id)
        end_course(session, course=found, last_dose_date=last_dose, ctx=any_runtime.context(at))
    with session_scope(any_runtime.engine) as session:
        from reminders.outbox import plan_for

        plan, _rows = plan_for(
            session,
            course=get_course(session, course_id=course.id),
            careplan=any_runtime.careplan,
            now=at,
        )
    due = {m.key: m.local_due.date() for m in plan.messages}
    assert due["after_1_month"] == date(2026, 7, 24)  # last dose 2026-06-24 + 1 month
    assert due["after_6_months"] == date(2026, 12, 24)


def test_a_course_ends_completed_once_every_message_is_handled(any_runtime) -> None:
    clinic = add_clinic(any_runtime, NOW)
    _patient, course = add_patient(any_runtime, clinic, NOW)
    last_dose = NOW.date() + timedelta(days=2)
    with session_scope(any_runtime.engine) as session:
        end_course(
            session,
            course=get_course(session, course_id=course.id),
            last_dose_date=last_dose,
            ctx=any_runtime.context(NOW),
        )
        session.execute(update(Message).values(status="sent", sent_at=NOW))
    later = NOW + timedelta(days=400)
    dispatcher = Dispatcher(
        engine=any_runtime.engine,
        settings=any_runtime.settings,
        careplan=any_runtime.careplan,
        renderer=any_runtime.renderer,
        transports={"sms": Console("sms", out=io.StringIO())},
        clock=lambda: later,
    )
    for day in range(0, 4, 2):  # the first pass finds the after-course messages long past
        dispatcher.clock = lambda day=day: later + timedelta(days=day)
        with session_scope(any_runtime.engine) as session:
            plan_all(session, ctx=any_runtime.context(later + timedelta(days=day)))
        dispatcher.tick()
    assert {r.status for r in outbox(any_runtime)} == {"sent", "expired"}
    with Session(any_runtime.engine) as session:
        assert session.get(Course, course.id).status == "completed"
