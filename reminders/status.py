"""`reminders status`: the backlog and the live workers, usable as a health check."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, func, select
from sqlmodel import Session, col

from reminders.models import InboundMessage, Message, MessageStatus, ReplyState, WorkerHeartbeat
from reminders.services import courses_to_confirm, overdue_replies

OVERDUE_AFTER = timedelta(minutes=5)
SHOWN = 20  # courses to confirm listed one by one
ALIVE_WITHIN = timedelta(minutes=1)


@dataclass
class StatusReport:
    due_now: int
    overdue: int
    sending: int
    unknown: int
    failed_today: int
    workers: list[tuple[str, datetime]] = field(default_factory=list)
    # Courses near or past their planned end with no last dose: (course id, planned end).
    to_confirm: list[tuple[int, date]] = field(default_factory=list)
    unread_replies: int = 0
    # Unread for more than one business day. Shown, but it leaves the check healthy: it asks
    # the clinic's staff to read their inbox, not operations to restart anything.
    overdue_replies: int = 0

    @property
    def healthy(self) -> bool:
        return self.overdue == 0 and bool(self.workers)


def collect(session: Session, *, now: datetime) -> StatusReport:
    def count(*conditions: ColumnElement[bool]) -> int:
        return session.execute(
            select(func.count()).select_from(Message).where(*conditions)
        ).scalar_one()

    pending = col(Message.status) == MessageStatus.pending.value
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    workers = session.execute(
        select(col(WorkerHeartbeat.worker_id), col(WorkerHeartbeat.last_seen)).where(
            col(WorkerHeartbeat.last_seen) >= now - ALIVE_WITHIN
        )
    ).all()
    return StatusReport(
        due_now=count(pending, col(Message.send_after) <= now),
        overdue=count(pending, col(Message.send_after) <= now - OVERDUE_AFTER),
        sending=count(col(Message.status) == MessageStatus.sending.value),
        unknown=count(col(Message.status) == MessageStatus.unknown.value),
        failed_today=count(
            col(Message.status) == MessageStatus.failed.value,
            col(Message.updated_at) >= day_start,
        ),
        workers=[(worker_id, seen) for worker_id, seen in workers],
        to_confirm=[
            (course.id, course.start_date + timedelta(weeks=course.weeks))  # type: ignore[misc]
            for course, _patient in courses_to_confirm(session, now=now)
        ],
        unread_replies=session.execute(
            select(func.count())
            .select_from(InboundMessage)
            .where(col(InboundMessage.state) == ReplyState.unread.value)
        ).scalar_one(),
        overdue_replies=len(overdue_replies(session, now=now)),
    )


def render(report: StatusReport) -> str:
    lines = [
        f"due now:            {report.due_now}",
        f"overdue (> 5 min):  {report.overdue}",
        f"sending:            {report.sending}",
        f"unknown:            {report.unknown}",
        f"failed today (UTC): {report.failed_today}",
        f"live workers:       {len(report.workers)}",
        f"unread replies:     {report.unread_replies}",
        f"replies overdue:    {report.overdue_replies} (unread > 1 business day)",
    ]
    lines += [f"  {worker_id} (seen {seen:%H:%M:%S} UTC)" for worker_id, seen in report.workers]
    lines.append(f"to confirm the end: {len(report.to_confirm)} (last dose or extend)")
    lines += [
        f"  course {course_id}: planned end {end}, no last dose recorded"
        for course_id, end in report.to_confirm[:SHOWN]
    ]
    if len(report.to_confirm) > SHOWN:
        lines.append(f"  ... and {len(report.to_confirm) - SHOWN} more")
    lines.append("healthy" if report.healthy else "UNHEALTHY")
    return "\n".join(lines)
