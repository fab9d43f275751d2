"""The frequency caps, one rule for the planner and the dispatcher: per local day, per 7 days.

Both ask the same question of a count of messages per local day (keyed by date ordinal):
does this day have room? The planner asks it while it places a course's plan; the
dispatcher asks it again just before a send, against what really reached the patient.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

WEEK = 7


@dataclass(frozen=True)
class Caps:
    """At most `per_day` messages a local day and `per_week` in any 7 consecutive days."""

    per_day: int = 1
    per_week: int = 3

    def has_room(self, day: date, counts: Mapping[int, int]) -> bool:
        """Whether one more message on `day` keeps the day and every 7-day window under the caps."""
        ordinal = day.toordinal()
        if counts.get(ordinal, 0) >= self.per_day:
            return False
        # The windows that hold `day` start at most 6 days before it: 13 days decide.
        around = [counts.get(ordinal + k, 0) for k in range(-(WEEK - 1), WEEK)]
        if sum(around) < self.per_week:
            return True  # the common case: a quiet fortnight
        window = sum(around[:WEEK])
        for first in range(WEEK):
            if window >= self.per_week:
                return False
            if first < WEEK - 1:
                window += around[first + WEEK] - around[first]
        return True

    def first_day_with_room(self, day: date, counts: Mapping[int, int]) -> date:
        """The earliest day from `day` on with room (a window empties within a week)."""
        while not self.has_room(day, counts):
            day += timedelta(days=1)
        return day


def count_days(days: list[date]) -> dict[int, int]:
    """Messages per day, keyed by date ordinal, as Caps reads them."""
    counts: dict[int, int] = {}
    for day in days:
        counts[day.toordinal()] = counts.get(day.toordinal(), 0) + 1
    return counts
