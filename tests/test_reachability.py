"""A contact that cannot be reached: its messages are held, not tried again and again and not
lost; fixing the contact sends what is still worth sending; a bounce is never an opt-out.
Through the dispatcher and the real channels, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import Engine
from sqlmodel import Session, select

from reminders.audit import trail
from reminders.channels.registry import build_transports
from reminders.db import read_scope, session_scope
from reminders.dispatch import Dispatcher
from reminders.models import Channel, ConsentEvent, Message, Patient
from reminders.runtime import Runtime
from reminders.services import plan_all, update_patient
from reminders.services.reachability import contact_state
from reminders.services.worklist import worklist
from tests.conftest import NOW, make_runtime
from tests.helpers import Clock, add_clinic, add_patient, outbox
from tests.test_delivery import cert_dir, provider_settings, smtp, twilio  # noqa: F401

PHONE, NEW_PHONE = "+12125550101", "+12125550177"


@pytest.fixture
def reach(any_engine: Engine, twilio, smtp) -> Iterator[tuple[Runtime, Dispatcher, Clock]]:  # noqa: F811
    rt = make_runtime(any_engine, **provider_settings(twilio, smtp))
    clock = Clock(NOW)
    dispatcher = Dispatcher(
        engine=rt.engine,
        settings=rt.settings,
        careplan=rt.careplan,
        renderer=rt.renderer,
        transports=build_transports(rt.settings),
        clock=clock,
    )
    yield rt, dispatcher, clock
    dispatcher.close()


def patient(rt: Runtime) -> Patient:
    with Session(rt.engine) as session:
        return session.exec(select(Patient)).one()


def statuses(rt: Runtime, **where: object) -> dict[str, str]:
    return {row.key: row.status for row in outbox(rt, **where)}


def test_a_21211_holds_the_patients_later_sms_and_puts_them_on_the_worklist(
    reach,
    twilio,  # noqa: F811
) -> None:
    rt, dispatcher, clock = reach
    clinic = add_clinic(rt, NOW)
    add_patient(rt, clinic, NOW)
    twilio.fail_for(PHONE, "21211")
    assert dispatcher.tick().held >= 1
    # Every message planned so far waits, with the reason; none is lost or failed.
    assert set(statuses(rt).values()) == {"held"}
    assert all("21211" in (row.last_error or "") for row in outbox(rt))
    state = contact_state(patient(rt), Channel.sms)
    assert (state.state, state.since) == ("unreachable", NOW)
    assert "21211" in (state.reason or "")
    # Two weeks on, what the planner added meanwhile is held by the gate, never attempted.
    for day in (2, 4, 14):
        clock.now = NOW + timedelta(days=day)
        with session_scope(rt.engine) as session:
            plan_all(session, ctx=rt.context(clock.now))
        dispatcher.tick()
    due = {row.key: row.status for row in outbox(rt) if row.due_at <= clock.now}
    assert "early_flare" in due and set(due.values()) == {"held"}
    assert {row.status for row in outbox(rt) if row.due_at > clock.now} == {"pending"}
    assert twilio.request_count == 1
    ana = patient(rt).id
    with read_scope(rt.engine) as session:
        items = worklist(
            session, clinic_id=clinic.id, now=clock.now, careplan=rt.careplan, reply_hours=4
        )
        events, _ = trail(session, clinic_id=clinic.id, patient_id=ana)
    assert [(i.kind, i.patient_id, i.since) for i in items] == [
        ("unreachable", ana, NOW),
        ("no_channel", ana, NOW),
    ]
    assert "contact.unreachable" in {event.action for event in events}


def test_fixing_the_phone_sends_what_is_still_worth_sending(reach, twilio) -> None:  # noqa: F811
    rt, dispatcher, clock = reach
    add_patient(rt, add_clinic(rt, NOW), NOW)
    twilio.fail_for(PHONE, "21211")
    dispatcher.tick()
    held = {row.key: row for row in outbox(rt)}
    assert {row.status for row in held.values()} == {"held"}
    # Six days later: the welcome (7 days of grace) and the first week's message (due on day
    # 4, 5 days of grace) are still worth sending; the dry lips tip (day 2, 3 days) is not.
    clock.now = fixed = NOW + timedelta(days=6)
    with session_scope(rt.engine) as session:
        found = session.get(Patient, patient(rt).id)
        assert found is not None
        changes = {"phone": NEW_PHONE}
        update_patient(
            session, patient=found, changes=changes, source="staff", ctx=rt.context(fixed)
        )
    assert contact_state(patient(rt), Channel.sms).state == "ok"
    worth = {key for key, row in held.items() if row.expires_at > fixed}
    assert {"welcome", "first_week"} <= worth and "dry_lips" not in worth
    assert statuses(rt)["dry_lips"] == "expired"
    for day in range(4):  # one a day: the rest go out on the days after
        clock.now = fixed + timedelta(days=day)
        dispatcher.tick()
    after = {key: status for key, status in statuses(rt).items() if key in held}
    sent = {key for key, status in after.items() if status == "sent"}
    assert {"welcome", "first_week"} <= sent <= worth and "held" not in after.values()
    to_new = [message for message in twilio.messages if message.to == NEW_PHONE]
    assert len(to_new) >= len(sent) and twilio.request_count == 1 + len(to_new)


def test_three_undelivered_reports_in_a_row_mark_the_number_unreachable(reach) -> None:
    rt, _dispatcher, _clock = reach
    from reminders.channels.twilio_status import read_status_callback
    from reminders.services import record_delivery

    add_patient(rt, add_clinic(rt, NOW), NOW)
    rows = outbox(rt)
    with session_scope(rt.engine) as session:
        for number, row in enumerate(rows[:3]):
            found = session.get(Message, row.id)
            assert found is not None
            found.status, found.provider_id, found.sent_at = "sent", f"SM{number}", NOW
            session.add(found)
    for number, row in enumerate(rows[:3]):
        form = {"MessageSid": f"SM{number}", "MessageStatus": "undelivered", "ErrorCode": "30003"}
        report = read_status_callback(form)
        assert contact_state(patient(rt), Channel.sms).state == "ok", number
        with session_scope(rt.engine) as session:
            assert record_delivery(session, outbox_id=row.id, report=report, now=NOW)
            # A replayed report counts nothing twice.
            assert not record_delivery(session, outbox_id=row.id, report=report, now=NOW)
    state = contact_state(patient(rt), Channel.sms)
    assert state.state == "unreachable" and "30003" in (state.reason or "")
    assert {row.status for row in outbox(rt)[3:]} == {"held"}


def test_a_delivered_report_starts_the_count_again(reach) -> None:
    rt, _dispatcher, _clock = reach
    from reminders.channels.twilio_status import read_status_callback
    from reminders.services import record_delivery

    add_patient(rt, add_clinic(rt, NOW), NOW)
    rows = outbox(rt)[:4]
    with session_scope(rt.engine) as session:
        for number, row in enumerate(rows):
            found = session.get(Message, row.id)
            assert found is not None
            found.status, found.provider_id, found.sent_at = "sent", f"SM{number}", NOW
            session.add(found)
    for number, (row, word) in enumerate(
        zip(rows, ["undelivered", "undelivered", "delivered", "undelivered"], strict=True)
    ):
        form = {"MessageSid": f"SM{number}", "MessageStatus": word, "ErrorCode": "30005"}
        with session_scope(rt.engine) as session:
            record_delivery(session, outbox_id=row.id, report=read_status_callback(form), now=NOW)
    found = patient(rt)
    assert contact_state(found, Channel.sms).state == "ok" and found.sms_undelivered == 1


def test_a_bounce_holds_the_email_and_never_writes_an_opt_out(reach, twilio, smtp) -> None:  # noqa: F811
    rt, dispatcher, clock = reach
    add_patient(rt, add_clinic(rt, NOW), NOW, channel="both", email="ana@example.com")
    smtp.reply_next("550 5.1.1 User unknown")
    report = dispatcher.tick()
    assert report.held == 1 and report.sent == 1  # the SMS went out all the same
    assert set(statuses(rt, channel="email").values()) == {"held"}
    with Session(rt.engine) as session:
        opt_outs = session.exec(select(ConsentEvent).where(ConsentEvent.action == "opt_out")).all()
    found = patient(rt)
    assert opt_outs == [] and not found.email_opted_out
    assert contact_state(found, Channel.email).state == "unreachable"
    assert "5.1.1" in (found.email_unreachable_reason or "")
    # A patient on both channels keeps getting texts.
    clock.now = NOW + timedelta(days=2)
    dispatcher.tick()
    assert statuses(rt, channel="sms")["dry_lips"] == "sent"
    assert len(smtp.received) == 0 and len(twilio.messages) == 2


def test_reminders_patient_update_changes_the_phone_and_refuses_bad_input(
    reach,
    twilio,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from reminders.cli import app
    from reminders.config import get_settings

    rt, dispatcher, _clock = reach
    patient_id = add_patient(rt, add_clinic(rt, NOW), NOW)[0].id
    twilio.fail_for(PHONE, "21211")
    dispatcher.tick()
    monkeypatch.setenv("DATABASE_URL", rt.engine.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        bad = runner.invoke(app, ["patient", "update", str(patient_id), "--phone", "555-01"])
        none = runner.invoke(app, ["patient", "update", str(patient_id)])
        unchanged = (patient(rt).phone, set(statuses(rt).values()))
        with freeze_time(NOW + timedelta(hours=1)):
            good = runner.invoke(
                app, ["patient", "update", str(patient_id), "--phone", "(212) 555-0177"]
            )
    finally:
        get_settings.cache_clear()
    assert bad.exit_code == 2 and bad.stderr.strip().startswith("error: phone: ")
    assert none.exit_code == 2 and "--phone or --email" in none.stderr
    assert unchanged == (PHONE, {"held"})  # nothing was written
    assert good.exit_code == 0, good.output
    assert "sms: ok" in good.stdout
    assert patient(rt).phone == NEW_PHONE
    assert "held" not in statuses(rt).values()


def test_the_gate_holds_a_message_whose_contact_is_unreachable_unless_it_is_too_late() -> None:
    from zoneinfo import ZoneInfo

    from reminders import gate
    from reminders.caps import Caps
    from reminders.models import CourseStatus, MessageStatus

    facts = gate.Facts(
        key="month_1",
        channel=Channel.sms,
        course_status=CourseStatus.active,
        opted_out=False,
        unreachable="twilio 21211",
        due_at=NOW,
        send_after=NOW,
        expires_at=NOW + timedelta(days=3),
        zone=ZoneInfo("America/New_York"),
        send_time=NOW.time(),
        quiet_start=NOW.replace(hour=21).time(),
        quiet_end=NOW.replace(hour=8).time(),
        reached={},
    )
    caps = Caps(per_day=1, per_week=3)
    assert gate.decide(facts, now=NOW, caps=caps) == gate.Settle(
        MessageStatus.held, "held: unreachable (twilio 21211)"
    )
    late = gate.decide(facts, now=NOW + timedelta(days=4), caps=caps)
    assert isinstance(late, gate.Settle) and late.status == MessageStatus.expired
