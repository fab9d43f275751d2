"""Loads and validates the care-plan file: what is said, relative to which anchor, how urgently."""

from __future__ import annotations

import calendar
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from reminders.caps import Caps

TOPICS = (
    "welcome",
    "milestone",
    "sun_protection",
    "moisturizer",
    "ipledge",
    "end_of_course",
    "post_course",
)
RECURRING_TOPICS = ("sun_protection", "moisturizer")
ANCHORS = ("start", "end")
# Clinic settings an entry can depend on: the planner leaves the entry out when it is off.
CONDITIONS = ("lab_reminders",)
DEFAULT_PATH = Path(__file__).with_name("careplan.toml")

_OFFSET = re.compile(r"^(-?\d{1,4})([dwm])$")


class CarePlanError(ValueError):
    """The care-plan file is invalid; the message names the entry and field."""


@dataclass(frozen=True)
class Offset:
    """A signed distance in days, weeks or calendar months."""

    amount: int
    unit: str  # "d" | "w" | "m"

    @classmethod
    def parse(cls, text: str) -> Offset:
        match = _OFFSET.match(str(text).strip())
        if not match:
            raise ValueError(f"{text!r} is not an offset (use e.g. 3d, 2w or 1m)")
        return cls(int(match.group(1)), match.group(2))

    def apply(self, day: date) -> date:
        """The date this offset away from `day`; months clip to the month's end (Jan 31 + 1m)."""
        if self.unit == "d":
            return day + timedelta(days=self.amount)
        if self.unit == "w":
            return day + timedelta(weeks=self.amount)
        return add_months(day, self.amount)

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"


def add_months(day: date, months: int) -> date:
    """`day` plus calendar months, clipped to the last day of the target month."""
    year, month_index = divmod(day.year * 12 + day.month - 1 + months, 12)
    last_day = calendar.monthrange(year, month_index + 1)[1]
    return date(year, month_index + 1, min(day.day, last_day))


@dataclass(frozen=True)
class Entry:
    """A one-off message at an offset from an anchor."""

    id: str
    topic: str
    anchor: str
    offset: Offset
    priority: int
    template: str
    grace_days: int = 3
    during_course: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    only_if: str | None = None  # one of CONDITIONS; None: always planned


@dataclass(frozen=True)
class Recurring:
    """A routine nudge repeated at a cadence while the course runs."""

    id: str
    topic: str
    first: Offset
    every: Offset
    until: str  # "end": the nudges stop at the end anchor
    priority: int
    template: str


@dataclass(frozen=True)
class Ipledge:
    """The iPLEDGE steps: a monthly reminder and a countdown after each pregnancy test."""

    priority: int = 90
    monthly_template: str = "ipledge_monthly"
    monthly_every_days: int = 30
    monthly_lead_days: int = 3
    monthly_grace_days: int = 5
    countdown_template: str = "ipledge_countdown"
    countdown_days: tuple[int, ...] = (1, 5, 7)
    window_days: int = 7


@dataclass(frozen=True)
class CarePlan:
    entries: tuple[Entry, ...]
    recurring: tuple[Recurring, ...]
    ipledge: Ipledge
    per_day: int = 1
    per_week: int = 3

    @property
    def caps(self) -> Caps:
        return Caps(per_day=self.per_day, per_week=self.per_week)

    def templates(self) -> dict[str, bool]:
        """Every template the plan uses, and whether it needs a short (merged) form."""
        used = {entry.template: False for entry in self.entries}
        used.update({item.template: True for item in self.recurring})
        used[self.ipledge.monthly_template] = False
        used[self.ipledge.countdown_template] = False
        return used


def _take(table: dict[str, Any], name: str, where: str, kind: type, default: Any = ...) -> Any:
    if name not in table:
        if default is ...:
            raise CarePlanError(f"{where}.{name}: missing")
        return default
    value = table[name]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise CarePlanError(f"{where}.{name}: {value!r} is not a whole number")
    if not isinstance(value, kind):
        raise CarePlanError(f"{where}.{name}: {value!r} is not a {kind.__name__}")
    return value


def _offset(table: dict[str, Any], name: str, where: str) -> Offset:
    text = _take(table, name, where, str)
    try:
        return Offset.parse(text)
    except ValueError as exc:
        raise CarePlanError(f"{where}.{name}: {exc}") from None


def _choice(value: str, allowed: tuple[str, ...], where: str) -> str:
    if value not in allowed:
        raise CarePlanError(f"{where}: {value!r} is not one of {', '.join(allowed)}")
    return value


_ENTRY_KEYS = {"id", "topic", "anchor", "offset", "priority", "template", "grace_days"}
_ENTRY_KEYS |= {"during_course", "params", "only_if"}
_RECURRING_KEYS = {"id", "topic", "first", "every", "until", "priority", "template"}


def _unknown_keys(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise CarePlanError(f"{where}: unknown field {unknown[0]!r}")


def _tables(data: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """An array of tables ([[name]]), refusing the shapes a hand-written file gets wrong."""
    value = data.get(name, [])
    if isinstance(value, dict):
        raise CarePlanError(f"{name}: write each entry as [[{name}]], not [{name}]")
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise CarePlanError(f"{name}: must be a list of [[{name}]] tables")
    return value


def _table(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise CarePlanError(f"{name}: must be a [{name}] table")
    return value


def _identify(
    table: dict[str, Any], kind: str, index: int, *, keys: set[str], seen: set[str]
) -> tuple[str, str]:
    """Check an item's keys and its id, which no other item may use; returns the id and the
    name its errors give it from here on."""
    where = f"{kind}[{index}]"
    _unknown_keys(table, keys, where)
    item_id = _take(table, "id", where, str)
    where = f"{kind} {item_id!r}"
    if item_id in seen:
        raise CarePlanError(f"{where}.id: used twice")
    seen.add(item_id)
    return item_id, where


def parse(data: dict[str, Any]) -> CarePlan:
    """Validate a parsed care-plan document."""
    _unknown_keys(data, {"limits", "message", "recurring", "ipledge"}, "care plan")
    entries = []
    seen: set[str] = set()
    for index, table in enumerate(_tables(data, "message")):
        entry_id, where = _identify(table, "message", index, keys=_ENTRY_KEYS, seen=seen)
        topic = _choice(_take(table, "topic", where, str), TOPICS, f"{where}.topic")
        if topic in RECURRING_TOPICS or topic == "ipledge":
            raise CarePlanError(f"{where}.topic: {topic!r} belongs in [[recurring]] or [ipledge]")
        grace = _take(table, "grace_days", where, int, 3)
        if grace < 0:
            raise CarePlanError(f"{where}.grace_days: must not be negative")
        only_if = _take(table, "only_if", where, str, None)
        if only_if is not None:
            _choice(only_if, CONDITIONS, f"{where}.only_if")
        entries.append(
            Entry(
                id=entry_id,
                topic=topic,
                anchor=_choice(_take(table, "anchor", where, str), ANCHORS, f"{where}.anchor"),
                offset=_offset(table, "offset", where),
                priority=_take(table, "priority", where, int),
                template=_take(table, "template", where, str, entry_id),
                grace_days=grace,
                during_course=_take(table, "during_course", where, bool, False),
                params=dict(_take(table, "params", where, dict, {})),
                only_if=only_if,
            )
        )
    recurring = []
    for index, table in enumerate(_tables(data, "recurring")):
        item_id, where = _identify(table, "recurring", index, keys=_RECURRING_KEYS, seen=seen)
        every = _offset(table, "every", where)
        if every.amount <= 0:
            raise CarePlanError(f"{where}.every: must be positive")
        recurring.append(
            Recurring(
                id=item_id,
                topic=_choice(
                    _take(table, "topic", where, str), RECURRING_TOPICS, f"{where}.topic"
                ),
                first=_offset(table, "first", where),
                every=every,
                until=_choice(_take(table, "until", where, str, "end"), ("end",), f"{where}.until"),
                priority=_take(table, "priority", where, int),
                template=_take(table, "template", where, str, item_id),
            )
        )
    ipledge = _parse_ipledge(_table(data, "ipledge"))
    limits = _table(data, "limits")
    _unknown_keys(limits, {"per_day", "per_week"}, "limits")
    per_day = _take(limits, "per_day", "limits", int, 1)
    per_week = _take(limits, "per_week", "limits", int, 3)
    if per_day < 1 or per_week < per_day:
        raise CarePlanError("limits: per_day must be at least 1 and per_week at least per_day")
    return CarePlan(tuple(entries), tuple(recurring), ipledge, per_day, per_week)


def _parse_ipledge(table: dict[str, Any]) -> Ipledge:
    where = "ipledge"
    defaults = Ipledge()
    _unknown_keys(table, set(Ipledge.__dataclass_fields__), where)
    values: dict[str, Any] = {}
    for name in ("priority", "monthly_every_days", "monthly_lead_days", "monthly_grace_days"):
        values[name] = _take(table, name, where, int, getattr(defaults, name))
    values["window_days"] = _take(table, "window_days", where, int, defaults.window_days)
    for name in ("monthly_template", "countdown_template"):
        values[name] = _take(table, name, where, str, getattr(defaults, name))
    days = _take(table, "countdown_days", where, list, list(defaults.countdown_days))
    window = values["window_days"]
    if not days or any(
        isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= window for d in days
    ):
        raise CarePlanError(f"{where}.countdown_days: each day must be between 1 and {window}")
    if values["monthly_every_days"] < 7:
        raise CarePlanError(f"{where}.monthly_every_days: must be at least 7")
    values["countdown_days"] = tuple(sorted(set(days)))
    return Ipledge(**values)


def load(
    path: Path | None = None,
    *,
    missing_templates: Callable[[str, bool], list[str]] | None = None,
) -> CarePlan:
    """Read and validate a care-plan file; `missing_templates` checks each template exists."""
    path = path or DEFAULT_PATH
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CarePlanError(f"{path}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise CarePlanError(f"{path}: not valid TOML ({exc})") from None
    try:
        plan = parse(data)
    except CarePlanError as exc:
        raise CarePlanError(f"{path.name}: {exc}") from None
    if missing_templates is not None:
        for template, short in plan.templates().items():
            missing = missing_templates(template, short)
            if missing:
                raise CarePlanError(f"{path.name}: template {template!r} is missing {missing[0]}")
    return plan
