"""Every care-plan template, alone or merged, in every locale, keeps the texting rules."""

from __future__ import annotations

import itertools
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reminders.render import (
    LOCALES,
    MessageContext,
    Part,
    RenderedEmail,
    Renderer,
    count_segments,
)

ROOT = Path(__file__).parent.parent
TEMPLATES = ROOT / "templates"
CAREPLAN = ROOT / "reminders" / "careplan.toml"

# The length budget is checked against names this long.
CLINIC = "Riverside Dermatology Partners"
FIRST_NAME = "Alexandrina Victoria"
HELP_CONTACT = "(555) 010-0199"
UNSUBSCRIBE_URL = "https://reminders.example.org/unsubscribe/abc123"
OPT_OUT = {
    "en": "Reply STOP to opt out, HELP for help",
    "es": "Responda STOP para cancelar, HELP para ayuda",
}
# Minimum necessary: no drug, diagnosis, pregnancy or contraception word. iPLEDGE is listed too
# because the program's name alone tells which drug the patient takes.
FORBIDDEN = re.compile(
    r"isotretino|accutane|absorica|claravis|amnesteem|zenatane|myorisan|acn[eé]"
    r"|pregnan|contracep|birth control|embaraz|anticoncep|ipledge",
    re.IGNORECASE,
)


def _load_careplan() -> tuple[list[Part], list[str]]:
    """Every part the care plan can send as a message, and the ids of its recurring nudges."""
    plan = tomllib.loads(CAREPLAN.read_text(encoding="utf-8"))
    parts = [
        Part(entry.get("template", entry["id"]), entry.get("params", {}))
        for entry in plan.get("message", [])
    ]
    nudges = [entry.get("template", entry["id"]) for entry in plan.get("recurring", [])]
    parts += [Part(nudge) for nudge in nudges]
    if ipledge := plan.get("ipledge"):
        parts.append(Part(ipledge["monthly_template"]))
        window = ipledge["window_days"]
        parts += [
            Part(ipledge["countdown_template"], {"day": day, "days_left": window - day})
            for day in ipledge["countdown_days"]
        ]
    return parts, nudges


PRIMARIES, NUDGES = _load_careplan()


def _merges() -> list[list[Part]]:
    """Each primary alone, with each nudge's short form, and with all of them."""
    merges = []
    for primary in PRIMARIES:
        others = [nudge for nudge in NUDGES if nudge != primary.template]
        for size in range(len(others) + 1):
            for extras in itertools.combinations(others, size):
                merges.append([primary, *(Part(extra) for extra in extras)])
    return merges


def _label(parts: list[Part], **flags: Any) -> str:
    """A readable name for one rendered case, shown when an assertion lists offenders."""
    names = "+".join(f"{part.template}{dict(part.params) or ''}" for part in parts)
    return f"{names} {flags}"


@dataclass(frozen=True)
class Sms:
    label: str
    locale: str
    first: bool
    text: str


@dataclass(frozen=True)
class Email:
    label: str
    locale: str
    message: RenderedEmail


def _context(locale: str, **flags: Any) -> MessageContext:
    return MessageContext(
        clinic=CLINIC,
        help_contact=HELP_CONTACT,
        first_name=FIRST_NAME,
        locale=locale,
        **flags,
    )


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(TEMPLATES)


@pytest.fixture(scope="module")
def all_sms(renderer: Renderer) -> list[Sms]:
    rendered = []
    for locale, parts, first, ipledge in itertools.product(
        LOCALES, _merges(), (True, False), (True, False)
    ):
        context = _context(locale, first=first, ipledge=ipledge)
        label = _label(parts, locale=locale, first=first, ipledge=ipledge)
        rendered.append(Sms(label, locale, first, renderer.sms(parts, context)))
    return rendered


@pytest.fixture(scope="module")
def all_emails(renderer: Renderer) -> list[Email]:
    rendered = []
    for locale, parts, ipledge in itertools.product(LOCALES, _merges(), (True, False)):
        context = _context(locale, ipledge=ipledge, unsubscribe_url=UNSUBSCRIBE_URL)
        label = _label(parts, locale=locale, ipledge=ipledge)
        rendered.append(Email(label, locale, renderer.email(parts, context)))
    return rendered


def test_care_plan_has_templates_to_test() -> None:
    assert PRIMARIES
    assert NUDGES


def test_every_care_plan_template_has_all_its_files(renderer: Renderer) -> None:
    missing = [path for part in PRIMARIES for path in renderer.missing_templates(part.template)]
    missing += [path for nudge in NUDGES for path in renderer.missing_templates(nudge, short=True)]
    assert missing == []


def test_every_sms_starts_with_the_clinic_name(all_sms: list[Sms]) -> None:
    assert [sms.label for sms in all_sms if not sms.text.startswith(f"{CLINIC}: ")] == []


def test_first_sms_ends_with_the_opt_out_line(all_sms: list[Sms]) -> None:
    offenders = [
        sms.label for sms in all_sms if sms.first and not sms.text.endswith(OPT_OUT[sms.locale])
    ]
    assert offenders == []


def test_later_sms_leaves_out_the_opt_out_line(all_sms: list[Sms]) -> None:
    offenders = [sms.label for sms in all_sms if not sms.first and "STOP" in sms.text]
    assert offenders == []


def test_every_sms_is_a_single_line(all_sms: list[Sms]) -> None:
    offenders = [sms.label for sms in all_sms if sms.text != " ".join(sms.text.split())]
    assert offenders == []


def test_every_sms_stays_in_gsm7(all_sms: list[Sms]) -> None:
    offenders = [sms.label for sms in all_sms if count_segments(sms.text).encoding != "GSM-7"]
    assert offenders == []


def test_every_sms_fits_in_two_segments_with_long_names(all_sms: list[Sms]) -> None:
    offenders = [
        f"{sms.label}: {count_segments(sms.text)}"
        for sms in all_sms
        if count_segments(sms.text).count > 2
    ]
    assert offenders == []


def test_no_sms_names_the_drug_diagnosis_or_pregnancy(all_sms: list[Sms]) -> None:
    offenders = [
        f"{sms.label}: {match[0]}" for sms in all_sms if (match := FORBIDDEN.search(sms.text))
    ]
    assert offenders == []


def test_no_email_subject_names_the_drug_diagnosis_or_pregnancy(all_emails: list[Email]) -> None:
    offenders = [mail.label for mail in all_emails if FORBIDDEN.search(mail.message.subject)]
    assert offenders == []


def test_no_email_body_names_the_drug_diagnosis_or_pregnancy(all_emails: list[Email]) -> None:
    offenders = [
        mail.label
        for mail in all_emails
        if FORBIDDEN.search(mail.message.text) or FORBIDDEN.search(mail.message.html)
    ]
    assert offenders == []


def test_every_email_subject_is_one_short_line(all_emails: list[Email]) -> None:
    offenders = [
        mail.label
        for mail in all_emails
        if "\n" in mail.message.subject or not 0 < len(mail.message.subject) <= 78
    ]
    assert offenders == []


def test_every_email_text_greets_the_patient_and_names_the_clinic(
    all_emails: list[Email],
) -> None:
    offenders = [
        mail.label
        for mail in all_emails
        if FIRST_NAME not in mail.message.text or CLINIC not in mail.message.text
    ]
    assert offenders == []


def test_every_email_html_greets_the_patient_and_names_the_clinic(
    all_emails: list[Email],
) -> None:
    offenders = [
        mail.label
        for mail in all_emails
        if FIRST_NAME not in mail.message.html or CLINIC not in mail.message.html
    ]
    assert offenders == []


def test_every_email_carries_the_unsubscribe_link_when_set(all_emails: list[Email]) -> None:
    offenders = [
        mail.label
        for mail in all_emails
        if UNSUBSCRIBE_URL not in mail.message.text
        or f'href="{UNSUBSCRIBE_URL}"' not in mail.message.html
    ]
    assert offenders == []


def test_every_email_shows_the_help_contact(all_emails: list[Email]) -> None:
    offenders = [
        mail.label
        for mail in all_emails
        if HELP_CONTACT not in mail.message.text or HELP_CONTACT not in mail.message.html
    ]
    assert offenders == []


def test_every_email_html_declares_its_language(all_emails: list[Email]) -> None:
    offenders = [
        mail.label for mail in all_emails if f'<html lang="{mail.locale}"' not in mail.message.html
    ]
    assert offenders == []


def test_every_email_html_has_its_css_inlined(all_emails: list[Email]) -> None:
    offenders = [
        mail.label
        for mail in all_emails
        if "<style" in mail.message.html or 'style="' not in mail.message.html
    ]
    assert offenders == []


@pytest.mark.parametrize("locale", LOCALES)
def test_email_leaves_out_the_unsubscribe_link_without_a_url(
    renderer: Renderer, locale: str
) -> None:
    message = renderer.email([Part("welcome")], _context(locale))
    assert "href" not in message.html
    assert "https://" not in message.text


@pytest.mark.parametrize("locale", LOCALES)
def test_email_leaves_out_the_help_line_without_a_contact(renderer: Renderer, locale: str) -> None:
    context = MessageContext(clinic=CLINIC, help_contact="", first_name=FIRST_NAME, locale=locale)
    message = renderer.email([Part("welcome")], context)
    assert not re.search(r"(Questions|Preguntas):", message.text + message.html)


@pytest.mark.parametrize("locale", LOCALES)
def test_final_monthly_steps_are_mentioned_only_on_the_ipledge_track(
    renderer: Renderer, locale: str
) -> None:
    parts = [Part("after_1_month")]
    on_track = renderer.sms(parts, _context(locale, ipledge=True))
    off_track = renderer.sms(parts, _context(locale, ipledge=False))
    assert on_track.startswith(off_track)
    assert len(on_track) > len(off_track)


@pytest.mark.parametrize("locale", LOCALES)
def test_each_countdown_day_reads_differently(renderer: Renderer, locale: str) -> None:
    countdown = [part for part in PRIMARIES if part.template == "ipledge_countdown"]
    texts = {renderer.sms([part], _context(locale)) for part in countdown}
    assert len(texts) == len(countdown)
