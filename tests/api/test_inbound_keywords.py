"""The automatic answers: what each says, in every locale, within two SMS segments."""

from __future__ import annotations

import pytest

from reminders.api.texts import reply_text
from reminders.inbound import Keyword
from reminders.models import Clinic
from reminders.render import LOCALES, count_segments

# The longest help phone a clinic may give (services.clinics.HELP_PHONE_MAX) and a long name.
RIVERSIDE = Clinic(name="Riverside Dermatology Partners", help_contact="+44 20 7946 0958 000")
LAKESIDE = Clinic(name="Lakeside Skin and Laser Center", help_contact="(212) 555-0199")
HELP = {
    "en": ("up to 3 msgs/week", "Msg&data rates may apply", "Reply STOP to opt out"),
    "es": ("hasta 3 msjs/semana", "tarifas de mensajes y datos", "Responda STOP para cancelar"),
}


@pytest.mark.parametrize("clinics", [[RIVERSIDE], [RIVERSIDE, LAKESIDE]], ids=["one", "two"])
@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("keyword", list(Keyword))
def test_every_reply_fits_two_sms_segments(
    locale: str, keyword: Keyword, clinics: list[Clinic]
) -> None:
    text = reply_text(keyword.value, locale=locale, clinics=clinics)
    assert count_segments(text).count <= 2, text


@pytest.mark.parametrize("locale", LOCALES)
def test_a_free_text_reply_says_it_will_be_read_and_where_to_call(locale: str) -> None:
    text = reply_text("other", locale=locale, clinics=[LAKESIDE])
    assert "Lakeside Skin and Laser Center" in text
    assert "(212) 555-0199" in text and "911" in text and "STOP" in text
    assert ("staff will read it" if locale == "en" else "el personal lo va a leer") in text
    assert "not read" not in text and "no lee" not in text


def test_a_free_text_reply_to_a_number_at_two_clinics_gives_both_phones() -> None:
    text = reply_text("other", locale="en", clinics=[RIVERSIDE, LAKESIDE])
    assert "Riverside Dermatology Partners: +44 20 7946 0958 000." in text
    assert "Lakeside Skin and Laser Center: (212) 555-0199." in text


@pytest.mark.parametrize("locale", LOCALES)
def test_help_names_the_clinic_its_phone_the_frequency_the_rates_and_stop(locale: str) -> None:
    text = reply_text("help", locale=locale, clinics=[LAKESIDE])
    assert "Lakeside Skin and Laser Center: (212) 555-0199." in text
    for part in HELP[locale]:
        assert part in text


@pytest.mark.parametrize("locale", LOCALES)
def test_an_opt_out_confirmation_says_nothing_else(locale: str) -> None:
    text = reply_text("stop", locale=locale, clinics=[LAKESIDE])
    assert text.startswith("Lakeside Skin and Laser Center: ")
    for other in ("(212) 555-0199", "911", "HELP", "msgs", "tarifas", "rates"):
        assert other not in text
    assert "START" in text  # how to undo it is part of the confirmation


def test_a_number_at_more_clinics_than_fit_hears_from_the_latest_two() -> None:
    third = Clinic(name="Hillside Skin", help_contact="(212) 555-0188")
    text = reply_text("stop", locale="en", clinics=[RIVERSIDE, LAKESIDE, third])
    assert "Riverside" in text and "Lakeside" in text and "Hillside" not in text
