"""4b. Two processes, one killed: duplicate and lost sends, the naive design against ours.

Both designs get `crash_reminders` welcome SMS, one per patient, falling due evenly over
`crash_window` seconds from a few seconds after launch, and send them with the real Twilio
channel to the Twilio-shaped server (20 ms per send). Two processes share one database; once
the server has received a third of the messages, one of them is killed with SIGKILL. The
other runs on until everything due was sent (or a deadline passed). The server's record is
the truth: a number that received two welcomes is a duplicate, a number that received none a
lost send.

- naive: the naive scenario's design (bench/naive.py), one APScheduler `date` job per
  reminder in one SQLAlchemyJobStore, each process a BackgroundScheduler on that store (the
  APScheduler FAQ says a job store cannot be shared between processes: this is what happens).
- ours: two `reminders worker` processes; the survivor's reaper settles the killed worker's
  leased rows once their lease (LEASE_SECONDS) ran out, asking the provider what it received.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.databases import Database, fresh
from bench.lag import worker_env
from bench.provider import ROOT, Provider
from bench.seed import WELCOME_PARTS, Seeder, bench_now
from bench.sizes import Sizes

LATENCY = 0.02
LEAD = 3.0  # seconds from launch to the first reminder falling due
KILL_AT = 1 / 3  # of the messages received by the provider
LEASE_SECONDS = 3  # above TWILIO_TIMEOUT and SMTP_TIMEOUT (1 s), as the settings require


def run(kind: str, sizes: Sizes, workdir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with Provider(latency=LATENCY) as provider:
        for design in ("naive", "ours"):
            with fresh(kind) as db:
                results[design] = _run_design(design, db, sizes, provider, workdir)
    return results


def _run_design(
    design: str, db: Database, sizes: Sizes, provider: Provider, workdir: Path
) -> dict[str, Any]:
    count, window = sizes.crash_reminders, sizes.crash_window
    now = bench_now()
    seeder = Seeder(db, now)
    first, last = seeder.courses(
        clinic_id=seeder.clinic(), count=count, planned_until=now + timedelta(days=30)
    )
    launch = datetime.now(UTC)
    offsets = [LEAD + window * i / count for i in range(count)]
    if design == "ours":
        spacing = window / count
        seeder = Seeder(db, launch.replace(microsecond=0))
        seeder.due_welcomes(
            courses=(first, last), due_seconds=f"{LEAD} + (c.id - :first) * {spacing}"
        )
    else:
        _naive_jobs(db, first=first, last=last, at=[launch + timedelta(seconds=s) for s in offsets])
    numbers = _numbers(db)
    provider.reset()
    env = worker_env(db, provider, workdir / f"crash-{design}-{db.kind}.log")
    env.update(
        SECRET_KEY="bench-crash-secret-key-0123456789",
        DISPATCH_INTERVAL="0.5",
        LEASE_SECONDS=str(LEASE_SECONDS),
        TWILIO_TIMEOUT="1",
        SMTP_TIMEOUT="1",
        REAP_INTERVAL="0.5",
        LOG_LEVEL="WARNING",
    )
    command = (
        [sys.executable, "-m", "reminders", "worker"]
        if design == "ours"
        else [sys.executable, "-m", "bench.crash", db.url]
    )
    log = Path(env["WORKER_LOG"])
    processes = []
    with open(log, "ab") as stderr:
        for _ in range(2):
            processes.append(
                subprocess.Popen(command, cwd=ROOT, env=env, stdout=stderr, stderr=stderr)
            )
    killed_at = None
    try:
        deadline = time.monotonic() + LEAD + window + LEASE_SECONDS + 60
        last_due = launch + timedelta(seconds=LEAD + window)
        last, changed = -1, time.monotonic()
        while time.monotonic() < deadline:
            received = provider.count()
            if received != last:
                last, changed = received, time.monotonic()
            if killed_at is None and received >= count * KILL_AT:
                processes[0].send_signal(signal.SIGKILL)
                processes[0].wait()
                killed_at = received
            # Settled, and the provider has heard nothing new for a while: what was on its
            # way from a thread pool has landed.
            quiet = time.monotonic() - changed > 1.5
            if killed_at is not None and quiet and _settled(design, db, count, last_due):
                break
            if processes[1].poll() is not None:
                raise RuntimeError(f"the surviving {design} process exited; see {log}")
            time.sleep(0.2)
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    received_by = Counter(
        message["fields"]["To"]
        for message in provider.received(workdir / f"crash-{design}-{db.kind}.json")
    )
    provider.reset()
    return {
        "reminders": count,
        "window_seconds": window,
        "killed_after_received": killed_at,
        "received": sum(received_by.values()),
        "duplicates": sum(n - 1 for n in received_by.values() if n > 1),
        "lost": sum(1 for number in numbers if number not in received_by),
        # The naive design's scheduler thread dies when the other process removed a job first.
        "job_lookup_errors": log.read_text(errors="replace").count(
            "apscheduler.jobstores.base.JobLookupError:"
        ),
    }


def _settled(design: str, db: Database, count: int, last_due: datetime) -> bool:
    """Nothing left to send: every row is sent (ours); the store is empty, or the last job
    fell due a while ago and nothing more arrives (naive: a dead scheduler thread sends no
    more, and its jobs stay in the store)."""
    with db.engine.connect() as connection:
        if design == "naive":
            if datetime.now(UTC) > last_due + timedelta(seconds=3):
                return True
            sql = "SELECT count(*) FROM apscheduler_jobs"
            return int(connection.execute(text(sql)).scalar_one()) == 0
        sql = "SELECT count(*) FROM outbox WHERE key = 'welcome' AND status = 'sent'"
        return int(connection.execute(text(sql)).scalar_one()) >= count


def _numbers(db: Database) -> list[str]:
    with db.engine.connect() as connection:
        return [row[0] for row in connection.execute(text("SELECT phone FROM patient"))]


def _naive_jobs(db: Database, *, first: int, last: int, at: list[datetime]) -> None:
    """One `date` job per welcome in the shared store, as bench/naive.py schedules them."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    from bench.naive import _metadata

    _metadata.create_all(db.engine)
    with db.engine.connect() as connection:
        patients = [
            row[0]
            for row in connection.execute(
                text("SELECT patient_id FROM course WHERE id BETWEEN :a AND :b ORDER BY id"),
                {"a": first, "b": last},
            )
        ]
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=db.engine)}, timezone=UTC
    )
    scheduler.start(paused=True)
    parts = json.loads(WELCOME_PARTS)
    for patient_id, run_date in zip(patients, at, strict=True):
        scheduler.add_job(
            "bench.naive:fire",
            "date",
            run_date=run_date,
            args=[patient_id, "welcome", parts, True],
            id=f"{patient_id}:welcome:sms",
            misfire_grace_time=None,
            coalesce=True,
        )
    scheduler.shutdown(wait=False)


def main() -> None:
    """`python -m bench.crash DATABASE_URL`: one naive process, until SIGTERM (or SIGKILL)."""
    import threading

    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    from bench import naive
    from bench.harness import runtime
    from reminders.channels.registry import build_transports
    from reminders.db import make_engine

    url = sys.argv[1]
    engine = make_engine(url)
    db = Database("postgres" if url.startswith("postgresql") else "sqlite", url, engine)
    rt = runtime(
        db,
        sms_backend="twilio",
        twilio_account_sid=os.environ["TWILIO_ACCOUNT_SID"],
        twilio_auth_token=os.environ["TWILIO_AUTH_TOKEN"],
        twilio_from_number=os.environ["TWILIO_FROM_NUMBER"],
        twilio_base_url=os.environ["TWILIO_BASE_URL"],
        twilio_mps=10_000,
    )
    naive._fire_state.update(
        runtime=rt,
        transport=build_transports(rt.settings)["sms"],
        lock=threading.Lock(),
        done=0,
        target=float("inf"),
        finished=threading.Event(),
    )
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=engine)},
        executors={"default": ThreadPoolExecutor(rt.settings.send_concurrency)},
        job_defaults={"misfire_grace_time": None, "coalesce": True},
        timezone=UTC,
    )
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    scheduler.start()
    stopping.wait()
    scheduler.shutdown(wait=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
