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
from reminders.careplan import RECURRING_TOPICS, CarePlan, Entry, Offset
from reminders.timing import local_instant, next_allowed, to_local

PREGNANCY_TEST = "pregnancy_test"
# The iPLEDGE countdown's keys: it outranks every other message and the caps never drop it.
COUNTDOWN_PREFIX = "ipledge_test:"


def caps_exempt(key: str) -> bool:
    """Whether a message goes out on its day whatever the caps say (the iPLEDGE countdown):
    the patient's prescription window closes on a fixed day, so other messages yield to it."""
    return key.startswith(COUNTDOWN_PREFIX)


@dataclass(frozen=True)
class Rules:
    """What planning needs to know about the clinic and the patient."""

    timezone: ZoneInfo
    send_time: time = time(10, 0)
    quiet_start: time = time(21, 0)
    quiet_end: time = time(8, 0)
    ipledge: bool = False  # the patient can become pregnant and the clinic switched iPLEDGE on
    lab_reminders: bool = True  # the clinic wants the lab reminder of the first months


@dataclass(frozen=True)
class PregnancyTest:
    """A recorded pregnancy test: its specimen date and the local day staff recorded it."""

    taken: date
    recorded: date


@dataclass(frozen=True)
class CourseFacts:
    """The course fields that planning reads."""

    start_date: date
    weeks: int = 20
    last_dose_date: date | None = None  # only the clinic knows it: recorded when it ends a course
    active: bool = True
    plan_from: datetime | None = None  # aware UTC; nothing before it is owed (enrolment, resume)
    # A plain date is a test recorded the day it was taken.
    pregnancy_tests: tuple[PregnancyTest, ...] | tuple[date, ...] = ()

    def __post_init__(self) -> None:
        tests = tuple(
            test if isinstance(test, PregnancyTest) else PregnancyTest(test, test)
            for test in self.pregnancy_tests
        )
        object.__setattr__(self, "pregnancy_tests", tests)

    @property
    def tests(self) -> tuple[PregnancyTest, ...]:
        return self.pregnancy_tests  # type: ignore[return-value]  # made so in __post_init__

    @property
    def planned_end(self) -> date:
        return self.start_date + timedelta(weeks=self.weeks)

    @property
    def end_date(self) -> date:
        """The last day on the drug as far as anyone knows: the last dose once recorded, the
        planned end until then. During-course messages and nudges stop here."""
        return self.last_dose_date or self.planned_end


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
    # After-course items that wait for the clinic to record the last dose, on the day they
    # would fall were the planned end the last dose (for the preview).
    waiting: list[Candidate] = field(default_factory=list)


def candidates(
    plan: CarePlan, course: CourseFacts, rules: Rules, *, waiting: list[Candidate] | None = None
) -> list[Candidate]:
    """Every item of the care plan on its natural local day.

    Items anchored to the end count from the last dose, which only the clinic knows: until it
    is recorded they are not planned (a course can be extended; telling someone still on the
    drug that they may donate blood is a harm). They go to `waiting` instead, when given.
    """
    start, end = course.start_date, course.end_date
    found: list[Candidate] = []
    for entry in plan.entries:
        if entry.only_if == "lab_reminders" and not rules.lab_reminders:
            continue
        if entry.anchor == "end" and course.last_dose_date is None:
            if waiting is not None:
                waiting.append(_entry_candidate(entry, entry.offset.apply(course.planned_end)))
            continue
        day = entry.offset.apply(start if entry.anchor == "start" else end)
        if entry.during_course and day >= end:
            continue
        found.append(_entry_candidate(entry, day))
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


def _entry_candidate(entry: Entry, day: date) -> Candidate:
    return Candidate(
        key=entry.id,
        topic=entry.topic,
        template=entry.template,
        priority=entry.priority,
        day=day,
        last_day=day + timedelta(days=entry.grace_days),
        params=entry.params,
    )


def _ipledge_candidates(plan: CarePlan, course: CourseFacts) -> Iterable[Candidate]:
    steps = plan.ipledge
    taken = [test.taken for test in course.tests]
    month = 1
    while (visit := course.start_date + timedelta(days=steps.monthly_every_days * month)) <= (
        course.end_date
    ):
        day = visit - timedelta(days=steps.monthly_lead_days)
        last_day = min(visit, day + timedelta(days=steps.monthly_grace_days))
        month += 1
        if any(day - timedelta(days=steps.window_days) < test <= last_day for test in taken):
            # This month's test is recorded: its countdown says what the reminder would.
            continue
        yield Candidate(
            key=f"ipledge_monthly:{month - 1}",
            topic="ipledge",
            template=steps.monthly_template,
            priority=steps.priority,
            day=day,
            last_day=last_day,
            params={"month": month - 1},
        )
    tests = sorted(course.tests, key=lambda test: test.taken)
    for number_of_test, test in enumerate(tests):
        # Day 1 is the test's specimen date; the window closes at the end of day `window_days`.
        # A newer test (a repeat after a missed window is allowed at once) ends this countdown.
        close = test.taken + timedelta(days=steps.window_days - 1)
        if number_of_test + 1 < len(tests):
            close = min(close, tests[number_of_test + 1].taken - timedelta(days=1))
        days = steps.countdown_days
        for index, number in enumerate(days):
            day = test.taken + timedelta(days=number - 1)
            if day < test.recorded or day > close:
                continue  # recorded late, or superseded: only the reminders still ahead
            following = days[index + 1] if index + 1 < len(days) else None
            last = test.taken + timedelta(days=following - 2) if following else close
            yield Candidate(
                key=f"{COUNTDOWN_PREFIX}{test.taken.isoformat()}:day{number}",
                topic="ipledge",
                template=steps.countdown_template,
                priority=steps.priority + 1,
                day=day,
                last_day=min(close, max(day, last)),
                # The days left are counted when the message is sent (compose), from these.
                params={
                    "day": number,
                    "test_date": test.taken.isoformat(),
                    "window_days": steps.window_days,
                },
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
    waiting: list[Candidate] = []
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
    for item in candidates(plan, course, rules, waiting=waiting):
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
        if caps_exempt(item.key):
            free_day: date | None = item.day  # placed first: only what was sent shares its day
        else:
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
    return Plan(messages, skipped, waiting)


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
