"""Staff are told of new replies by email: at most once per interval, and never who or what."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlmodel import Session

from reminders.db import session_scope
from reminders.models import Clinic, Patient
from reminders.runtime import Runtime
from reminders.services import update_clinic
from reminders.services.replies import claim_notice, notices_due
from reminders.worker import replies_pass
from tests.conftest import NOW
from tests.fakes.smtp_server import SmtpServer
from tests.helpers import add_clinic, add_patient, receive

DESK = "front-desk@riverside.example"
BASE_URL = "https://reminders.example.org"
INTERVAL = timedelta(minutes=15)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer(starttls=False) as server:
        yield server


@pytest.fixture
def rt(any_runtime: Runtime, smtp: SmtpServer) -> Runtime:
    """The runtime with the real SMTP channel pointed at the loopback server."""
    any_runtime.settings = any_runtime.settings.model_copy(
        update={
            "email_backend": "smtp",
            "smtp_url": smtp.url(),
            "email_from": "Reminders <reminders@riverside.example>",
            "public_base_url": BASE_URL,
        }
    )
    # SecretStr fields are validated on construction only: rebuild so SMTP_URL is a secret.
    any_runtime.settings = type(any_runtime.settings).model_validate(
        any_runtime.settings.model_dump()
    )
    return any_runtime


def clinic_with_desk(rt: Runtime) -> Clinic:
    clinic = add_clinic(rt, NOW)
    with session_scope(rt.engine) as session:
        found = session.get(Clinic, clinic.id)
        assert found is not None
        update_clinic(session, clinic=found, changes={"notify_email": DESK})
    return clinic


def text(rt: Runtime, patient: Patient, body: str, at: datetime) -> None:
    receive(rt, phone=patient.phone or "", body=body, at=at)


def test_new_replies_are_told_at_most_once_per_interval_with_the_count_and_a_link(
    rt: Runtime, smtp: SmtpServer
) -> None:
    clinic = clinic_with_desk(rt)
    patient, _course = add_patient(rt, clinic, NOW, first_name="Ana", email="ana@example.com")
    text(rt, patient, "My lips are bleeding", NOW)
    assert replies_pass(rt, NOW + timedelta(seconds=30)) == 1
    text(rt, patient, "Also my eyes are dry", NOW + timedelta(minutes=1))
    assert replies_pass(rt, NOW + timedelta(minutes=2)) == 0
    assert replies_pass(rt, NOW + timedelta(minutes=14)) == 0
    assert replies_pass(rt, NOW + timedelta(minutes=15, seconds=30)) == 1
    assert replies_pass(rt, NOW + timedelta(minutes=40)) == 0  # nothing new since
    first, second = smtp.received
    assert [mail.rcpt_tos for mail in (first, second)] == [[DESK], [DESK]]
    assert first.message["Subject"] == "Riverside Dermatology: 1 unread reply from patients"
    assert second.message["Subject"] == "Riverside Dermatology: 2 unread replies from patients"
    body = second.message.get_body(("plain",))
    assert body is not None
    assert f"{BASE_URL}/clinic/replies" in body.get_content()


def test_a_notice_holds_no_patient_detail(rt: Runtime, smtp: SmtpServer) -> None:
    clinic = clinic_with_desk(rt)
    patient, _course = add_patient(rt, clinic, NOW, first_name="Ana", email="ana@example.com")
    text(rt, patient, "Rash on my arms since Tuesday", NOW)
    replies_pass(rt, NOW)
    [mail] = smtp.received
    raw = mail.raw.decode("utf-8", errors="replace")
    for detail in ("Ana", "ana@example.com", "2125550101", "555-0101", "Rash", "Tuesday"):
        assert detail not in raw, detail
    assert "public_id" not in raw and patient.public_id not in raw


def test_no_notice_without_an_address_or_without_unread_replies(
    rt: Runtime, smtp: SmtpServer
) -> None:
    quiet = add_clinic(rt, NOW, name="Lakeside Skin")
    patient, _course = add_patient(rt, quiet, NOW)
    text(rt, patient, "Hello?", NOW)
    told = clinic_with_desk(rt)
    other, _course = add_patient(rt, told, NOW, phone="+12125550102")
    text(rt, other, "HELP", NOW)  # answered by the service: nothing left for staff
    text(rt, other, "STOP", NOW)
    assert replies_pass(rt, NOW + timedelta(minutes=1)) == 0
    assert smtp.received == []


def test_a_refused_notice_is_sent_on_the_next_pass(rt: Runtime, smtp: SmtpServer) -> None:
    clinic = clinic_with_desk(rt)
    patient, _course = add_patient(rt, clinic, NOW)
    text(rt, patient, "Can I take ibuprofen?", NOW)
    smtp.reply_next("451 4.3.0 Try again later", at="RCPT")
    assert replies_pass(rt, NOW) == 0
    assert replies_pass(rt, NOW + timedelta(minutes=1)) == 1
    assert len(smtp.received) == 1


def test_two_workers_cannot_both_claim_one_notice(rt: Runtime) -> None:
    clinic = clinic_with_desk(rt)
    patient, _course = add_patient(rt, clinic, NOW)
    text(rt, patient, "A question", NOW)
    with Session(rt.engine) as session:
        [notice] = notices_due(session, now=NOW, interval=INTERVAL)
    with session_scope(rt.engine) as session:
        assert claim_notice(session, notice=notice, now=NOW)
    with session_scope(rt.engine) as session:
        assert not claim_notice(session, notice=notice, now=NOW + timedelta(seconds=1))


def test_a_notice_names_the_worklists_counts_and_links_to_it(rt: Runtime, smtp: SmtpServer) -> None:
    from reminders.models import Channel
    from reminders.services.reachability import mark_unreachable

    clinic = clinic_with_desk(rt)
    patient, _course = add_patient(rt, clinic, NOW, first_name="Ana")
    other, _course = add_patient(rt, clinic, NOW, phone="+12125550102")
    with session_scope(rt.engine) as session:
        found = session.get(Patient, other.id)
        assert found is not None
        mark_unreachable(
            session, patient=found, channel=Channel.sms, reason="twilio 21211", now=NOW
        )
    text(rt, patient, "Is this normal?", NOW - timedelta(hours=5))
    assert replies_pass(rt, NOW) == 1
    [mail] = smtp.received
    body = mail.message.get_body(("plain",))
    assert body is not None
    content = body.get_content()
    assert "On the clinic's worklist: 1 unread reply, 1 unreachable contact, " in content
    assert "1 patient no channel reaches." in content
    assert f"See it here: {BASE_URL}/clinic\n" in content
