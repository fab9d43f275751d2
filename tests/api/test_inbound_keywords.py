"""The replies to each keyword family fit two SMS segments in every locale."""

from __future__ import annotations

import pytest

from reminders.api.texts import reply_text
from reminders.inbound import Keyword
from reminders.models import Clinic
from reminders.render import LOCALES, count_segments


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("keyword", list(Keyword))
def test_every_reply_fits_two_sms_segments(locale: str, keyword: Keyword) -> None:
    clinic = Clinic(name="Riverside Dermatology Partners", help_contact="(555) 010-0199")
    text = reply_text(keyword.value, locale=locale, clinics=[clinic])
    assert count_segments(text).count <= 2, text
