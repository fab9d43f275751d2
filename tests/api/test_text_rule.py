"""One rule for names and text on every path: no control or invisible formatting characters.

NUL, CR and ESC are control characters (Unicode Cc); U+202E (right-to-left override) and
U+200B (zero-width space) are formatting characters (Cf). Each is refused by the API, the CSV
import, the web form and the command line, naming the field, and nothing is written.
"""

from __future__ import annotations

import logging

import pytest
from sqlmodel import Session, func, select
from typer.testing import CliRunner

from reminders.cli import app
from reminders.config import get_settings
from reminders.db import make_engine, session_scope
from reminders.models import Patient
from reminders.staff import create_staff
from reminders.validation import check_text
from tests.api.conftest import PHONE, Api, row_counts
from tests.conftest import NOW
from tests.web.conftest import PASSWORD, csrf, signed_in_client

REFUSED = {
    "NUL": "\x00",
    "CR": "\r",
    "ESC": "\x1b",
    "RLO": "\u202e",
    "ZWSP": "\u200b",
}
CASES = pytest.mark.parametrize("char", REFUSED.values(), ids=REFUSED.keys())
ENROLL = {
    "first_name": "Ana",
    "phone": PHONE,
    "channel": "sms",
    "timezone": "America/New_York",
    "start_date": "2026-03-16",
}


@CASES
def test_the_rule_names_the_character(char: str) -> None:
    with pytest.raises(ValueError, match=f"U\\+{ord(char):04X}"):
        check_text(f"An{char}a")


def test_letters_of_every_script_and_punctuation_pass() -> None:
    for name in ("Ana", "José", "Zoë O'Neil-Smith", "Łucja", "محمد", "美咲", "Ana María"):
        assert check_text(name) == name


@CASES
def test_the_api_refuses_it_in_a_name_and_writes_nothing(api: Api, char: str) -> None:
    before = row_counts(api.rt)
    response = api.post("/v1/patients", json={**ENROLL, "first_name": f"An{char}a"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == "first_name"
    assert f"U+{ord(char):04X}" in response.json()["message"]
    assert row_counts(api.rt) == before


@CASES
def test_the_api_refuses_it_in_a_changed_name_and_writes_nothing(api: Api, char: str) -> None:
    patient = api.enroll()
    before = row_counts(api.rt)
    response = api.patch(f"/v1/patients/{patient['id']}", json={"first_name": f"Ana{char}"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == "first_name"
    assert row_counts(api.rt) == before
    assert api.patient(patient["id"]).first_name == "Ana"


@CASES
def test_a_csv_import_refuses_it_and_writes_nothing(api: Api, char: str) -> None:
    # Quoted, so that a CR stays inside its cell as the csv module reads it.
    data = (
        "first_name,phone,email,channel,timezone,start_date\r\n"
        f'"An{char}a",{PHONE},,sms,America/New_York,2026-03-16\r\n'
    ).encode()
    before = row_counts(api.rt)
    response = api.post("/v1/imports", files={"file": ("patients.csv", data, "text/csv")})
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert (error["row"], error["field"]) == (2, "first_name")
    assert row_counts(api.rt) == before


@CASES
def test_the_web_form_refuses_it_and_writes_nothing(api: Api, char: str) -> None:
    with session_scope(api.rt.engine) as session:
        create_staff(
            session,
            clinic_id=api.clinic.id,  # type: ignore[arg-type]
            email="sam@riverside.example",
            password=PASSWORD,
            now=NOW,
        )
    before = row_counts(api.rt)
    client = signed_in_client(api.rt, "sam@riverside.example", base_url="https://testserver")
    with client:
        token = csrf(client, "/clinic/patients/new")
        form = {**ENROLL, "first_name": f"An{char}a", "csrf_token": token}
        response = client.post("/clinic/patients/new", data=form)
    assert response.status_code == 422, response.text
    assert f"U+{ord(char):04X}" in response.text
    after = row_counts(api.rt)
    assert {k: v for k, v in after.items() if k not in NOT_PATIENT_DATA} == {
        k: v for k, v in before.items() if k not in NOT_PATIENT_DATA
    }


# Signing in writes a session and the audit trail records the visit: neither is patient data.
NOT_PATIENT_DATA = {"staffsession", "signinattempt", "auditevent"}


@CASES
def test_the_command_line_refuses_it_and_writes_nothing(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, char: str
) -> None:
    # SQLite only: each command opens an engine of its own for its process, which a test
    # cannot close; the rule itself is the service's, run on PostgreSQL by the tests above.
    database_url = sqlite_url
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    runner = CliRunner()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
        added = runner.invoke(
            app,
            [
                "clinic",
                "add",
                "--name",
                "Riverside",
                "--help-contact",
                "(212) 555-0100",
                "--format",
                "json",
            ],
        )
        assert added.exit_code == 0, added.output
        refused_clinic = runner.invoke(
            app, ["clinic", "add", "--name", f"River{char}side", "--help-contact", "(212) 555-0100"]
        )
        enroll = [
            "enroll",
            "--clinic",
            "1",
            "--first-name",
            f"An{char}a",
            "--phone",
            PHONE,
            "--tz",
            "America/New_York",
            "--start",
            "2026-03-16",
        ]
        refused = runner.invoke(app, enroll)
    finally:
        get_settings.cache_clear()
        root.handlers[:], root.level = handlers, level
    assert refused_clinic.exit_code == 2 and "--name: contains" in refused_clinic.output
    assert refused.exit_code == 2, refused.output
    assert "--first-name: contains a" in refused.output and f"U+{ord(char):04X}" in refused.output
    engine = make_engine(database_url)
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Patient)).one() == 0
    engine.dispose()


@CASES
def test_a_sign_in_or_a_search_with_it_is_an_answer_not_a_server_error(api: Api, char: str) -> None:
    from reminders.app import create_app
    from tests.web.conftest import TestClient

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
        assert client.get("/clinic/patients", params={"q": f"An{char}a"}).status_code == 200
    with TestClient(
        create_app(api.rt), base_url="https://testserver", follow_redirects=False
    ) as visitor:
        form = {"csrf_token": csrf(visitor), "email": f"sam{char}@x.example", "password": "p" * 12}
        assert visitor.post("/clinic/sign-in", data=form).status_code == 400
