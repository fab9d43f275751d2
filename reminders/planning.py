"""Pure planning: from a course, its events and the care plan to dated messages.

Nothing here reads a clock, a database or the network: `now` and the history come in as
arguments, so the same inputs always give the same plan and several planners agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from reminders.caps import Caps
from reminders.careplan import RECURRING_TOPICS, CarePlan, Offset
from reminders.timing import local_instant, next_allowed, to_local

PREGNANCY_TEST = "pregnancy_test"


@dataclass(frozen=True)
class Rules:
    """What planning needs to know about the clinic and the patient."""

    timezone: ZoneInfo
    send_time: time = time(10, 0)
    quiet_start: time = time(21, 0)
    quiet_end: time = time(8, 0)
    ipledge: bool = False  # the patient is on the iPLEDGE track and the clinic switched it on


@dataclass(frozen=True)
class CourseFacts:
    """The course fields that planning reads."""

    start_date: date
    weeks: int = 20
    last_dose_date: date | None = None
    active: bool = True
    plan_from: datetime | None = None  # aware UTC; nothing before it is owed (enrolment, resume)
    pregnancy_tests: tuple[date, ...] = ()

    @property
    def end_date(self) -> date:
        """The last dose date once set; until then the planned end."""
        return self.last_dose_date or self.start_date + timedelta(weeks=self.weeks)


@dataclass(frozen=True)
class Candidate:
    """One care-plan item on its natural day, before caps and merging."""

    key: str
    topic: str
    template: str
    priority: int
    day: date
    last_day: date  # the last local day the item is still worth sending
    params: Mapping[str, Any] = field(default_factory=dict)
    owed: bool = False  # its day had passed when planning began: send as soon as allowed

    @property
    def mergeable(self) -> bool:
        return self.topic in RECURRING_TOPICS


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


def candidates(plan: CarePlan, course: CourseFacts, rules: Rules) -> list[Candidate]:
    """Every item of the care plan on its natural local day."""
    start, end = course.start_date, course.end_date
    found: list[Candidate] = []
    for entry in plan.entries:
        day = entry.offset.apply(start if entry.anchor == "start" else end)
        if entry.during_course and day >= end:
            continue
        found.append(
            Candidate(
                key=entry.id,
                topic=entry.topic,
                template=entry.template,
                priority=entry.priority,
                day=day,
                last_day=day + timedelta(days=entry.grace_days),
                params=entry.params,
            )
        )
    for nudge in plan.recurring:
        first = nudge.first.apply(start)
        days: list[date] = []
        n = 0
        while (day := Offset(nudge.every.amount * n, nudge.every.unit).apply(first)) < end:
            days.append(day)
            n += 1
        for n, day in enumerate(days):
            # A nudge is worth sending until the next one is due: after downtime only the
            # latest goes out, the older ones expire.
            next_day = days[n + 1] if n + 1 < len(days) else end
            found.append(
                Candidate(
                    key=f"{nudge.id}:{n + 1}",
                    topic=nudge.topic,
                    template=nudge.template,
                    priority=nudge.priority,
                    day=day,
                    last_day=next_day - timedelta(days=1),
                    # The occurrence number lets a template rotate its wording.
                    params={"n": n + 1},
                )
            )
    if rules.ipledge:
        found.extend(_ipledge_candidates(plan, course))
    return found


def _ipledge_candidates(plan: CarePlan, course: CourseFacts) -> Iterable[Candidate]:
    steps = plan.ipledge
    month = 1
    while (visit := course.start_date + timedelta(days=steps.monthly_every_days * month)) <= (
        course.end_date
    ):
        day = visit - timedelta(days=steps.monthly_lead_days)
        yield Candidate(
            key=f"ipledge_monthly:{month}",
            topic="ipledge",
            template=steps.monthly_template,
            priority=steps.priority,
            day=day,
            last_day=min(visit, day + timedelta(days=steps.monthly_grace_days)),
            params={"month": month},
        )
        month += 1
    for test_day in course.pregnancy_tests:
        # Day 1 is the test's specimen date; the window closes at the end of day `window_days`.
        close = test_day + timedelta(days=steps.window_days - 1)
        days = steps.countdown_days
        for index, number in enumerate(days):
            day = test_day + timedelta(days=number - 1)
            following = days[index + 1] if index + 1 < len(days) else None
            last = test_day + timedelta(days=following - 2) if following else close
            yield Candidate(
                key=f"ipledge_test:{test_day.isoformat()}:day{number}",
                topic="ipledge",
                template=steps.countdown_template,
                priority=steps.priority + 1,
                day=day,
                last_day=max(day, last),
                params={"day": number, "days_left": steps.window_days - number},
            )


def plan_course(
    *,
    plan: CarePlan,
    course: CourseFacts,
    rules: Rules,
    history: History | None = None,
    now: datetime,
) -> Plan:
    """Place every item not yet handled on a local day, within the caps, merged and by priority.

    `history` says which items are already handled and when messages reached the patient;
    those occupy their day. `now` only matters when the course has no `plan_from`.
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
    for item in candidates(plan, course, rules):
        if item.key in history.done:
            continue
        if item.topic == "welcome":
            # The first message names the clinic and says how to opt out: always owed.
            item = _moved(item, max(item.day, begin_day))
        elif item.day < begin_day:
            if item.last_day < begin_day:
                skipped.append(Skipped(item.key, "due before the course was planned"))
                continue
            item = _moved(item, begin_day)
        todo.append(item)
    # Highest priority first, each on its earliest day with room: a routine nudge can never
    # take the slot a milestone or an iPLEDGE step needs later in the same week.
    todo.sort(key=lambda c: (-c.priority, c.day, c.key))
    placed: dict[date, list[list[Candidate]]] = {}
    caps = plan.caps
    for item in todo:
        if item.mergeable and placed.get(item.day) and _merge(item, placed[item.day]):
            continue
        free_day = _first_free_day(item, occupied, caps, begin_day)
        if free_day is not None:
            placed.setdefault(free_day, []).append([item])
            occupied[free_day.toordinal()] = occupied.get(free_day.toordinal(), 0) + 1
            continue
        if item.mergeable and any(
            _merge(item, placed.get(d, [])) for d in _days(item.day, item.last_day)
        ):
            continue
        skipped.append(Skipped(item.key, "no free day before its window closed"))

    messages: list[PlannedMessage] = []
    for day in sorted(placed):
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
    return Plan(messages, skipped)


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
    return Candidate(
        key=item.key,
        topic=item.topic,
        template=item.template,
        priority=item.priority,
        day=day,
        last_day=last_day,
        params=item.params,
        owed=day > item.day,
    )


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
