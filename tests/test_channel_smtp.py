"""SmtpEmail against a real SMTP server on loopback: content, TLS, AUTH, replies, reuse."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from reminders.channels.base import DeliveryError, OutgoingMessage
from reminders.channels.smtp_email import SmtpEmail
from reminders.config import ConfigError, Settings
from tests.fakes.smtp_server import SmtpServer

PATIENT = "jane.doe@example.com"
CLINIC = "Lakeside Dermatology <reminders@lakeside.example>"
USER, PASSWORD = "mailer", "s3cret-pa55"
BODY = "Hello Jane,\n\nYour monthly steps are due this week.\n\nLakeside Dermatology\n"
HTML = "<p>Hello Jane,</p><p>Your monthly steps are due this week.</p>"


def email(to: str = PATIENT, **fields: Any) -> OutgoingMessage:
    values: dict[str, Any] = {
        "subject": "Your treatment: this week",
        "html": HTML,
        "message_id_header": "<outbox-42.course-3@lakeside.example>",
    }
    values.update(fields)
    return OutgoingMessage(
        outbox_id=42, course_id=3, key="month-1", channel="email", to=to, body=BODY, **values
    )


def failure(channel: SmtpEmail, message: OutgoingMessage | None = None) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        channel.send(message or email())
    return caught.value


@pytest.fixture(scope="module")
def cert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("smtp-cert")


@pytest.fixture
def smtp(cert_dir: Path) -> Iterator[SmtpServer]:
    with SmtpServer(cert_dir=cert_dir, user=USER, password=PASSWORD) as server:
        yield server


def make_channel(url: str, **kwargs: float) -> SmtpEmail:
    kwargs.setdefault("max_per_second", 1000)  # pacing has its own test
    return SmtpEmail(url=url, from_address=CLINIC, timeout=5, **kwargs)


@pytest.fixture
def channel(smtp: SmtpServer) -> Iterator[SmtpEmail]:
    sender = make_channel(smtp.url())
    yield sender
    sender.close()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SMTP_URL", "EMAIL_FROM"):
        monkeypatch.delenv(name, raising=False)


# -- what arrives ------------------------------------------------------------------------------


def test_send_delivers_text_and_html_as_multipart_alternative(
    smtp: SmtpServer, channel: SmtpEmail
) -> None:
    receipt = channel.send(email())

    [received] = smtp.received
    message = received.message
    assert received.rcpt_tos == [PATIENT]
    assert received.mail_from == "reminders@lakeside.example"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and text.get_content() == BODY
    assert html is not None and html.get_content().strip() == HTML
    assert message["Subject"] == "Your treatment: this week"
    assert message["From"] == CLINIC
    assert message["To"] == PATIENT
    assert message["Date"]
    assert message["Message-ID"] == "<outbox-42.course-3@lakeside.example>"
    assert receipt.provider_id == "<outbox-42.course-3@lakeside.example>"


def test_unsubscribe_url_adds_one_click_list_unsubscribe_headers(
    smtp: SmtpServer, channel: SmtpEmail
) -> None:
    channel.send(email(unsubscribe_url="https://clinic.example/u/abc123"))

    message = smtp.received[0].message
    assert message["List-Unsubscribe"] == "<https://clinic.example/u/abc123>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_long_list_unsubscribe_link_arrives_literally_on_one_line(
    smtp: SmtpServer, channel: SmtpEmail
) -> None:
    # A real link: a signed token makes it far longer than the 78 columns headers fold at.
    url = "https://reminders.example.org/unsubscribe/" + "Ab3-_x" * 30
    channel.send(email(unsubscribe_url=url))

    raw = smtp.received[0].raw
    assert f"List-Unsubscribe: <{url}>\r\n".encode() in raw
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in raw
    assert b"=?utf-8?" not in raw.split(b"\r\n\r\n")[0].lower()


def test_no_unsubscribe_headers_without_a_url(smtp: SmtpServer, channel: SmtpEmail) -> None:
    channel.send(email())

    message = smtp.received[0].message
    assert "List-Unsubscribe" not in message
    assert "List-Unsubscribe-Post" not in message


def test_text_only_message_is_a_single_plain_part(smtp: SmtpServer, channel: SmtpEmail) -> None:
    channel.send(email(html=None))

    assert smtp.received[0].message.get_content_type() == "text/plain"


def test_accented_text_arrives_intact(smtp: SmtpServer, channel: SmtpEmail) -> None:
    channel.send(email(subject="Tu tratamiento: información", html="<p>Está bien</p>"))

    message = smtp.received[0].message
    assert message["Subject"] == "Tu tratamiento: información"
    html = message.get_body(preferencelist=("html",))
    assert html is not None and "Está bien" in html.get_content()


def test_subject_with_a_line_break_is_refused_for_good(
    smtp: SmtpServer, channel: SmtpEmail
) -> None:
    error = failure(channel, email(subject="Hello\r\nBcc: someone@example.com"))

    assert error.permanent is True
    assert smtp.received == []


# -- TLS and AUTH ------------------------------------------------------------------------------


def test_starttls_then_auth_before_sending(smtp: SmtpServer, channel: SmtpEmail) -> None:
    channel.send(email())

    received = smtp.received[0]
    assert received.tls is True
    assert received.login == USER


def test_wrong_password_is_a_clear_error_that_keeps_the_message(smtp: SmtpServer) -> None:
    sender = make_channel(smtp.url().replace(PASSWORD, "wrong-password"))
    try:
        error = failure(sender)
    finally:
        sender.close()

    assert "535" in error.reason
    assert "authentication failed" in error.reason
    assert "SMTP_URL" in error.reason
    assert "wrong-password" not in error.reason
    # An operator's mistake must not fail every patient's message for good.
    assert error.permanent is False
    assert smtp.auth_failures >= 1  # smtplib tries PLAIN, then LOGIN
    assert smtp.received == []


def test_implicit_tls_with_smtps(cert_dir: Path) -> None:
    with SmtpServer(cert_dir=cert_dir, user=USER, password=PASSWORD, implicit_tls=True) as server:
        sender = make_channel(server.url())
        try:
            sender.send(email())
        finally:
            sender.close()

        assert server.received[0].tls is True
        assert server.received[0].login == USER


def test_plain_relay_without_credentials(cert_dir: Path) -> None:
    with SmtpServer(starttls=False) as server:
        sender = make_channel(server.url())
        try:
            sender.send(email())
        finally:
            sender.close()

        assert server.received[0].tls is False
        assert server.received[0].login is None


def test_credentials_are_never_sent_without_tls() -> None:
    with SmtpServer(starttls=False) as server:
        sender = make_channel(f"smtp://{USER}:{PASSWORD}@127.0.0.1:{server.port}")
        try:
            error = failure(sender)
        finally:
            sender.close()

        assert "STARTTLS" in error.reason
        assert error.permanent is False
        assert server.received == []


def test_self_signed_certificate_is_rejected_unless_verify_is_off(smtp: SmtpServer) -> None:
    sender = make_channel(smtp.url().replace("?verify=false", ""))
    try:
        error = failure(sender)
    finally:
        sender.close()

    assert error.permanent is False
    assert "SSLCertVerificationError" in error.reason
    assert smtp.received == []


def test_unreachable_server_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sender = make_channel(f"smtp://127.0.0.1:{port}")
    try:
        error = failure(sender)
    finally:
        sender.close()

    assert error.permanent is False


# -- replies -----------------------------------------------------------------------------------


def test_try_again_later_is_transient(smtp: SmtpServer, channel: SmtpEmail) -> None:
    smtp.reply_next("451 4.3.0 Try again later")

    error = failure(channel)

    assert (error.permanent, error.opted_out) == (False, False)
    assert "451" in error.reason


def test_unknown_user_is_an_unreachable_address_not_an_opt_out(
    smtp: SmtpServer, channel: SmtpEmail
) -> None:
    smtp.reply_next(f"550 5.1.1 <{PATIENT}>: User unknown")

    error = failure(channel)

    assert (error.permanent, error.opted_out, error.unreachable) == (True, False, True)
    assert "550 5.1.1" in error.reason
    assert PATIENT not in error.reason


def test_other_rejection_at_data_is_permanent_but_not_an_opt_out(
    smtp: SmtpServer, channel: SmtpEmail
) -> None:
    smtp.reply_next("554 5.7.1 Message rejected as spam", at="DATA")

    error = failure(channel)

    assert (error.permanent, error.opted_out) == (True, False)
    assert "554" in error.reason


def test_temporary_failure_at_data_is_transient(smtp: SmtpServer, channel: SmtpEmail) -> None:
    smtp.reply_next("452 4.3.1 Insufficient system storage", at="DATA")

    assert failure(channel).permanent is False


def test_connection_stays_usable_after_a_refused_recipient(
    smtp: SmtpServer, channel: SmtpEmail
) -> None:
    smtp.reply_next("550 5.1.1 User unknown")
    failure(channel)

    channel.send(email(to="john@example.com"))

    assert [r.rcpt_tos for r in smtp.received] == [["john@example.com"]]
    assert smtp.connections == 1


# -- connection reuse --------------------------------------------------------------------------


def test_a_batch_reuses_one_connection(smtp: SmtpServer, channel: SmtpEmail) -> None:
    for n in range(5):
        channel.send(email(to=f"patient{n}@example.com"))

    assert len(smtp.received) == 5
    assert smtp.connections == 1


def test_a_dropped_connection_is_reopened_transparently(
    smtp: SmtpServer, channel: SmtpEmail
) -> None:
    channel.send(email())
    smtp.disconnect_all()

    channel.send(email(to="john@example.com"))

    assert len(smtp.received) == 2
    assert smtp.connections == 2


def test_close_ends_the_batch_and_the_next_send_reconnects(
    smtp: SmtpServer, channel: SmtpEmail
) -> None:
    channel.send(email())
    channel.close()

    channel.send(email())

    assert smtp.connections == 2


def test_threads_each_reuse_their_own_connection(smtp: SmtpServer, channel: SmtpEmail) -> None:
    batch = [email(to=f"patient{n}@example.com") for n in range(20)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(channel.send, batch))

    assert sorted(r.rcpt_tos[0] for r in smtp.received) == sorted(m.to for m in batch)
    assert smtp.connections <= 4


def test_sends_are_paced_at_max_per_second(smtp: SmtpServer) -> None:
    sender = make_channel(smtp.url(), max_per_second=50)
    try:
        for n in range(5):
            sender.send(email(to=f"patient{n}@example.com"))
    finally:
        sender.close()

    # The first send also connects, starts TLS and logs in; measure from the second one.
    times = [r.received_monotonic for r in smtp.received][1:]
    assert times[-1] - times[0] >= 3 / 50 - 0.005


def test_logs_never_show_the_address_the_body_or_the_password(
    smtp: SmtpServer, channel: SmtpEmail, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    channel.send(email())
    smtp.reply_next("451 4.3.0 Try again later")
    failure(channel)

    ours = [r.getMessage() for r in caplog.records if r.name.startswith("reminders")]
    assert len(ours) == 2
    assert all(PATIENT not in line and BODY not in line for line in ours)
    assert any("j***@example.com" in line for line in ours)
    assert PASSWORD not in caplog.text


# -- configuration -----------------------------------------------------------------------------


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize(
    ("settings", "variable"),
    [
        ({"email_from": CLINIC}, "SMTP_URL"),
        ({"smtp_url": "smtp://127.0.0.1:25"}, "EMAIL_FROM"),
        ({"smtp_url": "smtp://127.0.0.1:25", "email_from": "reminders"}, "EMAIL_FROM"),
        ({"smtp_url": "https://mail.example", "email_from": CLINIC}, "SMTP_URL"),
        ({"smtp_url": "smtp://u:hunter2@mail.example:xx", "email_from": CLINIC}, "SMTP_URL"),
        ({"smtp_url": "smtp://mail.example?verify=maybe", "email_from": CLINIC}, "SMTP_URL"),
        ({"smtp_url": "smtp://mail.example?tls=1", "email_from": CLINIC}, "SMTP_URL"),
        ({"smtp_url": "smtp://u@mail.example", "email_from": CLINIC}, "SMTP_URL"),
    ],
)
def test_from_settings_names_the_missing_or_wrong_variable(
    settings: dict[str, Any], variable: str
) -> None:
    with pytest.raises(ConfigError, match=variable) as caught:
        SmtpEmail.from_settings(Settings(_env_file=None, **settings))  # type: ignore[call-arg, arg-type]

    assert "\n" not in str(caught.value)
    assert "hunter2" not in str(caught.value)


@pytest.mark.usefixtures("clean_env")
def test_from_settings_reads_url_sender_and_limits() -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        smtp_url="smtps://mailer:p%40ss@mail.example",  # type: ignore[arg-type]
        email_from=CLINIC,
        smtp_timeout=12,
        smtp_max_per_second=3,
    )

    sender = SmtpEmail.from_settings(settings)

    assert (sender.server.host, sender.server.port) == ("mail.example", 465)
    assert (sender.server.username, sender.server.password) == ("mailer", "p@ss")
    assert sender.server.verify is True
    assert (sender.timeout, sender.limiter.rate, sender.from_address) == (12, 3, CLINIC)
