"""Liveness for the platform (/healthz) and counters for Prometheus (/metrics)."""

from __future__ import annotations

import hmac
import logging
import math
from collections import Counter
from datetime import datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel
from sqlalchemy import func, select, text
from sqlmodel import Session, col

from reminders import counters
from reminders.db import read_scope
from reminders.deps import NowDep, RuntimeDep
from reminders.models import Message, MessageStatus, WorkerHeartbeat

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
ALIVE_WITHIN = timedelta(minutes=1)


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    database: Literal["reachable", "unreachable"]


@router.get(
    "/healthz",
    responses={503: {"model": Health, "description": "The database cannot be reached"}},
)
def healthz(rt: RuntimeDep) -> Any:
    """200 when the database answers, 503 when it does not."""
    try:
        with rt.engine.connect() as connection:
            connection.execute(text("select 1"))
    # Any failure to reach the database, whatever the driver raises, means: not healthy.
    except Exception as exc:
        log.warning("health check: database unreachable (%s)", type(exc).__name__)
        body = Health(status="unavailable", database="unreachable")
        return JSONResponse(body.model_dump(), status_code=503)
    return Health(status="ok", database="reachable")


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf"
    return f"{value:g}" if isinstance(value, float) else str(value)


def exposition(session: Session, *, now: datetime) -> str:
    """The metrics in Prometheus' text format (small enough to write by hand)."""
    by_label: Counter[tuple[str, str, str]] = Counter()
    columns = (col(Message.status), col(Message.channel), col(Message.topics))
    rows = session.execute(select(*columns, func.count()).group_by(*columns))
    for status, channel, topics, count in rows:
        primary = (topics or "").split(",")[0] or "none"
        by_label[(str(status), str(channel), primary)] += count
    due = (col(Message.status) == MessageStatus.pending.value, col(Message.send_after) <= now)
    backlog, oldest = session.execute(
        select(func.count(), func.min(Message.send_after)).where(*due)
    ).one()
    last_tick = session.execute(select(func.max(WorkerHeartbeat.last_tick))).scalar_one()
    alive = session.execute(
        select(func.count())
        .select_from(WorkerHeartbeat)
        .where(col(WorkerHeartbeat.last_seen) >= now - ALIVE_WITHIN)
    ).scalar_one()

    def age(instant: datetime | None) -> float:
        return (now - instant).total_seconds() if instant is not None else math.inf

    lines = [
        "# HELP reminders_messages Outbox rows by status, channel and primary topic.",
        "# TYPE reminders_messages gauge",
    ]
    for (status, channel, topic), count in sorted(by_label.items()):
        labels = f'status="{_label(status)}",channel="{_label(channel)}",topic="{_label(topic)}"'
        lines.append(f"reminders_messages{{{labels}}} {count}")
    lines += [
        "# HELP reminders_backlog Pending messages due now.",
        "# TYPE reminders_backlog gauge",
        f"reminders_backlog {backlog}",
        "# HELP reminders_backlog_oldest_age_seconds How long the oldest due message has waited.",
        "# TYPE reminders_backlog_oldest_age_seconds gauge",
        f"reminders_backlog_oldest_age_seconds {_number(age(oldest) if backlog else 0.0)}",
        "# HELP reminders_last_tick_age_seconds Seconds since a worker last ran a dispatch tick.",
        "# TYPE reminders_last_tick_age_seconds gauge",
        f"reminders_last_tick_age_seconds {_number(age(last_tick))}",
        "# HELP reminders_workers_alive Workers seen in the last minute.",
        "# TYPE reminders_workers_alive gauge",
        f"reminders_workers_alive {alive}",
        # Of this web process since it started (Prometheus handles the restarts of counters).
        "# HELP reminders_sign_in_failures_total Staff sign-ins refused for a wrong password "
        "or code.",
        "# TYPE reminders_sign_in_failures_total counter",
        f"reminders_sign_in_failures_total {counters.value(counters.SIGN_IN_FAILURES)}",
        "# HELP reminders_sign_in_lockouts_total Staff sign-ins refused by a lockout.",
        "# TYPE reminders_sign_in_lockouts_total counter",
        f"reminders_sign_in_lockouts_total {counters.value(counters.SIGN_IN_LOCKOUTS)}",
    ]
    return "\n".join(lines) + "\n"


def _check_metrics_token(request: Request, rt: RuntimeDep) -> None:
    """404 when METRICS_TOKEN is unset (no metrics here); 401 without that bearer token."""
    expected = rt.settings.metrics_token
    if expected is None or not expected.get_secret_value():
        raise HTTPException(status_code=404, detail="Not Found")
    scheme, _, sent = request.headers.get("authorization", "").partition(" ")
    if not (
        scheme.lower() == "bearer"
        and hmac.compare_digest(sent.strip().encode(), expected.get_secret_value().encode())
    ):
        raise HTTPException(
            status_code=401,
            detail="Authorization: send `Authorization: Bearer <METRICS_TOKEN>`",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        401: {"description": "Without `Authorization: Bearer <METRICS_TOKEN>`"},
        404: {"description": "METRICS_TOKEN is not set: no metrics are served"},
    },
)
def metrics(request: Request, rt: RuntimeDep, now: NowDep) -> PlainTextResponse:
    """Prometheus metrics (with `Authorization: Bearer <METRICS_TOKEN>`): messages by status,
    channel and topic, backlog, last tick age, sign-in failures and lockouts."""
    _check_metrics_token(request, rt)
    with read_scope(rt.engine) as session:
        body = exposition(session, now=now)
    return PlainTextResponse(body, media_type=PROMETHEUS_TEXT)
