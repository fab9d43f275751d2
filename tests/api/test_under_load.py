"""A large import never makes the clinic's other requests wait, and never loses a STOP."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select
from twilio.request_validator import RequestValidator

from reminders import importer
from reminders.clock import utcnow
from reminders.db import session_scope
from reminders.models import Patient
from reminders.runtime import Runtime
from reminders.services import create_clinic, enroll
from tests.api.conftest import AUTH_TOKEN, BASE_URL, with_web_settings
from tests.web.conftest import serve

ROWS = 10_000
STOPS = 20
READS = 50


def large_file() -> bytes:
    today = utcnow().date().isoformat()
    # Every row is SMS: the file needs no email column.
    lines = ["first_name,phone,channel,timezone,start_date"]
    lines += [f"P{n},+1212555{n:04d},sms,America/New_York,{today}" for n in range(ROWS)]
    return ("\n".join(lines) + "\n").encode()


def stop(url: str, phone: str, n: int) -> int:
    params = {"From": phone, "To": "+15005550006", "Body": "STOP", "MessageSid": f"SM{n:032d}"}
    path = "/webhooks/twilio/inbound"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(f"{BASE_URL}{path}", params)
    response = httpx.post(
        f"{url}{path}", data=params, headers={"X-Twilio-Signature": signature}, timeout=60
    )
    return response.status_code


def test_a_large_import_leaves_reads_answering_and_applies_every_stop(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = with_web_settings(runtime)
    phones = [f"+1646555{n:04d}" for n in range(STOPS)]
    with session_scope(rt.engine) as session:
        clinic, key = create_clinic(
            session, name="Riverside Dermatology", help_contact="(212) 555-0100", now=utcnow()
        )
        for n, phone in enumerate(phones):
            raw = {
                "first_name": f"S{n}",
                "phone": phone,
                "channel": "sms",
                "timezone": "America/New_York",
                "start_date": utcnow().date().isoformat(),
            }
            enroll(session, clinic=clinic, raw=raw, source="staff", ctx=rt.context(utcnow()))
    # The server runs in this process: know when the import starts writing, not guess.
    writing, write_batch = threading.Event(), importer._write_batch

    def batch(*args: Any, **kwargs: Any) -> Any:
        written = write_batch(*args, **kwargs)
        writing.set()
        return written

    monkeypatch.setattr(importer, "_write_batch", batch)
    auth = {"Authorization": f"Bearer {key}"}
    results: dict[str, Any] = {}
    with serve(rt) as url:

        def run_import() -> None:
            files = {"file": ("patients.csv", large_file(), "text/csv")}
            response = httpx.post(f"{url}/v1/imports", files=files, headers=auth, timeout=300)
            results["import"] = response.status_code, response.json()
            results["imported_at"] = time.monotonic()

        sent: list[float] = []

        def read() -> int:
            sent.append(time.monotonic())
            return httpx.get(f"{url}/v1/patients", headers=auth, timeout=60).status_code

        def stop_text(n: int) -> int:
            sent.append(time.monotonic())
            return stop(url, phones[n], n)

        importing = threading.Thread(target=run_import)
        importing.start()
        while not writing.wait(0.5):
            assert importing.is_alive(), f"the import ended before writing: {results}"
        # One thread per request: all of them are made at once, while the import writes.
        with ThreadPoolExecutor(max_workers=READS + STOPS) as pool:
            reads = [pool.submit(read) for _ in range(READS)]
            stops = [pool.submit(stop_text, n) for n in range(STOPS)]
            codes = [future.result() for future in reads + stops]
        importing.join(300)
    assert max(sent) < results["imported_at"], "every request was made while the import ran"
    assert [code for code in codes if code >= 500] == []
    assert set(codes[:READS]) == {200} and set(codes[READS:]) == {200}
    status, report = results["import"]
    assert status == 201 and len(report["enrolled"]) == ROWS
    with Session(rt.engine) as session:
        opted_out = session.exec(
            select(Patient.phone).where(Patient.sms_opted_out == True)  # noqa: E712
        ).all()
    assert sorted(opted_out) == sorted(phones), "every STOP was applied"
