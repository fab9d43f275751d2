"""How big each scenario runs in each mode."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    name: str
    # 1. pipeline vs raw: messages per case
    pipeline_0ms: int
    pipeline_200ms: int  # at the default concurrency (8)
    pipeline_200ms_wide: int  # at WIDE_CONCURRENCY
    serial_200ms: int
    # 2. tick cost vs history: outbox rows in total (1k of them due)
    history_rows: tuple[int, ...]
    history_due: int
    history_ticks: int
    # 3. planning: courses
    planning_courses: tuple[int, ...]
    # 4. naive baseline: courses planned (about 1.4 reminders each within 7 days), due fired
    naive_courses: int
    naive_due: int
    # 5. lag and memory: courses in the database, seconds of due rows, rows per second
    lag_courses: tuple[int, ...]
    lag_window: float
    lag_rate: float
    lag_lead: float  # seconds from launching the worker to the first row falling due
    # 6. load: seeded SMS courses (the first `load_due` with a welcome due), rows imported,
    # numbers that text STOP (at most), locust users
    load_patients: int
    load_due: int
    load_import_rows: int
    load_stops: int
    load_staff_users: int
    load_twilio_users: int
    # 4b. naive vs ours when one of two processes is killed: reminders, seconds they fall due over
    crash_reminders: int
    crash_window: float


SMOKE = Sizes(
    name="smoke",
    pipeline_0ms=100,
    pipeline_200ms=16,
    pipeline_200ms_wide=64,
    serial_200ms=2,
    history_rows=(2_000, 4_000),
    history_due=200,
    history_ticks=1,
    planning_courses=(100, 200),
    naive_courses=200,
    naive_due=50,
    lag_courses=(200, 400),
    lag_window=1.0,
    lag_rate=10.0,
    lag_lead=2.5,
    load_patients=800,
    load_due=200,
    load_import_rows=200,
    load_stops=10,
    load_staff_users=2,
    load_twilio_users=2,
    crash_reminders=60,
    crash_window=2.0,
)

QUICK = Sizes(
    name="quick",
    pipeline_0ms=400,
    pipeline_200ms=48,
    pipeline_200ms_wide=256,
    serial_200ms=6,
    history_rows=(10_000, 100_000),
    history_due=1_000,
    history_ticks=1,
    planning_courses=(2_000, 10_000),
    naive_courses=2_000,
    naive_due=300,
    lag_courses=(2_000, 20_000),
    lag_window=3.0,
    lag_rate=20.0,
    lag_lead=2.5,
    load_patients=1_000,
    load_due=300,
    load_import_rows=1_000,
    load_stops=20,
    load_staff_users=4,
    load_twilio_users=4,
    crash_reminders=100,
    crash_window=2.0,
)

FULL = Sizes(
    name="full",
    pipeline_0ms=3_000,
    pipeline_200ms=400,
    pipeline_200ms_wide=3_200,
    serial_200ms=50,
    history_rows=(10_000, 100_000, 1_000_000),
    history_due=1_000,
    history_ticks=5,
    planning_courses=(10_000, 100_000),
    naive_courses=113_000,
    naive_due=1_000,
    lag_courses=(10_000, 100_000),
    lag_window=40.0,
    lag_rate=20.0,
    lag_lead=5.0,
    load_patients=20_000,
    load_due=10_000,
    load_import_rows=10_000,
    load_stops=300,
    load_staff_users=16,
    load_twilio_users=8,
    crash_reminders=1_000,
    crash_window=10.0,
)

MODES = {"smoke": SMOKE, "quick": QUICK, "full": FULL}
WIDE_CONCURRENCY = 64
WIDE_BATCH = 512
