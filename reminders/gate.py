"""The gate: may a claimed message go out now? Facts and `now` in, a decision out; pure.

The planner placed the message by the rules; the gate checks them again at the last moment,
because the world moved since: the course may have stopped, the patient opted out, the worker
been down past the message's window, or another message reached the patient in the meantime.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from reminders.caps import Caps, count_days
from reminders.models import Channel, Clinic, Course, CourseStatus, Message, MessageStatus, Patient
from reminders.planning import caps_exempt
from reminders.timing import local_instant, next_allowed, seconds_until_quiet, to_local, zone

# Not worth handing an SMS to the provider with less time than this before quiet hours.
MIN_VALIDITY_SECONDS = 300
# Later than this after its due time, an expired message says the worker was not running.
LATE = timedelta(minutes=10)


@dataclass(frozen=True)
class Facts:
    """What the gate knows about one claimed message."""

    key: str
    channel: Channel
    course_status: CourseStatus
    opted_out: bool  # the patient opted out of this channel
    unreachable: str | None  # why the contact cannot be reached, if it cannot
    due_at: datetime
    send_after: datetime
    expires_at: datetime
    zone: ZoneInfo
    send_time: time
    quiet_start: time
    quiet_end: time
    # Other messages that reached the patient lately: message key -> local day.
    reached: Mapping[str, date]
    caps_exempt: bool = False  # the iPLEDGE countdown: its window closes on a fixed day


def facts_for(
    row: Message, patient: Patient, clinic: Clinic, course: Course, *, reached: Mapping[str, date]
) -> Facts:
    """The gate's facts about a claimed row, from the records it was loaded with."""
    channel = Channel(row.channel)
    return Facts(
        key=row.key,
        channel=channel,
        course_status=CourseStatus(course.status),
        opted_out=patient.email_opted_out if channel == Channel.email else patient.sms_opted_out,
        unreachable=patient.unreachable(channel),
        due_at=row.due_at,
        send_after=row.send_after,
        expires_at=row.expires_at,
        zone=zone(patient.timezone),
        send_time=clinic.send_time,
        quiet_start=clinic.quiet_start,
        quiet_end=clinic.quiet_end,
        reached=reached,
        caps_exempt=caps_exempt(row.key),
    )


@dataclass(frozen=True)
class Send:
    """Send it now."""


@dataclass(frozen=True)
class Defer:
    """Not now: back to pending until `until`; not an attempt."""

    until: datetime
    reason: str


@dataclass(frozen=True)
class Settle:
    """Never: it ends in `status` with `reason`."""

    status: MessageStatus
    reason: str


Decision = Send | Defer | Settle


def decide(facts: Facts, *, now: datetime, caps: Caps) -> Decision:
    """Whether the message goes out now, later (and when), or never (and why)."""
    if facts.course_status != CourseStatus.active:
        return Settle(MessageStatus.cancelled, f"course {facts.course_status}")
    if facts.opted_out:
        return Settle(MessageStatus.suppressed, "opted out")
    if now >= facts.expires_at:
        reason = "past its window"
        if facts.send_after > facts.due_at:
            reason += " after retries"
        elif now - facts.due_at > LATE:
            reason += " (the worker was not running when it was due)"
        return Settle(MessageStatus.expired, reason)
    if facts.unreachable is not None:
        # Kept, not attempted: it goes out if staff fix the contact in time.
        return Settle(MessageStatus.held, f"held: unreachable ({facts.unreachable})")
    quiet = {"quiet_start": facts.quiet_start, "quiet_end": facts.quiet_end}
    allowed = next_allowed(now, facts.zone, **quiet)
    if allowed > now:
        return Defer(allowed, "quiet hours")
    if facts.channel == Channel.sms:
        # A message accepted just before quiet hours could sit in the provider's queue into
        # them; its validity period would be too short to be worth the attempt.
        left = seconds_until_quiet(now, facts.zone, **quiet)
        if left < MIN_VALIDITY_SECONDS:
            resume = next_allowed(now + timedelta(seconds=left + 1), facts.zone, **quiet)
            return Defer(resume, "too close to quiet hours")
    if facts.caps_exempt:
        return Send()
    today = to_local(now, facts.zone).date()
    # The same message on another channel is the same message: it does not count twice.
    counts = count_days([day for key, day in facts.reached.items() if key != facts.key])
    if not caps.has_room(today, counts):
        day = caps.first_day_with_room(today + timedelta(days=1), counts)
        return Defer(local_instant(day, facts.send_time, facts.zone), "frequency cap")
    return Send()
