"""3. Planning: courses planned per second by the worker's planner pass (services.plan_all).

Courses are seeded unplanned (planned_until NULL), started between 100 days ago and 14 days
ahead; one pass materializes each course's next 7 days into the outbox. Two populations:
`enrolled` courses were enrolled one by one during the last hour (each its own plan_from, as
in real use), `imported` ones all at the same instant (a file import), where courses that
start on the same day share one plan and the planner's plan cache pays off.
"""

from __future__ import annotations

from typing import Any

from bench.databases import fresh
from bench.harness import runtime, timed
from bench.seed import Seeder, bench_now
from bench.sizes import Sizes
from reminders.db import session_scope
from reminders.services import plan_all

START_SPREAD_DAYS = (-100, 14)


ENROLMENT_SPREAD_SECONDS = 3600


def run(kind: str, sizes: Sizes) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for count in sizes.planning_courses:
        results[f"enrolled_{count}"] = _run_size(kind, count, "enrolled")
    # The shared-plan case only at the largest size: it is the contrast, not the headline.
    largest = sizes.planning_courses[-1]
    results[f"imported_{largest}"] = _run_size(kind, largest, "imported")
    return results


def seed_unplanned(seeder: Seeder, count: int, population: str = "enrolled") -> tuple[int, int]:
    return seeder.courses(
        clinic_id=seeder.clinic(),
        count=count,
        start_spread_days=START_SPREAD_DAYS,
        plan_from_spread=ENROLMENT_SPREAD_SECONDS if population == "enrolled" else 0,
    )


def plan_pass(rt: Any, now: Any) -> int:
    with session_scope(rt.engine) as session:
        return plan_all(session, ctx=rt.context(now))


def _run_size(kind: str, count: int, population: str) -> dict[str, Any]:
    with fresh(kind) as db:
        now = bench_now()
        seeder = Seeder(db, now)
        seed_unplanned(seeder, count, population)
        rt = runtime(db)
        took, written = timed(lambda: plan_pass(rt, now))
        planned = seeder.count("course", "planned_until IS NOT NULL")
        if planned != count:
            raise RuntimeError(f"planned {planned} of {count} courses")
        return {
            "population": population,
            "courses": count,
            "outbox_rows": seeder.count("outbox"),
            "plan_all_returned": written,
            "seconds": took,
            "courses_per_second": count / took,
            "ms_per_course": took * 1000 / count,
        }
