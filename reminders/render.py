"""Renders SMS and email messages from `templates/`, and counts SMS segments."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import css_inline
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
_WHITESPACE = re.compile(r"\s+")

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
    if all(char in _GSM7_BASIC or char in _GSM7_EXTENSION for char in text):
        widths = [2 if char in _GSM7_EXTENSION else 1 for char in text]
        return Segments("GSM-7", _pack(widths, single=160, multi=153), sum(widths))
    widths = [len(char.encode("utf-16-le")) // 2 for char in text]
    return Segments("UCS-2", _pack(widths, single=70, multi=67), sum(widths))


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
    """Fold letters outside GSM-7 to their plain form (María -> Maria) where one exists.

    Names come from clinics and patients; one á would switch a whole SMS to UCS-2 and more
    than double its segments, so names are folded before they enter an SMS.
    """
    if all(char in _GSM7_BASIC or char in _GSM7_EXTENSION for char in text):
        return text
    folded = []
    for char in text:
        if char in _GSM7_BASIC or char in _GSM7_EXTENSION:
            folded.append(char)
            continue
        plain = "".join(
            c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
        )
        folded.append(plain if plain and all(c in _GSM7_BASIC for c in plain) else char)
    return "".join(folded)


def one_line(text: str) -> str:
    """Collapse every run of whitespace to one space."""
    return _WHITESPACE.sub(" ", text).strip()


def template_environment(path: Path) -> Environment:
    """The Jinja2 environment of every text the service writes: undefined names are errors,
    HTML (only) is escaped, and block tags leave no blank lines behind."""
    return Environment(
        loader=FileSystemLoader(path),
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

    def sms(self, parts: Sequence[Part], context: MessageContext) -> str:
        """One-line SMS: the first part in full, the others in their short form."""
        primary, *extras = _require(parts)
        context = replace(
            context, clinic=gsm_safe(context.clinic), first_name=gsm_safe(context.first_name)
        )
        folder = f"sms/{context.locale}"
        text = self._render(
            f"{folder}/_message.txt",
            context,
            primary.params,
            primary=self._render(f"{folder}/{primary.template}.txt", context, primary.params),
            extras=[
                self._render(f"{folder}/{extra.template}.short.txt", context, extra.params)
                for extra in extras
            ],
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
            "params": dict(params),
            **extra,
        }
        return self._env.get_template(name).render(variables)


def _require(parts: Sequence[Part]) -> Sequence[Part]:
    """The parts of a message, which must hold at least the primary one."""
    if not parts:
        raise ValueError("a message needs at least one part")
    return parts
