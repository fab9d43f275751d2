"""The pure planner: send times across DST, month ends, quiet hours, caps, merging, priority."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from reminders import careplan, planning
from reminders.careplan import CarePlan
from reminders.planning import CourseFacts, History, Plan, PlannedMessage, Rules
from reminders.render import countdown_params
from reminders.timing import is_quiet

NEW_YORK = ZoneInfo("America/New_York")
SYDNEY = ZoneInfo("Australia/Sydney")
DEFAULT_PLAN = careplan.load()
SEND_TIME = time(10, 0)

# Only read when a course has no plan_from; every course built below has one.
NOW = datetime(2025, 12, 1, 12, 0, tzinfo=UTC)
# An ordinary summer start in New York, far from any DST change (the course ends 2026-10-19).
SUMMER_START = date(2026, 6, 1)
SUMMER_END = date(2026, 10, 19)

# Quiet hours narrow enough that a 01:30 or 02:30 send time is allowed.
NIGHT_QUIET = {"quiet_start": time(23, 0), "quiet_end": time(1, 0)}


def midnight(day: date, zone: ZoneInfo = NEW_YORK) -> datetime:
    """The start of `day` in `zone`, as an aware UTC instant."""
    return datetime.combine(day, time(0, 0), tzinfo=zone).astimezone(UTC)


def course_plan(
    start: date,
    *,
    zone: ZoneInfo = NEW_YORK,
    plan: CarePlan = DEFAULT_PLAN,
    rules: Rules | None = None,
    history: History | None = None,
    plan_from: datetime | None = None,
    **facts: Any,
) -> Plan:
    """Plan a course that was enrolled at the start of its first day unless told otherwise."""
    course = CourseFacts(start_date=start, plan_from=plan_from or midnight(start, zone), **facts)
    return planning.plan_course(
        plan=plan,
        course=course,
        rules=rules or Rules(timezone=zone),
        history=history,
        now=NOW,
    )


def tiny_plan(
    *messages: dict[str, Any],
    recurring: tuple[dict[str, Any], ...] = (),
    per_day: int = 1,
    per_week: int = 7,
) -> CarePlan:
    """A care plan of a few entries, read by the real parser."""
    return careplan.parse(
        {
            "limits": {"per_day": per_day, "per_week": per_week},
            "message": list(messages),
            "recurring": list(recurring),
        }
    )


def milestone(entry_id: str, offset: str, priority: int = 70, **fields: Any) -> dict[str, Any]:
    return {
        "id": entry_id,
        "topic": "milestone",
        "anchor": "start",
        "offset": offset,
        "priority": priority,
        **fields,
    }


def nudge(topic: str, first: str, every: str, priority: int) -> dict[str, Any]:
    return {"id": topic, "topic": topic, "first": first, "every": every, "priority": priority}


def by_key(plan: Plan) -> dict[str, PlannedMessage]:
    return {message.key: message for message in plan.messages}


def day_of(plan: Plan, key: str) -> date:
    return by_key(plan)[key].local_due.date()


def natural_day(course: CourseFacts, key: str, rules: Rules | None = None) -> date:
    """The day an item is due before caps, merging and quiet hours."""
    found = planning.candidates(DEFAULT_PLAN, course, rules or Rules(timezone=NEW_YORK))
    return {item.key: item.day for item in found}[key]


def planned_items(plan: Plan) -> set[str]:
    return {item.key for message in plan.messages for item in message.items}


def skipped_keys(plan: Plan) -> set[str]:
    return {skipped.key for skipped in plan.skipped}


def busiest_day(plan: Plan) -> int:
    return max(Counter(m.local_due.date() for m in plan.messages).values())


def busiest_week(plan: Plan) -> int:
    """The most messages in any rolling 7-day window of local days."""
    per_day = Counter(m.local_due.date() for m in plan.messages)
    return max(
        sum(per_day.get(last - timedelta(days=back), 0) for back in range(7)) for last in per_day
    )


# --- local send time across DST changes ---------------------------------------------------

DST_COURSES = [
    pytest.param(NEW_YORK, date(2026, 2, 20), date(2026, 3, 8), id="new-york-spring-forward"),
    pytest.param(NEW_YORK, date(2026, 10, 15), date(2026, 11, 1), id="new-york-fall-back"),
    pytest.param(SYDNEY, date(2026, 3, 20), date(2026, 4, 5), id="sydney-fall-back"),
    pytest.param(SYDNEY, date(2026, 9, 20), date(2026, 10, 4), id="sydney-spring-forward"),
]


@pytest.mark.parametrize(("zone", "start", "change"), DST_COURSES)
def test_every_message_goes_out_at_the_clinic_send_time_on_both_sides_of_a_dst_change(
    zone: ZoneInfo, start: date, change: date
) -> None:
    plan = course_plan(start, zone=zone)

    days = [m.local_due.date() for m in plan.messages]
    assert min(days) < change < max(days)
    assert {m.local_due.time() for m in plan.messages} == {SEND_TIME}
    assert {m.local_due.tzinfo for m in plan.messages} == {zone}


@pytest.mark.parametrize(
    ("zone", "start", "change", "utc_before", "utc_after"),
    [
        (NEW_YORK, date(2026, 2, 20), date(2026, 3, 8), time(15, 0), time(14, 0)),
        (NEW_YORK, date(2026, 10, 15), date(2026, 11, 1), time(14, 0), time(15, 0)),
        (SYDNEY, date(2026, 3, 20), date(2026, 4, 5), time(23, 0), time(0, 0)),
        (SYDNEY, date(2026, 9, 20), date(2026, 10, 4), time(0, 0), time(23, 0)),
    ],
    ids=["new-york-spring", "new-york-fall", "sydney-fall", "sydney-spring"],
)
def test_the_utc_instant_of_the_send_time_moves_by_an_hour_across_a_dst_change(
    zone: ZoneInfo, start: date, change: date, utc_before: time, utc_after: time
) -> None:
    plan = course_plan(start, zone=zone)

    near = [m for m in plan.messages if abs(m.local_due.date() - change) < timedelta(days=40)]
    before = {m.due_at.time() for m in near if m.local_due.date() < change}
    after = {m.due_at.time() for m in near if m.local_due.date() >= change}
    assert (before, after) == ({utc_before}, {utc_after})


def test_a_message_due_on_the_spring_forward_day_goes_out_at_the_send_time() -> None:
    plan = course_plan(date(2026, 10, 1), zone=SYDNEY, plan=tiny_plan(milestone("check_in", "3d")))

    (message,) = plan.messages
    assert (message.local_due.date(), message.local_due.time()) == (date(2026, 10, 4), SEND_TIME)
    assert message.local_due.tzname() == "AEDT"


def test_a_send_time_skipped_by_spring_forward_goes_out_an_hour_later_that_day() -> None:
    rules = Rules(timezone=NEW_YORK, send_time=time(2, 30), **NIGHT_QUIET)
    plan = tiny_plan(milestone("eve", "0d"), milestone("change", "1d"), milestone("after", "2d"))

    planned = course_plan(date(2026, 3, 7), plan=plan, rules=rules)

    assert [(m.local_due.date(), m.local_due.time()) for m in planned.messages] == [
        (date(2026, 3, 7), time(2, 30)),
        (date(2026, 3, 8), time(3, 30)),
        (date(2026, 3, 9), time(2, 30)),
    ]


def test_a_send_time_repeated_by_fall_back_takes_its_first_occurrence() -> None:
    rules = Rules(timezone=NEW_YORK, send_time=time(1, 30), **NIGHT_QUIET)

    planned = course_plan(
        date(2026, 10, 31), plan=tiny_plan(milestone("change", "1d")), rules=rules
    )

    (message,) = planned.messages
    assert message.due_at == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    assert message.local_due.tzname() == "EDT"


# --- month ends ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "month_one"),
    [
        (date(2027, 1, 31), date(2027, 2, 28)),
        (date(2028, 1, 31), date(2028, 2, 29)),
        (date(2026, 8, 31), date(2026, 9, 30)),
    ],
)
def test_month_one_after_a_month_end_start_is_the_last_day_of_the_next_month(
    start: date, month_one: date
) -> None:
    assert natural_day(CourseFacts(start_date=start), "month_1") == month_one


def test_month_one_after_january_31_is_planned_on_the_last_day_of_february() -> None:
    assert day_of(course_plan(date(2027, 1, 31)), "month_1") == date(2027, 2, 28)


def test_month_two_counts_from_the_start_and_not_from_a_clipped_month_one() -> None:
    assert natural_day(CourseFacts(start_date=date(2027, 1, 31)), "month_2") == date(2027, 3, 31)


def test_a_month_milestone_after_the_planned_end_is_not_planned() -> None:
    course = CourseFacts(start_date=SUMMER_START, weeks=20)

    keys = {item.key for item in planning.candidates(DEFAULT_PLAN, course, Rules(NEW_YORK))}

    assert "month_4" in keys
    assert "month_5" not in keys


# --- quiet hours --------------------------------------------------------------------------


@pytest.mark.parametrize("enrolled_at", [time(0, 30), time(7, 59), time(20, 30), time(22, 30)])
@pytest.mark.parametrize("start", [SUMMER_START, date(2026, 3, 1), date(2026, 10, 25)])
def test_no_message_is_planned_inside_quiet_hours(start: date, enrolled_at: time) -> None:
    plan_from = datetime.combine(start, enrolled_at, tzinfo=NEW_YORK).astimezone(UTC)

    plan = course_plan(start, plan_from=plan_from)

    quiet = [
        m.key
        for m in plan.messages
        if is_quiet(m.local_due.time(), quiet_start=time(21, 0), quiet_end=time(8, 0))
    ]
    assert quiet == []


def test_a_course_enrolled_late_in_the_evening_gets_its_welcome_the_next_morning() -> None:
    late = datetime.combine(SUMMER_START, time(22, 30), tzinfo=NEW_YORK).astimezone(UTC)

    welcome = by_key(course_plan(SUMMER_START, plan_from=late))["welcome"]

    assert welcome.local_due.date() == SUMMER_START + timedelta(days=1)
    assert not is_quiet(welcome.local_due.time(), quiet_start=time(21, 0), quiet_end=time(8, 0))


def test_a_welcome_owed_during_quiet_hours_goes_out_when_quiet_hours_end() -> None:
    late = datetime.combine(SUMMER_START, time(22, 30), tzinfo=NEW_YORK).astimezone(UTC)

    welcome = by_key(course_plan(SUMMER_START, plan_from=late))["welcome"]

    assert welcome.local_due == datetime(2026, 6, 2, 8, 0, tzinfo=NEW_YORK)


def test_a_welcome_owed_in_the_afternoon_goes_out_at_enrolment() -> None:
    afternoon = datetime.combine(SUMMER_START, time(14, 15), tzinfo=NEW_YORK).astimezone(UTC)

    welcome = by_key(course_plan(SUMMER_START, plan_from=afternoon))["welcome"]

    assert welcome.due_at == afternoon


def test_a_message_expires_when_quiet_hours_begin_on_its_last_day() -> None:
    dry_lips = by_key(course_plan(SUMMER_START))["dry_lips"]

    # Due on day 2 with 3 days of grace.
    assert dry_lips.expires_at == datetime(2026, 6, 6, 21, 0, tzinfo=NEW_YORK)


# --- frequency caps -----------------------------------------------------------------------

CAP_STARTS = [date(2026, 1, 31), date(2026, 3, 1), SUMMER_START, date(2026, 10, 25)]


@pytest.mark.parametrize("start", CAP_STARTS)
@pytest.mark.parametrize("ipledge", [False, True])
@pytest.mark.parametrize("test_days", [(), (26,), (3, 27, 57, 88)])
def test_a_whole_course_keeps_one_message_a_day_and_three_a_week(
    start: date, ipledge: bool, test_days: tuple[int, ...]
) -> None:
    tests = tuple(start + timedelta(days=n) for n in test_days)

    plan = course_plan(start, rules=Rules(NEW_YORK, ipledge=ipledge), pregnancy_tests=tests)

    assert busiest_day(plan) == 1
    assert busiest_week(plan) <= 3


def test_a_stricter_weekly_cap_of_the_care_plan_holds() -> None:
    daily = tiny_plan(*(milestone(f"day_{n}", f"{n}d") for n in range(14)), per_week=2)

    plan = course_plan(SUMMER_START, plan=daily)

    assert busiest_week(plan) == 2
    assert busiest_day(plan) == 1
    assert plan.skipped


def test_two_messages_a_day_are_allowed_when_the_care_plan_says_so() -> None:
    same_day = tiny_plan(milestone("first", "1d"), milestone("second", "1d", 60), per_day=2)

    plan = course_plan(SUMMER_START, plan=same_day)

    assert [m.local_due.date() for m in plan.messages] == [SUMMER_START + timedelta(days=1)] * 2


# --- merging and priority -----------------------------------------------------------------


def test_a_milestone_and_a_nudge_due_the_same_day_become_one_message() -> None:
    plan = tiny_plan(
        milestone("check_in", "1w"), recurring=(nudge("sun_protection", "1w", "3w", 20),)
    )

    planned = course_plan(SUMMER_START, plan=plan, weeks=2)

    (message,) = planned.messages
    assert message.key == "check_in"
    assert message.topics == ("milestone", "sun_protection")
    assert message.local_due.date() == SUMMER_START + timedelta(weeks=1)


def test_two_milestones_due_the_same_day_are_not_merged() -> None:
    plan = tiny_plan(milestone("first_look", "1w", 70), milestone("second_look", "1w", 60))

    planned = course_plan(SUMMER_START, plan=plan)

    assert [(m.key, m.topics) for m in planned.messages] == [
        ("first_look", ("milestone",)),
        ("second_look", ("milestone",)),
    ]


def test_the_lower_priority_of_two_milestones_on_one_day_moves_to_the_next_free_day() -> None:
    plan = tiny_plan(milestone("second_look", "1w", 60), milestone("first_look", "1w", 70))

    planned = course_plan(SUMMER_START, plan=plan)

    due = SUMMER_START + timedelta(weeks=1)
    assert day_of(planned, "first_look") == due
    assert day_of(planned, "second_look") == due + timedelta(days=1)


def test_an_ipledge_countdown_keeps_every_step_when_routine_nudges_compete() -> None:
    test_day = SUMMER_START + timedelta(days=10)
    busy = tiny_plan(
        recurring=(
            nudge("sun_protection", "0d", "1d", 20),
            nudge("moisturizer", "0d", "1d", 10),
        ),
        per_week=3,
    )

    plan = course_plan(
        SUMMER_START,
        plan=busy,
        weeks=3,
        rules=Rules(NEW_YORK, ipledge=True),
        pregnancy_tests=(test_day,),
    )

    steps = {key: m.local_due.date() for key, m in by_key(plan).items() if "ipledge" in key}
    assert steps == {
        f"ipledge_test:{test_day}:day1": test_day,
        f"ipledge_test:{test_day}:day5": test_day + timedelta(days=4),
        f"ipledge_test:{test_day}:day7": test_day + timedelta(days=6),
    }
    assert "sun_protection:12" in skipped_keys(plan)


def test_an_ipledge_countdown_keeps_every_step_in_the_default_plan() -> None:
    test_day = SUMMER_START + timedelta(weeks=4)  # the day of the second sun reminder

    plan = course_plan(
        SUMMER_START, rules=Rules(NEW_YORK, ipledge=True), pregnancy_tests=(test_day,)
    )

    assert [day_of(plan, f"ipledge_test:{test_day}:day{n}") for n in (1, 5, 7)] == [
        test_day,
        test_day + timedelta(days=4),
        test_day + timedelta(days=6),
    ]


def test_a_nudge_with_no_free_day_in_its_window_is_skipped_not_placed_over_milestones() -> None:
    plan = tiny_plan(
        milestone("a", "1d"),
        milestone("b", "2d"),
        milestone("c", "3d"),
        recurring=(nudge("sun_protection", "4d", "2d", 20),),
        per_week=3,
    )

    planned = course_plan(SUMMER_START, plan=plan, weeks=1)

    assert [(m.key, m.local_due.date()) for m in planned.messages] == [
        ("a", SUMMER_START + timedelta(days=1)),
        ("b", SUMMER_START + timedelta(days=2)),
        ("c", SUMMER_START + timedelta(days=3)),
    ]
    assert "sun_protection:1" in skipped_keys(planned)


def test_a_skipped_item_says_why() -> None:
    plan = tiny_plan(milestone("a", "1d"), milestone("b", "1d", 60, grace_days=0))

    planned = course_plan(SUMMER_START, plan=plan)

    assert [(s.key, s.reason) for s in planned.skipped] == [
        ("b", "no free day before its window closed")
    ]


# --- course state and anchors -------------------------------------------------------------


def test_a_paused_course_plans_nothing() -> None:
    plan = course_plan(SUMMER_START, active=False, pregnancy_tests=(SUMMER_START,))

    assert (plan.messages, plan.skipped) == ([], [])


def test_post_course_messages_count_from_the_last_dose_when_it_is_set() -> None:
    plan = course_plan(SUMMER_START, last_dose_date=date(2026, 9, 15))

    assert day_of(plan, "end_of_course") == date(2026, 9, 16)  # the day after the last dose
    assert day_of(plan, "after_1_month") == date(2026, 10, 15)
    assert day_of(plan, "after_6_months") == date(2027, 3, 15)


def test_nothing_after_the_course_is_planned_until_the_clinic_records_the_last_dose() -> None:
    plan = course_plan(SUMMER_START, weeks=20)

    after = {"end_of_course", "after_1_month", "after_6_months"}
    assert not after & set(by_key(plan))
    # They wait for the clinic, shown on the days the planned end would give them.
    waiting = {item.key: item.day for item in plan.waiting}
    assert waiting == {
        "end_of_course": SUMMER_END + timedelta(days=1),
        "after_1_month": date(2026, 11, 19),
        "after_6_months": date(2027, 4, 19),
    }


def test_moving_the_last_dose_moves_the_post_course_messages() -> None:
    earlier = course_plan(SUMMER_START, last_dose_date=date(2026, 9, 15))
    later = course_plan(SUMMER_START, last_dose_date=date(2026, 9, 30))

    assert day_of(earlier, "after_1_month") == date(2026, 10, 15)
    assert day_of(later, "after_1_month") == date(2026, 10, 30)


def test_one_month_after_a_last_dose_on_january_31_is_the_end_of_february() -> None:
    course = CourseFacts(start_date=date(2026, 9, 1), last_dose_date=date(2027, 1, 31))

    assert natural_day(course, "after_1_month") == date(2027, 2, 28)


def test_routine_nudges_stop_at_an_early_last_dose() -> None:
    last_dose = date(2026, 8, 1)

    plan = course_plan(SUMMER_START, last_dose_date=last_dose)

    nudge_days = [
        m.local_due.date()
        for m in plan.messages
        if {"sun_protection", "moisturizer"} & set(m.topics)
    ]
    assert nudge_days
    assert max(nudge_days) < last_dose


def test_each_nudge_carries_its_occurrence_number_for_the_templates() -> None:
    course = CourseFacts(start_date=SUMMER_START)
    found = planning.candidates(DEFAULT_PLAN, course, Rules(NEW_YORK))

    sun = [item for item in found if item.topic == "sun_protection"]
    assert [item.key for item in sun][:3] == [
        "sun_protection:1",
        "sun_protection:2",
        "sun_protection:3",
    ]
    assert [item.params for item in sun] == [{"n": n} for n in range(1, len(sun) + 1)]


# --- iPLEDGE ------------------------------------------------------------------------------

TEST_DAY = date(2026, 6, 20)


def ipledge_items(ipledge: bool) -> list[planning.Candidate]:
    course = CourseFacts(start_date=SUMMER_START, pregnancy_tests=(TEST_DAY,))
    found = planning.candidates(DEFAULT_PLAN, course, Rules(NEW_YORK, ipledge=ipledge))
    return [item for item in found if item.topic == "ipledge"]


def test_no_ipledge_item_is_planned_when_the_ipledge_track_is_off() -> None:
    plan = course_plan(SUMMER_START, pregnancy_tests=(TEST_DAY,))

    assert ipledge_items(ipledge=False) == []
    assert not any(key.startswith("ipledge") for key in planned_items(plan) | skipped_keys(plan))


def test_a_pregnancy_test_adds_a_countdown_keyed_by_its_date_and_day() -> None:
    countdown = [item for item in ipledge_items(ipledge=True) if ":day" in item.key]

    assert [(item.key, item.day) for item in countdown] == [
        ("ipledge_test:2026-06-20:day1", date(2026, 6, 20)),
        ("ipledge_test:2026-06-20:day5", date(2026, 6, 24)),
        ("ipledge_test:2026-06-20:day7", date(2026, 6, 26)),
    ]


def test_the_countdown_counts_its_days_left_on_the_day_it_is_sent() -> None:
    countdown = [item for item in ipledge_items(ipledge=True) if ":day" in item.key]

    test = TEST_DAY.isoformat()
    assert [dict(item.params) for item in countdown] == [
        {"day": day, "test_date": test, "window_days": 7} for day in (1, 5, 7)
    ]
    left = [countdown_params(item.params, item.day, "en")["days_left"] for item in countdown]
    assert left == [6, 2, 0]
    # Sent a day late (the caps or quiet hours moved it), it says a day less.
    late = countdown_params(countdown[0].params, countdown[0].day + timedelta(days=1), "en")
    assert late["days_left"] == 5


def test_the_last_countdown_step_expires_at_the_end_of_the_seven_day_window() -> None:
    plan = course_plan(
        SUMMER_START, rules=Rules(NEW_YORK, ipledge=True), pregnancy_tests=(TEST_DAY,)
    )

    day7 = by_key(plan)["ipledge_test:2026-06-20:day7"]
    assert day7.expires_at == datetime(2026, 6, 26, 21, 0, tzinfo=NEW_YORK)


def test_a_monthly_ipledge_reminder_precedes_every_30_day_visit_before_the_end() -> None:
    monthly = [item for item in ipledge_items(ipledge=True) if "monthly" in item.key]

    # A 20-week course (140 days) has visits on days 30, 60, 90 and 120; each reminder is 3
    # days ahead.
    assert [(item.key, (item.day - SUMMER_START).days) for item in monthly] == [
        ("ipledge_monthly:1", 27),
        ("ipledge_monthly:2", 57),
        ("ipledge_monthly:3", 87),
        ("ipledge_monthly:4", 117),
    ]
    assert [item.params["month"] for item in monthly] == [1, 2, 3, 4]


def test_monthly_ipledge_reminders_stop_at_a_shorter_course_end() -> None:
    course = CourseFacts(start_date=SUMMER_START, weeks=16)

    found = planning.candidates(DEFAULT_PLAN, course, Rules(NEW_YORK, ipledge=True))

    assert [item.key for item in found if "monthly" in item.key] == [
        "ipledge_monthly:1",
        "ipledge_monthly:2",
        "ipledge_monthly:3",
    ]


# --- history and plan_from ----------------------------------------------------------------


def test_items_already_handled_are_not_planned_again() -> None:
    history = History(done=frozenset({"welcome", "dry_lips"}))

    plan = course_plan(SUMMER_START, history=history)

    assert not {"welcome", "dry_lips"} & (planned_items(plan) | skipped_keys(plan))
    assert "early_flare" in planned_items(plan)


def test_a_message_that_reached_the_patient_occupies_its_local_day() -> None:
    sun_day = SUMMER_START + timedelta(weeks=1)
    # 20:30 in New York is already the next day in UTC: the patient's day is what counts.
    reached = datetime.combine(sun_day, time(20, 30), tzinfo=NEW_YORK).astimezone(UTC)
    history = History(done=frozenset({"welcome"}), sent=(reached,))

    plan = course_plan(SUMMER_START, history=history)

    assert sun_day not in {m.local_due.date() for m in plan.messages}
    assert day_of(plan, "sun_protection:1") > sun_day


def test_history_from_outbox_rows_marks_merged_items_done_and_counts_each_message_once() -> None:
    welcome_sms = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)
    welcome_email = welcome_sms + timedelta(minutes=2)
    month_one = datetime(2026, 7, 1, 14, 0, tzinfo=UTC)
    rows = [
        ("month_1", "month_1,sun_protection:2", month_one),
        ("welcome", "welcome", welcome_email),
        ("welcome", "welcome", welcome_sms),
        ("dry_lips", "dry_lips", None),
    ]

    history = History.from_rows(rows)

    assert history.done == {"month_1", "sun_protection:2", "welcome", "dry_lips"}
    assert history.sent == (welcome_sms, month_one)


def test_items_whose_window_closed_before_plan_from_are_skipped() -> None:
    enrolled = datetime.combine(SUMMER_START + timedelta(days=20), time(9, 0), tzinfo=NEW_YORK)

    plan = course_plan(SUMMER_START, plan_from=enrolled.astimezone(UTC))

    assert {"dry_lips", "early_flare"} <= skipped_keys(plan)
    assert {s.reason for s in plan.skipped if s.key == "dry_lips"} == {
        "due before the course was planned"
    }
    assert not {"dry_lips", "early_flare"} & planned_items(plan)


def test_the_welcome_is_planned_at_enrolment_however_late_the_course_is_enrolled() -> None:
    enrolled = datetime.combine(SUMMER_START + timedelta(days=20), time(9, 0), tzinfo=NEW_YORK)

    welcome = by_key(course_plan(SUMMER_START, plan_from=enrolled.astimezone(UTC)))["welcome"]

    assert welcome.due_at == enrolled.astimezone(UTC)


def test_no_message_is_planned_before_plan_from() -> None:
    enrolled = datetime.combine(SUMMER_START + timedelta(days=3), time(12, 0), tzinfo=NEW_YORK)

    plan = course_plan(SUMMER_START, plan_from=enrolled.astimezone(UTC))

    assert min(m.due_at for m in plan.messages) >= enrolled
    assert "dry_lips" in planned_items(plan)  # still inside its grace days


def test_without_plan_from_the_planner_starts_at_now() -> None:
    enrolled = datetime.combine(SUMMER_START + timedelta(days=20), time(9, 0), tzinfo=NEW_YORK)
    course = CourseFacts(start_date=SUMMER_START)

    from_now = planning.plan_course(
        plan=DEFAULT_PLAN, course=course, rules=Rules(NEW_YORK), now=enrolled.astimezone(UTC)
    )

    assert from_now == course_plan(SUMMER_START, plan_from=enrolled.astimezone(UTC))


def test_planning_the_same_course_twice_gives_the_same_plan() -> None:
    def plan() -> Plan:
        return course_plan(
            SUMMER_START,
            rules=Rules(NEW_YORK, ipledge=True),
            pregnancy_tests=(date(2026, 6, 27), date(2026, 7, 28)),
            history=History(done=frozenset({"welcome"})),
        )

    assert plan() == plan()
