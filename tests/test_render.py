"""SMS segment counting and the rendering rules of reminders.render."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from jinja2 import UndefinedError

from reminders.render import MessageContext, Part, Renderer, Segments, count_segments

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


def test_accented_names_are_folded_so_an_sms_stays_gsm7(tmp_path: Path) -> None:
    from reminders.config import PROJECT_ROOT
    from reminders.render import MessageContext, Part, Renderer

    renderer = Renderer(PROJECT_ROOT / "templates")
    context = MessageContext(
        clinic="Clínica Dermatológica Sánchez",
        help_contact="",
        first_name="María José",
        locale="es",
        first=True,
    )
    text = renderer.sms([Part("welcome")], context)
    # é is GSM-7 and stays; í, á and ó are not and are folded.
    assert "Maria José" in text and "Clinica Dermatologica Sanchez" in text
    assert count_segments(text).encoding == "GSM-7"
    assert count_segments(text).count <= 2
