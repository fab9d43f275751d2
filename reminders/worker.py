"""The worker process: APScheduler is only its clock; the database decides what is sent."""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col

from reminders.channels.registry import build_transports, email_transport
from reminders.db import is_postgres, session_scope
from reminders.dispatch import Dispatcher, TickReport
from reminders.logs import bind_worker
from reminders.metrics import WorkerMetrics
from reminders.metrics_http import MetricsServer
from reminders.models import Message, WorkerHeartbeat
from reminders.notices import send_reply_notices
from reminders.recovery import reap
from reminders.retention import apply_retention
from reminders.runtime import Runtime
from reminders.services import apply_unapplied_texts, plan_all

log = logging.getLogger(__name__)

# Heroku sends SIGKILL 30 s after SIGTERM; in-flight sends must be settled well before.
SHUTDOWN_GRACE_SECONDS = 25
# How often the worker looks for replies to tell staff of (each clinic still hears at most
# once per REPLY_NOTIFY_INTERVAL) and for texts their request recorded but did not apply.
REPLIES_INTERVAL_SECONDS = 60
# A text still unapplied this long after it arrived was left by its request (Twilio gave up
# on the webhook after 15 s); younger ones may still be in their request's hands.
UNAPPLIED_AFTER = timedelta(minutes=1)


def make_dispatcher(
    runtime: Runtime, *, worker_id: str | None = None, metrics: WorkerMetrics | None = None
) -> Dispatcher:
    return Dispatcher(
        metrics=metrics or WorkerMetrics(),
        engine=runtime.engine,
        settings=runtime.settings,
        careplan=runtime.careplan,
        renderer=runtime.renderer,
        transports=build_transports(runtime.settings),
        worker_id=worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}",
        after_send=_crash_hook(),
    )


def _crash_hook() -> Callable[[Message], None] | None:
    """For crash tests only: REMINDERS_TEST_CRASH_AFTER_SEND=P makes the process die, with
    probability P, right after the provider accepted a message and before it is recorded:
    the worst moment, which the reaper must recover from without a duplicate."""
    chance = float(os.environ.get("REMINDERS_TEST_CRASH_AFTER_SEND", "0") or 0)
    if chance <= 0:
        return None
    dice = random.Random()

    def crash(_row: Message) -> None:
        if dice.random() < chance:
            os._exit(137)

    return crash


def plan_pass(runtime: Runtime, now: datetime, *, metrics: WorkerMetrics | None = None) -> int:
    """Materialize the coming messages of every active course (idempotent), then erase the
    patients whose clinic's retention period ran out."""
    started = time.perf_counter()
    with session_scope(runtime.engine) as session:
        planned = plan_all(session, ctx=runtime.context(now))
    if metrics is not None:
        metrics.planner_pass(rows=planned, seconds=time.perf_counter() - started)
    with session_scope(runtime.engine) as session:
        apply_retention(session, now=now)
    return planned


def send_due(runtime: Runtime, dispatcher: Dispatcher | None = None) -> TickReport:
    """One planner pass and dispatch ticks until nothing due is left to claim."""
    own = dispatcher is None
    dispatcher = dispatcher or make_dispatcher(runtime)
    plan_pass(runtime, dispatcher.clock(), metrics=dispatcher.metrics)
    total = TickReport()
    try:
        while True:
            report = dispatcher.tick()
            for name, value in vars(report).items():
                setattr(total, name, getattr(total, name) + value)
            if report.claimed < runtime.settings.batch_size:
                return total
    finally:
        if own:
            dispatcher.close()


def replies_pass(runtime: Runtime, now: datetime) -> int:
    """Apply texts left unapplied, then email the clinics that have new replies to read;
    returns the emails sent. Uses its own email transport, closed when the pass ends."""
    with session_scope(runtime.engine) as session:
        applied = apply_unapplied_texts(
            session, ctx=runtime.context(now), older_than=UNAPPLIED_AFTER
        )
    if applied:
        log.warning("%d text(s) applied that their webhook had only recorded", applied)
    transport = email_transport(runtime.settings)
    try:
        return send_reply_notices(
            runtime.engine,
            transport=transport,
            settings=runtime.settings,
            now=now,
            careplan=runtime.careplan,
        )
    finally:
        transport.close()


def heartbeat(
    runtime: Runtime, worker_id: str, started: datetime, *, now: datetime, ticked: bool
) -> None:
    """Record that this worker is alive at `now` (and when it last dispatched)."""
    values = {
        "worker_id": worker_id,
        "hostname": socket.gethostname()[:120],
        "pid": os.getpid(),
        "started_at": started,
        "last_seen": now,
        "last_tick": now if ticked else None,
    }
    with session_scope(runtime.engine) as session:
        insert = pg_insert if is_postgres(runtime.engine) else sqlite_insert
        table = WorkerHeartbeat.__table__  # type: ignore[attr-defined]
        statement = insert(table).values(values)
        updates = {"last_seen": statement.excluded.last_seen}
        if ticked:
            updates["last_tick"] = statement.excluded.last_tick
        session.execute(statement.on_conflict_do_update(index_elements=["worker_id"], set_=updates))


def forget_worker(runtime: Runtime, worker_id: str) -> None:
    with session_scope(runtime.engine) as session:
        session.execute(
            update(WorkerHeartbeat)
            .where(col(WorkerHeartbeat.worker_id) == worker_id)
            .values(last_seen=datetime(1970, 1, 1, tzinfo=UTC))
        )


def run(
    runtime: Runtime,
    *,
    metrics: WorkerMetrics | None = None,
    metrics_server: MetricsServer | None = None,
) -> None:
    """Run until SIGTERM or SIGINT; in-flight sends are finished or released, then exit.

    `metrics_server` (serving `metrics`) is closed when the worker stops."""
    stopping = threading.Event()
    dispatcher = make_dispatcher(runtime, metrics=metrics)
    dispatcher.stopping = stopping.is_set
    bind_worker(dispatcher.worker_id)
    metrics = dispatcher.metrics
    clock = dispatcher.clock
    started = clock()
    settings = runtime.settings
    # One job each, never one job per reminder: the outbox is the schedule. A job still
    # running when it is due again is skipped, and missed runs collapse into one.
    scheduler = BlockingScheduler(
        timezone=UTC,
        job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
    )

    def dispatch_job() -> None:
        if stopping.is_set():
            return
        report = dispatcher.tick()
        heartbeat(runtime, dispatcher.worker_id, started, now=clock(), ticked=True)
        metrics.last_tick.set_to_current_time()
        metrics.heartbeat.set_to_current_time()
        if report.claimed:
            log.info("tick: %s", {k: v for k, v in vars(report).items() if v})

    def plan_job() -> None:
        if not stopping.is_set():
            written = plan_pass(runtime, clock(), metrics=metrics)
            log.info("planner: %d outbox rows planned", written)

    def reap_job() -> None:
        if not stopping.is_set():
            metrics.reaped.inc(reap(runtime, dispatcher))

    def replies_job() -> None:
        if not stopping.is_set():
            replies_pass(runtime, clock())

    first = datetime.now(UTC)  # the scheduler's own clock, not the service's
    scheduler.add_job(
        plan_job, "interval", seconds=settings.plan_interval, id="plan", next_run_time=first
    )
    scheduler.add_job(
        dispatch_job,
        "interval",
        seconds=settings.dispatch_interval,
        id="dispatch",
        next_run_time=first,
    )
    scheduler.add_job(reap_job, "interval", seconds=settings.reap_interval, id="reap")
    scheduler.add_job(replies_job, "interval", seconds=REPLIES_INTERVAL_SECONDS, id="replies")

    def shutdown(signum: int, _frame: FrameType | None) -> None:
        if stopping.is_set():
            # A second Ctrl-C: stop now. A row still being sent keeps its lease, and the
            # reaper of the next worker settles it (asks the provider) once the lease ends.
            log.warning("signal %s again: exiting now; rows in flight are reaped later", signum)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        log.info("signal %s: finishing in-flight sends, then exiting", signum)
        stopping.set()
        # shutdown(wait=True) waits for the running tick; a signal handler must not block.
        closer = threading.Thread(target=scheduler.shutdown, kwargs={"wait": True}, daemon=True)
        closers.append(closer)
        closer.start()

    closers: list[threading.Thread] = []

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    heartbeat(runtime, dispatcher.worker_id, started, now=clock(), ticked=False)
    log.info("worker %s started", dispatcher.worker_id)
    scheduler.start()
    for closer in closers:
        closer.join(timeout=SHUTDOWN_GRACE_SECONDS)
    dispatcher.close()
    if metrics_server is not None:
        metrics_server.close()
    forget_worker(runtime, dispatcher.worker_id)
    log.info("worker %s stopped", dispatcher.worker_id)
