"""TwilioSMS driven through the real twilio client against a Twilio-shaped loopback server."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from reminders.channels.base import DeliveryError, OutgoingMessage
from reminders.channels.twilio_sms import TwilioSMS
from reminders.config import ConfigError, Settings
from tests.fakes.twilio_server import TwilioServer
from tests.helpers import max_in_any_window

PATIENT = "+15551234567"
SENDER = "+15550001111"
BODY = "Your clinic: your monthly steps are due this week. Reply STOP to opt out, HELP for help."


def sms(to: str = PATIENT, body: str = BODY, **fields: Any) -> OutgoingMessage:
    return OutgoingMessage(
        outbox_id=7, course_id=3, key="month-1", channel="sms", to=to, body=body, **fields
    )


def failure(channel: TwilioSMS, message: OutgoingMessage | None = None) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        channel.send(message or sms())
    return caught.value


@pytest.fixture
def twilio() -> Iterator[TwilioServer]:
    with TwilioServer() as server:
        yield server


@pytest.fixture
def channel(twilio: TwilioServer) -> Iterator[TwilioSMS]:
    # A high rate so pacing does not slow the tests that are not about pacing.
    sender = TwilioSMS(
        account_sid=twilio.account_sid,
        auth_token=twilio.auth_token,
        from_number=SENDER,
        base_url=twilio.url,
        mps=1000,
    )
    yield sender
    sender.close()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_MESSAGING_SERVICE_SID",
        "TWILIO_FROM_NUMBER",
    ):
        monkeypatch.delenv(name, raising=False)


# -- what arrives ------------------------------------------------------------------------------


def test_send_delivers_to_from_body_callback_and_validity(
    twilio: TwilioServer, channel: TwilioSMS
) -> None:
    receipt = channel.send(
        sms(status_callback="https://clinic.example/twilio/status", validity_seconds=3600)
    )

    [received] = twilio.messages
    assert receipt.provider_id == received.sid
    assert received.sid.startswith("SM") and len(received.sid) == 34
    assert received.fields == {
        "To": PATIENT,
        "From": SENDER,
        "Body": BODY,
        "StatusCallback": "https://clinic.example/twilio/status",
        "ValidityPeriod": "3600",
    }


def test_send_authenticates_with_account_sid_and_token(
    twilio: TwilioServer, channel: TwilioSMS
) -> None:
    channel.send(sms())

    assert twilio.messages[0].auth == (twilio.account_sid, twilio.auth_token)


def test_send_leaves_out_callback_and_validity_when_unset(
    twilio: TwilioServer, channel: TwilioSMS
) -> None:
    channel.send(sms())

    assert set(twilio.messages[0].fields) == {"To", "From", "Body"}


def test_send_through_a_messaging_service_names_no_from(twilio: TwilioServer) -> None:
    service = "MG" + "1" * 32
    sender = TwilioSMS(
        account_sid=twilio.account_sid,
        auth_token=twilio.auth_token,
        messaging_service_sid=service,
        base_url=twilio.url,
        mps=1000,
    )
    try:
        sender.send(sms())
    finally:
        sender.close()

    fields = twilio.messages[0].fields
    assert fields["MessagingServiceSid"] == service
    assert "From" not in fields


def test_send_with_a_wrong_token_fails_without_giving_the_message_up(
    twilio: TwilioServer,
) -> None:
    sender = TwilioSMS(
        account_sid=twilio.account_sid,
        auth_token="rotated-token",
        from_number=SENDER,
        base_url=twilio.url,
        mps=1000,
    )
    try:
        error = failure(sender)
    finally:
        sender.close()

    assert "20003" in error.reason
    assert error.permanent is False
    assert twilio.messages == []


# -- how failures are classified -------------------------------------------------------------


@pytest.mark.parametrize("code", ["21211", "21214", "21408", "21612", "21614", "21606"])
def test_recipient_errors_are_permanent(
    twilio: TwilioServer, channel: TwilioSMS, code: str
) -> None:
    twilio.fail_next(code)

    error = failure(channel)

    assert error.permanent is True
    assert error.opted_out is False
    assert code in error.reason


def test_unsubscribed_recipient_is_permanent_and_opted_out(
    twilio: TwilioServer, channel: TwilioSMS
) -> None:
    twilio.fail_for(PATIENT, "21610")

    error = failure(channel)

    assert (error.permanent, error.opted_out) == (True, True)
    assert "21610" in error.reason


def test_too_many_requests_is_transient_with_retry_after(
    twilio: TwilioServer, channel: TwilioSMS
) -> None:
    twilio.fail_next("429", retry_after=7)

    error = failure(channel)

    assert error.permanent is False
    assert error.retry_after == 7
    assert "20429" in error.reason


def test_retry_after_as_an_http_date_becomes_seconds(
    twilio: TwilioServer, channel: TwilioSMS
) -> None:
    when = datetime.now(UTC) + timedelta(seconds=120)
    twilio.fail_next("429", retry_after=format_datetime(when, usegmt=True))

    error = failure(channel)

    assert error.retry_after is not None
    assert 100 < error.retry_after <= 120


def test_server_error_is_transient(twilio: TwilioServer, channel: TwilioSMS) -> None:
    twilio.fail_next("500")

    error = failure(channel)

    assert error.permanent is False
    assert error.retry_after is None
    assert "500" in error.reason


def test_service_unavailable_passes_on_its_retry_after(
    twilio: TwilioServer, channel: TwilioSMS
) -> None:
    twilio.fail_next("503", retry_after=30)

    error = failure(channel)

    assert (error.permanent, error.retry_after) == (False, 30)


def test_dropped_connection_is_transient(twilio: TwilioServer, channel: TwilioSMS) -> None:
    twilio.fail_next("drop")

    error = failure(channel)

    assert error.permanent is False
    assert twilio.messages == []


def test_slow_answer_times_out_as_transient(twilio: TwilioServer) -> None:
    twilio.fail_next("slow", delay=2.0)
    sender = TwilioSMS(
        account_sid=twilio.account_sid,
        auth_token=twilio.auth_token,
        from_number=SENDER,
        base_url=twilio.url,
        timeout=0.2,
        mps=1000,
    )
    try:
        error = failure(sender)
    finally:
        sender.close()

    assert error.permanent is False
    assert "timeout" in error.reason


def test_channel_recovers_after_a_dropped_connection(
    twilio: TwilioServer, channel: TwilioSMS
) -> None:
    twilio.fail_next("drop")
    failure(channel)

    receipt = channel.send(sms())

    assert receipt.provider_id == twilio.messages[0].sid


def test_logs_never_show_the_number_the_body_or_the_token(
    twilio: TwilioServer, channel: TwilioSMS, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    channel.send(sms())
    twilio.fail_next("21211")
    failure(channel)
    twilio.fail_next("429")
    failure(channel)
    channel.find_sent(to=PATIENT, body=BODY, since=datetime(2000, 1, 1))

    ours = [r.getMessage() for r in caplog.records if r.name.startswith("reminders")]
    assert len(ours) == 3
    assert all(PATIENT not in line and PATIENT[1:] not in line for line in ours)
    assert any("+1******4567" in line for line in ours)
    everything = caplog.text
    assert BODY not in everything
    assert twilio.auth_token not in everything
    assert base64.b64encode(f"{twilio.account_sid}:{twilio.auth_token}".encode()).decode() not in (
        everything
    )


# -- finding a message after a crash ---------------------------------------------------------


def test_find_sent_returns_the_sid_of_a_message_with_the_same_body(
    twilio: TwilioServer, channel: TwilioSMS
) -> None:
    since = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=5)
    channel.send(sms(body="Another reminder"))
    receipt = channel.send(sms())
    channel.send(sms(to="+15559876543"))

    assert channel.find_sent(to=PATIENT, body=BODY, since=since) == receipt.provider_id


def test_find_sent_returns_none_when_no_body_matches(
    twilio: TwilioServer, channel: TwilioSMS
) -> None:
    since = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=5)
    channel.send(sms(body=BODY + " "))

    assert channel.find_sent(to=PATIENT, body=BODY, since=since) is None


def test_find_sent_ignores_messages_before_since(twilio: TwilioServer, channel: TwilioSMS) -> None:
    channel.send(sms())

    later = datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=5)
    assert channel.find_sent(to=PATIENT, body=BODY, since=later) is None


def test_find_sent_reads_every_page(twilio: TwilioServer, channel: TwilioSMS) -> None:
    since = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=5)
    first = channel.send(sms())
    for n in range(120):  # newest first, so the match sits on the second page of 100
        channel.send(sms(body=f"Reminder {n}"))

    assert channel.find_sent(to=PATIENT, body=BODY, since=since) == first.provider_id


# -- concurrency and pacing ------------------------------------------------------------------


def test_500_sends_from_32_threads_are_fast_and_stay_under_100_per_second(
    twilio: TwilioServer,
) -> None:
    twilio.latency = 0.2
    sender = TwilioSMS(
        account_sid=twilio.account_sid,
        auth_token=twilio.auth_token,
        from_number=SENDER,
        base_url=twilio.url,
        mps=100,
    )
    batch = [sms(to=f"+1555{n:07d}", body=f"Reminder {n}") for n in range(500)]

    started = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=32) as pool:
            receipts = list(pool.map(sender.send, batch))
    finally:
        sender.close()
    elapsed = time.monotonic() - started

    received = twilio.messages
    assert len({r.provider_id for r in receipts}) == 500
    assert sorted(m.to for m in received) == sorted(m.to for m in batch)
    assert elapsed < 25  # one at a time this would take 500 * 0.2 s = 100 s
    assert max_in_any_window([m.received_monotonic for m in received]) <= 100


def test_multi_segment_messages_count_each_segment_against_the_rate(
    twilio: TwilioServer,
) -> None:
    sender = TwilioSMS(
        account_sid=twilio.account_sid,
        auth_token=twilio.auth_token,
        from_number=SENDER,
        base_url=twilio.url,
        mps=50,
    )
    try:
        for n in range(3):
            sender.send(sms(body=f"Reminder {n}", segments=5))
    finally:
        sender.close()

    times = sorted(m.received_monotonic for m in twilio.messages)
    # 5 segments at 50 per second: 0.1 s between messages.
    assert all(later - earlier >= 0.09 for earlier, later in zip(times, times[1:], strict=False))


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize(
    ("settings", "variable"),
    [
        ({}, "TWILIO_ACCOUNT_SID"),
        ({"twilio_account_sid": "AC1"}, "TWILIO_AUTH_TOKEN"),
        (
            {"twilio_account_sid": "AC1", "twilio_auth_token": "secret"},
            "TWILIO_MESSAGING_SERVICE_SID or TWILIO_FROM_NUMBER",
        ),
    ],
)
def test_from_settings_names_the_missing_variable(settings: dict[str, Any], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable) as caught:
        TwilioSMS.from_settings(Settings(_env_file=None, **settings))  # type: ignore[call-arg, arg-type]

    assert "\n" not in str(caught.value)
    assert "secret" not in str(caught.value)


@pytest.mark.usefixtures("clean_env")
def test_from_settings_prefers_the_messaging_service(twilio: TwilioServer) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        twilio_account_sid=twilio.account_sid,
        twilio_auth_token=twilio.auth_token,  # type: ignore[arg-type]
        twilio_messaging_service_sid="MG" + "2" * 32,
        twilio_from_number=SENDER,
        twilio_base_url=twilio.url,
        twilio_mps=1000,
    )
    sender = TwilioSMS.from_settings(settings)
    try:
        sender.send(sms())
    finally:
        sender.close()

    assert twilio.messages[0].fields["MessagingServiceSid"] == "MG" + "2" * 32
    assert "From" not in twilio.messages[0].fields
