"""The end is the clinic's to confirm, and the iPLEDGE countdown as the 2026 REMS has it."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta

import pytest
from freezegun import freeze_time
from sqlmodel import Session, select
from typer.testing import CliRunner

from reminders.cli import app
from reminders.clock import utcnow
from reminders.config import get_settings
from reminders.db import session_scope
from reminders.dispatch import Dispatcher
from reminders.models import Course
from reminders.outbox import materialize
from reminders.runtime import Runtime
from reminders.services import end_course, get_course, plan_all, record_event
from reminders.timing import local_instant, to_local, zone
from tests.api.conftest import TestClient
from tests.conftest import NOW
from tests.fakes.scripted import ScriptedTransport
from tests.helpers import Clock, add_clinic, add_patient, outbox

NEW_YORK = zone("America/New_York")
START = NOW.date()  # Monday 2026-03-16
PLANNED_END = START + timedelta(weeks=20)
AFTER = {"end_of_course", "after_1_month", "after_6_months"}


def plan_everything(rt: Runtime, course_id: int, now: datetime) -> set[str]:
    """Every key the outbox holds for the course with the whole course and after-care planned."""
    with session_scope(rt.engine) as session:
        course = get_course(session, course_id=course_id)
        materialize(
            session, course=course, careplan=rt.careplan, now=now, horizon=timedelta(days=500)
        )
    return {row.key for row in outbox(rt, course_id=course_id)}


def test_nothing_after_the_course_is_planned_without_a_recorded_last_dose(any_runtime) -> None:
    _patient, course = add_patient(any_runtime, add_clinic(any_runtime, NOW), NOW)
    keys = plan_everything(any_runtime, course.id, NOW)
    assert "month_1" in keys and not AFTER & keys


def test_recording_the_last_dose_plans_the_after_care_from_that_date(any_runtime) -> None:
    _patient, course = add_patient(any_runtime, add_clinic(any_runtime, NOW), NOW)
    last_dose = START + timedelta(weeks=22)  # the course was extended by two weeks
    with session_scope(any_runtime.engine) as session:
        found = get_course(session, course_id=course.id)
        end_course(session, course=found, last_dose_date=last_dose, ctx=any_runtime.context(NOW))
    plan_everything(any_runtime, course.id, NOW)
    rows = {row.key: row for row in outbox(any_runtime, course_id=course.id)}
    local = {key: to_local(rows[key].due_at, NEW_YORK).date() for key in AFTER}
    assert local["end_of_course"] == last_dose + timedelta(days=1)  # "done": the day after
    assert local["after_1_month"] == date(2026, 9, 17)  # a calendar month after 2026-08-17
    assert local["after_6_months"] == date(2027, 2, 17)


def api_course(rt: Runtime, when: datetime, course_id: int) -> dict:
    from reminders.app import create_app
    from reminders.models import Clinic
    from reminders.services.keys import create_api_key

    with session_scope(rt.engine) as session:
        clinic = session.exec(select(Clinic)).one()
        _row, key = create_api_key(
            session, clinic_id=clinic.id, name="test", admin=False, now=utcnow()
        )
    with freeze_time(when), TestClient(create_app(rt)) as client:
        found = client.get("/v1/patients", headers={"Authorization": f"Bearer {key}"})
    assert found.status_code == 200, found.text
    return next(p["course"] for p in found.json()["items"] if p["course_id"] == course_id)


@pytest.mark.parametrize(("days_before", "flag"), [(8, False), (7, True), (0, True), (-3, True)])
def test_the_clinic_is_asked_to_confirm_the_end_from_seven_days_before_it(
    any_runtime, days_before: int, flag: bool
) -> None:
    _patient, course = add_patient(any_runtime, add_clinic(any_runtime, NOW), NOW)
    when = local_instant(PLANNED_END - timedelta(days=days_before), time(12, 0), NEW_YORK)
    assert api_course(any_runtime, when, course.id)["end_to_confirm"] is flag


def test_reminders_status_lists_the_courses_to_confirm(
    any_runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    _patient, course = add_patient(any_runtime, add_clinic(any_runtime, NOW), NOW)
    url = any_runtime.engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        for days_before, listed in ((8, False), (6, True)):
            when = local_instant(PLANNED_END - timedelta(days=days_before), time(12), NEW_YORK)
            with freeze_time(when):
                out = CliRunner().invoke(app, ["status"]).stdout
            line = f"course {course.id}: planned end {PLANNED_END}, no last dose recorded"
            assert (line in out) is listed, out
            assert f"to confirm the end: {int(listed)}" in out
    finally:
        get_settings.cache_clear()


def test_confirming_the_last_dose_or_extending_clears_the_flag(any_runtime) -> None:
    _patient, course = add_patient(any_runtime, add_clinic(any_runtime, NOW), NOW)
    near = local_instant(PLANNED_END - timedelta(days=3), time(12, 0), NEW_YORK)
    with session_scope(any_runtime.engine) as session:
        found = get_course(session, course_id=course.id)
        found.weeks = 24  # extended: the end is a month away again
        session.add(found)
    assert api_course(any_runtime, near, course.id)["end_to_confirm"] is False


# -- iPLEDGE ------------------------------------------------------------------------------


def sending(rt: Runtime, clock: Clock) -> tuple[Dispatcher, ScriptedTransport, list[datetime]]:
    """A dispatcher on the test clock; the SMS it sends, and when (local time) each went."""
    sms, times = ScriptedTransport("sms"), []
    sms.on_send = lambda _message: times.append(to_local(clock.now, NEW_YORK))
    dispatcher = Dispatcher(
        engine=rt.engine,
        settings=rt.settings,
        careplan=rt.careplan,
        renderer=rt.renderer,
        transports={"sms": sms, "email": ScriptedTransport("email")},
        clock=clock,
    )
    return dispatcher, sms, times


def run_until(rt: Runtime, dispatcher: Dispatcher, clock: Clock, until: datetime, step: timedelta):  # type: ignore[no-untyped-def]
    """The worker's loop on a test clock: plan and send, step by step."""
    while clock.now < until:
        clock.now = min(clock.now + step, until)
        with session_scope(rt.engine) as session:
            plan_all(session, ctx=rt.context(clock.now))
        dispatcher.tick()


def test_a_test_recorded_the_afternoon_after_the_monthly_reminder_counts_its_days_when_sent(
    any_runtime,
) -> None:
    rt = any_runtime
    _patient, course = add_patient(rt, add_clinic(rt, NOW), NOW, ipledge=True)
    clock = Clock(NOW)
    dispatcher, sms, times = sending(rt, clock)
    monthly_day = START + timedelta(days=27)  # 3 days before the first 30-day visit
    afternoon = local_instant(monthly_day, time(15, 0), NEW_YORK)
    run_until(rt, dispatcher, clock, afternoon, timedelta(hours=3))
    sent_at = {m.key: t for m, t in zip(sms.sent, times, strict=True)}
    assert sent_at["ipledge_monthly:1"].date() == monthly_day  # this morning
    week = [t for t in sent_at.values() if monthly_day - timedelta(days=6) <= t.date()]
    assert len(week) >= 3, "the week already holds three messages"

    with session_scope(rt.engine) as session:
        found = get_course(session, course_id=course.id)
        ctx = rt.context(clock.now)
        record_event(session, course=found, type="pregnancy_test", on=monthly_day, ctx=ctx)
    run_until(rt, dispatcher, clock, afternoon + timedelta(days=8), timedelta(hours=1))

    countdown = [(m, t) for m, t in zip(sms.sent, times, strict=True) if ":day" in m.key]
    days = [(t.date() - monthly_day).days + 1 for _m, t in countdown]
    assert days == [1, 5, 7], "none is dropped, none moved"
    bodies = [m.body for m, _t in countdown]
    assert "until Apr 18 (6 days left)" in bodies[0]  # sent on day 1, in the afternoon
    assert "until Apr 18 (2 days left)" in bodies[1]
    assert "Today, Apr 18, is the last day" in bodies[2]


def test_a_test_recorded_late_plans_only_the_reminders_still_ahead(any_runtime) -> None:
    rt = any_runtime
    _patient, course = add_patient(rt, add_clinic(rt, NOW), NOW, ipledge=True)
    taken = START - timedelta(days=3)  # staff record it on day 4 of its window
    with session_scope(rt.engine) as session:
        found = get_course(session, course_id=course.id)
        record_event(session, course=found, type="pregnancy_test", on=taken, ctx=rt.context(NOW))
    keys = plan_everything(rt, course.id, NOW)
    assert {k for k in keys if ":day" in k} == {
        f"ipledge_test:{taken.isoformat()}:day5",
        f"ipledge_test:{taken.isoformat()}:day7",
    }


def test_a_new_test_may_follow_a_missed_window_at_once(any_runtime) -> None:
    rt = any_runtime
    _patient, course = add_patient(rt, add_clinic(rt, NOW), NOW, ipledge=True)
    first = START - timedelta(days=10)  # its window closed three days ago
    with session_scope(rt.engine) as session:
        found = get_course(session, course_id=course.id)
        ctx = rt.context(NOW)
        record_event(session, course=found, type="pregnancy_test", on=first, ctx=ctx)
        record_event(session, course=found, type="pregnancy_test", on=START, ctx=ctx)
    keys = plan_everything(rt, course.id, NOW)
    assert {k for k in keys if ":day" in k} == {
        f"ipledge_test:{START.isoformat()}:day{n}" for n in (1, 5, 7)
    }


def test_a_patient_who_cannot_become_pregnant_has_no_monthly_ipledge_step(any_runtime) -> None:
    rt = any_runtime
    _patient, course = add_patient(rt, add_clinic(rt, NOW), NOW, ipledge=False)
    keys = plan_everything(rt, course.id, NOW)
    assert "month_1" in keys and not {k for k in keys if k.startswith("ipledge")}


def test_the_lab_reminder_follows_the_clinic_setting(any_runtime) -> None:
    rt = any_runtime
    on = add_clinic(rt, NOW)
    off = add_clinic(rt, NOW, name="Lakeside Skin", lab_reminders=False)
    _p, with_labs = add_patient(rt, on, NOW)
    _q, without = add_patient(rt, off, NOW, phone="+12125550199")
    assert "lab_reminder" in plan_everything(rt, with_labs.id, NOW)
    assert "lab_reminder" not in plan_everything(rt, without.id, NOW)


def test_preview_marks_what_waits_for_the_clinic_and_counts_the_countdown_when_sent() -> None:
    result = CliRunner().invoke(
        app,
        [
            "preview",
            "--start",
            "2026-12-01",
            "--tz",
            "America/New_York",
            "--ipledge",
            "--pregnancy-test",
            "2026-12-29",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    entries = json.loads(result.stdout)
    waiting = [e for e in entries if e["status"] == "waiting_for_clinic"]
    assert {e["key"] for e in waiting} == AFTER
    countdown = [e for e in entries if ":day" in e["key"]]
    assert [e["body"].split("(")[-1].split(")")[0] for e in countdown[:2]] == [
        "6 days left",
        "2 days left",
    ]
    text = CliRunner().invoke(app, ["preview", "--start", "2026-12-01", "--tz", "America/New_York"])
    assert "waits for the clinic to record the last dose:" in text.stdout
    assert "EST (15:00 UTC)" in text.stdout  # local time with its zone, and UTC


def test_a_course_with_only_planned_end_has_no_course_row_that_says_it_ended(any_runtime) -> None:
    _patient, course = add_patient(any_runtime, add_clinic(any_runtime, NOW), NOW)
    later = local_instant(PLANNED_END + timedelta(days=40), time(12), NEW_YORK)
    with session_scope(any_runtime.engine) as session:
        plan_all(session, ctx=any_runtime.context(later))
    with Session(any_runtime.engine) as session:
        found = session.get(Course, course.id)
    assert found is not None and found.status == "active", "it waits for the clinic"
