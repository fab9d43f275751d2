"""The care-plan loader: the default plan, clear errors for bad files, calendar months."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from reminders import careplan
from reminders.careplan import CarePlanError, Offset, add_months
from reminders.config import PROJECT_ROOT
from reminders.planning import CourseFacts, Rules, plan_course
from reminders.render import Renderer

RENDERER = Renderer(PROJECT_ROOT / "templates")

CUSTOM_PLAN_TOML = """
[[message]]
id = "welcome"
topic = "welcome"
anchor = "start"
offset = "0d"
priority = 100

[[message]]
id = "no_such_template"
topic = "milestone"
anchor = "start"
offset = "1w"
priority = 70
"""


def missing_templates(template: str, short: bool) -> list[str]:
    return RENDERER.missing_templates(template, short=short)


def message(**fields: Any) -> dict[str, Any]:
    """One valid [[message]] table, with `fields` changed."""
    table: dict[str, Any] = {
        "id": "month_1",
        "topic": "milestone",
        "anchor": "start",
        "offset": "1m",
        "priority": 70,
    }
    table.update(fields)
    return table


def error_of(data: dict[str, Any]) -> str:
    with pytest.raises(CarePlanError) as raised:
        careplan.parse(data)
    return str(raised.value)


def test_the_default_plan_loads() -> None:
    plan = careplan.load()

    assert "welcome" in {entry.id for entry in plan.entries}
    assert (plan.per_day, plan.per_week) == (1, 3)


def test_every_template_of_the_default_plan_exists_in_every_locale() -> None:
    plan = careplan.load()

    missing = {
        template: RENDERER.missing_templates(template, short=short)
        for template, short in plan.templates().items()
    }

    assert {template: paths for template, paths in missing.items() if paths} == {}


def test_the_default_plan_loads_when_checked_against_the_real_templates() -> None:
    plan = careplan.load(missing_templates=missing_templates)

    assert plan == careplan.load()


def test_a_bad_offset_names_the_entry_and_the_field() -> None:
    error = error_of({"message": [message(offset="3x")]})

    assert "'month_1'" in error
    assert "offset" in error
    assert "'3x'" in error


def test_a_bad_recurring_cadence_names_the_nudge_and_the_field() -> None:
    nudge = {"id": "sun", "topic": "sun_protection", "first": "1w", "every": "3 weeks"}

    error = error_of({"recurring": [nudge | {"priority": 20}]})

    assert "'sun'" in error
    assert "every" in error


def test_an_unknown_topic_is_an_error_listing_the_allowed_topics() -> None:
    error = error_of({"message": [message(topic="diet")]})

    assert "'month_1'.topic" in error
    assert "'diet'" in error
    assert "milestone" in error


def test_a_recurring_topic_is_refused_for_a_one_off_message() -> None:
    error = error_of({"message": [message(topic="sun_protection")]})

    assert "'month_1'.topic" in error
    assert "[[recurring]]" in error


def test_an_unknown_field_is_an_error_naming_the_field() -> None:
    error = error_of({"message": [message(colour="red")]})

    assert "message[0]" in error
    assert "unknown field 'colour'" in error


def test_an_unknown_section_is_an_error_naming_the_section() -> None:
    error = error_of({"messages": [message()]})

    assert "unknown field 'messages'" in error


def test_a_duplicate_id_is_an_error_naming_the_id() -> None:
    error = error_of({"message": [message(), message(offset="2m")]})

    assert "'month_1'.id" in error
    assert "used twice" in error


def test_a_recurring_nudge_may_not_reuse_a_message_id() -> None:
    nudge = {"id": "month_1", "topic": "moisturizer", "first": "1d", "every": "1w", "priority": 1}

    error = error_of({"message": [message()], "recurring": [nudge]})

    assert "recurring 'month_1'.id: used twice" in error


def test_a_text_priority_is_an_error_naming_the_field() -> None:
    error = error_of({"message": [message(priority="high")]})

    assert "'month_1'.priority" in error
    assert "not a whole number" in error


def test_a_fractional_priority_is_an_error() -> None:
    error = error_of({"message": [message(priority=1.5)]})

    assert "'month_1'.priority" in error


def test_a_boolean_priority_is_an_error() -> None:
    error = error_of({"message": [message(priority=True)]})

    assert "'month_1'.priority" in error


def test_an_unknown_anchor_is_an_error() -> None:
    error = error_of({"message": [message(anchor="middle")]})

    assert "'month_1'.anchor" in error
    assert "'middle'" in error


def test_a_negative_grace_period_is_an_error() -> None:
    error = error_of({"message": [message(grace_days=-1)]})

    assert "'month_1'.grace_days" in error


def test_a_countdown_day_after_the_window_is_an_error() -> None:
    error = error_of({"ipledge": {"countdown_days": [1, 5, 8]}})

    assert "ipledge.countdown_days" in error
    assert "between 1 and 7" in error


def test_a_countdown_day_before_the_test_day_is_an_error() -> None:
    error = error_of({"ipledge": {"countdown_days": [0, 5]}})

    assert "ipledge.countdown_days" in error


def test_countdown_days_are_kept_sorted_without_repeats() -> None:
    plan = careplan.parse({"ipledge": {"countdown_days": [7, 1, 5, 1]}})

    assert plan.ipledge.countdown_days == (1, 5, 7)


def test_a_daily_cap_above_the_weekly_cap_is_an_error() -> None:
    error = error_of({"limits": {"per_day": 2, "per_week": 1}})

    assert error.startswith("limits:")


def test_a_nudge_that_never_repeats_is_an_error() -> None:
    nudge = {"id": "sun", "topic": "sun_protection", "first": "1w", "every": "0d", "priority": 20}

    error = error_of({"recurring": [nudge]})

    assert "'sun'.every: must be positive" in error


def test_load_reports_the_missing_template_by_name(tmp_path: Path) -> None:
    path = tmp_path / "clinic.toml"
    path.write_text(CUSTOM_PLAN_TOML, encoding="utf-8")

    with pytest.raises(CarePlanError) as raised:
        careplan.load(path, missing_templates=missing_templates)

    assert "clinic.toml" in str(raised.value)
    assert "template 'no_such_template'" in str(raised.value)


def test_load_reports_an_invalid_entry_with_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "clinic.toml"
    path.write_text(CUSTOM_PLAN_TOML.replace('"1w"', '"3x"'), encoding="utf-8")

    with pytest.raises(CarePlanError) as raised:
        careplan.load(path)

    assert str(raised.value).startswith("clinic.toml: message 'no_such_template'.offset")


def test_invalid_toml_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "clinic.toml"
    path.write_text("[[message]\nid = welcome\n", encoding="utf-8")

    with pytest.raises(CarePlanError) as raised:
        careplan.load(path)

    assert "clinic.toml" in str(raised.value)
    assert "not valid TOML" in str(raised.value)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CarePlanError) as raised:
        careplan.load(tmp_path / "absent.toml")

    assert "cannot read" in str(raised.value)


def test_a_section_that_is_not_a_table_is_a_care_plan_error(tmp_path: Path) -> None:
    path = tmp_path / "clinic.toml"
    path.write_text("limits = 3\n", encoding="utf-8")

    with pytest.raises(CarePlanError, match="limits"):
        careplan.load(path)


def test_a_single_message_table_instead_of_an_array_says_to_use_double_brackets(
    tmp_path: Path,
) -> None:
    path = tmp_path / "clinic.toml"
    path.write_text(
        '[message]\nid = "welcome"\ntopic = "welcome"\nanchor = "start"\n'
        'offset = "0d"\npriority = 100\n',
        encoding="utf-8",
    )

    with pytest.raises(CarePlanError) as raised:
        careplan.load(path)

    assert "[[message]]" in str(raised.value)


def test_a_missing_offset_names_its_location_once() -> None:
    table = message()
    del table["offset"]

    assert error_of({"message": [table]}) == "message 'month_1'.offset: missing"


def test_a_boolean_countdown_day_is_an_error() -> None:
    error = error_of({"ipledge": {"countdown_days": [True, 5]}})

    assert "ipledge.countdown_days" in error


def test_an_offset_reads_days_weeks_and_months() -> None:
    assert [Offset.parse(text) for text in ("3d", "2w", "-1m")] == [
        Offset(3, "d"),
        Offset(2, "w"),
        Offset(-1, "m"),
    ]


def test_a_month_offset_counts_calendar_months() -> None:
    assert Offset.parse("1m").apply(date(2026, 3, 15)) == date(2026, 4, 15)


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2027, 1, 31), 1, date(2027, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),
        (date(2026, 3, 31), 1, date(2026, 4, 30)),
        (date(2026, 12, 31), 2, date(2027, 2, 28)),
        (date(2026, 8, 31), 1, date(2026, 9, 30)),
        (date(2026, 3, 31), -1, date(2026, 2, 28)),
    ],
)
def test_add_months_clips_to_the_last_day_of_a_shorter_month(
    day: date, months: int, expected: date
) -> None:
    assert add_months(day, months) == expected


def test_add_months_keeps_the_day_of_the_month_across_a_year() -> None:
    assert add_months(date(2026, 1, 15), 12) == date(2027, 1, 15)


def test_an_entry_is_planned_unconditionally_by_default() -> None:
    plan = careplan.parse({"message": [message()]})

    assert plan.entries[0].only_if is None


def test_an_entry_can_depend_on_the_clinics_lab_reminders() -> None:
    plan = careplan.parse({"message": [message(only_if="lab_reminders")]})

    assert plan.entries[0].only_if == "lab_reminders"


def test_an_unknown_condition_is_an_error_naming_the_field_and_the_choices() -> None:
    error = error_of({"message": [message(only_if="weekends")]})

    assert "'month_1'.only_if" in error
    assert "'weekends'" in error
    assert "lab_reminders" in error


def test_a_condition_that_is_not_text_is_an_error() -> None:
    error = error_of({"message": [message(only_if=True)]})

    assert "'month_1'.only_if" in error


def test_the_default_lab_reminder_depends_on_the_clinics_lab_reminders() -> None:
    entries = {entry.id: entry for entry in careplan.load().entries}

    assert entries["lab_reminder"].only_if == "lab_reminders"
    assert {entry.id for entry in entries.values() if entry.only_if} == {"lab_reminder"}


def test_the_default_plan_warns_in_the_first_week_and_covers_the_common_side_effects() -> None:
    entries = {entry.id: entry for entry in careplan.load().entries}

    assert entries["first_week"].offset.apply(date(2026, 6, 1)) <= date(2026, 6, 7)
    for side_effect in ("dry_eyes", "muscle_aches"):
        day = entries[side_effect].offset.apply(date(2026, 6, 1))
        assert date(2026, 6, 15) <= day <= date(2026, 7, 13)  # weeks 3 to 6


def test_the_default_plan_has_a_milestone_for_every_month_of_a_long_course() -> None:
    months = [e.params["month"] for e in careplan.load().entries if e.template == "month_milestone"]

    assert months == [1, 2, 3, 4, 5, 6]


def test_a_countdown_around_the_monthly_visit_defers_each_month_milestone_not_drops_it() -> None:
    # Three countdown steps in seven days fill the weekly cap around the visit.
    start = date(2026, 9, 1)
    course = CourseFacts(
        start_date=start,
        weeks=20,
        last_dose_date=start + timedelta(weeks=20),
        plan_from=datetime(2026, 9, 1, 4, 0, tzinfo=UTC),
        pregnancy_tests=(date(2026, 9, 28), date(2026, 10, 28)),
    )
    plan = plan_course(
        plan=careplan.load(),
        course=course,
        rules=Rules(timezone=ZoneInfo("America/New_York"), ipledge=True),
        now=datetime(2026, 9, 1, 4, 0, tzinfo=UTC),
    )

    planned = {item.key for message in plan.messages for item in message.items}
    assert {"month_1", "month_2", "month_3", "month_4"} <= planned
    assert not [s.key for s in plan.skipped if s.key.startswith("month_")]
