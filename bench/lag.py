"""5. Lag and memory: a real `reminders worker` process in a steady trickle of due messages.

The database holds N active courses (planned ahead, 5 sent messages each in their history).
Welcome SMS rows fall due one after another at a steady rate for `window` seconds, starting
a few seconds after the worker is launched. The worker runs with its production defaults
except: DISPATCH_INTERVAL=1 s, TWILIO_MPS=10000 (pacing is not measured), the planner's
interval pushed out of the run. It sends through the real Twilio channel to the loopback
server at 200 ms latency. Lag is sent_at - due_at of each row, as the worker recorded it;
peak RSS is the worker's VmHWM from /proc, read before it is stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.databases import Database, analyze, fresh
from bench.harness import median, percentile
from bench.provider import ROOT, Provider
from bench.seed import Seeder, bench_now
from bench.sizes import Sizes

DISPATCH_INTERVAL = 1.0
LATENCY = 0.2
HISTORY_PER_COURSE = 5


def run(kind: str, sizes: Sizes, workdir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with Provider(latency=LATENCY) as provider:
        for courses in sizes.lag_courses:
            results[str(courses)] = _run_size(kind, courses, sizes, provider, workdir)
    first, last = (str(n) for n in (sizes.lag_courses[0], sizes.lag_courses[-1]))
    results["rss_growth"] = {
        "sizes": f"{last}/{first}",
        "peak": results[last]["peak_rss_mb"] / results[first]["peak_rss_mb"] - 1,
    }
    return results


def worker_env(db: Database, provider: Provider, log: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TWILIO_", "SMTP_", "REMINDERS_TEST_"))
        and k not in ("DATABASE_URL", "LOG_LEVEL", "LOG_FORMAT")
    }
    env.update(
        DATABASE_URL=db.url,
        SMS_BACKEND="twilio",
        EMAIL_BACKEND="console",
        TWILIO_ACCOUNT_SID=provider.account_sid,
        TWILIO_AUTH_TOKEN=provider.auth_token,
        TWILIO_FROM_NUMBER="+12125550000",
        TWILIO_BASE_URL=provider.url,
        TWILIO_MPS="10000",
        DISPATCH_INTERVAL=str(DISPATCH_INTERVAL),
        PLAN_INTERVAL="86400",
        LOG_LEVEL="INFO",
        LOG_FORMAT="json",
        WORKER_LOG=str(log),
        # The benchmark's own throw-away worker: the default SECRET_KEY would stop it.
        REMINDERS_ENV="development",
    )
    return env


def memory_of(pid: int) -> dict[str, float]:
    """VmHWM (peak) and VmRSS (now) of a process, in MB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            found[name] = int(value.split()[0]) / 1024
    return found


def _run_size(
    kind: str, courses: int, sizes: Sizes, provider: Provider, workdir: Path
) -> dict[str, Any]:
    due = max(1, int(sizes.lag_window * sizes.lag_rate))
    with fresh(kind) as db:
        now = bench_now()
        seeder = Seeder(db, now)
        active = seeder.courses(
            clinic_id=seeder.clinic(), count=courses, planned_until=now + timedelta(days=30)
        )
        seeder.messages(
            courses=active,
            per_course=HISTORY_PER_COURSE,
            key="dry_lips_",
            status="sent",
            due_seconds="-86400 * (8 + m.k)",
        )
        analyze(db)
        provider.reset()
        log = workdir / f"worker-{kind}-{courses}.log"
        env = worker_env(db, provider, log)
        # The rows fall due from a few seconds after launch, one every 1/rate seconds.
        seeder = Seeder(db, bench_now())
        spacing = 1 / sizes.lag_rate
        seeder.due_welcomes(
            courses=(active[0], active[0] + due - 1),
            due_seconds=f"{sizes.lag_lead} + (c.id - :first) * {spacing}",
        )
        with open(log, "ab") as stderr:
            worker = subprocess.Popen(
                [sys.executable, "-m", "reminders", "worker"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        try:
            launched = time.monotonic()
            deadline = launched + sizes.lag_lead + sizes.lag_window + 60
            idle: dict[str, float] = {}
            while time.monotonic() < deadline and worker.poll() is None:
                if not idle and time.monotonic() - launched >= sizes.lag_lead - 1:
                    idle = memory_of(worker.pid)  # started, nothing due yet
                if _sent(db) >= due:
                    break
                time.sleep(0.25)
            if worker.poll() is not None:
                raise RuntimeError(f"worker exited with {worker.returncode}; see {log}")
            memory = memory_of(worker.pid)
        finally:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()
        lags = _lags(db)
        return {
            "courses": courses,
            "outbox_rows": seeder.count("outbox"),
            "due_rows": due,
            "sent": len(lags),
            "rate_per_second": sizes.lag_rate,
            "window_seconds": sizes.lag_window,
            "dispatch_interval_seconds": DISPATCH_INTERVAL,
            "latency_ms": round(LATENCY * 1000),
            "lag_p50_seconds": median(lags),
            "lag_p99_seconds": percentile(lags, 99),
            "lag_max_seconds": max(lags) if lags else float("nan"),
            "rss_before_due_mb": idle.get("VmRSS", float("nan")),
            "peak_rss_mb": memory["VmHWM"],
            "rss_end_mb": memory["VmRSS"],
        }


def _sent(db: Database) -> int:
    with db.engine.connect() as connection:
        return int(
            connection.execute(
                text("SELECT count(*) FROM outbox WHERE key = 'welcome' AND status = 'sent'")
            ).scalar_one()
        )


def _lags(db: Database) -> list[float]:
    from sqlmodel import Session, select

    from reminders.models import Message

    with Session(db.engine) as session:
        rows = session.exec(
            select(Message.due_at, Message.sent_at).where(
                Message.key == "welcome",
                Message.sent_at.is_not(None),  # type: ignore[union-attr]
            )
        ).all()
    return [(sent - due).total_seconds() for due, sent in rows if sent is not None]
