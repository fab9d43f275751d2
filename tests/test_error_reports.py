"""Error reports: real Sentry events, scrubbed of contacts, bodies and credentials."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sentry_sdk
from fastapi import FastAPI
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport
from starlette.exceptions import StarletteDeprecationWarning
from typer.testing import CliRunner

from reminders.channels.twilio_sms import TwilioSMS
from reminders.cli import app as cli
from reminders.config import Settings, get_settings
from reminders.error_reports import init_error_reports
from tests.fakes.sentry_server import SentryServer
from tests.fakes.twilio_server import TwilioServer

with warnings.catch_warnings():
    # Starlette's test client now prefers the httpx2 package; httpx still works the same.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

PHONE, EMAIL = "+12125550101", "ana.lopez@example.com"
DSN = "https://public@sentry.invalid/1"  # never dialled: the transport below keeps envelopes


class MemoryTransport(Transport):
    """Keeps every envelope in memory instead of sending it."""

    def __init__(self) -> None:
        super().__init__()
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    def events(self) -> list[dict[str, Any]]:
        return [event for envelope in self.envelopes if (event := envelope.get_event()) is not None]


def forget_sentry() -> None:
    """Back to no client and empty scopes, so no other test reports or sees breadcrumbs."""
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)
    for scope in (
        sentry_sdk.get_global_scope(),
        sentry_sdk.get_isolation_scope(),
        sentry_sdk.get_current_scope(),
    ):
        scope.clear()


@pytest.fixture
def reports() -> Iterator[MemoryTransport]:
    forget_sentry()
    transport = MemoryTransport()
    settings = Settings(sentry_dsn=DSN, sentry_environment="test", _env_file=None)  # type: ignore[call-arg]
    assert init_error_reports(settings, process="worker", transport=transport)
    yield transport
    forget_sentry()


def reported_data(event: dict[str, Any]) -> str:
    """The event as JSON, less the source lines around each frame (this file's own code)."""
    source = ("pre_context", "context_line", "post_context")
    for exception in event.get("exception", {}).get("values", []):
        for frame in exception.get("stacktrace", {}).get("frames", []):
            for key in source:
                frame.pop(key, None)
    return json.dumps(event)


def assert_no_contact(event: dict[str, Any]) -> None:
    text = reported_data(event)
    assert "2125550101" not in text and "ana.lopez" not in text


def test_an_exception_event_arrives_without_the_phone_number_or_email(reports) -> None:
    try:
        raise ValueError(f"Twilio refused {PHONE} for {EMAIL}")
    except ValueError as exc:
        sentry_sdk.capture_exception(exc)
    [event] = reports.events()
    assert_no_contact(event)
    [exception] = event["exception"]["values"]
    assert exception["value"] == "Twilio refused +1******0101 for a***@example.com"
    assert (event["environment"], event["tags"]["process"]) == ("test", "worker")
    client = sentry_sdk.get_client()
    assert client.should_send_default_pii() is False
    options = client.options
    assert options["include_local_variables"] is False
    assert options["max_request_body_size"] == "never"
    assert all("vars" not in frame for frame in exception["stacktrace"]["frames"])


def test_a_logged_error_and_the_breadcrumbs_before_it_are_masked(reports, caplog) -> None:
    caplog.set_level(logging.INFO)
    log = logging.getLogger("reminders.api.twilio")
    log.info("text from %s", PHONE)
    log.error("could not answer %s", EMAIL, extra={"body": "Ana, your refill", "outbox_id": 7})
    [event] = reports.events()
    assert_no_contact(event)
    assert event["logentry"]["formatted"] == "could not answer a***@example.com"
    assert event["logentry"]["params"] == ["a***@example.com"]
    assert event["extra"]["body"] == "[redacted]" and event["extra"]["outbox_id"] == 7
    messages = [crumb.get("message") for crumb in event["breadcrumbs"]["values"]]
    assert "text from +1******0101" in messages
    assert "Ana, your refill" not in reported_data(event)


def test_a_failed_request_is_reported_without_body_cookies_query_or_authorization(
    reports,
) -> None:
    web = FastAPI()

    @web.post("/v1/patients")
    def enroll() -> None:
        raise RuntimeError(f"could not enroll {PHONE}")

    client = TestClient(web, raise_server_exceptions=False)
    client.cookies.set("session", "staff-session-cookie")
    response = client.post(
        "/v1/patients?phone=%2B12125550101",
        json={"first_name": "Ana", "phone": PHONE, "email": EMAIL},
        headers={"Authorization": "Bearer rk_live_secret", "X-Twilio-Signature": "c2ln"},
    )
    assert response.status_code == 500
    [event] = reports.events()
    assert_no_contact(event)
    request = event["request"]
    assert request["url"].endswith("/v1/patients") and request["method"] == "POST"
    assert not {"data", "cookies", "query_string"} & request.keys()
    headers = {name.lower() for name in request["headers"]}
    assert not {"authorization", "cookie", "x-twilio-signature"} & headers
    text = reported_data(event)
    assert "rk_live_secret" not in text and "staff-session" not in text
    assert event["exception"]["values"][-1]["value"] == "could not enroll +1******0101"


def test_the_breadcrumb_of_a_twilio_lookup_leaves_without_its_query(reports) -> None:
    with TwilioServer() as twilio:
        sender = TwilioSMS(
            account_sid=twilio.account_sid,
            auth_token=twilio.auth_token,
            from_number="+12125550000",
            base_url=twilio.url,
            mps=1000,
        )
        try:  # the reaper's question: was this SMS sent to this number?
            assert (
                sender.find_sent(to=PHONE, body="x", since=datetime(2026, 1, 1, tzinfo=UTC)) is None
            )
        finally:
            sender.close()
    sentry_sdk.capture_message("reaper: could not settle outbox 7")
    [event] = reports.events()
    lookups = [crumb for crumb in event["breadcrumbs"]["values"] if crumb.get("type") == "http"]
    assert lookups and all(crumb["data"]["url"].endswith("/Messages.json") for crumb in lookups)
    assert not any("http.query" in crumb["data"] for crumb in lookups)
    assert_no_contact(event)


def test_a_transaction_never_leaves(reports) -> None:
    with sentry_sdk.start_transaction(name="tick", sampled=True):
        pass
    sentry_sdk.capture_message("after the tick")
    kinds = [item.type for envelope in reports.envelopes for item in envelope.items]
    assert "transaction" not in kinds and "event" in kinds


def test_without_a_dsn_nothing_is_initialised(monkeypatch: pytest.MonkeyPatch) -> None:
    forget_sentry()
    monkeypatch.delenv("SENTRY_DSN", raising=False)
    assert init_error_reports(Settings(_env_file=None), process="web") is False  # type: ignore[call-arg]
    assert not sentry_sdk.is_initialized()


@pytest.mark.parametrize("command", ["web", "worker"])
def test_the_web_and_worker_commands_report_to_sentry_dsn(
    command: str, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forget_sentry()
    seen: dict[str, bool] = {}

    def serve(*_args: Any, **_kwargs: Any) -> None:
        seen["initialised"] = sentry_sdk.is_initialized()
        sentry_sdk.capture_message(f"{command} started for {PHONE}")

    monkeypatch.setattr("uvicorn.run", serve)
    monkeypatch.setattr("reminders.worker.run", serve)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'reports.db'}")
    monkeypatch.setenv("SECRET_KEY", "error-reports-secret-for-tests")
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    with SentryServer() as server:
        monkeypatch.setenv("SENTRY_DSN", server.dsn)
        get_settings.cache_clear()
        try:
            result = CliRunner().invoke(cli, [command], catch_exceptions=False)
            sentry_sdk.flush(timeout=10)
        finally:
            forget_sentry()
            get_settings.cache_clear()
            root.handlers[:], root.level = handlers, level
    assert result.exit_code == 0, result.output
    assert seen == {"initialised": True}
    [event] = server.events()
    assert event["message"] == f"{command} started for +1******0101"
    assert event["tags"]["process"] == command
