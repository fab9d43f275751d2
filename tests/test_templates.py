"""Every care-plan template, alone or merged, in every locale, keeps the texting rules."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from reminders import careplan
from reminders.planning import CourseFacts, Rules, plan_course
from reminders.render import (
    LOCALES,
    MessageContext,
    Part,
    RenderedEmail,
    Renderer,
    count_segments,
    countdown_params,
    gsm_safe,
)

ROOT = Path(__file__).parent.parent
TEMPLATES = ROOT / "templates"
PLAN = careplan.load()


@dataclass(frozen=True)
class Names:
    """What a clinic and a patient put into an SMS, at the longest the service accepts."""

    label: str
    clinic: str  # the clinic's SMS name: at most 20 characters
    first_name: str  # at most 80 characters
    clinic_phone: str  # at most 20 characters


LONGEST = Names(
    "longest",
    clinic="Riverside Derm Group",
    first_name=("Alexandrina Victoria Maximiliana " * 3)[:80],
    clinic_phone="+1 (555) 010-0199 x9",
)
# Typographic punctuation, as word processors and phones write names.
TYPOGRAPHIC = Names(
    "typographic",
    clinic="St. Mary\u2019s Derm \u2013 NY",
    first_name=("\u201cJo\u201d Anne\u2013Marie\u2026 O\u2019Neill Pe\u00f1a-N\u00fa\u00f1ez " * 3)[
        :80
    ],
    clinic_phone="(555)\u00a0010\u20110199\u00a0x1",
)
# No phone: the "contact us" wording.
PLAIN = Names("plain", clinic="Lakeside Skin", first_name="Ana", clinic_phone="")
NAMES = (LONGEST, TYPOGRAPHIC, PLAIN)
assert all(len(n.clinic) <= 20 and len(n.first_name) <= 80 for n in NAMES)
assert all(len(n.clinic_phone) <= 20 for n in NAMES)

HELP_CONTACT = "(555) 010-0199"
UNSUBSCRIBE_URL = "https://reminders.example.org/unsubscribe/abc123"
# What the first SMS of a course must carry besides the clinic's name.
FIRST_SMS_PHRASES = {
    "en": ("Up to 3 msgs/week", "Msg&data rates may apply", "Reply STOP to opt out, HELP for help"),
    "es": (
        "Hasta 3 msjs/semana",
        "Pueden aplicarse tarifas de msjs y datos",
        "Responda STOP para cancelar, HELP para ayuda",
    ),
}
HOW_TO_STOP = {"en": "Reply STOP to opt out", "es": "Responda STOP para cancelar"}
# Minimum necessary: no drug, diagnosis, pregnancy or contraception word. iPLEDGE is listed too
# because the program's name alone tells which drug the patient takes.
FORBIDDEN = re.compile(
    r"isotretino|accutane|absorica|claravis|amnesteem|zenatane|myorisan|acn[eé]"
    r"|pregnan|contracep|birth control|embaraz|anticoncep|ipledge",
    re.IGNORECASE,
)
# Spanish words that need an accent, written without it: Spanish SMS choose other words.
UNACCENTED_SPANISH = re.compile(
    r"\b(dias?|ultim[oa]s?|clinicas?|proxim[oa]s?|animo|tambien|balsamo|laser|comun"
    r"|despues|medicos?|mejoria|depilacion|dermoabrasion|analisis|facil|estan|pasara"
    r"|podra|tendra|recibira|sera|cuentenos|llamenos|contactenos|avisenos|escribanos)\b",
    re.IGNORECASE,
)
NUDGES = tuple(item.template for item in PLAN.recurring)
OCCURRENCES = range(1, 9)


def _countdown_parts(locale: str) -> list[Part]:
    """Each countdown day as planned today, and as sent on every day of its window."""
    steps = PLAN.ipledge
    parts = []
    test_date = date(2026, 12, 1)
    for day in steps.countdown_days:
        planned = {"day": day, "days_left": steps.window_days - day}
        parts.append(Part(steps.countdown_template, planned))
        stored = {"day": day, "test_date": test_date.isoformat(), "window_days": steps.window_days}
        for offset in range(steps.window_days):
            params = countdown_params(stored, test_date + timedelta(days=offset), locale)
            parts.append(Part(steps.countdown_template, params))
    return parts


def _primaries(locale: str) -> list[Part]:
    """Every part the care plan can send as the main part of a message."""
    parts = [Part(entry.template, entry.params) for entry in PLAN.entries]
    parts += [Part(nudge, {"n": n}) for nudge in NUDGES for n in OCCURRENCES]
    parts.append(Part(PLAN.ipledge.monthly_template, {"month": 1}))
    return parts + _countdown_parts(locale)


def _merges(locale: str) -> list[list[Part]]:
    """Each primary alone, with each nudge's short form in every wording, and with all."""
    merges = []
    for primary in _primaries(locale):
        others = [nudge for nudge in NUDGES if nudge != primary.template]
        merges.append([primary])
        for n in OCCURRENCES:
            for size in range(1, len(others) + 1):
                for extras in itertools.combinations(others, size):
                    merges.append([primary, *(Part(extra, {"n": n}) for extra in extras)])
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
    names: Names
    parts: tuple[Part, ...]
    context: MessageContext
    text: str


@dataclass(frozen=True)
class Email:
    label: str
    locale: str
    message: RenderedEmail


def _context(locale: str, names: Names = LONGEST, **flags: Any) -> MessageContext:
    return MessageContext(
        clinic=names.clinic,
        help_contact=HELP_CONTACT,
        first_name=names.first_name,
        clinic_phone=names.clinic_phone,
        locale=locale,
        **flags,
    )


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(TEMPLATES)


def _sms_cases() -> Iterator[tuple[str, list[Part], Names, dict[str, bool]]]:
    for locale in LOCALES:
        for parts in _merges(locale):
            for names, first, ipledge, home_tests in itertools.product(
                NAMES, (True, False), (True, False), (True, False)
            ):
                flags = {"first": first, "ipledge": ipledge, "home_tests": home_tests}
                yield locale, parts, names, flags


@pytest.fixture(scope="module")
def all_sms(renderer: Renderer) -> list[Sms]:
    rendered = []
    for locale, parts, names, flags in _sms_cases():
        context = _context(locale, names, **flags)
        label = _label(parts, locale=locale, names=names.label, **flags)
        text = renderer.sms(parts, context)
        rendered.append(Sms(label, locale, flags["first"], names, tuple(parts), context, text))
    return rendered


@pytest.fixture(scope="module")
def all_emails(renderer: Renderer) -> list[Email]:
    rendered = []
    for locale in LOCALES:
        for parts, ipledge, home_tests in itertools.product(
            _merges(locale), (True, False), (True, False)
        ):
            context = _context(
                locale, ipledge=ipledge, home_tests=home_tests, unsubscribe_url=UNSUBSCRIBE_URL
            )
            label = _label(parts, locale=locale, ipledge=ipledge, home_tests=home_tests)
            rendered.append(Email(label, locale, renderer.email(parts, context)))
    return rendered


def test_care_plan_has_templates_to_test() -> None:
    assert len(_primaries("en")) > len(PLAN.entries)
    assert NUDGES == ("sun_protection", "moisturizer")


def test_every_care_plan_template_has_all_its_files(renderer: Renderer) -> None:
    missing = [
        path
        for template, short in PLAN.templates().items()
        for path in renderer.missing_templates(template, short=short)
    ]
    assert missing == []


def test_every_sms_starts_with_the_clinic_name(all_sms: list[Sms]) -> None:
    offenders = [
        sms.label for sms in all_sms if not sms.text.startswith(f"{gsm_safe(sms.names.clinic)}: ")
    ]
    assert offenders == []


def test_first_sms_carries_the_frequency_the_rates_and_how_to_stop(all_sms: list[Sms]) -> None:
    offenders = [
        sms.label
        for sms in all_sms
        if sms.first and not all(phrase in sms.text for phrase in FIRST_SMS_PHRASES[sms.locale])
    ]
    assert offenders == []


@pytest.mark.parametrize("locale", LOCALES)
def test_the_first_sms_of_a_course_names_the_clinic_and_the_four_phrases(
    renderer: Renderer, locale: str
) -> None:
    text = renderer.sms([Part("welcome")], _context(locale, first=True))

    assert text.startswith("Riverside Derm Group: ")
    for phrase in FIRST_SMS_PHRASES[locale]:
        assert phrase in text
    assert text.endswith(FIRST_SMS_PHRASES[locale][-1])


def test_later_sms_leave_out_the_frequency_and_rates_lines(all_sms: list[Sms]) -> None:
    offenders = [
        sms.label
        for sms in all_sms
        if not sms.first and any(phrase in sms.text for phrase in FIRST_SMS_PHRASES[sms.locale])
    ]
    assert offenders == []


def test_every_sms_says_how_to_stop(all_sms: list[Sms]) -> None:
    offenders = [sms.label for sms in all_sms if HOW_TO_STOP[sms.locale] not in sms.text]
    assert offenders == []


def test_every_sms_is_a_single_line(all_sms: list[Sms]) -> None:
    offenders = [sms.label for sms in all_sms if sms.text != " ".join(sms.text.split())]
    assert offenders == []


def test_every_sms_stays_in_gsm7(all_sms: list[Sms]) -> None:
    offenders = [sms.label for sms in all_sms if count_segments(sms.text).encoding != "GSM-7"]
    assert offenders == []


def test_every_sms_fits_in_two_segments_with_the_longest_names(all_sms: list[Sms]) -> None:
    offenders = [
        f"{sms.label}: {count_segments(sms.text)}"
        for sms in all_sms
        if count_segments(sms.text).count > 2
    ]
    assert offenders == []


def test_merged_tips_are_kept_in_every_sms_but_a_first_one(
    renderer: Renderer, all_sms: list[Sms]
) -> None:
    offenders = [
        sms.label
        for sms in all_sms
        if not sms.first
        and not all(renderer.sms_tip(part, sms.context) in sms.text for part in sms.parts[1:])
    ]
    assert offenders == []


GREETING = {"en": "Hi Ana,", "es": "Hola Ana,"}


def test_the_patient_is_greeted_by_name_when_nothing_is_merged(all_sms: list[Sms]) -> None:
    offenders = [
        sms.label
        for sms in all_sms
        if sms.names is PLAIN
        and (not sms.first or sms.parts[0].template == "welcome")
        and len(sms.parts) == 1
        and GREETING[sms.locale] not in sms.text
    ]
    assert offenders == []


CONTACT_US = re.compile(r"[Cc]ontact us|[Cc]ontacte con nosotros")


@pytest.mark.parametrize("locale", LOCALES)
def test_an_sms_that_says_contact_us_gives_the_clinic_phone_when_there_is_one(
    renderer: Renderer, locale: str
) -> None:
    asking = 0
    for part in _primaries(locale):
        without = renderer.sms([part], _context(locale, PLAIN, ipledge=True))
        with_phone = renderer.sms(
            [part], _context(locale, replace(PLAIN, clinic_phone="555-0100"), ipledge=True)
        )
        if CONTACT_US.search(without):
            asking += 1
            assert "555-0100" in with_phone and not CONTACT_US.search(with_phone), without
    assert asking > len(PLAN.entries)


def test_spanish_sms_never_drop_an_accent(all_sms: list[Sms]) -> None:
    offenders = [
        f"{sms.label}: {match[0]}"
        for sms in all_sms
        if sms.locale == "es" and (match := UNACCENTED_SPANISH.search(sms.text))
    ]
    assert offenders == []


def test_spanish_emails_keep_their_accents(all_emails: list[Email]) -> None:
    spanish = [mail for mail in all_emails if mail.locale == "es"]
    offenders = [
        f"{mail.label}: {match[0]}"
        for mail in spanish
        if (match := UNACCENTED_SPANISH.search(mail.message.text))
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
        if LONGEST.first_name not in mail.message.text or LONGEST.clinic not in mail.message.text
    ]
    assert offenders == []


def test_every_email_html_greets_the_patient_and_names_the_clinic(
    all_emails: list[Email],
) -> None:
    offenders = [
        mail.label
        for mail in all_emails
        if LONGEST.first_name not in mail.message.html or LONGEST.clinic not in mail.message.html
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
    context = replace(_context(locale), help_contact="")
    message = renderer.email([Part("welcome")], context)
    assert not re.search(r"(Questions|Preguntas):", message.text + message.html)


@pytest.mark.parametrize("locale", LOCALES)
def test_a_clinic_name_with_a_curly_apostrophe_stays_gsm7(renderer: Renderer, locale: str) -> None:
    context = replace(_context(locale, first=True), clinic="St. Mary\u2019s Dermatology")

    text = renderer.sms([Part("welcome")], context)

    assert text.startswith("St. Mary's Dermatology: ")
    assert count_segments(text).encoding == "GSM-7"
    assert count_segments(text).count <= 2


MOOD = {"en": "mood", "es": "humor"}
MOOD_EMAIL = {"en": "mood", "es": "estado de ánimo"}


@pytest.mark.parametrize("locale", LOCALES)
def test_every_monthly_milestone_asks_to_report_mood_changes(
    renderer: Renderer, locale: str
) -> None:
    months = [entry for entry in PLAN.entries if entry.template == "month_milestone"]
    for entry in months:
        part = Part(entry.template, entry.params)
        assert MOOD[locale] in renderer.sms([part], _context(locale)), entry.id
        assert MOOD_EMAIL[locale] in renderer.email([part], _context(locale)).text, entry.id


STEPS = {"en": "monthly steps", "es": "pasos mensuales"}


@pytest.mark.parametrize("template", ["end_of_course", "after_1_month"])
@pytest.mark.parametrize("locale", LOCALES)
def test_after_the_last_dose_the_monthly_steps_are_mentioned_only_on_the_ipledge_track(
    renderer: Renderer, locale: str, template: str
) -> None:
    for render in (renderer.sms, lambda p, c: renderer.email(p, c).text):
        on_track = render([Part(template)], _context(locale, ipledge=True))
        off_track = render([Part(template)], _context(locale, ipledge=False))
        assert STEPS[locale] in on_track
        assert STEPS[locale] not in off_track


HOME = {"en": "at home", "es": "en casa"}


@pytest.mark.parametrize("locale", LOCALES)
def test_home_checks_are_mentioned_only_where_the_clinic_allows_them(
    renderer: Renderer, locale: str
) -> None:
    part = Part(PLAN.ipledge.monthly_template, {"month": 2})
    for render in (renderer.sms, lambda p, c: renderer.email(p, c).text):
        assert HOME[locale] in render([part], _context(locale, home_tests=True))
        assert HOME[locale] not in render([part], _context(locale, home_tests=False))


@pytest.mark.parametrize("locale", LOCALES)
def test_each_day_of_the_countdown_window_reads_differently(
    renderer: Renderer, locale: str
) -> None:
    countdown = [
        part
        for part in _primaries(locale)
        if part.template == PLAN.ipledge.countdown_template
        and "closes" in part.params
        and part.params["day"] == 1
    ]
    texts = {renderer.sms([part], _context(locale)) for part in countdown}
    assert len(countdown) == PLAN.ipledge.window_days
    assert len(texts) == len(countdown)


@pytest.mark.parametrize(("locale", "closes"), [("en", "Dec 7"), ("es", "7 dic")])
def test_the_countdown_names_the_closing_day(renderer: Renderer, locale: str, closes: str) -> None:
    stored = {"day": 1, "test_date": "2026-12-01", "window_days": 7}
    params = countdown_params(stored, date(2026, 12, 1), locale)

    assert closes in renderer.sms([Part("ipledge_countdown", params)], _context(locale))
    assert closes in renderer.email([Part("ipledge_countdown", params)], _context(locale)).subject


@pytest.mark.parametrize("nudge", NUDGES)
@pytest.mark.parametrize("locale", LOCALES)
def test_nudge_wordings_take_turns_and_never_repeat_within_four(
    renderer: Renderer, locale: str, nudge: str
) -> None:
    context = _context(locale)
    full = [renderer.sms([Part(nudge, {"n": n})], context) for n in OCCURRENCES]
    short = [renderer.sms_tip(Part(nudge, {"n": n}), context) for n in OCCURRENCES]
    subjects = [renderer.email([Part(nudge, {"n": n})], context).subject for n in OCCURRENCES]
    for texts in (full, short, subjects):
        assert len(set(texts[:4])) == 4
        assert texts[4:] == texts[:4]


# --- a whole course -------------------------------------------------------------------------

ZONE = ZoneInfo("America/New_York")
NOW = datetime(2025, 12, 1, 12, 0, tzinfo=UTC)  # unused by the planner: every course has plan_from
STARTS = [date(2026, month, day) for month, day in ((1, 1), (3, 31), (7, 1), (8, 31), (10, 15))]


def _course_sms(
    renderer: Renderer, start: date, locale: str, ipledge: bool
) -> list[tuple[date, str]]:
    """Every SMS of a standard 20-week course, with its local day, as the patient gets them."""
    last_dose = start + timedelta(weeks=20)
    course = CourseFacts(
        start_date=start,
        weeks=20,
        last_dose_date=last_dose,
        plan_from=datetime.combine(start, datetime.min.time(), tzinfo=ZONE).astimezone(UTC),
    )
    plan = plan_course(
        plan=PLAN, course=course, rules=Rules(timezone=ZONE, ipledge=ipledge), now=NOW
    )
    sent = []
    for index, message in enumerate(plan.messages):
        parts = [Part(item.template, item.params) for item in message.items]
        context = _context(locale, ipledge=ipledge, first=index == 0)
        sent.append((message.local_due.date(), renderer.sms(parts, context)))
    return sent


@pytest.mark.parametrize("ipledge", [False, True])
@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("start", STARTS, ids=str)
def test_no_sms_of_a_course_repeats_within_30_days(
    renderer: Renderer, start: date, locale: str, ipledge: bool
) -> None:
    sent = _course_sms(renderer, start, locale, ipledge)

    assert len(sent) > 25
    repeats = [
        (first_day, later_day, text)
        for (first_day, text), (later_day, other) in itertools.combinations(sent, 2)
        if text == other and (later_day - first_day).days < 30
    ]
    assert repeats == []


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("start", STARTS, ids=str)
def test_every_30_days_of_a_course_hold_an_sms_that_says_how_to_stop(
    renderer: Renderer, start: date, locale: str
) -> None:
    sent = _course_sms(renderer, start, locale, ipledge=False)
    days = [day for day, _ in sent]

    uncovered = []
    day = days[0]
    while day <= days[-1]:
        window = [(d, text) for d, text in sent if day <= d < day + timedelta(days=30)]
        if window and not any(HOW_TO_STOP[locale] in text for _, text in window):
            uncovered.append(day)
        day += timedelta(days=1)
    assert uncovered == []
    assert sent[0][1].endswith(FIRST_SMS_PHRASES[locale][-1])
