"""Replies to patients' texts (TwiML) and the unsubscribe pages, from reminders/api/templates."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from twilio.twiml.messaging_response import MessagingResponse

from reminders.models import Clinic
from reminders.render import LOCALES, gsm_safe

TEMPLATES = Path(__file__).parent / "templates"
TWIML_MEDIA_TYPE = "application/xml"

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    undefined=StrictUndefined,
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    trim_blocks=True,
    lstrip_blocks=True,
)
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class ClinicContact:
    name: str
    help_contact: str


def _locale(locale: str) -> str:
    return locale if locale in LOCALES else "en"


def reply_text(keyword: str, *, locale: str, clinics: Sequence[Clinic]) -> str:
    """One-line SMS reply to a keyword (stop, start, help, other), naming the clinics."""
    # Clinic names are folded to GSM-7 like in every SMS, so one letter cannot double the cost.
    contacts = [ClinicContact(gsm_safe(c.name), gsm_safe(c.help_contact)) for c in clinics]
    names = " / ".join(contact.name for contact in contacts)
    template = _env.get_template(f"replies/{_locale(locale)}/{keyword}.txt")
    return _WHITESPACE.sub(" ", template.render(clinics=contacts, names=names)).strip()


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
