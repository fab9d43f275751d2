"""Every Prometheus metric of the service, defined in one place.

Each process builds its own `CollectorRegistry` (never the library's global one): the worker
a `WorkerMetrics` per dispatcher, the web process a `WebMetrics` per app, so two of them in
one test run never collide. Labels carry bounded values only: a channel, an outcome, a
provider's error code, a route template, a status. Never a patient, a contact, a clinic's
name or a message's words (minimum necessary: metrics carry counts).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from reminders.channels.base import DeliveryError
from reminders.clock import as_utc, utcnow
from reminders.db import read_scope
from reminders.jobs import Job
from reminders.models import (
    Channel,
    InboundMessage,
    Message,
    MessageStatus,
    Patient,
    ReplyState,
    WorkerHeartbeat,
)
from reminders.services.replies import overdue_replies

log = logging.getLogger(__name__)

CHANNELS = tuple(channel.value for channel in Channel)
# How a send can end, as `reminders_sends_total{outcome}` names it. `held` is for rows held
# back because their contact is unreachable.
OUTCOMES = ("sent", "retried", "failed", "expired", "suppressed", "held", "deferred", "cancelled")
# What a settled row's status is counted as.
_SETTLED_OUTCOME = {
    MessageStatus.failed: "failed",
    MessageStatus.expired: "expired",
    MessageStatus.suppressed: "suppressed",
    MessageStatus.cancelled: "cancelled",
    MessageStatus.held: "held",
    MessageStatus.pending: "deferred",
}

# Provider requests: Twilio answers in a few hundred ms; timeouts are 15 s (SMS), 30 s (SMTP).
PROVIDER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0)
# Lag from a message's due time to the provider's acceptance: seconds when all is well,
# hours after an outage or a quiet-hours wait.
LAG_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 14400.0, 86400.0)
PLANNER_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# The backlog's definitions, as `reminders status` uses them.
OVERDUE_AFTER = timedelta(minutes=5)
ALIVE_WITHIN = timedelta(minutes=1)


class _Declare:
    """Declares metrics in one registry: a name, its help text, its labels."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def counter(self, name: str, documentation: str, *, labels: Sequence[str] = ()) -> Counter:
        return Counter(name, documentation, labels, registry=self.registry)

    def gauge(self, name: str, documentation: str) -> Gauge:
        return Gauge(name, documentation, registry=self.registry)

    def histogram(
        self,
        name: str,
        documentation: str,
        *,
        buckets: Sequence[float],
        labels: Sequence[str] = (),
    ) -> Histogram:
        return Histogram(name, documentation, labels, buckets=buckets, registry=self.registry)


class WorkerMetrics:
    """What one worker did: sends, provider errors and latency, lag, batches, planner passes."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        new = _Declare(self.registry)
        self.sends = new.counter(
            "reminders_sends",
            "Messages this worker finished handling, by channel and outcome.",
            labels=("channel", "outcome"),
        )
        self.provider_errors = new.counter(
            "reminders_provider_errors",
            "Sends the provider refused or that failed on the way, by channel and error code.",
            labels=("channel", "code"),
        )
        self.provider_seconds = new.histogram(
            "reminders_provider_request_seconds",
            "Time of one send request to the provider, by channel.",
            labels=("channel",),
            buckets=PROVIDER_BUCKETS,
        )
        self.lag = new.histogram(
            "reminders_send_lag_seconds",
            "From a message's due time to the provider's acceptance, by channel.",
            labels=("channel",),
            buckets=LAG_BUCKETS,
        )
        self.claimed = new.gauge(
            "reminders_claimed_batch_rows", "Rows taken by this worker's last claim."
        )
        self.in_flight = new.gauge(
            "reminders_sends_in_flight", "Send requests waiting on the provider now."
        )
        self.planner_seconds = new.histogram(
            "reminders_planner_pass_seconds",
            "Duration of one planner pass.",
            buckets=PLANNER_BUCKETS,
        )
        self.planner_rows = new.counter(
            "reminders_planner_rows", "Outbox rows written by planner passes."
        )
        self.planner_last_rows = new.gauge(
            "reminders_planner_last_pass_rows", "Outbox rows written by the last planner pass."
        )
        self.reaped = new.counter(
            "reminders_reaped",
            "Rows whose lease ran out (their worker died mid-send) settled by this worker.",
        )
        self.heartbeat = new.gauge(
            "reminders_worker_heartbeat_timestamp_seconds",
            "When this worker last recorded its heartbeat (Unix time).",
        )
        self.last_tick = new.gauge(
            "reminders_worker_last_tick_timestamp_seconds",
            "When this worker last finished a dispatch tick (Unix time).",
        )
        # Every series exists from the start, at 0, so rate() and alerts see the first one.
        for channel in CHANNELS:
            for outcome in OUTCOMES:
                self.sends.labels(channel, outcome)
            self.provider_seconds.labels(channel)
            self.lag.labels(channel)

    @contextmanager
    def provider_request(self, channel: str) -> Iterator[None]:
        """Time one request to the provider and count it in flight while it waits."""
        with self.in_flight.track_inprogress(), self.provider_seconds.labels(channel).time():
            yield

    def accepted(self, row: Message, *, now: datetime) -> None:
        """The provider accepted a row's message at `now`."""
        self.sends.labels(row.channel, "sent").inc()
        self.lag.labels(row.channel).observe(max(0.0, (now - as_utc(row.due_at)).total_seconds()))

    def failed_send(self, channel: str, error: DeliveryError, outcome: str) -> None:
        """A send that did not go through, and what was made of it (record_failure's word)."""
        self.provider_errors.labels(channel, error.code or "other").inc()
        if outcome in OUTCOMES:  # "lost": another worker owns the row now, and counts it
            self.sends.labels(channel, outcome).inc()

    def outcome(self, channel: str, outcome: str) -> None:
        self.sends.labels(channel, outcome).inc()

    def settled(
        self,
        jobs: Sequence[Job],
        settled: Iterable[tuple[int, MessageStatus, str, datetime | None]],
    ) -> None:
        """Rows a tick settled or deferred without a send (the gate's decisions)."""
        channels = {job.row.id: job.row.channel for job in jobs}
        for row_id, status, _reason, _at in settled:
            self.sends.labels(channels[row_id], _SETTLED_OUTCOME[status]).inc()

    def planner_pass(self, *, rows: int, seconds: float) -> None:
        self.planner_seconds.observe(seconds)
        self.planner_rows.inc(rows)
        self.planner_last_rows.set(rows)


class WebMetrics:
    """The web process: its requests and sign-ins, and the database-wide backlog."""

    def __init__(
        self,
        engine: Callable[[], Engine | None],
        *,
        clock: Callable[[], datetime] = utcnow,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.registry = registry or CollectorRegistry()
        new = _Declare(self.registry)
        self.requests = new.counter(
            "reminders_http_requests",
            "HTTP requests answered, by method, route template and status code.",
            labels=("method", "route", "status"),
        )
        self.request_seconds = new.histogram(
            "reminders_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            labels=("method", "route"),
            buckets=REQUEST_BUCKETS,
        )
        self.sign_in_failures = new.counter(
            "reminders_sign_in_failures", "Staff sign-ins refused for a wrong password or code."
        )
        self.sign_in_lockouts = new.counter(
            "reminders_sign_in_lockouts", "Staff sign-ins refused by a lockout."
        )
        self.registry.register(BacklogCollector(engine, clock=clock))

    def request(self, *, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.request_seconds.labels(method, route).observe(seconds)


class BacklogCollector(Collector):
    """The outbox and the inbox as the database has them, read when Prometheus scrapes.

    One read-only transaction per scrape, whatever the request rate: nothing is kept between
    scrapes, so several web processes all report the same database-wide numbers.
    """

    def __init__(
        self, engine: Callable[[], Engine | None], *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.engine = engine
        self.clock = clock

    def describe(self) -> list[Metric]:
        # Without describe() the registry would collect (query the database) on register.
        return []

    def collect(self) -> Iterator[Metric]:
        engine = self.engine()
        up = GaugeMetricFamily(
            "reminders_backlog_up", "1 when the backlog could be read from the database."
        )
        if engine is None:
            return
        try:
            with read_scope(engine) as session:
                families = list(backlog_families(session, now=self.clock()))
        # Any failure to read, whatever the driver raises: the scrape still answers.
        except Exception as exc:
            log.warning("metrics: backlog not read (%s)", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families


def backlog_families(session: Session, *, now: datetime) -> Iterator[Metric]:
    """The backlog gauges: rows by state, due, overdue, unknown, failed today, replies, workers."""

    def gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, documentation, value=value)

    def count_messages(*conditions: object) -> int:
        query = select(func.count()).select_from(Message).where(*conditions)  # type: ignore[arg-type]
        return int(session.execute(query).scalar_one())

    def age(instant: datetime | None) -> float:
        return (now - as_utc(instant)).total_seconds() if instant is not None else math.inf

    by_state = GaugeMetricFamily(
        "reminders_messages",
        "Outbox rows by status, channel and primary topic.",
        labels=["status", "channel", "topic"],
    )
    columns = (col(Message.status), col(Message.channel), col(Message.topics))
    totals: dict[tuple[str, str, str], int] = {}
    for status, channel, topics, count in session.execute(
        select(*columns, func.count()).group_by(*columns)
    ):
        key = (str(status), str(channel), (topics or "").split(",")[0] or "none")
        totals[key] = totals.get(key, 0) + count
    for labels, count in sorted(totals.items()):
        by_state.add_metric(list(labels), count)
    yield by_state

    pending = col(Message.status) == MessageStatus.pending.value
    due = col(Message.send_after) <= now
    oldest_due = session.execute(
        select(func.min(Message.send_after)).where(pending, due)
    ).scalar_one()
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    yield gauge("reminders_messages_due", "Pending messages due now.", count_messages(pending, due))
    yield gauge(
        "reminders_messages_overdue",
        "Pending messages due more than 5 minutes ago.",
        count_messages(pending, col(Message.send_after) <= now - OVERDUE_AFTER),
    )
    yield gauge(
        "reminders_messages_due_oldest_age_seconds",
        "How long the oldest message due now has waited (0 when none is due).",
        age(oldest_due) if oldest_due is not None else 0.0,
    )
    yield gauge(
        "reminders_messages_unknown",
        "Messages whose worker died mid-send, waiting for the reaper.",
        count_messages(col(Message.status) == MessageStatus.unknown.value),
    )
    yield gauge(
        "reminders_messages_failed_today",
        "Messages that ended failed since midnight UTC.",
        count_messages(
            col(Message.status) == MessageStatus.failed.value,
            col(Message.updated_at) >= day_start,
        ),
    )

    unread = col(InboundMessage.state) == ReplyState.unread.value
    unread_count, oldest_unread = session.execute(
        select(func.count(), func.min(InboundMessage.received_at)).where(unread)
    ).one()
    yield gauge(
        "reminders_replies_unread", "Patients' replies no staff member handled.", unread_count
    )
    yield gauge(
        "reminders_replies_unread_oldest_age_seconds",
        "How long the oldest unread reply has waited (0 when none is unread).",
        age(oldest_unread) if oldest_unread is not None else 0.0,
    )
    yield gauge(
        "reminders_replies_overdue",
        "Replies unread for more than one business day of their clinic.",
        len(overdue_replies(session, now=now)),
    )

    unreachable = GaugeMetricFamily(
        "reminders_contacts_unreachable",
        "Patients' phones or email addresses marked unreachable, waiting for staff to fix them.",
        labels=["channel"],
    )
    for channel, since in (
        ("sms", Patient.sms_unreachable_at),
        ("email", Patient.email_unreachable_at),
    ):
        count = session.execute(
            select(func.count()).select_from(Patient).where(col(since).is_not(None))
        ).scalar_one()
        unreachable.add_metric([channel], count)
    yield unreachable

    last_seen, last_tick = session.execute(
        select(func.max(WorkerHeartbeat.last_seen), func.max(WorkerHeartbeat.last_tick))
    ).one()
    alive = session.execute(
        select(func.count())
        .select_from(WorkerHeartbeat)
        .where(col(WorkerHeartbeat.last_seen) >= now - ALIVE_WITHIN)
    ).scalar_one()
    yield gauge("reminders_workers_alive", "Workers seen in the last minute.", alive)
    yield gauge(
        "reminders_worker_heartbeat_age_seconds",
        "Seconds since any worker last recorded its heartbeat (+Inf before the first).",
        age(last_seen),
    )
    yield gauge(
        "reminders_last_tick_age_seconds",
        "Seconds since any worker last ran a dispatch tick (+Inf before the first).",
        age(last_tick),
    )
