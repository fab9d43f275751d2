"""Chooses each channel's transport from the settings (SMS_BACKEND, EMAIL_BACKEND)."""

from __future__ import annotations

from reminders.channels.base import Transport
from reminders.channels.console import Console
from reminders.config import Settings


def build_transports(settings: Settings) -> dict[str, Transport]:
    """One transport per channel; a missing provider setting raises ConfigError naming it."""
    transports: dict[str, Transport] = {}
    if settings.sms_backend == "twilio":
        from reminders.channels.twilio_sms import TwilioSMS

        transports["sms"] = TwilioSMS.from_settings(settings)
    else:
        transports["sms"] = Console("sms", outbox=settings.console_outbox)
    if settings.email_backend == "smtp":
        from reminders.channels.smtp_email import SmtpEmail

        transports["email"] = SmtpEmail.from_settings(settings)
    else:
        transports["email"] = Console("email", outbox=settings.console_outbox)
    return transports
