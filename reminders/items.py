"""The care plan's items for one course, each on its natural local day.

What a course is to planning (its dates, tests and the clinic's rules) and every item of the
care plan it is owed, before the caps and merging place them (planning.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from reminders.careplan import RECURRING_TOPICS, CarePlan, Entry, Offset

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


def shared_candidates(
    plan: CarePlan, course: CourseFacts, rules: Rules
) -> tuple[tuple[Candidate, ...], tuple[Candidate, ...]]:
    """candidates() and the waiting ones, shared by courses with the same dates and options.

    The care plan is keyed by identity (a process loads it once, and it is kept alive here).
    """
    dates = CourseFacts(
        course.start_date, course.weeks, course.last_dose_date, True, None, course.tests
    )
    key = (id(plan), dates, rules.ipledge, rules.lab_reminders)
    found = _CANDIDATES.get(key)
    if found is None:
        waiting: list[Candidate] = []
        every = tuple(candidates(plan, course, rules, waiting=waiting))
        if len(_CANDIDATES) >= 4096:
            _CANDIDATES.pop(next(iter(_CANDIDATES)))
        found = _CANDIDATES[key] = (plan, every, tuple(waiting))
    return found[1], found[2]


_CANDIDATES: dict[tuple, tuple[CarePlan, tuple[Candidate, ...], tuple[Candidate, ...]]] = {}


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
