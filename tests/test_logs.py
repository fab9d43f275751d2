"""Log lines: one structlog chain for every record, JSON or text, masked and redacted."""

from __future__ import annotations

import json
import logging
import os
import pty
import re
import threading
from collections.abc import Callable, Iterator

import pytest
import structlog
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert
from sqlalchemy.exc import IntegrityError

from reminders import logs
from reminders.config import Settings
from reminders.logs import bind_worker, log_context, setup_logging
from reminders.privacy import mask_text

PHONE, EMAIL = "+12125550101", "ana.lopez@example.com"


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """setup_logging with a LOG_FORMAT, undone after the test."""
    monkeypatch.setattr(logs, "_process_context", {})
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def configure(log_format: str) -> None:
        setup_logging(Settings(log_format=log_format, _env_file=None))  # type: ignore[call-arg]

    yield configure
    root.handlers[:], root.level = handlers, level
    structlog.reset_defaults()


def last_line(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().err.strip().splitlines()[-1]


def json_lines(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().err.strip().splitlines()]


def integrity_error() -> IntegrityError:
    """A real SQLAlchemy error whose message quotes the statement's parameters."""
    engine = create_engine("sqlite://")
    patients = Table(
        "patients",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("phone", String, unique=True),
        Column("email", String),
    )
    patients.metadata.create_all(engine)
    try:
        with engine.begin() as connection:
            for _ in range(2):
                connection.execute(insert(patients).values(phone=PHONE, email=EMAIL))
    except IntegrityError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError("the second insert should have been refused")


def test_an_exception_line_in_json_carries_no_contact_and_keeps_its_keys(configure, capsys) -> None:
    configure("json")
    error = integrity_error()
    assert PHONE in str(error) and EMAIL in str(error)  # what the traceback would quote
    try:
        raise RuntimeError(f"enrolment failed for {PHONE} <{EMAIL}>") from error
    except RuntimeError:
        logging.getLogger("reminders.services").exception("could not enroll %s", EMAIL)
    output = capsys.readouterr().err
    assert "2125550101" not in output and "ana.lopez" not in output
    [entry] = [json.loads(line) for line in output.strip().splitlines()]
    assert {"event", "level", "logger", "timestamp", "exception"} <= entry.keys()
    assert entry["event"] == "could not enroll a***@example.com"
    assert (entry["level"], entry["logger"]) == ("error", "reminders.services")
    assert "[parameters: ('+1******0101', 'a***@example.com')]" in entry["exception"]
    assert (
        "RuntimeError: enrolment failed for +1******0101 <a***@example.com>" in (entry["exception"])
    )


def test_json_logs_are_one_object_a_line_with_contacts_masked(configure, capsys) -> None:
    configure("json")
    logging.getLogger("reminders.test").warning("could not reach %s or %s", PHONE, EMAIL)
    entry = json.loads(last_line(capsys))
    assert entry["level"] == "warning"
    assert entry["event"] == "could not reach +1******0101 or a***@example.com"


def test_a_stdlib_record_with_extra_outbox_id_gets_the_field(configure, capsys) -> None:
    configure("json")
    logging.getLogger("reminders.dispatch").info("sent", extra={"outbox_id": 7})
    entry = json.loads(last_line(capsys))
    assert (entry["event"], entry["outbox_id"]) == ("sent", 7)


def test_log_context_names_the_outbox_and_course_only_inside_the_block(configure, capsys) -> None:
    configure("json")
    log = logging.getLogger("reminders.dispatch")
    with log_context(outbox_id=7, course_id=3):
        log.info("sending")
    log.info("tick done")
    inside, after = json_lines(capsys)
    assert (inside["outbox_id"], inside["course_id"]) == (7, 3)
    assert "outbox_id" not in after and "course_id" not in after


def test_the_bound_worker_id_appears_on_lines_from_every_thread(configure, capsys) -> None:
    configure("json")
    bind_worker("host-41-a1b2c3")
    log = logging.getLogger("reminders.worker")
    log.info("worker started")
    # APScheduler's jobs and the send pool log from threads with a context of their own.
    thread = threading.Thread(target=lambda: log.info("tick"))
    thread.start()
    thread.join()
    assert [entry["worker_id"] for entry in json_lines(capsys)] == ["host-41-a1b2c3"] * 2


def test_body_password_and_other_secret_fields_are_redacted(configure, capsys) -> None:
    configure("json")
    secrets = {
        "body": "Ana, your refill is ready",
        "password": "hunter2hunter2",
        "api_key": "rk_live_abc",
        "authorization": "Bearer rk_live_abc",
        "auth_token": "f00ba4",
    }
    logging.getLogger("reminders.api").info("request", extra={**secrets, "outbox_id": 7})
    entry = json.loads(last_line(capsys))
    assert {name: entry[name] for name in secrets} == dict.fromkeys(secrets, "[redacted]")
    assert entry["outbox_id"] == 7


def test_structlog_loggers_pass_the_same_masking(configure, capsys) -> None:
    configure("json")
    structlog.get_logger("reminders.x").info("texted", to=PHONE, token="abc", reply=f"hi {EMAIL}")
    entry = json.loads(last_line(capsys))
    assert (entry["to"], entry["token"], entry["reply"]) == (
        "+1******0101",
        "[redacted]",
        "hi a***@example.com",
    )
    assert (entry["logger"], entry["level"]) == ("reminders.x", "info")


def test_text_format_is_one_readable_line_without_colours_off_a_terminal(configure, capsys) -> None:
    configure("text")
    logging.getLogger("reminders.dispatch").warning(
        "outbox %s: sms send failed for %s", 7, PHONE, extra={"outbox_id": 7}
    )
    line = last_line(capsys)
    assert "\x1b[" not in line
    assert "[warning  ] outbox 7: sms send failed for +1******0101" in line
    assert line.endswith("[reminders.dispatch] outbox_id=7")
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_auto_format_is_text_on_a_terminal_and_json_elsewhere(
    configure, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure("auto")
    logging.getLogger("reminders.worker").info("to a pipe")
    assert json.loads(last_line(capsys))["event"] == "to a pipe"

    leader, follower = pty.openpty()
    with os.fdopen(follower, "w") as terminal:
        monkeypatch.setattr("sys.stderr", terminal)
        configure("auto")
        logging.getLogger("reminders.worker").info("to a person")
        terminal.flush()
        shown = os.read(leader, 4096).decode()
    os.close(leader)
    assert "\x1b[" in shown  # coloured for the person at the terminal
    plain = re.sub(r"\x1b\[[0-9;]*m", "", shown)
    assert "[info     ] to a person" in plain and plain.rstrip().endswith("[reminders.worker]")


def test_library_records_are_masked_and_lose_uvicorns_coloured_copy(configure, capsys) -> None:
    configure("json")
    logging.getLogger("uvicorn.error").info(
        "Started server process [%d]", 41, extra={"color_message": "Started [\x1b[36m%d\x1b[0m]"}
    )
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5555", "POST", "/unsubscribe/ImFi.q1w2", "1.1", 200
    )
    started, access = json_lines(capsys)
    assert started["event"] == "Started server process [41]" and "color_message" not in started
    assert access["event"] == '127.0.0.1:5555 - "POST /unsubscribe/*** HTTP/1.1" 200'


def test_percent_encoded_contacts_in_a_url_are_masked() -> None:
    url = "/2010-04-01/Accounts/AC1/Messages.json?To=%2B12125550101&Reply=ana.lopez%40example.com"
    assert mask_text(url) == (
        "/2010-04-01/Accounts/AC1/Messages.json?To=%2B1******0101&Reply=a***@example.com"
    )


def test_log_lines_never_carry_an_unsubscribe_token() -> None:
    line = '127.0.0.1:5555 - "POST /unsubscribe/ImFiYzEyMyI.q1w2e3 HTTP/1.1" 200'
    assert mask_text(line) == '127.0.0.1:5555 - "POST /unsubscribe/*** HTTP/1.1" 200'
