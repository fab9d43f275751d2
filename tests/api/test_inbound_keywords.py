"""Keyword families of a whole text, and the replies' length in every locale."""

from __future__ import annotations

import pytest

from reminders.api.texts import reply_text
from reminders.inbound import Keyword, classify
from reminders.models import Clinic
from reminders.render import LOCALES, count_segments


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("STOP", Keyword.stop),
        ("Stop.", Keyword.stop),
        ("  stop  ", Keyword.stop),
        ("stop!!!", Keyword.stop),
        ("STOPALL", Keyword.stop),
        ("Unsubscribe", Keyword.stop),
        ("cancel", Keyword.stop),
        ("end", Keyword.stop),
        ("quit", Keyword.stop),
        ("revoke", Keyword.stop),
        ("optout", Keyword.stop),
        ("Opt out", Keyword.stop),
        ("opt-out", Keyword.stop),
        ("ＳＴＯＰ", Keyword.stop),
        ("start", Keyword.start),
        ("UNSTOP", Keyword.start),
        ("Yes!", Keyword.start),
        ("help", Keyword.help),
        ("INFO?", Keyword.help),
        ("please stop texting me", Keyword.other),
        ("stopped my pills", Keyword.other),
        ("", Keyword.other),
        ("🙂", Keyword.other),
    ],
)
def test_a_whole_text_is_classified_by_its_keyword(text: str, expected: Keyword) -> None:
    assert classify(text) == expected


def test_twilios_own_classification_wins() -> None:
    assert classify("arret", opt_out_type="STOP") == Keyword.stop


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("keyword", ["stop", "start", "help", "other"])
def test_every_reply_fits_two_sms_segments(locale: str, keyword: str) -> None:
    clinic = Clinic(name="Riverside Dermatology Partners", help_contact="(555) 010-0199")
    text = reply_text(keyword, locale=locale, clinics=[clinic])
    assert count_segments(text).count <= 2, text
