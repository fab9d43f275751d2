"""The horizon-limited planner builds exactly the whole-course plan, cut to its horizon.

Thousands of random courses: start dates around the year, zones with and without DST (on
both hemispheres), early and late enrolment, pauses (a later `plan_from`), recorded last
doses, pregnancy tests recorded on time or late, items already handled and messages already
sent, iPLEDGE and the clinic's options on and off.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reminders import careplan, planning
from reminders.planning import CourseFacts, History, PregnancyTest, Rules

PLAN = careplan.load()
ZONES = [
    "America/New_York",
    "America/Los_Angeles",
    "Europe/London",
    "Australia/Sydney",
    "Pacific/Auckland",
    "Asia/Kolkata",
    "UTC",
]
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@st.composite
def courses(draw: st.DrawFn) -> tuple[CourseFacts, Rules, History, date]:
    zone = ZoneInfo(draw(st.sampled_from(ZONES)))
    start = date(2025, 1, 1) + timedelta(days=draw(st.integers(0, 730)))
    weeks = draw(st.integers(12, 40))
    # Enrolled before its start or late; a pause moves plan_from further on.
    planned = draw(st.integers(-20, weeks * 7 + 200))
    hour = draw(st.integers(0, 23))
    plan_from = datetime.combine(start + timedelta(days=planned), time(hour), zone).astimezone(UTC)
    last_dose = None
    if draw(st.booleans()):
        last_dose = start + timedelta(days=draw(st.integers(20, weeks * 7 + 60)))
    tests = []
    for offset in draw(st.lists(st.integers(-10, weeks * 7), max_size=6, unique=True)):
        taken = start + timedelta(days=offset)
        tests.append(PregnancyTest(taken, taken + timedelta(days=draw(st.integers(0, 8)))))
    course = CourseFacts(
        start_date=start,
        weeks=weeks,
        last_dose_date=last_dose,
        plan_from=plan_from,
        pregnancy_tests=tuple(sorted(tests, key=lambda test: test.taken)),
    )
    rules = Rules(
        timezone=zone,
        send_time=time(draw(st.sampled_from([7, 10, 12, 20]))),
        ipledge=draw(st.booleans()),
        lab_reminders=draw(st.booleans()),
    )
    keys = sorted(item.key for item in planning.candidates(PLAN, course, rules))
    done = draw(st.lists(st.sampled_from(keys), max_size=8)) if keys else []
    sent = tuple(
        sorted(
            plan_from - timedelta(hours=draw(st.integers(-24 * 30, 24 * 30)))
            for _ in range(draw(st.integers(0, 5)))
        )
    )
    until = (plan_from + timedelta(days=draw(st.integers(0, 60)))).astimezone(zone).date()
    return course, rules, History(frozenset(done), sent), until


@settings(
    max_examples=3000,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(courses())
def test_the_limited_plan_is_the_whole_plan_cut_to_its_reach(
    case: tuple[CourseFacts, Rules, History, date],
) -> None:
    course, rules, history, until = case
    whole = planning.plan_course(plan=PLAN, course=course, rules=rules, history=history, now=NOW)
    limited = planning.plan_course(
        plan=PLAN, course=course, rules=rules, history=history, now=NOW, until=until
    )
    assert whole.reach is None
    assert limited.reach in (None, until)
    reach = limited.reach or date.max
    assert limited.messages == [m for m in whole.messages if m.local_due.date() <= reach]
    assert set(limited.skipped) <= set(whole.skipped)
    if limited.reach is None:
        assert limited.messages == whole.messages
        assert limited.skipped == whole.skipped
