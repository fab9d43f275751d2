"""`reminders demo`: a newcomer's tour on a throw-away database and a simulated clock."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Collection
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from sqlalchemy import func, select
from sqlmodel import col

from reminders.channels.base import OutgoingMessage, Receipt, Transport
from reminders.config import Settings
from reminders.db import session_scope
from reminders.dispatch import Dispatcher
from reminders.migrations import upgrade
from reminders.models import Course, Message, MessageStatus
from reminders.privacy import mask_contact
from reminders.runtime import build
from reminders.services import create_clinic, end_course, enroll, get_course, record_event
from reminders.timing import to_local, zone
from reminders.worker import plan_pass


class ShowTransport:
    """Prints what would be delivered, stamped with the simulated time."""

    def __init__(self, name: str, clock: list[datetime], zones: dict[int, str]) -> None:
        self.name = name
        self.clock = clock
        self.zones = zones

    def send(self, message: OutgoingMessage) -> Receipt:
        local = to_local(self.clock[0], zone(self.zones[message.course_id]))
        typer.secho(
            f"{local:%a %Y-%m-%d %H:%M %Z}  {self.name:5} to {mask_contact(message.to)}  "
            f"[{message.key}]",
            bold=True,
        )
        if message.subject:
            typer.echo(f"    Subject: {message.subject}")
            typer.echo("    " + message.body.strip().splitlines()[2][:150] + " ...")
        else:
            typer.echo(f"    {message.body}")
        return Receipt(provider_id=None)

    def find_sent(self, *, to: str, body: str | Collection[str], since: datetime) -> str | None:
        return None

    def close(self) -> None:
        return None


def _saved_id(course: Course) -> int:
    assert course.id is not None  # enroll() flushed the course, so the database gave it an id
    return course.id


def run_demo(*, days: int = 240) -> None:
    """Enroll three patients and play their courses on a simulated clock, on a database that
    is removed at the end (and on Ctrl-C)."""
    folder = Path(tempfile.mkdtemp(prefix="reminders-demo-"))
    try:
        _play(folder, days=days)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    typer.echo("The demo database is removed; your own database was not touched.")


def _play(folder: Path, *, days: int) -> None:
    url = f"sqlite:///{folder / 'demo.db'}"
    upgrade(url)
    rt = build(Settings(database_url=url))
    start = date.today() + timedelta(days=3)
    clock = [datetime.now(UTC)]
    typer.echo(f"Demo database: {folder / 'demo.db'}; courses start {start}.\n")
    with session_scope(rt.engine) as session:
        clinic, _ = create_clinic(
            session,
            name="Riverside Dermatology",
            timezone="America/New_York",
            help_contact="(212) 555-0100",
            now=clock[0],
        )
        ctx = rt.context(clock[0])
        people: list[dict[str, Any]] = [
            {
                "first_name": "Ana",
                "phone": "+12125550101",
                "channel": "sms",
                "timezone": "America/New_York",
                "start_date": start,
            },
            {
                "first_name": "Ben",
                "email": "ben@example.com",
                "channel": "email",
                "timezone": "America/Los_Angeles",
                "start_date": start,
            },
            {
                "first_name": "Carla",
                "phone": "+13055550102",
                "channel": "sms",
                "locale": "es",
                "timezone": "America/Chicago",
                "start_date": start,
                "ipledge": True,
            },
        ]
        courses = [
            enroll(session, clinic=clinic, raw=p, source="staff", ctx=ctx)[1] for p in people
        ]
        ids = [_saved_id(course) for course in courses]
        zones = {course_id: p["timezone"] for course_id, p in zip(ids, people, strict=True)}
    for person in people:
        typer.echo(f"Enrolled {person['first_name']} ({person['channel']}, {person['timezone']})")
    typer.echo("Carla is on the iPLEDGE track; her clinic records a test on day 28.")
    typer.echo("Ana's clinic ends her course on day 140.\n")
    transports: dict[str, Transport] = {
        name: ShowTransport(name, clock, zones) for name in ("sms", "email")
    }
    dispatcher = Dispatcher(
        engine=rt.engine,
        settings=rt.settings,
        careplan=rt.careplan,
        renderer=rt.renderer,
        transports=transports,
        clock=lambda: clock[0],
    )
    end = datetime.combine(start, datetime.min.time(), UTC) + timedelta(days=days)
    events = {
        start + timedelta(days=28): lambda s, c: record_event(
            s,
            course=get_course(s, course_id=ids[2]),
            type="pregnancy_test",
            on=start + timedelta(days=28),
            ctx=c,
        ),
        start + timedelta(days=140): lambda s, c: end_course(
            s,
            course=get_course(s, course_id=ids[0]),
            last_dose_date=start + timedelta(days=140),
            ctx=c,
        ),
    }
    sent = 0
    while clock[0] < end:
        plan_pass(rt, clock[0])
        with session_scope(rt.engine) as session:
            for day, action in list(events.items()):
                if to_local(clock[0], zone("America/New_York")).date() >= day:
                    action(session, rt.context(clock[0]))
                    del events[day]
            upcoming = session.execute(
                select(func.min(Message.send_after)).where(
                    col(Message.status) == MessageStatus.pending.value
                )
            ).scalar_one()
        next_day = clock[0] + timedelta(days=1)
        if upcoming is None or upcoming > next_day:
            clock[0] = next_day
            continue
        clock[0] = max(clock[0], upcoming)
        sent += dispatcher.tick().sent
    dispatcher.close()
    rt.engine.dispose()
    typer.echo(f"\n{sent} messages over {days} days. Try `reminders preview --start {start}`.")
