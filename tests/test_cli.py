"""The `reminders` command: creating, enrolling, importing, previewing, and refusing bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlmodel import Session, create_engine, func, select
from typer.testing import CliRunner

from reminders.cli import app
from reminders.config import get_settings
from reminders.models import ConsentEvent, Course, Message, Patient
from tests.helpers import CLINIC_ADD

NOW = "2026-03-16T18:00:00+00:00"


class Cli:
    def __init__(self, tmp_path: Path) -> None:
        self.url = f"sqlite:///{tmp_path / 'cli.db'}"
        self.runner = CliRunner()

    def __call__(self, *args: str, code: int = 0):
        result = self.runner.invoke(app, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result

    def counts(self) -> dict[str, int]:
        engine = create_engine(self.url)
        with Session(engine) as session:
            counts = {
                model.__name__: session.exec(select(func.count()).select_from(model)).one()
                for model in (Patient, Course, Message, ConsentEvent)
            }
        engine.dispose()
        return counts


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    runner = Cli(tmp_path)
    monkeypatch.setenv("DATABASE_URL", runner.url)
    monkeypatch.delenv("CAREPLAN_PATH", raising=False)
    get_settings.cache_clear()
    with freeze_time(NOW):
        runner("db", "upgrade")
        yield runner
    get_settings.cache_clear()


@pytest.fixture
def clinic_id(cli) -> str:
    out = cli(*CLINIC_ADD, "--format", "json").stdout
    data = json.loads(out)
    assert data["api_key"].startswith("rk_")
    return str(data["id"])


def enroll_args(clinic_id: str, **changes: str) -> list[str]:
    options = {
        "--first-name": "Ana",
        "--phone": "+12125550101",
        "--tz": "America/New_York",
        "--start": "2026-03-20",
        "--channel": "sms",
    }
    options.update(changes)
    args = ["enroll", "--clinic", clinic_id]
    for name, value in options.items():
        if value is not None:
            args += [name, value]
    return args


def test_every_command_has_help(cli) -> None:
    for command in (
        ["db", "upgrade"],
        ["clinic", "add"],
        ["clinic", "rotate-key"],
        ["clinic", "update"],
        ["replies"],
        ["enroll"],
        ["import"],
        ["preview"],
        ["send-due"],
        ["worker"],
        ["status"],
        ["demo"],
        ["course", "pause"],
        ["course", "end"],
        ["course", "record-test"],
        ["clinic", "key", "add"],
        ["clinic", "key", "list"],
        ["clinic", "key", "revoke"],
        ["clinic", "retention"],
        ["staff", "add"],
        ["staff", "disable"],
        ["staff", "enable"],
        ["staff", "reset-password"],
        ["staff", "list"],
        ["patient", "erase"],
        ["patients"],
        ["audit"],
    ):
        assert "Usage" in cli(*command, "--help").stdout


def test_enroll_prints_the_new_ids_as_json(cli, clinic_id) -> None:
    data = json.loads(cli(*enroll_args(clinic_id), "--format", "json").stdout)
    assert set(data) == {"patient_id", "course_id"}
    assert cli.counts()["Patient"] == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"--phone": "12"}, "--phone"),
        ({"--phone": "+1 212 555 01"}, "--phone"),  # too short to be a real number
        ({"--phone": "+1 200 555 0101"}, "--phone"),  # area code 200 does not exist
        ({"--channel": "email", "--phone": None, "--email": "ana@"}, "--email"),
        ({"--channel": "email", "--phone": None}, "--email"),
        ({"--channel": "both"}, "--email"),
        ({"--channel": "fax"}, "--channel"),
        ({"--tz": "Mars/Olympus_Mons"}, "--tz"),
        ({"--tz": "Factory"}, "--tz"),
        ({"--locale": "fr"}, "--locale"),
        ({"--start": "2027-06-01"}, "--start"),
        ({"--start": "2025-01-01"}, "--start"),
        ({"--start": "2026-02-30"}, "--start"),
        ({"--weeks": "0"}, "--weeks"),
        ({"--first-name": " "}, "--first-name"),
    ],
)
def test_bad_enrolment_input_is_one_line_naming_the_field_and_writes_nothing(
    cli, clinic_id, changes, field
) -> None:
    before = cli.counts()
    result = cli(*enroll_args(clinic_id, **changes), code=2)
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1
    assert message.startswith(f"error: {field}: ")
    assert cli.counts() == before


def test_a_second_active_course_for_the_same_phone_is_refused(cli, clinic_id) -> None:
    cli(*enroll_args(clinic_id))
    before = cli.counts()
    result = cli(*enroll_args(clinic_id, **{"--first-name": "Ann"}), code=2)
    assert (
        result.stderr.strip()
        == "error: --phone: already enrolled in an active course at this clinic"
    )
    assert cli.counts() == before


def test_an_unknown_clinic_is_refused(cli) -> None:
    result = cli(*enroll_args("999"), code=3)
    assert "clinic 999 not found" in result.stderr


def test_a_care_plan_with_a_bad_offset_stops_every_command(
    cli, clinic_id, tmp_path, monkeypatch
) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[[message]]\nid = "hello"\ntopic = "welcome"\nanchor = "start"\n'
        'offset = "3x"\npriority = 1\n'
    )
    monkeypatch.setenv("CAREPLAN_PATH", str(plan))
    get_settings.cache_clear()
    result = cli(*enroll_args(clinic_id), code=2)
    assert "offset" in result.stderr and "'3x'" in result.stderr
    assert cli.counts()["Patient"] == 0


def test_a_care_plan_naming_an_unknown_template_stops_every_command(
    cli, clinic_id, tmp_path, monkeypatch
) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[[message]]\nid = "hello"\ntopic = "welcome"\nanchor = "start"\n'
        'offset = "0d"\npriority = 1\ntemplate = "no_such_text"\n'
    )
    monkeypatch.setenv("CAREPLAN_PATH", str(plan))
    get_settings.cache_clear()
    result = cli(*enroll_args(clinic_id), code=2)
    assert "template 'no_such_text' is missing" in result.stderr


CSV = (
    "\ufefffirst_name,phone,email,channel,timezone,start_date,weeks,locale,ipledge\r\n"
    "Ana,(212) 555-0101,,sms,America/New_York,2026-03-20,,,\r\n"
    "Ben,,ben@example.com,email,America/Los_Angeles,2026-03-21,24,es,no\r\n"
    "Cy,555-0102,,sms,America/Chicago,2026-03-22,,,\r\n"
    "Di,2125550103,di@example.com,both,Europe/Nowhere,2026-03-22,,,yes\r\n"
)


def test_import_enrolls_valid_rows_and_reports_each_bad_one(cli, clinic_id, tmp_path) -> None:
    path = tmp_path / "patients.csv"
    path.write_bytes(CSV.encode())
    result = cli("import", str(path), "--clinic", clinic_id, "--keep-valid", code=1)
    assert result.stdout.splitlines() == [
        "2 enrolled, 2 refused, 0 already enrolled",
        "row 4 (Cy): phone: '555-0102' is not a valid phone number",
        "row 5 (Di): timezone: 'Europe/Nowhere' is not a known IANA time zone",
    ]
    assert cli.counts()["Patient"] == 2


def test_import_by_default_enrolls_nobody_when_a_row_is_refused(cli, clinic_id, tmp_path) -> None:
    path = tmp_path / "patients.csv"
    path.write_bytes(CSV.encode())
    result = cli("import", str(path), "--clinic", clinic_id, code=1)
    assert result.stdout.splitlines()[:2] == [
        "0 enrolled, 2 refused, 0 already enrolled",
        "nothing was saved: correct the rows below, or use --keep-valid",
    ]
    assert cli.counts()["Patient"] == 0


def test_importing_a_file_twice_enrolls_nobody_twice(cli, clinic_id, tmp_path) -> None:
    path = tmp_path / "patients.csv"
    path.write_text(
        "first_name,last_name,external_id,phone,channel,timezone,start_date\n"
        "Ana,Lopez,A-1,2125550101,sms,America/New_York,2026-03-20\n"
    )
    cli("import", str(path), "--clinic", clinic_id)
    again = cli("import", str(path), "--clinic", clinic_id)
    assert again.stdout.splitlines() == ["0 enrolled, 0 refused, 1 already enrolled"]
    assert cli.counts()["Patient"] == 1


def test_patients_lists_each_patient_with_their_course_ids_as_json(cli, clinic_id) -> None:
    first = json.loads(
        cli(*enroll_args(clinic_id), "--external-id", "A-1", "--format", "json").stdout
    )
    cli("course", "stop", str(first["course_id"]))
    # The same chart number: a new course on the same record, not a second patient.
    second = json.loads(
        cli(
            *enroll_args(clinic_id, **{"--phone": "+12125550177"}),
            "--external-id",
            "A-1",
            "--format",
            "json",
        ).stdout
    )
    assert second["patient_id"] == first["patient_id"]
    listed = json.loads(cli("patients", "--clinic", clinic_id, "--format", "json").stdout)
    assert listed["total"] == 1
    [item] = listed["items"]
    assert item["course_ids"] == [first["course_id"], second["course_id"]]
    assert [c["status"] for c in item["courses"]] == ["stopped", "active"]
    found = cli("patients", "--clinic", clinic_id, "--search", "(212) 555-0177").stdout
    assert found.splitlines()[0] == "1 of 1 patients, newest first"
    none = cli("patients", "--clinic", clinic_id, "--search", "Zed").stdout
    assert none.splitlines() == ["0 of 0 patients, newest first"]


def test_import_reads_lf_files_without_a_bom_and_reports_json(cli, clinic_id, tmp_path) -> None:
    path = tmp_path / "patients.csv"
    path.write_text(CSV.replace("\ufeff", "").replace("\r\n", "\n"))
    result = cli(
        "import", str(path), "--clinic", clinic_id, "--keep-valid", "--format", "json", code=1
    )
    report = json.loads(result.stdout)
    assert [row["row"] for row in report["enrolled"]] == [2, 3]
    assert [(e["row"], e["field"]) for e in report["errors"]] == [(4, "phone"), (5, "timezone")]


def test_import_refuses_a_file_with_an_unknown_column_and_writes_nothing(
    cli, clinic_id, tmp_path
) -> None:
    path = tmp_path / "patients.csv"
    path.write_text(
        "first_name,phone,email,channel,timezone,start_date,shoe_size\n"
        "Ana,2125550101,,sms,America/New_York,2026-03-20,9\n"
    )
    result = cli("import", str(path), "--clinic", clinic_id, code=2)
    assert result.stderr.strip() == "error: shoe_size: unknown column"
    assert cli.counts()["Patient"] == 0


def test_preview_without_a_database_lists_the_whole_course_as_json(cli) -> None:
    out = cli(
        "preview",
        "--start",
        "2026-04-01",
        "--tz",
        "Europe/Madrid",
        "--locale",
        "es",
        "--channel",
        "email",
        "--format",
        "json",
    ).stdout
    entries = json.loads(out)
    assert entries[0]["key"] == "welcome"
    assert entries[0]["local_time"] == "2026-04-01T10:00:00+02:00"
    assert entries[0]["due_at"] == "2026-04-01T08:00:00Z"
    assert all(
        {"key", "topics", "channel", "due_at", "local_time", "body", "subject"} <= set(e)
        for e in entries
    )
    assert any(e["key"] == "after_6_months" for e in entries)


def test_the_text_preview_names_the_zone_and_gives_utc(cli) -> None:
    out = cli("preview", "--start", "2026-04-01", "--tz", "Europe/Madrid").stdout.splitlines()
    assert out[0] == "times in Europe/Madrid local time, UTC in brackets"
    assert out[1].startswith("2026-04-01 10:00 CEST (08:00 UTC)  sms")


def test_preview_refuses_an_unknown_zone(cli) -> None:
    result = cli("preview", "--start", "2026-04-01", "--tz", "Nowhere/Land", code=2)
    assert result.stderr.startswith("error: --tz: ")


def test_course_actions_from_the_command_line(cli, clinic_id) -> None:
    course = json.loads(cli(*enroll_args(clinic_id), "--format", "json").stdout)["course_id"]
    assert "paused" in cli("course", "pause", str(course)).stdout
    assert "active" in cli("course", "resume", str(course)).stdout
    assert "active" in cli("course", "set-start", str(course), "--start", "2026-03-25").stdout
    result = cli("course", "end", str(course), "--last-dose", "2026-01-01", code=2)
    assert result.stderr.strip() == "error: --last-dose: is before the course start date"
    result = cli("course", "end", str(course), "--last-dose", "9999-12-31", code=2)
    assert result.stderr.strip() == (
        "error: --last-dose: 9999-12-31 is more than a year from today"
    )
    assert "stopped" in cli("course", "stop", str(course)).stdout
    assert cli("course", "resume", str(course), code=2).stderr.startswith("error: status:")


def clinic_row(cli, clinic_id: str):  # type: ignore[no-untyped-def]
    from reminders.models import Clinic

    engine = create_engine(cli.url)
    with Session(engine) as session:
        found = session.get(Clinic, int(clinic_id))
    engine.dispose()
    return found


def test_clinic_add_requires_a_help_phone(cli) -> None:
    result = cli("clinic", "add", "--name", "Lakeside Skin", code=2)
    assert "--help-contact" in result.stderr


@pytest.mark.parametrize(
    ("phone", "reason"),
    [
        ("555-0100", "'555-0100' is not a valid phone number"),
        ("call us", "'call us' is not a phone number"),
        ("", "required: the phone patients call about anything urgent"),
    ],
)
def test_a_bad_help_phone_is_refused_naming_the_field(cli, phone: str, reason: str) -> None:
    result = cli("clinic", "add", "--name", "Lakeside Skin", "--help-contact", phone, code=2)
    assert result.stderr.strip() == f"error: --help-contact: {reason}"


def test_the_help_phone_is_kept_in_national_format_and_a_foreign_one_in_international(
    cli,
) -> None:
    local = json.loads(
        cli(
            "clinic", "add", "--name", "Lakeside", "--help-contact", "+12125550100",
            "--format", "json",
        ).stdout
    )  # fmt: skip
    abroad = json.loads(
        cli(
            "clinic", "add", "--name", "Madrid", "--help-contact", "+34 912 345 678",
            "--format", "json",
        ).stdout
    )  # fmt: skip
    assert (local["help_contact"], abroad["help_contact"]) == ("(212) 555-0100", "+34 912 34 56 78")


def test_clinic_update_sets_the_address_told_of_replies_and_clears_it(cli, clinic_id) -> None:
    out = cli("clinic", "update", clinic_id, "--notify-email", "Desk@Riverside.example").stdout
    assert "new replies told to Desk@riverside.example" in out
    assert clinic_row(cli, clinic_id).notify_email == "Desk@riverside.example"
    cli("clinic", "update", clinic_id, "--notify-email", "")
    assert clinic_row(cli, clinic_id).notify_email is None


def test_clinic_update_refuses_a_bad_value_and_changes_nothing(cli, clinic_id) -> None:
    result = cli("clinic", "update", clinic_id, "--help-contact", "12", code=2)
    assert result.stderr.strip().startswith("error: --help-contact: ")
    assert clinic_row(cli, clinic_id).help_contact == "(212) 555-0100"
    assert cli("clinic", "update", clinic_id, code=2).stderr.startswith("error: clinic: ")


def test_replies_lists_a_clinics_unread_texts_newest_first(cli, clinic_id) -> None:
    from datetime import datetime

    from reminders.db import make_engine
    from tests.conftest import make_runtime
    from tests.helpers import receive

    patient = json.loads(cli(*enroll_args(clinic_id), "--format", "json").stdout)["patient_id"]
    engine = make_engine(cli.url)
    rt = make_runtime(engine)
    for body in ("HELP", "Is it normal\nto peel?"):
        receive(rt, phone="+12125550101", body=body, at=datetime.fromisoformat(NOW))
    engine.dispose()
    unread = json.loads(
        cli("replies", "--clinic", clinic_id, "--unread", "--format", "json").stdout
    )
    assert [(r["patient_id"], r["kind"], r["state"], r["body"]) for r in unread] == [
        (patient, "message", "unread", "Is it normal\nto peel?")
    ]
    lines = cli("replies", "--clinic", clinic_id).stdout.splitlines()
    assert len(lines) == 2
    assert "unread   message  patient" in lines[0] and lines[0].endswith("Is it normal to peel?")
    assert "2026-03-16 14:00 EDT" in lines[0]
    assert "handled  help" in lines[1]
    assert cli("replies", "--clinic", "99", code=3).stderr.strip() == "error: clinic 99 not found"


def test_enrolling_a_number_that_opted_out_says_no_text_will_be_sent(cli, clinic_id) -> None:
    from datetime import datetime

    from reminders.db import make_engine
    from tests.conftest import make_runtime
    from tests.helpers import receive

    first = json.loads(cli(*enroll_args(clinic_id), "--format", "json").stdout)
    engine = make_engine(cli.url)
    receive(make_runtime(engine), phone="+12125550101", body="STOP", at=datetime.fromisoformat(NOW))
    engine.dispose()
    cli("course", "stop", str(first["course_id"]))
    out = cli(*enroll_args(clinic_id)).stdout
    assert "note: this number opted out of texts earlier: none are sent" in out
