"""First contact with the command line: whole console messages, the clinic page's address,
a demo that leaves nothing behind."""

from __future__ import annotations

import io
import tempfile
import threading
import time
from pathlib import Path

import pytest

from reminders.channels.base import OutgoingMessage
from reminders.channels.console import Console
from reminders.cli.operations import clinic_address


class SlowWrites(io.StringIO):
    """A terminal that lets other threads run between any two writes."""

    def write(self, text: str) -> int:
        written = super().write(text)
        time.sleep(0)  # hands the GIL to the other senders; no time needs to pass
        return written


def test_concurrent_console_sends_print_each_message_whole() -> None:
    out = SlowWrites()
    channels = [Console("sms", out=out), Console("email", out=out)]

    def send(n: int) -> None:
        message = OutgoingMessage(
            outbox_id=n,
            course_id=1,
            key=f"key-{n}",
            channel="sms",
            to="+12125550101",
            body=f"body of {n}",
            subject=f"subject of {n}",
        )
        channels[n % 2].send(message)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = out.getvalue().splitlines()
    assert len(lines) == 120
    for start in range(0, 120, 3):
        n = lines[start].rsplit("key-", 1)[1]
        assert lines[start + 1 : start + 3] == [f"  Subject: subject of {n}", f"  body of {n}"]


@pytest.mark.parametrize(
    ("public", "host", "port", "address"),
    [
        (None, "0.0.0.0", 8000, "http://127.0.0.1:8000/clinic"),
        (None, "127.0.0.1", 8080, "http://127.0.0.1:8080/clinic"),
        (None, "::1", 8000, "http://[::1]:8000/clinic"),
        ("https://reminders.example.org/", "0.0.0.0", 8000, "https://reminders.example.org/clinic"),
    ],
)
def test_the_web_process_names_the_clinic_pages_address(
    public: str | None, host: str, port: int, address: str
) -> None:
    assert clinic_address(public, host, port) == address


def test_the_demo_removes_its_throw_away_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from reminders.demo import run_demo

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("REMINDERS_ENV", "development")
    run_demo(days=2)
    assert list(tmp_path.iterdir()) == []
    assert "The demo database is removed" in capsys.readouterr().out
