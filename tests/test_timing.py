"""Local time rules called directly: wall times across DST changes, quiet hours, time left."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from reminders.timing import (
    business_deadline,
    is_quiet,
    local_instant,
    next_allowed,
    seconds_until_quiet,
    to_local,
)

NEW_YORK = ZoneInfo("America/New_York")
SYDNEY = ZoneInfo("Australia/Sydney")
QUIET = {"quiet_start": time(21, 0), "quiet_end": time(8, 0)}

# An ordinary summer day in New York (EDT, UTC-4), far from any DST change.
ORDINARY_DAY = date(2026, 6, 15)
# 02:00 EST jumps to 03:00 EDT.
NEW_YORK_SPRING_FORWARD = date(2026, 3, 8)
# 02:00 EDT falls back to 01:00 EST: 01:00-01:59 happens twice.
NEW_YORK_FALL_BACK = date(2026, 11, 1)
# 02:00 AEST jumps to 03:00 AEDT.
SYDNEY_SPRING_FORWARD = date(2026, 10, 4)
# 03:00 AEDT falls back to 02:00 AEST: 02:00-02:59 happens twice.
SYDNEY_FALL_BACK = date(2026, 4, 5)


def local(day: date, at: time, zone: ZoneInfo = NEW_YORK) -> datetime:
    """A wall time in `zone` as an aware UTC instant (the day is not a DST change)."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def test_local_instant_on_an_ordinary_day_is_the_wall_time_in_utc() -> None:
    instant = local_instant(ORDINARY_DAY, time(10, 0), NEW_YORK)

    assert instant == datetime(2026, 6, 15, 14, 0, tzinfo=UTC)


def test_local_instant_returns_an_instant_in_utc() -> None:
    instant = local_instant(ORDINARY_DAY, time(10, 0), NEW_YORK)

    assert instant.utcoffset() == timedelta(0)


def test_a_new_york_wall_time_skipped_by_spring_forward_lands_an_hour_later() -> None:
    instant = local_instant(NEW_YORK_SPRING_FORWARD, time(2, 30), NEW_YORK)

    wall = to_local(instant, NEW_YORK)
    assert (wall.date(), wall.time(), wall.tzname()) == (
        NEW_YORK_SPRING_FORWARD,
        time(3, 30),
        "EDT",
    )
    assert instant == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)


def test_a_sydney_wall_time_skipped_by_spring_forward_lands_an_hour_later() -> None:
    instant = local_instant(SYDNEY_SPRING_FORWARD, time(2, 30), SYDNEY)

    wall = to_local(instant, SYDNEY)
    assert (wall.date(), wall.time(), wall.tzname()) == (SYDNEY_SPRING_FORWARD, time(3, 30), "AEDT")
    assert instant == datetime(2026, 10, 3, 16, 30, tzinfo=UTC)


def test_a_new_york_wall_time_repeated_by_fall_back_takes_its_first_occurrence() -> None:
    instant = local_instant(NEW_YORK_FALL_BACK, time(1, 30), NEW_YORK)

    assert instant == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    assert to_local(instant, NEW_YORK).tzname() == "EDT"


def test_a_sydney_wall_time_repeated_by_fall_back_takes_its_first_occurrence() -> None:
    instant = local_instant(SYDNEY_FALL_BACK, time(2, 30), SYDNEY)

    assert instant == datetime(2026, 4, 4, 15, 30, tzinfo=UTC)
    assert to_local(instant, SYDNEY).tzname() == "AEDT"


def test_to_local_shows_an_instant_on_the_patients_wall_clock() -> None:
    wall = to_local(datetime(2026, 6, 15, 14, 0, tzinfo=UTC), NEW_YORK)

    assert (wall.date(), wall.time()) == (ORDINARY_DAY, time(10, 0))


def test_one_minute_before_quiet_hours_start_is_not_quiet() -> None:
    assert is_quiet(time(20, 59), **QUIET) is False


def test_quiet_hours_start_at_their_first_minute() -> None:
    assert is_quiet(time(21, 0), **QUIET) is True


def test_quiet_hours_wrap_past_midnight() -> None:
    assert is_quiet(time(0, 0), **QUIET) is True


def test_one_minute_before_quiet_hours_end_is_quiet() -> None:
    assert is_quiet(time(7, 59), **QUIET) is True


def test_quiet_hours_end_at_their_last_minute() -> None:
    assert is_quiet(time(8, 0), **QUIET) is False


def test_quiet_hours_that_do_not_wrap_midnight_cover_only_their_span() -> None:
    span = {"quiet_start": time(1, 0), "quiet_end": time(6, 0)}

    assert [is_quiet(time(h, 0), **span) for h in (0, 1, 5, 6, 23)] == [
        False,
        True,
        True,
        False,
        False,
    ]


def test_next_allowed_from_the_evening_is_the_next_morning_at_quiet_end() -> None:
    allowed = next_allowed(local(ORDINARY_DAY, time(22, 0)), NEW_YORK, **QUIET)

    assert allowed == local(ORDINARY_DAY + timedelta(days=1), time(8, 0))


def test_next_allowed_from_the_small_hours_is_the_same_morning_at_quiet_end() -> None:
    allowed = next_allowed(local(ORDINARY_DAY, time(3, 0)), NEW_YORK, **QUIET)

    assert allowed == local(ORDINARY_DAY, time(8, 0))


def test_next_allowed_outside_quiet_hours_is_the_instant_itself() -> None:
    instant = local(ORDINARY_DAY, time(12, 0))

    assert next_allowed(instant, NEW_YORK, **QUIET) == instant


def test_next_allowed_across_spring_forward_is_eight_in_the_morning_daylight_time() -> None:
    evening_before = local(NEW_YORK_SPRING_FORWARD - timedelta(days=1), time(22, 0))

    allowed = next_allowed(evening_before, NEW_YORK, **QUIET)

    assert allowed == datetime(2026, 3, 8, 12, 0, tzinfo=UTC)  # 08:00 EDT


def test_seconds_until_quiet_counts_to_the_start_of_quiet_hours() -> None:
    left = seconds_until_quiet(local(ORDINARY_DAY, time(20, 0)), NEW_YORK, **QUIET)

    assert left == 3600


def test_seconds_until_quiet_is_zero_inside_quiet_hours() -> None:
    left = seconds_until_quiet(local(ORDINARY_DAY, time(21, 30)), NEW_YORK, **QUIET)

    assert left == 0


def test_seconds_until_quiet_counts_from_quiet_end_to_quiet_start() -> None:
    left = seconds_until_quiet(local(ORDINARY_DAY, time(8, 0)), NEW_YORK, **QUIET)

    assert left == 13 * 3600


def test_seconds_until_quiet_counts_real_seconds_on_the_spring_forward_day() -> None:
    # 01:00 EST to 21:00 EDT on the day the clocks skip an hour is 19 hours, not 20.
    one_am = datetime(2026, 3, 8, 6, 0, tzinfo=UTC)
    night = {"quiet_start": time(21, 0), "quiet_end": time(0, 30)}

    assert seconds_until_quiet(one_am, NEW_YORK, **night) == 19 * 3600


def test_seconds_until_quiet_waits_for_tomorrow_when_quiet_hours_do_not_wrap() -> None:
    span = {"quiet_start": time(1, 0), "quiet_end": time(6, 0)}

    left = seconds_until_quiet(local(ORDINARY_DAY, time(23, 0)), NEW_YORK, **span)

    assert left == 2 * 3600


TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.mark.parametrize(
    ("received", "due"),
    [
        # Monday 10:00 -> Tuesday 10:00: an ordinary weekday.
        ((date(2026, 6, 15), time(10, 0)), (date(2026, 6, 16), time(10, 0))),
        # Thursday 12:00 -> Friday 12:00.
        ((date(2026, 6, 18), time(12, 0)), (date(2026, 6, 19), time(12, 0))),
        # Friday 15:00 -> Monday 15:00: the weekend does not count.
        ((date(2026, 6, 19), time(15, 0)), (date(2026, 6, 22), time(15, 0))),
        # Saturday 10:00 and Sunday 23:00 count from Monday 00:00 -> Tuesday 00:00.
        ((date(2026, 6, 20), time(10, 0)), (date(2026, 6, 23), time(0, 0))),
        ((date(2026, 6, 21), time(23, 0)), (date(2026, 6, 23), time(0, 0))),
        # A whole Friday is a whole business day: Friday 00:00 -> Saturday 00:00.
        ((date(2026, 6, 19), time(0, 0)), (date(2026, 6, 20), time(0, 0))),
        # One minute later it runs into Monday: Friday 00:01 -> Monday 00:01.
        ((date(2026, 6, 19), time(0, 1)), (date(2026, 6, 22), time(0, 1))),
        # The spring-forward weekend: 24 weekday hours still end at the same wall time.
        ((date(2026, 3, 6), time(12, 0)), (date(2026, 3, 9), time(12, 0))),
    ],
)
def test_a_business_day_is_24_weekday_hours_in_the_clinics_zone(
    received: tuple[date, time], due: tuple[date, time]
) -> None:
    start = local(*received)
    assert business_deadline(start, NEW_YORK, hours=24) == local(*due)


def test_the_weekend_is_the_clinics_weekend_not_utcs() -> None:
    # Friday 20:00 in Tokyo is Friday 11:00 UTC: Tokyo's weekend starts four hours later.
    start = local(date(2026, 6, 19), time(20, 0), TOKYO)
    assert business_deadline(start, TOKYO, hours=24) == local(date(2026, 6, 22), time(20, 0), TOKYO)
