"""Clinics and their API keys (stored only as hashes)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from datetime import datetime, time
from typing import Any

import phonenumbers
from sqlmodel import Session, select

from reminders.models import (
    Clinic,
)
from reminders.services.common import NotFound
from reminders.timing import is_quiet
from reminders.validation import (
    FieldError,
    InvalidInput,
    parse_email,
    parse_help_phone,
    parse_timezone,
)

CLINIC_FIELDS = ("name", "timezone", "help_contact", "notify_email")


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key() -> tuple[str, str]:
    """A fresh API key and the hash that is stored in its place."""
    key = "rk_" + secrets.token_urlsafe(32)
    return key, hash_api_key(key)


def _parse_time(field: str, value: str | time) -> time:
    if isinstance(value, time):
        return value
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise InvalidInput.one(field, f"{value!r} is not a time (use HH:MM)") from None


def _check(field: str, parse: Any, value: Any, errors: list[FieldError], *args: Any) -> Any:
    """`parse(value, *args)`, or None with the reason added to `errors`."""
    try:
        return parse(value, *args)
    except ValueError as exc:
        errors.append(FieldError(field, str(exc)))
        return None


def _name(value: str) -> str:
    name = value.strip()
    if not name or len(name) > 120:
        raise ValueError("required, at most 120 characters")
    return name


def _notify_email(value: str | None) -> str | None:
    text = (value or "").strip()
    return parse_email(text) if text else None


def create_clinic(
    session: Session,
    *,
    name: str,
    help_contact: str,
    timezone: str = "America/New_York",
    region: str = "US",
    notify_email: str | None = None,
    send_time: str | time = "10:00",
    quiet_start: str | time = "21:00",
    quiet_end: str | time = "08:00",
    ipledge: bool = True,
    now: datetime,
) -> tuple[Clinic, str]:
    """Create a clinic; returns it and its API key (shown once, stored only as a hash)."""
    errors: list[FieldError] = []
    name = _check("name", _name, name, errors)
    _check("tz", parse_timezone, timezone, errors)
    region = region.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        errors.append(FieldError("region", f"{region!r} is not a known region code"))
    else:
        help_contact = _check("help_contact", parse_help_phone, help_contact, errors, region)
    notify_email = _check("notify_email", _notify_email, notify_email, errors)
    if errors:
        raise InvalidInput(errors)
    send, q_start, q_end = (
        _parse_time("send_time", send_time),
        _parse_time("quiet_start", quiet_start),
        _parse_time("quiet_end", quiet_end),
    )
    # Quiet hours may only be narrowed from 21:00-08:00, never widened into the night.
    if not (time(8, 0) <= q_end < q_start <= time(21, 0)):
        raise InvalidInput.one("quiet_start", "quiet hours must cover at least 21:00-08:00")
    if is_quiet(send, quiet_start=q_start, quiet_end=q_end):
        raise InvalidInput.one("send_time", f"{send} falls inside quiet hours")
    key, key_hash = new_api_key()
    clinic = Clinic(
        name=name,
        timezone=timezone,
        region=region,
        help_contact=help_contact,
        notify_email=notify_email,
        send_time=send,
        quiet_start=q_start,
        quiet_end=q_end,
        ipledge_enabled=ipledge,
        api_key_hash=key_hash,
        created_at=now,
    )
    session.add(clinic)
    session.flush()
    return clinic, key


def update_clinic(session: Session, *, clinic: Clinic, changes: Mapping[str, Any]) -> Clinic:
    """Change a clinic's name, zone, help phone or notification email (None or "" clears it)."""
    errors = [
        FieldError(name, "unknown field") for name in sorted(set(changes) - set(CLINIC_FIELDS))
    ]
    parsers: dict[str, tuple[Any, tuple[Any, ...]]] = {
        "name": (_name, ()),
        "timezone": (parse_timezone, ()),
        "help_contact": (parse_help_phone, (clinic.region,)),
        "notify_email": (_notify_email, ()),
    }
    values = {}
    for field, value in changes.items():
        if field in parsers:
            parse, args = parsers[field]
            values[field] = _check(field, parse, "" if value is None else value, errors, *args)
    if errors:
        raise InvalidInput(errors)
    for field, value in values.items():
        setattr(clinic, field, value)
    session.add(clinic)
    session.flush()
    return clinic


def rotate_api_key(session: Session, *, clinic_id: int) -> str:
    clinic = get_clinic(session, clinic_id)
    key, clinic.api_key_hash = new_api_key()
    session.add(clinic)
    return key


def get_clinic(session: Session, clinic_id: int) -> Clinic:
    clinic = session.get(Clinic, clinic_id)
    if clinic is None:
        raise NotFound(f"clinic {clinic_id} not found")
    return clinic


def clinic_by_api_key(session: Session, key: str) -> Clinic | None:
    return session.exec(select(Clinic).where(Clinic.api_key_hash == hash_api_key(key))).first()
