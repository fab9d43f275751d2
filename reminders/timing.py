"""Local time rules, pure: send slots in the patient's zone, quiet hours, validity periods."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`, loaded once per process."""
    return ZoneInfo(name)


def to_utc(local: datetime) -> datetime:
    """An aware datetime in UTC."""
    return local.astimezone(UTC)


def as_utc(value: datetime) -> datetime:
    """An aware UTC instant (SQLite hands back naive datetimes, which are UTC here)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def to_local(instant: datetime, zone: ZoneInfo) -> datetime:
    """An aware instant in `zone`."""
    return instant.astimezone(zone)


def local_today(now: datetime, zone_name: str) -> date:
    """The calendar date it is at `now` in the zone `zone_name` (a patient's or a clinic's)."""
    return to_local(now, zone(zone_name)).date()


def local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """`day` at wall time `at` in `zone`, as an aware UTC instant.

    zoneinfo resolves a wall time with fold=0: a time skipped by spring-forward takes the
    offset before the gap, so it lands the length of the gap later (02:30 -> 03:30); a time
    repeated by fall-back takes its first occurrence.
    """
    return to_utc(datetime.combine(day, at, tzinfo=zone))


def is_quiet(at: time, *, quiet_start: time, quiet_end: time) -> bool:
    """Whether a local wall time falls inside quiet hours (which may wrap midnight)."""
    if quiet_start == quiet_end:
        return False
    if quiet_start > quiet_end:
        return at >= quiet_start or at < quiet_end
    return quiet_start <= at < quiet_end


def next_allowed(
    instant: datetime, zone: ZoneInfo, *, quiet_start: time, quiet_end: time
) -> datetime:
    """The first instant at or after `instant` (aware) outside quiet hours."""
    local = to_local(instant, zone)
    if not is_quiet(local.time(), quiet_start=quiet_start, quiet_end=quiet_end):
        return instant
    day = local.date()
    if quiet_start > quiet_end and local.time() >= quiet_start:
        day += timedelta(days=1)
    return local_instant(day, quiet_end, zone)


def seconds_until_quiet(
    instant: datetime, zone: ZoneInfo, *, quiet_start: time, quiet_end: time
) -> int:
    """Seconds from `instant` until quiet hours begin (0 when already inside them)."""
    local = to_local(instant, zone)
    if is_quiet(local.time(), quiet_start=quiet_start, quiet_end=quiet_end):
        return 0
    start_day = local.date()
    if local.time() >= quiet_start:
        start_day += timedelta(days=1)
    begins = local_instant(start_day, quiet_start, zone)
    return int((begins - instant).total_seconds())


# Saturday and Sunday: no business is done, so no waiting counts.
WEEKEND = (5, 6)


def business_deadline(start: datetime, zone: ZoneInfo, *, hours: float) -> datetime:
    """The instant `hours` of weekday time (Monday to Friday in `zone`) after `start`.

    Weekends do not count, public holidays do: the service knows no clinic's calendar. Time
    is counted in real hours, so a DST change shifts the wall-clock deadline by its hour.
    """
    left = timedelta(hours=hours)
    at = to_utc(start)
    while True:
        day = to_local(at, zone).date()
        midnight = local_instant(day + timedelta(days=1), time(0, 0), zone)
        if day.weekday() not in WEEKEND:
            if midnight - at >= left:
                return at + left
            left -= midnight - at
        at = midnight
