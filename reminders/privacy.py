"""Masking of contact details and redaction of secrets for logs, error reports and consoles."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any

# E.164 numbers, and bare runs of 10-15 digits (national numbers); dates and ids stay readable.
_PHONE = re.compile(r"\+\d{8,15}\b|(?<![\w.+])\d{10,15}(?![\w.])")
# In a URL's query (a Twilio lookup, an access log line) "+" and "@" arrive percent-encoded.
_ENCODED_PHONE = re.compile(r"%2B(\d{8,15})\b", re.IGNORECASE)
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*(?:@|%40)([A-Za-z0-9.-]+\.[A-Za-z]{2,})")

REDACTED = "[redacted]"
# Fields whose value is never logged nor reported, whatever it holds: message texts, secrets.
_NEVER_SHOWN = frozenset(
    {
        "body",
        "text",
        "html",
        "password",
        "token",
        "api_key",
        "secret",
        "secret_key",
        "authorization",
        "cookie",
    }
)
_NEVER_SHOWN_SUFFIXES = ("_token", "_password", "_secret")


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


# Every pattern above needs one of these; a text without any (most log fields) is left as is
# after one search instead of four substitutions: masking runs on every field of every line.
_MAYBE = re.compile(r"@|%40|\d{8}|/unsubscribe/", re.IGNORECASE)


def mask_text(text: str) -> str:
    """Mask every phone number, email address and link token found in free text."""
    if not _MAYBE.search(text):
        return text
    text = _LINK_TOKEN.sub(r"\1***", text)
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    text = _ENCODED_PHONE.sub(lambda m: "%2B" + mask_phone(m.group(1))[1:], text)
    return _PHONE.sub(lambda m: mask_phone(m.group(0)), text)


def never_shown(name: str) -> bool:
    """Whether a field of this name must be redacted, not masked."""
    name = name.lower().replace("-", "_")
    return name in _NEVER_SHOWN or name.endswith(_NEVER_SHOWN_SUFFIXES)


def scrub(value: Any) -> Any:
    """A copy of value with text masked at every depth and never-shown fields redacted."""
    if isinstance(value, str):
        return mask_text(value)
    # Numbers and dates hold no contact, and a report's timestamps must stay dates.
    if value is None or isinstance(value, bool | int | float | date):
        return value
    if isinstance(value, Mapping):
        return {
            key: REDACTED if isinstance(key, str) and never_shown(key) else scrub(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [scrub(item) for item in value]
    # Anything else is shown as text, so it is masked as text.
    return mask_text(str(value))
