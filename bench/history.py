"""2. Tick cost vs history: one dispatch tick of 1k due rows as the outbox grows.

Every size holds the same 1k active courses, each with 7 old sent messages, 2 pending ones in
the coming days and 1 due now (10k rows). Larger sizes add completed courses of 40 delivered
messages each, so only the history grows, never the work of the tick. Sends go to an
in-process transport that accepts at once (NullTransport): only the database part varies.
The tick is repeated after putting the same rows back to pending; the median is reported.
"""

from __future__ import annotations

import statistics
from datetime import timedelta
from typing import Any

from sqlalchemy import text

from bench.databases import analyze, fresh
from bench.harness import dispatcher, null_transports, runtime, timed
from bench.seed import Seeder, bench_now
from bench.sizes import Sizes
from reminders.db import session_scope
from reminders.lifecycle import claim

HISTORY_PER_ACTIVE = 7
FUTURE_PER_ACTIVE = 2
PER_COMPLETED = 40


def run(kind: str, sizes: Sizes) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for rows in sizes.history_rows:
        results[str(rows)] = _run_size(kind, rows, sizes)
    first, last = str(sizes.history_rows[0]), str(sizes.history_rows[-1])
    results["ratio"] = {
        "sizes": f"{last}/{first}",
        "tick": results[last]["tick_ms"] / results[first]["tick_ms"],
        "claim": results[last]["claim_ms"] / results[first]["claim_ms"],
    }
    return results


def _run_size(kind: str, rows: int, sizes: Sizes) -> dict[str, Any]:
    due = sizes.history_due
    with fresh(kind) as db:
        now = bench_now()
        seeder = Seeder(db, now)
        clinic = seeder.clinic()
        active = seeder.courses(clinic_id=clinic, count=due, planned_until=now + timedelta(days=30))
        seeder.messages(
            courses=active,
            per_course=HISTORY_PER_ACTIVE,
            key="dry_lips_",
            status="sent",
            due_seconds="-86400 * (8 + m.k)",
        )
        seeder.messages(
            courses=active,
            per_course=FUTURE_PER_ACTIVE,
            key="month_",
            status="pending",
            due_seconds="86400 * m.k",
        )
        seeder.due_welcomes(courses=active)
        base = due * (HISTORY_PER_ACTIVE + FUTURE_PER_ACTIVE + 1)
        completed = max(0, rows - base) // PER_COMPLETED
        if completed:
            done = seeder.courses(
                clinic_id=clinic,
                count=completed,
                status="completed",
                start_spread_days=(-400, -160),
            )
            seeder.messages(
                courses=done,
                per_course=PER_COMPLETED,
                key="item_",
                status="delivered",
                due_seconds="-86400 * (30 + 3 * m.k) - (c.id % 86400)",
            )
        analyze(db)
        total = seeder.count("outbox")
        rt = runtime(db, batch_size=due)
        dispatch = dispatcher(rt, null_transports())
        claims, ticks = [], []
        for _ in range(sizes.history_ticks):
            claims.append(_claim_only(db.engine, due))
            took, report = timed(lambda: dispatch.tick(limit=due))
            if report.sent != due:
                raise RuntimeError(f"tick sent {report.sent} of {due}: {report}")
            ticks.append(took)
            _make_due_again(db.engine)
        return {
            "outbox_rows": total,
            "due": due,
            "transport": "NullTransport (in-process, accepts at once)",
            "ticks": len(ticks),
            "tick_ms": statistics.median(ticks) * 1000,
            "tick_ms_all": [t * 1000 for t in ticks],
            "claim_ms": statistics.median(claims) * 1000,
            "claim_plan": _claim_plan(db),
        }


def _claim_only(engine: Any, limit: int) -> float:
    """The claim statement alone, rolled back."""
    from sqlmodel import Session

    now = bench_now()
    with Session(engine) as session:
        took, ids = timed(
            lambda: claim(
                session, now=now, limit=limit, lease_until=now + timedelta(minutes=2), token="x"
            )
        )
        session.rollback()
    if len(ids) != limit:
        raise RuntimeError(f"claim found {len(ids)} of {limit}")
    return took


def _make_due_again(engine: Any) -> None:
    with session_scope(engine) as session:
        session.execute(
            text(
                "UPDATE outbox SET status = 'pending', sent_at = NULL, provider_id = NULL, "
                "attempts = 0, claim_token = NULL, lease_until = NULL WHERE key = 'welcome'"
            )
        )


def _claim_plan(db: Any) -> str:
    """How the database runs the claim's row selection (its query plan, one line per step)."""
    now = bench_now()
    if db.is_postgres:
        sql = (
            "EXPLAIN SELECT id FROM outbox WHERE status = %(status)s AND send_after <= %(now)s "
            "ORDER BY send_after LIMIT 1000 FOR UPDATE SKIP LOCKED"
        )
        params: dict[str, Any] = {"status": "pending", "now": now}
    else:
        sql = (
            "EXPLAIN QUERY PLAN SELECT id FROM outbox WHERE status = ? AND send_after <= ? "
            "ORDER BY send_after LIMIT 1000"
        )
        params = ("pending", now.strftime("%Y-%m-%d %H:%M:%S.%f"))  # type: ignore[assignment]
    with db.engine.connect() as connection:
        rows = connection.exec_driver_sql(sql, params).all()
    steps = [str(row[-1]).strip() for row in rows]
    return " | ".join(steps)
