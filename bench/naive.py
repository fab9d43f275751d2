"""4. Naive baseline: one APScheduler 3.x job per reminder in a SQLAlchemyJobStore.

Both designs get the same courses, seeded alike into two fresh databases of the same kind:
`due` courses enrolled a minute ago (their welcome is due now), the rest enrolled to start
planning tomorrow, so exactly `due` reminders are due when firing starts.

- schedule: ours is one planner pass (services.plan_all) writing the next 7 days into the
  outbox. The naive design loads the same courses (in one query, which favours it), computes
  each plan with the same pure planner, and adds one `date` job per reminder due within the
  same 7 days to a SQLAlchemyJobStore on the same database.
- fire: ours is Dispatcher.tick until nothing is due (claim, check, render, send, record),
  default batch size and concurrency. The naive design is a BackgroundScheduler with a
  thread pool of the same size, resumed with the due jobs in its store: each job loads its
  patient and clinic, renders, sends and records the send in a table of its own. Both send
  to an in-process transport that accepts at once (NullTransport).

Not like for like, in the naive design's favour: its jobs skip what our dispatcher checks
before each send (course still active, opt-outs, quiet hours, frequency caps, expiry), and
it has no lease, so a crash mid-send cannot be recovered. Against it: each job is one row of
pickled state, so every write and read pickles or unpickles a job.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, insert, select
from sqlmodel import Session

from bench import crash
from bench.databases import Database, fresh
from bench.harness import NullTransport, dispatcher, drain, null_transports, runtime, timed
from bench.planning import START_SPREAD_DAYS, plan_pass
from bench.seed import Seeder, bench_now
from bench.sizes import Sizes
from reminders.db import session_scope
from reminders.models import Clinic, Course, CourseStatus, Patient
from reminders.outbox import facts_for, rules_for
from reminders.planning import plan_course
from reminders.render import MessageContext, Part
from reminders.runtime import Runtime

HORIZON = timedelta(days=7)

_metadata = MetaData()
naive_sent = Table(
    "bench_naive_sent",
    _metadata,
    Column("id", Integer, primary_key=True),
    Column("patient_id", Integer, nullable=False),
    Column("key", String(80), nullable=False),
    Column("provider_id", String(64)),
    Column("sent_at", DateTime(timezone=True), nullable=False),
)


def run(kind: str, sizes: Sizes, workdir: Path) -> dict[str, Any]:
    ours = _ours(kind, sizes)
    naive = _naive(kind, sizes)
    # Where the naive design fails: two processes on one store, one of them killed.
    killed = crash.run(kind, sizes, workdir)
    if ours["reminders"] != naive["reminders"]:
        raise RuntimeError(f"not the same reminders: ours {ours}, naive {naive}")
    return {
        "courses": sizes.naive_courses,
        "reminders": ours["reminders"],
        "due": sizes.naive_due,
        "ours_schedule_seconds": ours["schedule_seconds"],
        "naive_schedule_seconds": naive["schedule_seconds"],
        "naive_job_store_seconds": naive["store_seconds"],
        "schedule_ratio": naive["schedule_seconds"] / ours["schedule_seconds"],
        "ours_fire_seconds": ours["fire_seconds"],
        "naive_fire_seconds": naive["fire_seconds"],
        "fire_ratio": naive["fire_seconds"] / ours["fire_seconds"],
        "crash": killed,
    }


def _seed(db: Database, sizes: Sizes, now: datetime) -> None:
    seeder = Seeder(db, now)
    clinic = seeder.clinic()
    seeder.courses(
        clinic_id=clinic,
        count=sizes.naive_due,
        start_spread_days=(0, 0),
        plan_from=now - timedelta(minutes=1),
    )
    seeder.courses(
        clinic_id=clinic,
        count=sizes.naive_courses - sizes.naive_due,
        start_spread_days=(1, START_SPREAD_DAYS[1]),
        plan_from=now + timedelta(days=1),
        plan_from_spread=3600,
    )


def _ours(kind: str, sizes: Sizes) -> dict[str, Any]:
    with fresh(kind) as db:
        now = bench_now()
        _seed(db, sizes, now)
        rt = runtime(db)
        schedule, _ = timed(lambda: plan_pass(rt, now))
        seeder = Seeder(db, now)
        reminders = seeder.count("outbox")
        dispatch = dispatcher(rt, null_transports())
        fire, report = timed(lambda: drain(dispatch))
        if report.sent != sizes.naive_due:
            raise RuntimeError(f"ours sent {report.sent} of {sizes.naive_due}: {report}")
        return {"reminders": reminders, "schedule_seconds": schedule, "fire_seconds": fire}


# The naive design's job function, found by APScheduler through its textual reference.
_fire_state: dict[str, Any] = {}


def fire(patient_id: int, key: str, parts: list[list[Any]], first: bool) -> None:
    """One reminder, as a naive job: load, render, send, record."""
    rt: Runtime = _fire_state["runtime"]
    transport: NullTransport = _fire_state["transport"]
    from reminders.channels.base import OutgoingMessage

    with session_scope(rt.engine) as session:
        patient = session.get(Patient, patient_id)
        assert patient is not None
        clinic = session.get(Clinic, patient.clinic_id)
        assert clinic is not None
        body = rt.renderer.sms(
            [Part(template, params) for template, params in parts],
            MessageContext(
                clinic=clinic.name,
                help_contact=clinic.help_contact,
                first_name=patient.first_name,
                locale=patient.locale,
                ipledge=patient.ipledge and clinic.ipledge_enabled,
                first=first,
            ),
        )
        receipt = transport.send(
            OutgoingMessage(
                outbox_id=0, course_id=0, key=key, channel="sms", to=patient.phone or "", body=body
            )
        )
        session.execute(
            insert(naive_sent).values(
                patient_id=patient_id,
                key=key,
                provider_id=receipt.provider_id,
                sent_at=datetime.now(UTC),
            )
        )
    with _fire_state["lock"]:
        _fire_state["done"] += 1
        if _fire_state["done"] >= _fire_state["target"]:
            _fire_state["finished"].set()


def _naive(kind: str, sizes: Sizes) -> dict[str, Any]:
    with fresh(kind) as db:
        now = bench_now()
        _seed(db, sizes, now)
        _metadata.create_all(db.engine)
        rt = runtime(db)
        store = SQLAlchemyJobStore(engine=db.engine)
        scheduler = BackgroundScheduler(
            jobstores={"default": store},
            executors={"default": ThreadPoolExecutor(rt.settings.send_concurrency)},
            job_defaults={"misfire_grace_time": None, "coalesce": True},
            timezone=UTC,
        )
        scheduler.start(paused=True)
        try:
            store_seconds = 0.0

            def schedule() -> int:
                nonlocal store_seconds
                jobs = 0
                for patient_id, key, parts, due_at in _naive_plans(rt, db, now):
                    started = time.perf_counter()
                    scheduler.add_job(
                        "bench.naive:fire",
                        "date",
                        run_date=due_at,
                        args=[patient_id, key, parts, key == "welcome"],
                        id=f"{patient_id}:{key}:sms",
                    )
                    store_seconds += time.perf_counter() - started
                    jobs += 1
                return jobs

            schedule_seconds, reminders = timed(schedule)
            _fire_state.update(
                runtime=rt,
                transport=NullTransport("sms"),
                lock=threading.Lock(),
                done=0,
                target=sizes.naive_due,
                finished=threading.Event(),
            )
            remaining = reminders - sizes.naive_due

            def fire_all() -> None:
                scheduler.resume()
                if not _fire_state["finished"].wait(timeout=600):
                    raise RuntimeError(f"naive fired {_fire_state['done']} of {sizes.naive_due}")
                # Done when the store has also dropped the fired jobs (ours has moved its rows).
                while _stored_jobs(db) > remaining:
                    time.sleep(0.01)

            fire_seconds, _ = timed(fire_all)
            with db.engine.connect() as connection:
                recorded = len(connection.execute(select(naive_sent.c.id)).all())
            if recorded != sizes.naive_due:
                raise RuntimeError(f"naive recorded {recorded} of {sizes.naive_due}")
        finally:
            scheduler.shutdown(wait=True)
        return {
            "reminders": reminders,
            "schedule_seconds": schedule_seconds,
            "store_seconds": store_seconds,
            "fire_seconds": fire_seconds,
        }


def _stored_jobs(db: Database) -> int:
    with db.engine.connect() as connection:
        return int(connection.exec_driver_sql("SELECT count(*) FROM apscheduler_jobs").scalar_one())


def _naive_plans(rt: Runtime, db: Database, now: datetime) -> Any:
    """(patient id, key, parts, due) of every reminder due within the horizon, per course."""
    with Session(db.engine) as session:
        rows = session.execute(
            select(Course, Patient, Clinic)
            .join(Patient, Patient.id == Course.patient_id)  # type: ignore[arg-type]
            .join(Clinic, Clinic.id == Patient.clinic_id)  # type: ignore[arg-type]
            .where(Course.status == CourseStatus.active.value)  # type: ignore[arg-type]
            .order_by(Course.id)  # type: ignore[arg-type]
        ).all()
    for course, patient, clinic in rows:
        plan = plan_course(
            plan=rt.careplan,
            course=facts_for(course, [], patient.timezone),
            rules=rules_for(clinic, patient),
            now=now,
        )
        for message in plan.messages:
            if message.due_at <= now + HORIZON:
                parts = [[item.template, dict(item.params)] for item in message.items]
                yield patient.id, message.key, parts, message.due_at
