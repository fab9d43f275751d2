"""Replies to patients' texts (TwiML) and the unsubscribe pages, from reminders/api/templates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Response
from twilio.twiml.messaging_response import MessagingResponse

from reminders.models import Clinic
from reminders.render import LOCALES, gsm_safe, one_line, template_environment

TEMPLATES = Path(__file__).parent / "templates"
TWIML_MEDIA_TYPE = "application/xml"

_env = template_environment(TEMPLATES)
# A number enrolled at more clinics than this hears from the latest ones by name: more names
# would not fit the two SMS segments every reply keeps to.
NAMED_CLINICS = 2


@dataclass(frozen=True)
class ClinicContact:
    name: str
    help_contact: str


def _locale(locale: str) -> str:
    return locale if locale in LOCALES else "en"


def reply_text(keyword: str, *, locale: str, clinics: Sequence[Clinic]) -> str:
    """One-line SMS reply to a keyword (stop, start, help, other), naming the clinics (the
    latest enrolments first, at most NAMED_CLINICS of them)."""
    # Clinic names are folded to GSM-7 like in every SMS, so one letter cannot double the cost.
    contacts = [
        ClinicContact(gsm_safe(c.name), gsm_safe(c.help_contact)) for c in clinics[:NAMED_CLINICS]
    ]
    names = " / ".join(contact.name for contact in contacts)
    template = _env.get_template(f"replies/{_locale(locale)}/{keyword}.txt")
    return one_line(template.render(clinics=contacts, names=names))


def twiml(text: str | None = None) -> Response:
    """A TwiML answer to Twilio: one reply message, or none."""
    response = MessagingResponse()
    if text:
        response.message(text)
    return Response(content=str(response), media_type=TWIML_MEDIA_TYPE)


def page(name: str, *, locale: str | None = None, **values: Any) -> str:
    """An HTML page; `name` is under pages/<locale>/ when a locale is given, else pages/."""
    lang = _locale(locale) if locale else "en"
    path = f"pages/{lang}/{name}.html" if locale else f"pages/{name}.html"
    return _env.get_template(path).render(lang=lang, **values)
