"""Renders SMS and email messages from `templates/`, and counts SMS segments."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import css_inline
from babel.dates import format_skeleton
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

LOCALES = ("en", "es")

# GSM 03.38 basic character set. ESC (0x1B) is left out: it only introduces the extension table.
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table: each character travels as ESC + code, so it costs two septets.
_GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
_GSM7 = _GSM7_BASIC | _GSM7_EXTENSION
_WHITESPACE = re.compile(r"\s+")
# Typographic punctuation that word processors and phones put into names, and its GSM-7 form.
_TYPOGRAPHIC = str.maketrans(
    {
        **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u2039\u203a\u00b4\u0060", "'"),
        **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb", '"'),
        **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"),
        "\u2026": "...",
    }
)
# A first name in an SMS is cut to this many characters, so no name can push it past its budget.
SMS_FIRST_NAME_MAX = 20

# The files each template id needs per locale; recurring nudges also need a short SMS form.
_FILES = (
    "sms/{locale}/{template}.txt",
    "email/{locale}/{template}.subject.txt",
    "email/{locale}/{template}.txt",
    "email/{locale}/{template}.html",
)
_SHORT_FILES = ("sms/{locale}/{template}.short.txt",)


@dataclass(frozen=True)
class MessageContext:
    """Who a message is for and who sends it; the same for every part of the message."""

    clinic: str
    help_contact: str
    first_name: str
    locale: str  # "en" | "es"
    ipledge: bool = False
    first: bool = False  # first SMS of the course: add the opt-out line
    unsubscribe_url: str | None = None
    clinic_phone: str = ""  # at most 20 characters; SMS give it where it fits
    home_tests: bool = False  # the clinic lets monthly checks be done at home


@dataclass(frozen=True)
class Part:
    """One care-plan entry merged into a message."""

    template: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RenderedEmail:
    """A ready email: subject, plain-text part and HTML part with its CSS inlined."""

    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class Segments:
    """What an SMS text costs: its encoding, its segments and its units."""

    encoding: str  # "GSM-7" | "UCS-2"
    count: int
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)


def count_segments(text: str) -> Segments:
    """Count the SMS segments of a text; one character outside GSM-7 makes all of it UCS-2."""
    # Counted on every message sent: the common cases are worked out without a loop.
    if is_gsm7(text):
        escapes = sum(text.count(char) for char in _GSM7_EXTENSION)
        units = len(text) + escapes
        if units <= 160 or not escapes:
            return Segments("GSM-7", 1 if units <= 160 else -(-units // 153), units)
        widths = [2 if char in _GSM7_EXTENSION else 1 for char in text]
        return Segments("GSM-7", _pack(widths, single=160, multi=153), units)
    units = len(text.encode("utf-16-le")) // 2
    if units <= 70 or units == len(text):  # no surrogate pair to keep whole
        return Segments("UCS-2", 1 if units <= 70 else -(-units // 67), units)
    widths = [len(char.encode("utf-16-le")) // 2 for char in text]
    return Segments("UCS-2", _pack(widths, single=70, multi=67), units)


def _pack(widths: list[int], *, single: int, multi: int) -> int:
    """Number of segments needed for characters of these widths."""
    if sum(widths) <= single:
        return 1
    # Phones cannot rejoin an escape pair or a surrogate pair cut in two, so a character that
    # does not fit at the end of a segment starts the next one.
    count, used = 1, 0
    for width in widths:
        if used + width > multi:
            count, used = count + 1, 0
        used += width
    return count


def gsm_safe(text: str) -> str:
    """Fold text to GSM-7 where a plain form exists (María -> Maria, Mary’s -> Mary's).

    Names come from clinics and patients; one á or curly apostrophe would switch a whole SMS
    to UCS-2 and more than double its segments, so names are folded before they enter an SMS.
    """
    if is_gsm7(text):
        return text
    folded = []
    for char in text.translate(_TYPOGRAPHIC):
        if char in _GSM7_BASIC or char in _GSM7_EXTENSION:
            folded.append(char)
        elif unicodedata.category(char) in ("Zs", "Zl", "Zp"):
            folded.append(" ")  # non-breaking, narrow, ideographic spaces and line separators
        else:
            plain = "".join(
                c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
            )
            folded.append(plain if plain and all(c in _GSM7_BASIC for c in plain) else char)
    return "".join(folded)


def sms_first_name(name: str) -> str:
    """The first name as an SMS greets the patient: folded, GSM-7 only, at most 20 characters.

    The service accepts first names of up to 80 characters in any script; an SMS must stay
    within two segments whatever the name, so the name is cut at a word boundary (a single
    longer word is cut short) and letters with no GSM-7 form are left out.
    """
    kept = "".join(char for char in gsm_safe(name) if char in _GSM7_BASIC)
    words = one_line(kept).split(" ")
    result = ""
    for word in words:
        candidate = f"{result} {word}" if result else word
        if len(candidate) > SMS_FIRST_NAME_MAX:
            break
        result = candidate
    if not result and words[0]:
        result = words[0][:SMS_FIRST_NAME_MAX].rstrip("-'.,")
    return result


def countdown_params(params: Mapping[str, Any], today: date, locale: str) -> dict[str, Any]:
    """A countdown's params as of the day it is sent: `days_left` and the closing date added.

    Day 1 of the window is the specimen date (a test on Dec 1 closes on Dec 7), and the days
    left count from the day the message goes out, not the day it was planned. Params without a
    `test_date` (planned before it was stored) keep their planned `days_left`.
    """
    result = dict(params)
    if "test_date" not in params:
        return result
    test_date = date.fromisoformat(str(params["test_date"]))
    window = int(params.get("window_days", 7))
    closes = test_date + timedelta(days=window - 1)
    result["days_left"] = max(0, window - ((today - test_date).days + 1))
    result["closes"] = format_skeleton("MMMd", closes, locale=locale)
    return result


def rotate(items: Sequence[Any], params: Mapping[str, Any]) -> Any:
    """The wording for this occurrence of a recurring nudge: item (n - 1) mod len, in turn.

    Rows planned before nudges carried their occurrence number have no `n`: the first item.
    """
    if not items:
        raise ValueError("rotate needs at least one item")
    return items[(int(params.get("n", 1)) - 1) % len(items)]


def is_gsm7(text: str) -> bool:
    """Whether every character of `text` has a GSM-7 code (so an SMS of it is not UCS-2)."""
    return _GSM7.issuperset(text)


def one_line(text: str) -> str:
    """Collapse every run of whitespace to one space."""
    return _WHITESPACE.sub(" ", text).strip()


def template_environment(path: Path) -> Environment:
    """The Jinja2 environment of every text the service writes: undefined names are errors,
    HTML (only) is escaped, and block tags leave no blank lines behind."""
    return Environment(
        loader=FileSystemLoader(path),
        # Templates are read once: a changed file takes effect when the process restarts (as
        # the care plan does), and no render pays for a look at the file's date.
        auto_reload=False,
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
    )


class Renderer:
    """Renders messages from one templates directory."""

    def __init__(self, templates_path: Path) -> None:
        self.templates_path = Path(templates_path)
        self._env = template_environment(self.templates_path)
        self._env.filters["rotate"] = rotate

    def sms(self, parts: Sequence[Part], context: MessageContext) -> str:
        """One-line SMS: the first part in full, the others in their short form.

        A text that would need more than two segments is rendered again compact: without the
        patient's name and the sentences a template marks optional (`compact`), such as
        "Questions? Call us", which the HELP reply also gives. Only if that is still too long
        (a first SMS, with its legal lines, that also carries routine tips) are the merged
        tips left out: the primary message and the legal lines always go.
        """
        primary, *extras = _require(parts)
        context = replace(
            context,
            clinic=gsm_safe(context.clinic),
            clinic_phone=gsm_safe(context.clinic_phone),
            first_name=sms_first_name(context.first_name),
        )
        attempts: tuple[tuple[bool, Sequence[Part]], ...] = (
            (False, extras),
            (True, extras),
            (True, ()),
        )
        for compact, tips in attempts:
            text = self._sms_text(primary, tips, context, compact=compact)
            if count_segments(text).count <= 2:
                break
        return text

    def sms_tip(self, part: Part, context: MessageContext) -> str:
        """The short form of a routine nudge: the line it adds when it rides along in an SMS."""
        text = self._render(f"sms/{context.locale}/{part.template}.short.txt", context, part.params)
        return one_line(text)

    def _sms_text(
        self, primary: Part, extras: Sequence[Part], context: MessageContext, *, compact: bool
    ) -> str:
        folder = f"sms/{context.locale}"
        if compact:
            context = replace(context, first_name="")
        body = self._render(
            f"{folder}/{primary.template}.txt", context, primary.params, compact=compact
        )
        tips = [self.sms_tip(extra, context) for extra in extras]
        text = self._render(
            f"{folder}/_message.txt",
            context,
            primary.params,
            compact=compact,
            primary=body,
            extras=tips,
        )
        return one_line(text)

    def email(self, parts: Sequence[Part], context: MessageContext) -> RenderedEmail:
        """Email whose subject comes from the first part and whose body holds every part in full."""
        primary = _require(parts)[0]
        folder = f"email/{context.locale}"
        subject = one_line(
            self._render(f"{folder}/{primary.template}.subject.txt", context, primary.params)
        )
        texts = [
            self._render(f"{folder}/{part.template}.txt", context, part.params).strip()
            for part in parts
        ]
        # Each fragment was escaped when rendered; Markup keeps the layout from escaping it again.
        htmls = [
            Markup(self._render(f"{folder}/{part.template}.html", context, part.params))
            for part in parts
        ]
        text = self._render(
            f"{folder}/_layout.txt", context, primary.params, subject=subject, parts=texts
        )
        html = self._render(
            f"{folder}/_layout.html", context, primary.params, subject=subject, parts=htmls
        )
        return RenderedEmail(
            subject=subject, text=text.strip() + "\n", html=css_inline.inline(html)
        )

    def missing_templates(self, template: str, short: bool = False) -> list[str]:
        """Paths, relative to the templates directory, that this template id still lacks."""
        patterns = _FILES + (_SHORT_FILES if short else ())
        wanted = [
            pattern.format(locale=locale, template=template)
            for locale in LOCALES
            for pattern in patterns
        ]
        return [path for path in wanted if not (self.templates_path / path).is_file()]

    def _render(
        self, name: str, context: MessageContext, params: Mapping[str, Any], **extra: Any
    ) -> str:
        """Render one template with every context variable set, as StrictUndefined requires."""
        variables = {
            "clinic": context.clinic,
            "help_contact": context.help_contact,
            "first_name": context.first_name,
            "ipledge": context.ipledge,
            "first": context.first,
            "unsubscribe_url": context.unsubscribe_url,
            "clinic_phone": context.clinic_phone,
            "home_tests": context.home_tests,
            "compact": False,
            "params": dict(params),
            **extra,
        }
        return self._env.get_template(name).render(variables)


def _require(parts: Sequence[Part]) -> Sequence[Part]:
    """The parts of a message, which must hold at least the primary one."""
    if not parts:
        raise ValueError("a message needs at least one part")
    return parts
