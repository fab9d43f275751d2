"""Pure planning: from a course, its events and the care plan to dated messages.

Nothing here reads a clock, a database or the network: `now` and the history come in as
arguments, so the same inputs always give the same plan and several planners agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from reminders.caps import WEEK, Caps
from reminders.careplan import CarePlan
from reminders.items import (
    COUNTDOWN_PREFIX,
    PREGNANCY_TEST,
    Candidate,
    CourseFacts,
    PregnancyTest,
    Rules,
    candidates,
    caps_exempt,
    shared_candidates,
)
from reminders.timing import local_instant, next_allowed, to_local

__all__ = [
    "COUNTDOWN_PREFIX",
    "PREGNANCY_TEST",
    "Candidate",
    "CourseFacts",
    "History",
    "Plan",
    "PlannedMessage",
    "PregnancyTest",
    "Rules",
    "Skipped",
    "candidates",
    "caps_exempt",
    "plan_course",
]


@dataclass(frozen=True)
class PlannedMessage:
    """One message: a primary item and the routine nudges merged into it."""

    key: str
    items: tuple[Candidate, ...]
    due_at: datetime  # aware UTC
    expires_at: datetime  # aware UTC
    local_due: datetime  # aware, in the patient's zone

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(item.topic for item in self.items)

    @property
    def priority(self) -> int:
        return self.items[0].priority


@dataclass(frozen=True)
class Skipped:
    key: str
    reason: str


@dataclass
class Plan:
    messages: list[PlannedMessage]
    skipped: list[Skipped]
    # After-course items that wait for the clinic to record the last dose, on the day they
    # would fall were the planned end the last dose (for the preview).
    waiting: list[Candidate] = field(default_factory=list)
    # The last local day the plan is sure of when it was limited (see plan_course); None when
    # it is the whole course's.
    reach: date | None = None


def plan_course(
    *,
    plan: CarePlan,
    course: CourseFacts,
    rules: Rules,
    history: History | None = None,
    now: datetime,
    until: date | None = None,
) -> Plan:
    """Place every item not yet handled on a local day, within the caps, merged and by priority.

    `history` says which items are already handled and when messages reached the patient;
    those occupy their day. `now` only matters when the course has no `plan_from`.

    With `until` (a local day), only what can land by then is built: items only ever move
    later, so nothing due after a cut can land before it, and a day's room depends only on
    the days within a week of it. The plan then holds the messages up to `until` (its
    `reach`), exactly those of the whole course's plan; without `until`, or when the cut
    left nothing out, it is the whole course's plan (`reach` is None).
    """
    history = history or History()
    if not course.active:
        return Plan([], [])
    zone = rules.timezone
    begin = course.plan_from or now
    begin_slot = next_allowed(begin, zone, quiet_start=rules.quiet_start, quiet_end=rules.quiet_end)
    begin_day = to_local(begin_slot, zone).date()

    occupied: dict[int, int] = {}  # messages per local day, by date ordinal
    for sent in history.sent:
        day = to_local(sent, zone).date()
        occupied[day.toordinal()] = occupied.get(day.toordinal(), 0) + 1

    skipped: list[Skipped] = []
    todo: list[Candidate] = []
    later: list[Candidate] = []  # after the cut: cannot land before it, left out
    cut = None if until is None else until + timedelta(days=LOOKAHEAD_DAYS)
    found, waiting = shared_candidates(plan, course, rules)
    for item in found:
        if item.key in history.done:
            continue
        if cut is not None and item.day > cut:
            later.append(item)
        elif item.topic == "welcome":
            # The first message names the clinic and says how to opt out: always owed.
            todo.append(_moved(item, max(item.day, begin_day)))
        elif item.day >= begin_day:
            todo.append(item)
        elif item.last_day >= begin_day:
            todo.append(_moved(item, begin_day))
        else:
            skipped.append(Skipped(item.key, "due before the course was planned"))
    while True:
        # Highest priority first, each on its earliest day with room: a routine nudge can
        # never take the slot a milestone or an iPLEDGE step needs later in the same week.
        todo.sort(key=lambda c: (-c.priority, c.day, c.key))
        placed, passed, reach = _place(
            todo, plan.caps, dict(occupied), begin_day, cut if later else None
        )
        if until is None or reach is None or reach >= until:
            break
        assert cut is not None
        cut += max(cut - until, timedelta(days=WEEK))  # crowded at the cut: look further
        todo += [item for item in later if item.day <= cut]
        later = [item for item in later if item.day > cut]
    if reach is not None:
        reach = until  # sure of more, but nothing after `until` was asked for
    messages = _messages(placed, rules, begin_slot, reach)
    return Plan(messages, skipped + passed, list(waiting), reach)


# How far past `until` a horizon-limited plan looks at first: two weeks cover the caps' reach
# and most items' windows, so a second look is rare.
LOOKAHEAD_DAYS = 14


def _place(
    todo: list[Candidate], caps: Caps, occupied: dict[int, int], begin_day: date, cut: date | None
) -> tuple[dict[date, list[list[Candidate]]], list[Skipped], date | None]:
    """Place the items in order; with a cut, also the last day the placement is sure of.

    The items after the cut are missing, so a day's room is only sure when the week after it
    lies within `reach`. An item that looked past that may land anywhere later (or, a
    mergeable one, be merged into any day of its window): `reach` ends before it.
    """
    reach = cut
    placed: dict[date, list[list[Candidate]]] = {}
    skipped: list[Skipped] = []
    for item in todo:
        if item.mergeable and placed.get(item.day) and _merge(item, placed[item.day]):
            continue
        sure = True
        if caps_exempt(item.key):
            free_day: date | None = item.day  # placed first: only what was sent shares its day
        else:
            free_day = _first_free_day(item, occupied, caps, begin_day)
            seen = item.last_day if free_day is None else free_day
            if reach is not None and item.day <= reach < seen + timedelta(days=WEEK - 1):
                first_unsure = max(item.day, begin_day, reach - timedelta(days=WEEK - 2))
                reach = min(reach, (item.day if item.mergeable else first_unsure) - timedelta(1))
                sure = False
        if free_day is not None:
            placed.setdefault(free_day, []).append([item])
            occupied[free_day.toordinal()] = occupied.get(free_day.toordinal(), 0) + 1
            continue
        if item.mergeable and any(
            _merge(item, placed.get(d, [])) for d in _days(item.day, item.last_day)
        ):
            continue
        if sure:
            skipped.append(Skipped(item.key, "no free day before its window closed"))
    return placed, skipped, reach


def _messages(
    placed: dict[date, list[list[Candidate]]],
    rules: Rules,
    begin_slot: datetime,
    reach: date | None,
) -> list[PlannedMessage]:
    zone = rules.timezone
    messages: list[PlannedMessage] = []
    for day in sorted(placed):
        if reach is not None and day > reach:
            break
        for merged in placed[day]:
            slot = _slot(day, rules, begin_slot, owed=any(c.owed for c in merged))
            assert slot is not None  # _first_free_day only returns days with a slot
            merged.sort(key=lambda c: (-c.priority, c.key))
            last_day = min(item.last_day for item in merged)
            expires = local_instant(last_day, rules.quiet_start, zone)
            messages.append(
                PlannedMessage(
                    key=merged[0].key,
                    items=tuple(merged),
                    due_at=slot,
                    expires_at=max(expires, slot + timedelta(hours=1)),
                    local_due=to_local(slot, zone),
                )
            )
    return messages


def _days(first: date, last: date) -> Iterable[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def _merge(item: Candidate, messages: list[list[Candidate]]) -> bool:
    """Add a routine nudge to a message of that day that lacks its topic."""
    for merged in messages:
        if item.topic not in {other.topic for other in merged}:
            merged.append(item)
            return True
    return False


def _first_free_day(
    item: Candidate, occupied: Mapping[int, int], caps: Caps, begin_day: date
) -> date | None:
    """The earliest day of the item's window with room (every day from begin_day has a slot)."""
    for day in _days(max(item.day, begin_day), item.last_day):
        if caps.has_room(day, occupied):
            return day
    return None


def _moved(item: Candidate, day: date) -> Candidate:
    last_day = max(item.last_day, day) if item.topic == "welcome" else item.last_day
    return replace(item, day=day, last_day=last_day, owed=day > item.day)


def _slot(day: date, rules: Rules, begin_slot: datetime, *, owed: bool = False) -> datetime | None:
    """The instant a message goes out on `day`, or None when the day has no allowed time left.

    A message already owed when planning began (its day had passed) goes out as soon as it
    may; waiting for the clinic's send time would only delay it further.
    """
    zone = rules.timezone
    if owed and day == to_local(begin_slot, zone).date():
        return begin_slot
    slot = max(local_instant(day, rules.send_time, zone), begin_slot)
    slot = next_allowed(slot, zone, quiet_start=rules.quiet_start, quiet_end=rules.quiet_end)
    return slot if to_local(slot, zone).date() == day else None


@dataclass(frozen=True)
class History:
    """What already happened: items handled for good, and when messages reached the patient."""

    done: frozenset[str] = frozenset()
    sent: tuple[datetime, ...] = ()  # one instant per message, however many channels carried it

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str, datetime | None]]) -> History:
        """From outbox rows of a course as (key, items, reached_at) for rows no longer pending."""
        done: set[str] = set()
        reached: dict[str, datetime] = {}
        for key, items, reached_at in rows:
            done.update(item for item in items.split(",") if item)
            if reached_at is not None:
                reached[key] = min(reached_at, reached.get(key, reached_at))
        return cls(frozenset(done), tuple(sorted(reached.values())))
