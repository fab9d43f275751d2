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
    transports["email"] = email_transport(settings)
    return transports


def email_transport(settings: Settings) -> Transport:
    """The configured email transport alone (the worker's notices to staff use their own)."""
    if settings.email_backend == "smtp":
        from reminders.channels.smtp_email import SmtpEmail

        return SmtpEmail.from_settings(settings)
    return Console("email", outbox=settings.console_outbox)
