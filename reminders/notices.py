"""Telling a clinic's staff that patients wrote back: one email per quiet interval.

The email carries the clinic's name, the number of unread replies, the counts of the clinic's
worklist and links to both; never a patient's name, number or words, so it is safe in any
mailbox. Each notice is claimed with one conditional UPDATE on the clinic before it is sent,
so that several workers send it once; a notice the mail server refused is given back and
tried on the next pass.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from email.utils import parseaddr
from pathlib import Path

from sqlalchemy import Engine

from reminders.careplan import CarePlan
from reminders.channels.base import DeliveryError, OutgoingMessage, Transport
from reminders.config import Settings
from reminders.db import read_scope, session_scope
from reminders.privacy import mask_email
from reminders.render import one_line, template_environment
from reminders.services.replies import Notice, claim_notice, notices_due, release_notice
from reminders.services.worklist import counts, label, worklist

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates" / "staff"
INBOX_PATH = "/clinic/replies"
WORKLIST_PATH = "/clinic"
KEY = "replies-notice"

_env = template_environment(TEMPLATES)


def compose_notice(
    notice: Notice, *, settings: Settings, now: datetime, work: dict[str, int] | None = None
) -> OutgoingMessage:
    """The email for one notice: subject, text and HTML, from templates/staff/; `work` is the
    clinic's worklist counts by kind."""
    base = (settings.public_base_url or "").rstrip("/")
    values = {
        "clinic": notice.clinic_name,
        "unread": notice.unread,
        "url": f"{base}{INBOX_PATH}" if base else None,
        "worklist_url": f"{base}{WORKLIST_PATH}" if base else None,
        "minutes": round(settings.reply_notify_interval / 60),
        "work": [label(kind, n) for kind, n in (work or {}).items() if n],
    }
    subject = one_line(_env.get_template("replies.subject.txt").render(values))
    domain = parseaddr(settings.email_from or "")[1].partition("@")[2] or "reminders.invalid"
    return OutgoingMessage(
        outbox_id=0,
        course_id=0,
        key=KEY,
        channel="email",
        to=notice.to,
        subject=subject,
        body=_env.get_template("replies.txt").render(values).strip() + "\n",
        html=_env.get_template("replies.html").render(values, subject=subject),
        message_id_header=f"<replies.{notice.clinic_id}.{int(now.timestamp())}@{domain}>",
    )


def send_reply_notices(
    engine: Engine,
    *,
    transport: Transport,
    settings: Settings,
    now: datetime,
    careplan: CarePlan | None = None,
) -> int:
    """Email every clinic that has new unread replies and was not told within the interval,
    with its worklist's counts (given the care plan); how many emails went out."""
    interval = timedelta(seconds=settings.reply_notify_interval)
    with session_scope(engine) as session:
        due = notices_due(session, now=now, interval=interval)
    sent = 0
    for notice in due:
        with session_scope(engine) as session:
            if not claim_notice(session, notice=notice, now=now):
                continue  # another worker took it
        try:
            work = _worklist_counts(engine, notice, settings, careplan, now)
            transport.send(compose_notice(notice, settings=settings, now=now, work=work))
        except DeliveryError as error:
            log.warning(
                "reply notice to %s (clinic %s) not sent: %s; trying again next pass",
                mask_email(notice.to),
                notice.clinic_id,
                error.reason,
            )
            with session_scope(engine) as session:
                release_notice(session, notice=notice, claimed_at=now)
            continue
        sent += 1
        log.info("reply notice sent to %s (clinic %s)", mask_email(notice.to), notice.clinic_id)
    return sent


def _worklist_counts(
    engine: Engine, notice: Notice, settings: Settings, careplan: CarePlan | None, now: datetime
) -> dict[str, int] | None:
    if careplan is None:
        return None
    with read_scope(engine) as session:
        items = worklist(
            session,
            clinic_id=notice.clinic_id,
            now=now,
            careplan=careplan,
            reply_hours=settings.worklist_reply_hours,
        )
    return counts(items)
