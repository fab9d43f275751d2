"""A patient enrolled from the command line receives every planned message once, on time."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time
from typer.testing import CliRunner

from reminders.cli import app
from reminders.config import get_settings
from tests.helpers import CLINIC_ADD

START = datetime.fromisoformat("2026-03-02T14:00:00+00:00")  # a Monday, 09:00 in New York


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Run `reminders ...` in-process with a fresh database and a console outbox file."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'e2e.db'}")
    monkeypatch.setenv("CONSOLE_OUTBOX", str(tmp_path / "outbox.jsonl"))
    monkeypatch.setenv("PLAN_HORIZON_DAYS", "7")
    get_settings.cache_clear()
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout

    yield run
    get_settings.cache_clear()


def delivered(tmp_path: Path) -> list[dict]:
    path = tmp_path / "outbox.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_planned_message_arrives_once_in_order_at_its_instant(cli, tmp_path: Path) -> None:
    with freeze_time(START):
        cli("db", "upgrade")
        clinic = json.loads(cli(*CLINIC_ADD, "--format", "json"))
        enrolled = json.loads(
            cli(
                "enroll",
                "--clinic",
                str(clinic["id"]),
                "--first-name",
                "Ana",
                "--phone",
                "(212) 555-0101",
                "--tz",
                "America/New_York",
                "--start",
                "2026-03-03",
                "--ipledge",
                "--format",
                "json",
            )
        )
        # After-care is planned only from a last dose the clinic records: here, up front.
        cli("course", "end", str(enrolled["course_id"]), "--last-dose", "2026-07-21")
        timeline = json.loads(
            cli("preview", "--course", str(enrolled["course_id"]), "--format", "json")
        )
    assert len(timeline) > 25, "a whole course and its after-care"
    instants = [
        datetime.fromisoformat(entry["due_at"].replace("Z", "+00:00")) for entry in timeline
    ]
    assert instants == sorted(instants)

    for entry, instant in zip(timeline, instants, strict=True):
        with freeze_time(instant - timedelta(minutes=1)):
            cli("send-due")
        assert entry["key"] not in {m["key"] for m in delivered(tmp_path)}, "sent early"
        with freeze_time(instant):
            cli("send-due")
            cli("send-due")  # a second pass at the same instant sends nothing again
    messages = delivered(tmp_path)
    assert [m["key"] for m in messages] == [entry["key"] for entry in timeline]
    assert [m["sent_at"] for m in messages] == [i.isoformat() for i in instants]
    assert [m["body"] for m in messages] == [entry["body"] for entry in timeline]
    assert all(m["to"] == "+12125550101" for m in messages)
    assert messages[0]["body"].endswith("Reply STOP to opt out, HELP for help")
    assert not any("Msg&data rates" in m["body"] for m in messages[1:])
    assert all("Reply STOP to opt out" in m["body"] for m in messages)
