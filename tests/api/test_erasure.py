"""Erasing a patient: name, contacts, texts and replies give way to a marker; dates stay."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from reminders.cli import app
from reminders.config import get_settings
from reminders.db import session_scope
from reminders.models import AuditEvent, Clinic, ConsentEvent, InboundMessage, Message, Patient
from reminders.retention import apply_retention
from reminders.services import ERASED
from tests.api.conftest import Api, row_counts
from tests.conftest import NOW


def erase(api: Api, patient_id: int):  # type: ignore[no-untyped-def]
    return api.client.delete(f"/v1/patients/{patient_id}", headers=api.auth())


def ledger(api: Api, patient_id: int) -> list[tuple[str, str, str]]:
    with Session(api.rt.engine) as session:
        events = session.exec(
            select(ConsentEvent).where(ConsentEvent.patient_id == patient_id)
        ).all()
        return [(event.channel, event.action, str(event.at)) for event in events]


def test_a_patient_with_a_running_course_is_not_erased(api: Api) -> None:
    patient = api.enroll()
    before = row_counts(api.rt)
    refused = erase(api, patient["id"])
    assert refused.status_code == 409
    assert "still running" in refused.json()["message"]
    assert row_counts(api.rt) == before
    assert api.patient(patient["id"]).first_name == "Ana"


def test_erasing_replaces_name_contacts_texts_and_replies_and_keeps_the_dates(api: Api) -> None:
    patient = api.enroll(email="ana@example.com", channel="both")
    pid = patient["id"]
    assert api.text("Is it normal to have dry lips?").status_code == 200
    api.post(f"/v1/courses/{patient['course_id']}/stop")
    consent, messages = ledger(api, pid), api.messages(pid)
    erased = erase(api, pid)
    assert erased.status_code == 200, erased.text
    body = erased.json()
    assert (body["first_name"], body["phone"], body["email"]) == (ERASED, None, None)
    assert ledger(api, pid) == consent  # every dated opt-in and opt-out stays
    after = api.messages(pid)
    assert [(m["id"], m["status"], m["due_at"]) for m in after] == [
        (m["id"], m["status"], m["due_at"]) for m in messages
    ]
    with Session(api.rt.engine) as session:
        parts = session.exec(select(Message.parts).where(Message.patient_id == pid)).all()
        replies = session.exec(
            select(InboundMessage.body).where(InboundMessage.patient_id == pid)
        ).all()
        stored = session.get(Patient, pid)
        audit = session.exec(select(AuditEvent.action).where(AuditEvent.patient_id == pid)).all()
    assert parts and set(parts) == {json.dumps([])}
    assert list(replies) == [ERASED]
    assert stored is not None and stored.erased_at is not None
    assert "patient.erase" in audit
    assert erase(api, pid).status_code == 409  # once is enough


def test_an_erased_patients_page_shows_no_timeline(api: Api) -> None:
    from reminders.staff import create_staff
    from tests.web.conftest import PASSWORD, signed_in_client

    patient = api.enroll()
    api.post(f"/v1/courses/{patient['course_id']}/stop")
    erase(api, patient["id"])
    with session_scope(api.rt.engine) as session:
        create_staff(
            session,
            clinic_id=api.clinic.id,  # type: ignore[arg-type]
            email="sam@riverside.example",
            password=PASSWORD,
            now=NOW,
        )
    client = signed_in_client(api.rt, "sam@riverside.example", base_url="https://testserver")
    with client:
        page = client.get(f"/clinic/patients/{patient['id']}")
    assert page.status_code == 200
    assert "This patient was erased" in page.text and "Ana" not in page.text


def stopped_patient(api: Api, **fields: object) -> int:
    patient = api.enroll(**fields)
    api.post(f"/v1/courses/{patient['course_id']}/stop")
    return patient["id"]


def test_the_retention_period_erases_finished_patients_after_n_days(api: Api) -> None:
    kept = stopped_patient(api)
    with session_scope(api.rt.engine) as session:
        clinic = session.get(Clinic, api.clinic.id)
        assert clinic is not None and clinic.retention_days is None  # off by default
        assert apply_retention(session, now=NOW + timedelta(days=3650)) == 0
        clinic.retention_days = 30
        session.add(clinic)
    running = api.enroll(phone="+12125550102")["id"]
    with session_scope(api.rt.engine) as session:
        assert apply_retention(session, now=NOW + timedelta(days=29)) == 0
    with session_scope(api.rt.engine) as session:
        assert apply_retention(session, now=NOW + timedelta(days=31)) == 1
    assert api.patient(kept).first_name == ERASED
    assert api.patient(running).first_name == "Ana"
    with Session(api.rt.engine) as session:
        entry = session.exec(
            select(AuditEvent).where(
                AuditEvent.patient_id == kept, col(AuditEvent.action) == "patient.erase"
            )
        ).one()
    assert (entry.actor_kind, entry.detail) == ("system", "retention period ended")


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'erase.db'}")
    get_settings.cache_clear()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    yield runner
    root.handlers[:], root.level = handlers, level
    get_settings.cache_clear()


def test_patient_erase_on_the_command_line(cli: CliRunner) -> None:
    from datetime import date

    def run(*args: str, code: int = 0) -> str:
        result = cli.invoke(app, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    run("clinic", "add", "--name", "Riverside", "--help-contact", "(212) 555-0100")
    run(
        "enroll", "--clinic", "1", "--first-name", "Ana", "--phone", "+12125550101",
        "--tz", "America/New_York", "--start", date.today().isoformat(),
    )  # fmt: skip
    assert "still running" in run("patient", "erase", "1", "--clinic", "1", code=2)
    run("course", "stop", "1")
    assert "not found" in run("patient", "erase", "1", "--clinic", "2", code=3)
    assert run("patient", "erase", "1", "--clinic", "1") == "patient 1 erased\n"
    run("clinic", "retention", "1", "--days", "90")
    audit = json.loads(run("audit", "--clinic", "1", "--format", "json"))
    actions = [entry["action"] for entry in audit["items"]]
    assert actions == ["clinic.retention", "patient.erase", "course.stop", "patient.enroll"]


def test_an_erased_patients_chart_number_can_be_given_again(api: Api) -> None:
    first = api.enroll(last_name="Lopez", external_id="CH-9", date_of_birth="1999-04-12")
    api.post(f"/v1/courses/{first['course_id']}/stop")
    assert erase(api, first["id"]).status_code == 200
    erased = api.patient(first["id"])
    assert (erased.last_name, erased.external_id, erased.date_of_birth) == ("", None, None)
    again = api.enroll(external_id="CH-9", phone="+12125550177")
    assert again["id"] != first["id"]
