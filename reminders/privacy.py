"""Masking of contact details for logs and console output."""

from __future__ import annotations

import logging
import re

# E.164 numbers, and bare runs of 10-15 digits (national numbers); dates and ids stay readable.
_PHONE = re.compile(r"\+\d{8,15}\b|(?<![\w.+])\d{10,15}(?![\w.])")
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")


def mask_phone(phone: str | None) -> str:
    """+15551234567 -> +1******4567: enough to tell numbers apart, not to call one."""
    if not phone:
        return ""
    digits = re.sub(r"\D", "", phone)
    if len(digits) <= 4:
        return "*" * len(digits)
    head = digits[:1]
    return f"+{head}{'*' * (len(digits) - 5)}{digits[-4:]}"


def mask_email(email: str | None) -> str:
    """jane.doe@example.com -> j***@example.com."""
    if not email or "@" not in email:
        return ""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_contact(contact: str | None) -> str:
    """Mask a phone number or an email address, whichever it is."""
    if contact and "@" in contact:
        return mask_email(contact)
    return mask_phone(contact)


# Unsubscribe links carry a token that acts for the patient: never in a log (access logs!).
_LINK_TOKEN = re.compile(r"(/unsubscribe/)[^\s\"'?]+")


def mask_text(text: str) -> str:
    """Mask every phone number, email address and link token found in free text."""
    text = _LINK_TOKEN.sub(r"\1***", text)
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    return _PHONE.sub(lambda m: mask_phone(m.group(0)), text)


class MaskingFilter(logging.Filter):
    """Masks contacts in every log record, as a last line of defence."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        record.msg = mask_text(str(record.msg))
        return True
