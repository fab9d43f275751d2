"""Never twice, never lost: the reaper, concurrent planners, and catching up after downtime."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import Session, func, select

from reminders.channels.registry import build_transports
from reminders.db import session_scope
from reminders.dispatch import Dispatcher
from reminders.lifecycle import claim
from reminders.models import Course, Message
from reminders.recovery import reap
from reminders.runtime import Runtime
from reminders.services import change_course, get_course, plan_all
from reminders.timing import is_quiet, to_local, zone
from tests.conftest import NOW, make_runtime
from tests.fakes.scripted import ScriptedTransport
from tests.fakes.smtp_server import SmtpServer
from tests.fakes.twilio_server import TwilioServer
from tests.helpers import Clock, add_clinic, add_patient, outbox


@pytest.fixture
def twilio() -> Iterator[TwilioServer]:
    with TwilioServer() as server:
        yield server


def twilio_runtime(engine, twilio: TwilioServer, **extra) -> Runtime:  # type: ignore[no-untyped-def]
    return make_runtime(
        engine,
        sms_backend="twilio",
        twilio_account_sid=twilio.account_sid,
        twilio_auth_token=twilio.auth_token,
        twilio_from_number="+12125550000",
        twilio_base_url=twilio.url,
        twilio_mps=100,
        lease_seconds=60,
        **extra,
    )


def dispatcher_for(rt: Runtime, clock: Clock, transports=None) -> Dispatcher:  # type: ignore[no-untyped-def]
    return Dispatcher(
        engine=rt.engine,
        settings=rt.settings,
        careplan=rt.careplan,
        renderer=rt.renderer,
        transports=transports or build_transports(rt.settings),
        clock=clock,
    )


def crash_after_send(rt: Runtime, clock: Clock) -> Message:
    """Send the welcome and die before recording it: the row is left in `sending`."""

    class Died(BaseException):
        pass

    def die(_row: Message) -> None:
        raise Died

    dispatcher = dispatcher_for(rt, clock)
    dispatcher.after_send = die
    with pytest.raises(Died):
        dispatcher.tick()
    for transport in dispatcher.transports.values():
        transport.close()
    row = outbox(rt, key="welcome")[0]
    assert row.status == "sending"
    return row


def test_a_message_the_provider_accepted_before_a_crash_is_marked_sent_not_resent(
    any_engine, twilio
) -> None:
    rt = twilio_runtime(any_engine, twilio)
    add_patient(rt, add_clinic(rt, NOW), NOW)
    clock = Clock(outbox(rt, key="welcome")[0].due_at)
    stranded = crash_after_send(rt, clock)
    assert len(twilio.messages) == 1

    survivor = dispatcher_for(rt, clock)
    assert reap(rt, survivor) == 0  # the lease still holds: nothing to do yet
    clock.now += timedelta(seconds=61)
    assert reap(rt, survivor) == 1
    row = outbox(rt, key="welcome")[0]
    assert (row.id, row.status, row.provider_id) == (stranded.id, "sent", twilio.messages[0].sid)
    survivor.tick()
    assert len(twilio.messages) == 1
    close(survivor)


def close(dispatcher: Dispatcher) -> None:
    for transport in dispatcher.transports.values():
        transport.close()


def test_a_message_that_never_reached_the_provider_is_sent_again_once(any_engine, twilio) -> None:
    rt = twilio_runtime(any_engine, twilio)
    add_patient(rt, add_clinic(rt, NOW), NOW)
    due = outbox(rt, key="welcome")[0].due_at
    with session_scope(rt.engine) as session:  # a worker claimed it and died before sending
        claim(session, now=due, limit=10, lease_until=due + timedelta(seconds=60), token="dead")
    clock = Clock(due + timedelta(seconds=61))
    survivor = dispatcher_for(rt, clock)
    assert reap(rt, survivor) == 1
    row = outbox(rt, key="welcome")[0]
    assert row.status == "pending" and row.claim_token is None
    survivor.tick()
    assert outbox(rt, key="welcome")[0].status == "sent"
    assert len(twilio.messages) == 1
    close(survivor)


@pytest.mark.parametrize(("policy", "status"), [("resend", "pending"), ("mark_sent", "sent")])
def test_an_email_stranded_mid_send_follows_the_configured_policy(
    engine, tmp_path: Path, policy, status
) -> None:
    with SmtpServer(cert_dir=tmp_path, starttls=False) as smtp:
        rt = make_runtime(
            engine,
            email_backend="smtp",
            smtp_url=smtp.url(),
            email_from="clinic@example.com",
            lease_seconds=60,
            email_unknown_policy=policy,
        )
        add_patient(
            rt, add_clinic(rt, NOW), NOW, channel="email", email="ana@example.com", phone=""
        )
        clock = Clock(outbox(rt, key="welcome")[0].due_at)
        crash_after_send(rt, clock)
        clock.now += timedelta(seconds=61)
        survivor = dispatcher_for(rt, clock)
        reap(rt, survivor)
        assert outbox(rt, key="welcome")[0].status == status
        survivor.tick()
        emails = smtp.received
        assert len(emails) == (2 if policy == "resend" else 1)
        # A resend carries the same Message-ID, so mail systems can tell it is the same one.
        assert len({e.message["Message-ID"] for e in emails}) == 1
        for transport in survivor.transports.values():
            transport.close()


def count_rows(rt: Runtime) -> int:
    with Session(rt.engine) as session:
        return session.exec(select(func.count()).select_from(Message)).one()


def test_two_planners_at_once_create_no_extra_rows(any_engine) -> None:
    rt = make_runtime(any_engine)
    clinic = add_clinic(rt, NOW)
    for n in range(20):
        add_patient(
            rt,
            clinic,
            NOW,
            first_name=f"P{n}",
            phone=f"+1212555{n:04d}",
            start_date=(NOW + timedelta(days=n % 5)).date().isoformat(),
        )
    later = NOW + timedelta(days=10)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def planner() -> None:
        try:
            barrier.wait()
            with session_scope(rt.engine) as session:
                plan_all(session, ctx=rt.context(later))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=planner) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    after_two = count_rows(rt)
    with session_scope(rt.engine) as session:
        session.execute(update(Course).values(planned_until=None))
    with session_scope(rt.engine) as session:
        plan_all(session, ctx=rt.context(later))
    assert count_rows(rt) == after_two
    with Session(rt.engine) as session:
        keys = session.exec(select(Message.course_id, Message.key, Message.channel)).all()
    assert len(keys) == len(set(keys))


def test_a_start_date_change_while_a_message_is_in_flight_keeps_it_single(any_engine) -> None:
    rt = make_runtime(any_engine)
    _patient, course = add_patient(rt, add_clinic(rt, NOW), NOW)
    clock = Clock(outbox(rt, key="welcome")[0].due_at)
    sms = ScriptedTransport("sms")

    def move_the_start(_message) -> None:  # staff act while the provider is answering
        with session_scope(rt.engine) as session:
            found = get_course(session, course_id=course.id)
            change_course(
                session,
                course=found,
                start_date=(NOW + timedelta(days=2)).date(),
                ctx=rt.context(clock.now),
            )

    sms.on_send = move_the_start
    dispatcher_for(rt, clock, {"sms": sms}).tick()
    welcome = outbox(rt, key="welcome")
    assert [(r.status, r.channel) for r in welcome] == [("sent", "sms")]
    dry_lips = outbox(rt, key="dry_lips")[0]
    assert (
        to_local(dry_lips.due_at, zone("America/New_York")).date()
        == (NOW + timedelta(days=4)).date()
    )
    assert len(sms.sent) == 1


def test_after_three_days_down_the_course_catches_up_by_the_rules(any_engine) -> None:
    rt = make_runtime(any_engine)
    start = NOW.date()
    add_patient(rt, add_clinic(rt, NOW), NOW, start_date=start.isoformat(), ipledge=True)
    # The worker planned, then was down from the enrolment until three days later.
    back = NOW + timedelta(days=3)
    sms = ScriptedTransport("sms")
    clock = Clock(back)
    dispatcher = dispatcher_for(rt, clock, {"sms": sms})
    sent_at: list[tuple[datetime, str]] = []
    sms.on_send = lambda message: sent_at.append((clock.now, message.key))
    while clock.now < NOW + timedelta(days=30):
        with session_scope(rt.engine) as session:
            plan_all(session, ctx=rt.context(clock.now))
        dispatcher.tick()
        clock.now += timedelta(minutes=30)

    rows = {r.key: r for r in outbox(rt)}
    new_york = zone("America/New_York")
    local = [(to_local(at, new_york), key) for at, key in sent_at]
    assert local[0][1] == "welcome"  # still owed, still first
    assert local[0][0].date() == back.date()
    # dry lips (day 2, three grace days) still goes out, the day after the welcome.
    assert local[1][1] == "dry_lips" and local[1][0].date() == (back + timedelta(days=1)).date()
    assert all(
        not is_quiet(at.time(), quiet_start=time(21, 0), quiet_end=time(8, 0)) for at, _ in local
    )
    days = [at.date() for at, _ in local]
    assert len(days) == len(set(days)), "at most one message a day"
    for day in days:
        assert sum(day - timedelta(days=6) <= other <= day for other in days) <= 3
    planned = [rows[key].due_at for _, key in sent_at]
    assert planned == sorted(planned), "caught up in the planned order"
    # A nudge that the catch-up merged into another message leaves its own row cancelled.
    carried = {
        item for r in rows.values() if r.status != "cancelled" for item in r.items.split(",")
    }
    assert all(
        r.status in ("sent", "pending", "expired") or (r.status == "cancelled" and r.key in carried)
        for r in rows.values()
    )


def test_after_weeks_down_only_the_latest_nudge_goes_out_and_the_rest_expire(engine) -> None:
    rt = make_runtime(engine)
    add_patient(rt, add_clinic(rt, NOW), NOW, start_date=NOW.date().isoformat())
    sms = ScriptedTransport("sms")
    clock = Clock(NOW)
    dispatcher = dispatcher_for(rt, clock, {"sms": sms})
    dispatcher.tick()  # the welcome goes out, then the worker is down for seven weeks
    for hours in range(0, 49 * 24, 24):
        clock.now = NOW + timedelta(hours=hours)
        with session_scope(rt.engine) as session:
            plan_all(session, ctx=rt.context(clock.now))
    clock.now = NOW + timedelta(days=49, hours=1)
    for _ in range(3):
        dispatcher.tick()
        clock.now += timedelta(days=1)
    rows = outbox(rt)
    by_key = {r.key: r for r in rows}
    expired = {r.key for r in rows if r.status == "expired"}
    assert {"dry_lips", "early_flare", "sun_protection:1", "moisturizer:1"} <= expired
    assert all("past its window" in by_key[key].last_error for key in expired)
    sent_nudges = [r.key for r in rows if r.status == "sent" and ":" in r.key]
    assert len([k for k in sent_nudges if k.startswith("sun_protection")]) <= 1
