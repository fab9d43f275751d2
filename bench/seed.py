"""Bulk seeding: each statement generates its rows inside the database.

PostgreSQL counts with generate_series, SQLite with a recursive CTE, so a million outbox rows
take one INSERT ... SELECT instead of a million round trips. Instants are written the way
SQLAlchemy writes them (timestamptz on PostgreSQL, 'YYYY-MM-DD HH:MM:SS.ffffff' text on
SQLite), so the service reads seeded rows exactly like rows it wrote itself.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import text

from bench.databases import Database
from reminders.db import session_scope
from reminders.models import Clinic

WELCOME_PARTS = json.dumps([["welcome", {}]])
HISTORY_PARTS = json.dumps([["dry_lips", {}]])


def bench_now() -> datetime:
    """Now, to the second: seeded text timestamps carry no fraction beyond it."""
    return datetime.now(UTC).replace(microsecond=0)


def daytime_zone(now: datetime) -> str:
    """A fixed-offset zone where `now` is around midday, so quiet hours never get in the way."""
    offset = max(-12, min(14, 12 - now.hour))
    # POSIX-style names invert the sign: Etc/GMT-3 is three hours ahead of UTC.
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


class Seeder:
    """Writes clinics, patients, courses and outbox rows in bulk into one database."""

    def __init__(self, db: Database, now: datetime) -> None:
        self.db = db
        self.now = now
        self.zone = daytime_zone(now)
        self._batch = 0

    # -- dialect helpers -------------------------------------------------------------------

    def _value(self, value: Any) -> Any:
        if self.db.is_postgres:
            return value
        if isinstance(value, datetime):
            return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, bool):
            return int(value)
        return value

    def _at(self, seconds_sql: str) -> str:
        """SQL for `now` plus an SQL expression of seconds (may be fractional or negative)."""
        if self.db.is_postgres:
            return f"(CAST(:now AS timestamptz) + ({seconds_sql}) * interval '1 second')"
        return (
            f"(strftime('%Y-%m-%d %H:%M:%f', :now_text, printf('%+.3f seconds', {seconds_sql}))"
            " || '000')"
        )

    def _series(self, name: str, count: int) -> tuple[str, str]:
        """(prefix, from-item) that yield `name`.k = 1..count."""
        if self.db.is_postgres:
            return "", f"generate_series(1, {int(count)}) AS {name}(k)"
        prefix = (
            f"WITH RECURSIVE {name}(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM {name} "
            f"WHERE k < {int(count)}) "
        )
        return prefix, name

    def _execute(self, sql: str, **params: Any) -> int:
        params = {key: self._value(value) for key, value in params.items()}
        params["now"] = self._value(self.now)
        params["now_text"] = self.now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        with self.db.engine.begin() as connection:
            return connection.execute(text(sql), params).rowcount or 0

    def _max_id(self, table: str) -> int:
        with self.db.engine.connect() as connection:
            return int(
                connection.execute(text(f"SELECT coalesce(max(id), 0) FROM {table}")).scalar_one()
            )

    # -- rows ------------------------------------------------------------------------------

    def clinic(self) -> int:
        with session_scope(self.db.engine) as session:
            clinic = Clinic(name="Riverside Dermatology", help_contact="(212) 555-0100")
            session.add(clinic)
            session.flush()
            return clinic.id  # type: ignore[return-value]

    def courses(
        self,
        *,
        clinic_id: int,
        count: int,
        status: str = "active",
        planned_until: datetime | None = None,
        start_spread_days: tuple[int, int] = (0, 0),
        plan_from: datetime | None = None,
        plan_from_spread: int = 0,
    ) -> tuple[int, int]:
        """`count` SMS patients with one course each; returns the (first, last) course ids.

        Start dates cycle through `start_spread_days` (days from today, both ends included).
        With `plan_from_spread`, each course was enrolled at its own instant within that many
        seconds before `plan_from`, as when patients enrol one by one.
        """
        self._batch += 1
        tag = f"{self._batch:03d}"
        before = self._max_id("patient")
        prefix, series = self._series("s", count)
        if self.db.is_postgres:
            public_id = "md5(:tag || '-' || s.k::text)"
            phone = "'+1' || lpad((:phone_base + s.k)::text, 10, '0')"
            false = "false"
        else:
            public_id = "lower(hex(randomblob(16)))"
            phone = "printf('+1%010d', :phone_base + s.k)"
            false = "0"
        self._execute(
            prefix + "INSERT INTO patient (clinic_id, public_id, first_name, phone, email, "
            "channel, timezone, locale, ipledge, consent_at, consent_source, sms_opted_out, "
            "email_opted_out, created_at) "
            f"SELECT :clinic, {public_id}, 'Pat', {phone}, NULL, 'sms', :zone, 'en', {false}, "
            f":now, 'import', {false}, {false}, :now FROM {series}",
            clinic=clinic_id,
            tag=tag,
            zone=self.zone,
            phone_base=2120000000 + before,
        )
        low, high = start_spread_days
        span = high - low + 1
        today = self.now.date()
        if self.db.is_postgres:
            start = f"(CAST(:today AS date) + ((p.id % {span}) + {low}))"
        else:
            start = f"date(:today, printf('%+d days', (p.id % {span}) + {low}))"
        enrolled = ":plan_from"
        if plan_from_spread:
            offset = f"-(p.id % {int(plan_from_spread)})"
            enrolled = (
                self._at(offset)
                .replace(":now_text", ":plan_from_text")
                .replace("CAST(:now", "CAST(:plan_from")
            )
        base = plan_from or self.now
        self._execute(
            "INSERT INTO course (patient_id, start_date, weeks, last_dose_date, status, "
            "plan_from, planned_until, created_at, updated_at) "
            f"SELECT p.id, {start}, 20, NULL, :status, {enrolled}, :planned_until, :now, :now "
            "FROM patient p WHERE p.id > :before ORDER BY p.id",
            today=today,
            status=status,
            plan_from=base,
            plan_from_text=base.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            planned_until=planned_until,
            before=before,
        )
        with self.db.engine.connect() as connection:
            first, last = connection.execute(
                text("SELECT min(c.id), max(c.id) FROM course c WHERE c.patient_id > :before"),
                {"before": before},
            ).one()
        return first, last

    def messages(
        self,
        *,
        courses: tuple[int, int],
        per_course: int = 1,
        key: str,
        status: str,
        due_seconds: str,
        parts: str = HISTORY_PARTS,
        priority: int = 50,
    ) -> int:
        """`per_course` SMS rows for each course id in `courses` (inclusive range).

        `due_seconds` is an SQL expression of seconds from now, in terms of `c.id` (course),
        `m.k` (1..per_course) and `:first` (the first course id). Rows whose status says they
        reached the patient get sent_at = due_at and a provider id.
        """
        prefix, series = self._series("m", per_course)
        due = self._at(due_seconds)
        expires = self._at(f"({due_seconds}) + 7 * 86400")
        reached = status in ("sent", "delivered")
        if self.db.is_postgres:
            key_sql = "(:key || m.k::text)" if per_course > 1 else ":key"
            provider = "'SM' || md5(c.id::text || '-' || m.k::text)" if reached else "NULL"
        else:
            key_sql = "(:key || m.k)" if per_course > 1 else ":key"
            provider = "'SM' || lower(hex(randomblob(16)))" if reached else "NULL"
        return self._execute(
            prefix + "INSERT INTO outbox (course_id, patient_id, key, channel, topics, items, "
            "parts, priority, due_at, send_after, expires_at, status, attempts, provider_id, "
            "sent_at, created_at, updated_at) "
            f"SELECT c.id, c.patient_id, {key_sql}, 'sms', 'milestone', {key_sql}, :parts, "
            f":priority, {due}, {due}, {expires}, :status, {1 if reached else 0}, {provider}, "
            f"{due if reached else 'NULL'}, :now, :now "
            f"FROM course c CROSS JOIN {series} WHERE c.id BETWEEN :first AND :last",
            key=key,
            parts=parts,
            priority=priority,
            status=status,
            first=courses[0],
            last=courses[1],
        )

    def due_welcomes(self, *, courses: tuple[int, int], due_seconds: str = "-60") -> int:
        """One pending welcome SMS per course, due `due_seconds` from now (SQL expression)."""
        return self.messages(
            courses=courses,
            key="welcome",
            status="pending",
            due_seconds=due_seconds,
            parts=WELCOME_PARTS,
            priority=100,
        )

    def count(self, table: str, where: str = "1 = 1") -> int:
        with self.db.engine.connect() as connection:
            return int(
                connection.execute(text(f"SELECT count(*) FROM {table} WHERE {where}")).scalar_one()
            )


def span(first: int, count: int) -> tuple[int, int]:
    return first, first + count - 1


def days(n: float) -> timedelta:
    return timedelta(days=n)
