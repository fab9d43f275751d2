"""Delivery end to end: `reminders send-due` and the dispatcher with the real twilio client and
a real SMTP conversation, against Twilio-shaped and SMTP servers on loopback."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlmodel import Session, select
from typer.testing import CliRunner

from reminders.channels.registry import build_transports
from reminders.cli import app
from reminders.config import get_settings
from reminders.db import make_engine
from reminders.dispatch import Dispatcher
from reminders.models import ConsentEvent, Message, Patient
from reminders.render import count_segments
from reminders.runtime import Runtime
from tests.conftest import NOW, make_runtime
from tests.fakes.smtp_server import SmtpServer
from tests.fakes.twilio_process import TwilioProcess
from tests.fakes.twilio_server import TwilioServer
from tests.helpers import CLINIC_ADD, Clock, add_clinic, add_patient, outbox

PUBLIC = "https://reminders.example.org"
SERVICE_SID = "MG" + "1" * 32
USER, PASSWORD = "clinic-mailer", "s3cret-pass"


@pytest.fixture
def twilio() -> Iterator[TwilioServer]:
    with TwilioServer() as server:
        yield server


@pytest.fixture(scope="module")
def cert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("smtp-cert")


@pytest.fixture
def smtp(cert_dir: Path) -> Iterator[SmtpServer]:
    with SmtpServer(cert_dir=cert_dir, user=USER, password=PASSWORD) as server:
        yield server


def provider_settings(
    twilio: TwilioServer | TwilioProcess, smtp: SmtpServer, **extra: object
) -> dict:
    return {
        "sms_backend": "twilio",
        "twilio_account_sid": twilio.account_sid,
        "twilio_auth_token": twilio.auth_token,
        "twilio_messaging_service_sid": SERVICE_SID,
        "twilio_base_url": twilio.url,
        "twilio_mps": 200,
        "email_backend": "smtp",
        "smtp_url": smtp.url(),
        "email_from": "Riverside Dermatology <reminders@riverside.example>",
        "public_base_url": PUBLIC,
        "secret_key": "test-secret",
        **extra,
    }


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, twilio, smtp) -> Iterator[str]:
    """The environment a deployment would set; returns the database URL."""
    url = f"sqlite:///{tmp_path / 'delivery.db'}"
    values = provider_settings(twilio, smtp, database_url=url)
    for name, value in values.items():
        monkeypatch.setenv(name.upper(), str(value))
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def cli(*args: str, code: int = 0):
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def test_send_due_delivers_sms_and_email_once_each_with_every_field(env, twilio, smtp) -> None:
    with freeze_time(NOW):
        cli("db", "upgrade")
        clinic = json.loads(
            cli(*CLINIC_ADD, "--sms-name", "Riverside Derm", "--format", "json").stdout
        )["id"]
        common = [
            "enroll",
            "--clinic",
            str(clinic),
            "--tz",
            "America/New_York",
            "--start",
            NOW.date().isoformat(),
            "--format",
            "json",
        ]
        cli(*common, "--first-name", "Ana", "--phone", "+12125550101")
        cli(*common, "--first-name", "Ben", "--email", "ben@example.com", "--channel", "email")
        both = json.loads(
            cli(
                *common,
                "--first-name",
                "Cy",
                "--phone",
                "+12125550102",
                "--email",
                "cy@example.com",
                "--channel",
                "both",
            ).stdout
        )
        cli("send-due")
        cli("send-due")  # nothing is sent twice

    assert sorted(m.to for m in twilio.messages) == ["+12125550101", "+12125550102"]
    engine = make_engine(env)
    with Session(engine) as session:
        rows = {
            (r.course_id, r.channel): r
            for r in session.exec(select(Message)).all()
            if r.key == "welcome"
        }
    engine.dispose()
    for message in twilio.messages:
        fields = message.fields
        row = next(r for r in rows.values() if r.provider_id == message.sid)
        assert row.status == "sent"
        assert fields["MessagingServiceSid"] == SERVICE_SID and "From" not in fields
        assert fields["Body"].startswith("Riverside Derm: ")
        assert fields["Body"].endswith("Reply STOP to opt out, HELP for help")
        assert fields["StatusCallback"] == f"{PUBLIC}/webhooks/twilio/status?outbox={row.id}"
        # 14:00 in New York: quiet hours start in 7 hours, beyond Twilio's 4-hour hold.
        assert fields["ValidityPeriod"] == str(4 * 3600)
        assert message.auth == (twilio.account_sid, twilio.auth_token)

    emails = smtp.received
    assert sorted(e.rcpt_tos[0] for e in emails) == ["ben@example.com", "cy@example.com"]
    for received in emails:
        email = received.message
        assert received.login == USER and received.tls
        assert email.get_content_type() == "multipart/alternative"
        kinds = [part.get_content_type() for part in email.iter_parts()]
        assert kinds == ["text/plain", "text/html"]
        assert email["List-Unsubscribe"].startswith(f"<{PUBLIC}/unsubscribe/")
        assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert email["Message-ID"].startswith("<outbox-")
        assert "drug" not in email["Subject"].lower()
    both_rows = [r for (course, _channel), r in rows.items() if course == both["course_id"]]
    assert sorted(r.channel for r in both_rows) == ["email", "sms"]
    assert all(r.status == "sent" for r in both_rows)


def test_missing_twilio_settings_stop_the_command_naming_the_variable(
    env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TWILIO_AUTH_TOKEN")
    get_settings.cache_clear()
    with freeze_time(NOW):
        cli("db", "upgrade")
        result = cli("send-due", code=2)
    assert result.stderr.strip() == "error: TWILIO_AUTH_TOKEN is not set"


def test_missing_smtp_settings_stop_the_worker_naming_the_variable(
    env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EMAIL_FROM")
    get_settings.cache_clear()
    result = cli("worker", code=2)
    assert result.stderr.strip() == "error: EMAIL_FROM is not set"


# -- faults, through the dispatcher with the real channels -------------------------------------


@pytest.fixture
def delivery(engine, twilio, smtp) -> Iterator[tuple[Runtime, Dispatcher, Clock]]:
    rt = make_runtime(engine, **provider_settings(twilio, smtp))
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
    for transport in dispatcher.transports.values():
        transport.close()


def enrolled(rt: Runtime, **fields) -> Message:  # type: ignore[no-untyped-def]
    add_patient(rt, add_clinic(rt, NOW), NOW, **fields)
    return outbox(rt, key="welcome")[0]


def row(rt: Runtime, message: Message) -> Message:
    return next(r for r in outbox(rt) if r.id == message.id)


@pytest.mark.parametrize("fault", ["500", "503", "drop"])
def test_a_transient_twilio_fault_is_retried_on_schedule_and_ends_sent(
    delivery, twilio, fault
) -> None:
    rt, dispatcher, clock = delivery
    welcome = enrolled(rt)
    twilio.fail_next(fault)
    assert dispatcher.tick().retried == 1
    retry = row(rt, welcome)
    assert retry.status == "pending" and retry.attempts == 1
    assert NOW < retry.send_after <= NOW + timedelta(seconds=30)
    assert dispatcher.tick().claimed == 0  # not before its time
    clock.now = retry.send_after
    assert dispatcher.tick().sent == 1
    assert (row(rt, welcome).status, row(rt, welcome).attempts) == ("sent", 2)
    assert len(twilio.messages) == 1


def test_twilio_429_retry_after_is_honoured(delivery, twilio) -> None:
    rt, dispatcher, clock = delivery
    welcome = enrolled(rt)
    twilio.fail_next("429", retry_after=120)
    dispatcher.tick()
    assert row(rt, welcome).send_after >= NOW + timedelta(seconds=120)
    clock.now = row(rt, welcome).send_after
    dispatcher.tick()
    assert row(rt, welcome).status == "sent"


def test_a_permanent_twilio_error_fails_after_one_attempt(delivery, twilio) -> None:
    # 21408 says the sender may not text that region; an invalid number is held instead
    # (tests/test_reachability.py).
    code = "21408"
    rt, dispatcher, clock = delivery
    welcome = enrolled(rt)
    twilio.fail_next(code)
    assert dispatcher.tick().failed == 1
    clock.now += timedelta(hours=1)
    dispatcher.tick()
    failed = row(rt, welcome)
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert code in failed.last_error
    assert twilio.request_count == 1


def test_twilio_21610_suppresses_every_pending_sms_and_records_the_opt_out(
    delivery, twilio
) -> None:
    rt, dispatcher, clock = delivery
    welcome = enrolled(rt)
    twilio.fail_for("+12125550101", "21610")
    assert dispatcher.tick().suppressed == 1
    assert row(rt, welcome).status == "suppressed"
    assert {r.status for r in outbox(rt)} == {"suppressed"}
    with Session(rt.engine) as session:
        patient = session.exec(select(Patient)).one()
        event = session.exec(select(ConsentEvent).order_by(ConsentEvent.id.desc())).first()
    assert patient.sms_opted_out
    assert (event.channel, event.action, event.source) == ("sms", "opt_out", "provider")
    clock.now += timedelta(days=30)
    dispatcher.tick()
    assert twilio.request_count == 1


def test_an_expired_message_is_not_sent(delivery, twilio) -> None:
    rt, dispatcher, clock = delivery
    welcome = enrolled(rt)
    clock.now = welcome.expires_at + timedelta(minutes=1)
    dispatcher.tick()
    assert row(rt, welcome).status == "expired"
    assert "welcome" not in {m.body for m in twilio.messages}
    assert all("welcome" not in m.body.lower() for m in twilio.messages)


def test_an_smtp_4xx_is_retried_and_then_delivered(delivery, smtp) -> None:
    rt, dispatcher, clock = delivery
    welcome = enrolled(rt, channel="email", email="ana@example.com", phone="")
    smtp.reply_next("451 4.3.0 Try again later")
    assert dispatcher.tick().retried == 1
    clock.now = row(rt, welcome).send_after
    assert dispatcher.tick().sent == 1
    assert [e.rcpt_tos for e in smtp.received] == [["ana@example.com"]]


def test_an_smtp_unknown_user_is_held_as_unreachable_and_is_never_an_opt_out(
    delivery, smtp
) -> None:
    rt, dispatcher, clock = delivery
    welcome = enrolled(rt, channel="email", email="ana@example.com", phone="")
    smtp.reply_next("550 5.1.1 User unknown")
    assert dispatcher.tick().held == 1
    held = row(rt, welcome)
    assert held.status == "held" and "5.1.1" in held.last_error
    assert held.last_error.startswith("held: unreachable ")
    with Session(rt.engine) as session:
        events = session.exec(select(ConsentEvent).where(ConsentEvent.action == "opt_out")).all()
        patient = session.exec(select(Patient)).one()
    assert events == [] and not patient.email_opted_out


def test_logs_carry_no_phone_number_body_or_secret(delivery, twilio, caplog) -> None:
    rt, dispatcher, clock = delivery
    enrolled(rt)
    twilio.fail_next("500")
    with caplog.at_level(logging.DEBUG):
        dispatcher.tick()
        clock.now += timedelta(minutes=5)
        dispatcher.tick()
    text = caplog.text
    assert "outbox" in text  # the dispatcher did log
    assert "+12125550101" not in text and "2125550101" not in text
    assert twilio.auth_token not in text
    body = twilio.messages[-1].fields["Body"]  # what was sent, word for word
    assert body.startswith("Riverside: ")
    assert body not in text and body.removeprefix("Riverside: ")[:40] not in text


def test_a_batch_of_500_is_concurrent_and_never_exceeds_the_rate(engine, smtp) -> None:
    """500 due messages at 200 ms provider latency: far faster than one at a time, and no
    one-second window at the provider holds more than TWILIO_MPS segments."""
    rate = 200
    with TwilioProcess(latency=0.2) as twilio:
        rt = make_runtime(
            engine,
            **provider_settings(twilio, smtp, twilio_mps=rate, send_concurrency=32, batch_size=500),
        )
        clinic = add_clinic(rt, NOW)
        for n in range(500):
            add_patient(rt, clinic, NOW, first_name=f"P{n}", phone=f"+1212555{n:04d}")
        transports = build_transports(rt.settings)
        dispatcher = Dispatcher(
            engine=rt.engine,
            settings=rt.settings,
            careplan=rt.careplan,
            renderer=rt.renderer,
            transports=transports,
            clock=lambda: NOW,
        )
        started = time.monotonic()
        report = dispatcher.tick()
        elapsed = time.monotonic() - started
        arrivals = sorted(twilio.arrivals(), key=lambda a: a.received_monotonic)
        for transport in transports.values():
            transport.close()
    assert report.sent == 500 and len(arrivals) == 500
    # Each welcome is two segments, so the rate allows 100 messages a second: about 5 s,
    # against 100 s for one request at a time.
    assert elapsed < 500 * 0.2 / 4
    worst = start = in_window = 0
    for arrival in arrivals:
        in_window += count_segments(arrival.body).count
        while arrival.received_monotonic - arrivals[start].received_monotonic >= 1.0:
            in_window -= count_segments(arrivals[start].body).count
            start += 1
        worst = max(worst, in_window)
    assert worst <= rate
