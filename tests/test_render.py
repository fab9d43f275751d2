"""SMS segment counting and the rendering rules of reminders.render."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from jinja2 import UndefinedError

from reminders.config import PROJECT_ROOT
from reminders.render import (
    MessageContext,
    Part,
    Renderer,
    Segments,
    count_segments,
    countdown_params,
    gsm_safe,
    rotate,
    sms_first_name,
)

CONTEXT = MessageContext(clinic="Clinic", help_contact="", first_name="Ann", locale="en")

TINY_TEMPLATES = {
    "sms/en/_message.txt": (
        "{{ clinic }}: {{ primary }}\n"
        "{% for extra in extras %}\n{{ extra }}\n{% endfor %}\n"
        "{% if first %}\nReply STOP\n{% endif %}\n"
    ),
    "sms/en/a.txt": "Hello\n\n   {{ first_name }}.\n",
    "sms/en/b.txt": "Long b.",
    "sms/en/b.short.txt": "Short b.",
    "sms/en/month.txt": "Month {{ params.month }}.",
    "sms/en/oops.txt": "Hello {{ surname }}.",
    "sms/en/who.txt": "{{ first_name }} at {{ clinic }}, {{ clinic_phone }}.",
    "sms/en/home.txt": "{% if home_tests %}At home.{% else %}At the clinic.{% endif %}",
    "sms/en/long.txt": (
        "{{ first_name }} {{ 'x' * 220 }}{% if not compact %} {{ 'optional' * 10 }}{% endif %}"
    ),
    "sms/en/longest.txt": "{{ 'y' * 285 }}",
    "sms/en/turn.txt": "{{ ['one', 'two', 'three'] | rotate(params) }}",
    "email/en/_layout.txt": "{{ first_name }}\n{% for part in parts %}\n{{ part }}\n{% endfor %}\n",
    "email/en/_layout.html": (
        "<html><head><style>p { color: red; }</style></head>"
        "<body><p>{{ first_name }}</p>{% for part in parts %}{{ part }}{% endfor %}</body></html>"
    ),
    "email/en/a.subject.txt": "Subject\n  a\n",
    "email/en/a.txt": "Text a.",
    "email/en/a.html": "<p>Html a.</p>",
    "email/en/b.subject.txt": "Subject b",
    "email/en/b.txt": "Text b.",
    "email/en/b.html": "<p>Html b.</p>",
}


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@pytest.fixture
def renderer(tmp_path: Path) -> Renderer:
    _write(tmp_path, TINY_TEMPLATES)
    return Renderer(tmp_path)


def test_160_gsm_characters_fit_in_one_segment() -> None:
    assert count_segments("a" * 160) == Segments(encoding="GSM-7", count=1, units=160)


def test_161_gsm_characters_need_two_segments() -> None:
    assert count_segments("a" * 161).count == 2


def test_306_gsm_characters_fit_in_two_segments() -> None:
    assert count_segments("a" * 306).count == 2


def test_307_gsm_characters_need_three_segments() -> None:
    assert count_segments("a" * 307).count == 3


def test_one_a_with_acute_accent_switches_the_whole_text_to_ucs2() -> None:
    assert count_segments("a" * 69 + "á") == Segments(encoding="UCS-2", count=1, units=70)


def test_71_ucs2_units_need_two_segments() -> None:
    assert count_segments("a" * 70 + "á").count == 2


def test_ucs2_segments_hold_67_units_when_split() -> None:
    assert count_segments("á" * 134).count == 2
    assert count_segments("á" * 135).count == 3


def test_a_curly_quote_switches_the_text_to_ucs2() -> None:
    assert count_segments("It\u2019s time").encoding == "UCS-2"


def test_an_emoji_switches_the_text_to_ucs2_and_counts_two_units() -> None:
    assert count_segments("Hi \U0001f600") == Segments(encoding="UCS-2", count=1, units=5)


def test_gsm7_accented_letters_keep_the_text_in_gsm7() -> None:
    assert count_segments("é ñ ü à ¿ ¡ Ñ").encoding == "GSM-7"


def test_gsm7_extension_characters_count_as_two_septets() -> None:
    assert count_segments("€" * 80) == Segments(encoding="GSM-7", count=1, units=160)
    assert count_segments("{" * 81).count == 2


def test_an_escape_pair_is_never_split_across_segments() -> None:
    # 306 septets would fit two segments, but the euro sign cannot straddle the first boundary.
    assert count_segments("a" * 152 + "€" + "a" * 152).count == 3


def test_a_missing_variable_raises_instead_of_rendering_empty(renderer: Renderer) -> None:
    with pytest.raises(UndefinedError):
        renderer.sms([Part("oops")], CONTEXT)


def test_a_missing_param_raises_instead_of_rendering_empty(renderer: Renderer) -> None:
    with pytest.raises(UndefinedError):
        renderer.sms([Part("month")], CONTEXT)


def test_params_reach_the_template(renderer: Renderer) -> None:
    assert renderer.sms([Part("month", {"month": 3})], CONTEXT) == "Clinic: Month 3."


def test_sms_is_one_line_with_single_spaces(renderer: Renderer) -> None:
    assert renderer.sms([Part("a")], CONTEXT) == "Clinic: Hello Ann."


def test_sms_extras_use_their_short_form(renderer: Renderer) -> None:
    assert renderer.sms([Part("a"), Part("b")], CONTEXT) == "Clinic: Hello Ann. Short b."


def test_first_sms_gets_the_opt_out_line(renderer: Renderer) -> None:
    text = renderer.sms([Part("a")], replace(CONTEXT, first=True))
    assert text == "Clinic: Hello Ann. Reply STOP"


def test_a_message_without_parts_is_refused(renderer: Renderer) -> None:
    with pytest.raises(ValueError):
        renderer.sms([], CONTEXT)


def test_email_subject_comes_from_the_first_part_on_one_line(renderer: Renderer) -> None:
    assert renderer.email([Part("a"), Part("b")], CONTEXT).subject == "Subject a"


def test_email_body_holds_every_part_in_full(renderer: Renderer) -> None:
    message = renderer.email([Part("a"), Part("b")], CONTEXT)
    assert message.text == "Ann\nText a.\nText b.\n"
    assert ">Html a.</p>" in message.html
    assert ">Html b.</p>" in message.html


def test_email_html_has_its_css_inlined(renderer: Renderer) -> None:
    html = renderer.email([Part("a")], CONTEXT).html
    assert "<style" not in html
    assert '<p style="color: red;">Ann</p>' in html


def test_html_escapes_variables_and_plain_text_does_not(renderer: Renderer) -> None:
    message = renderer.email([Part("a")], replace(CONTEXT, first_name="<b>Ann</b>"))
    assert "&lt;b&gt;Ann&lt;/b&gt;" in message.html
    assert message.text.startswith("<b>Ann</b>")


def _complete_set(template: str) -> dict[str, str]:
    """Every file a template id needs, in both locales, short form aside."""
    names = ["sms/{}/{}.txt", "email/{}/{}.subject.txt", "email/{}/{}.txt", "email/{}/{}.html"]
    return {name.format(locale, template): "x" for name in names for locale in ("en", "es")}


def test_missing_templates_reports_a_missing_file(tmp_path: Path) -> None:
    files = _complete_set("x")
    del files["email/es/x.html"]
    _write(tmp_path, files)
    assert Renderer(tmp_path).missing_templates("x") == ["email/es/x.html"]


def test_missing_templates_is_empty_when_every_file_exists(tmp_path: Path) -> None:
    _write(tmp_path, _complete_set("x"))
    assert Renderer(tmp_path).missing_templates("x") == []


def test_missing_templates_asks_for_the_short_form_when_told(tmp_path: Path) -> None:
    _write(tmp_path, _complete_set("x"))
    assert Renderer(tmp_path).missing_templates("x", short=True) == [
        "sms/en/x.short.txt",
        "sms/es/x.short.txt",
    ]


def test_a_curly_apostrophe_makes_a_clinic_name_ucs2_until_folded() -> None:
    name = "St. Mary\u2019s Dermatology"

    assert count_segments(name).encoding == "UCS-2"
    assert gsm_safe(name) == "St. Mary's Dermatology"
    assert count_segments(gsm_safe(name)).encoding == "GSM-7"


def test_curly_quotes_dashes_and_ellipses_fold_to_gsm7() -> None:
    text = "\u201cJo\u201d \u2018Anne\u2019 \u2013 Marie \u2014 Lou\u2026"

    assert gsm_safe(text) == "\"Jo\" 'Anne' - Marie - Lou..."


def test_unicode_spaces_fold_to_a_plain_space() -> None:
    text = "Ana\u00a0Mar\u00eda\u202fde\u2009la\u3000Cruz"

    assert gsm_safe(text) == "Ana Maria de la Cruz"


def test_accented_letters_outside_gsm7_fold_and_gsm7_ones_stay() -> None:
    assert (
        gsm_safe("Mar\u00eda Jos\u00e9 N\u00fa\u00f1ez \u00c1lvarez") == "Maria José Nuñez Alvarez"
    )


def test_a_letter_without_a_gsm7_form_is_left_for_the_segment_count_to_see() -> None:
    assert gsm_safe("Анна") == "Анна"


def test_an_sms_first_name_is_cut_at_a_word_boundary() -> None:
    assert sms_first_name("Alexandrina Victoria Maria") == "Alexandrina Victoria"
    assert sms_first_name("Maximiliano Alejandro") == "Maximiliano"


def test_a_single_word_longer_than_20_is_cut_to_20() -> None:
    assert sms_first_name("Wolfeschlegelsteinhausenberger") == "Wolfeschlegelsteinha"


def test_an_sms_first_name_is_folded_and_its_spaces_collapsed() -> None:
    assert sms_first_name("  Mar\u00eda\u00a0\u00a0Jos\u00e9 ") == "Maria José"
    assert sms_first_name("O\u2019Brien") == "O'Brien"


def test_letters_with_no_gsm7_form_are_left_out_of_an_sms_first_name() -> None:
    assert sms_first_name("Jos\u00e9 \u738b") == "José"
    assert sms_first_name("\u738b\u5c0f\u660e") == ""


def test_an_80_character_first_name_keeps_at_most_20() -> None:
    name = ("Anne-Marie Josephine " * 4)[:80]

    assert len(sms_first_name(name)) <= 20
    assert sms_first_name(name) == "Anne-Marie Josephine"


def test_countdown_days_left_count_from_the_specimen_date_on_the_day_of_sending() -> None:
    params = {"day": 1, "test_date": "2026-12-01", "window_days": 7}

    left = [countdown_params(params, date(2026, 12, d), "en")["days_left"] for d in range(1, 8)]

    assert left == [6, 5, 4, 3, 2, 1, 0]


def test_countdown_days_left_never_go_below_zero() -> None:
    params = {"day": 7, "test_date": "2026-12-01", "window_days": 7}

    assert countdown_params(params, date(2026, 12, 10), "en")["days_left"] == 0


@pytest.mark.parametrize(("locale", "closes"), [("en", "Dec 7"), ("es", "7 dic")])
def test_countdown_closing_date_is_the_last_day_of_the_window_in_the_locale(
    locale: str, closes: str
) -> None:
    params = {"day": 1, "test_date": "2026-12-01", "window_days": 7}

    assert countdown_params(params, date(2026, 12, 1), locale)["closes"] == closes


def test_countdown_params_keep_the_planned_ones_and_leave_the_input_alone() -> None:
    params = {"day": 5, "test_date": "2026-12-01", "window_days": 7}

    result = countdown_params(params, date(2026, 12, 5), "en")

    assert result == params | {"days_left": 2, "closes": "Dec 7"}
    assert "days_left" not in params


def test_countdown_params_without_a_test_date_keep_their_planned_days_left() -> None:
    assert countdown_params({"day": 5, "days_left": 2}, date(2026, 12, 5), "en") == {
        "day": 5,
        "days_left": 2,
    }


@pytest.mark.parametrize(("n", "expected"), [(1, "one"), (2, "two"), (3, "three"), (4, "one")])
def test_rotate_takes_the_items_in_turn_by_occurrence(n: int, expected: str) -> None:
    assert rotate(["one", "two", "three"], {"n": n}) == expected


def test_rotate_without_an_occurrence_takes_the_first_item() -> None:
    assert rotate(["one", "two"], {}) == "one"


def test_templates_rotate_by_the_occurrence_param(renderer: Renderer) -> None:
    texts = [renderer.sms([Part("turn", {"n": n})], CONTEXT) for n in (1, 2, 3, 4)]

    assert texts == ["Clinic: one", "Clinic: two", "Clinic: three", "Clinic: one"]


def test_sms_folds_the_clinic_its_phone_and_the_first_name(renderer: Renderer) -> None:
    context = replace(
        CONTEXT,
        clinic="St. Mary\u2019s",
        clinic_phone="555\u2011010\u20110100",
        first_name="Mar\u00eda Alexandrina Victoria",
    )

    text = renderer.sms([Part("who")], context)

    assert text == "St. Mary's: Maria Alexandrina at St. Mary's, 555-010-0100."


def test_home_tests_reach_the_templates(renderer: Renderer) -> None:
    assert renderer.sms([Part("home")], replace(CONTEXT, home_tests=True)) == "Clinic: At home."
    assert renderer.sms([Part("home")], CONTEXT) == "Clinic: At the clinic."


def test_a_text_past_two_segments_is_rendered_compact(renderer: Renderer) -> None:
    text = renderer.sms([Part("long"), Part("b")], CONTEXT)

    assert "optional" not in text and "Ann" not in text
    assert text.endswith("Short b.")
    assert count_segments(text).count <= 2


def test_a_text_that_fits_keeps_its_optional_parts(renderer: Renderer) -> None:
    context = replace(CONTEXT, first_name="Ann")
    text = renderer.sms([Part("a")], context)

    assert "Ann" in text


def test_merged_tips_are_left_out_only_when_compact_is_not_enough(renderer: Renderer) -> None:
    text = renderer.sms([Part("longest"), Part("b")], replace(CONTEXT, first=True))

    assert "Short b." not in text
    assert text.endswith("Reply STOP")
    assert count_segments(text).count <= 2


def test_accented_names_are_folded_so_an_sms_stays_gsm7() -> None:
    renderer = Renderer(PROJECT_ROOT / "templates")
    context = MessageContext(
        clinic="Clínica Sánchez",
        help_contact="",
        first_name="María José",
        locale="es",
        first=True,
    )
    text = renderer.sms([Part("welcome")], context)
    # é is GSM-7 and stays; í, á and ó are not and are folded.
    assert "Maria José" in text and "Clinica Sanchez" in text
    assert count_segments(text).encoding == "GSM-7"
    assert count_segments(text).count <= 2
