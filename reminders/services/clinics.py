"""Clinics and their API keys (stored only as hashes)."""

from __future__ import annotations

from datetime import datetime, time

from sqlmodel import Session

from reminders.models import (
    Clinic,
)
from reminders.services.common import NotFound
from reminders.services.keys import DEFAULT_KEY_NAME, create_api_key
from reminders.timing import is_quiet
from reminders.validation import (
    FieldError,
    InvalidInput,
    parse_timezone,
    text_errors,
)


def _parse_time(field: str, value: str | time) -> time:
    if isinstance(value, time):
        return value
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise InvalidInput.one(field, f"{value!r} is not a time (use HH:MM)") from None


def create_clinic(
    session: Session,
    *,
    name: str,
    timezone: str = "America/New_York",
    region: str = "US",
    help_contact: str = "",
    send_time: str | time = "10:00",
    quiet_start: str | time = "21:00",
    quiet_end: str | time = "08:00",
    ipledge: bool = True,
    now: datetime,
) -> tuple[Clinic, str]:
    """Create a clinic; returns it and its API key (shown once, stored only as a hash)."""
    import phonenumbers

    errors = text_errors(
        {"name": name, "tz": timezone, "region": region, "help_contact": help_contact}
    )
    if errors:
        raise InvalidInput(errors)
    name = name.strip()
    if not name or len(name) > 120:
        errors.append(FieldError("name", "required, at most 120 characters"))
    try:
        parse_timezone(timezone)
    except ValueError as exc:
        errors.append(FieldError("tz", str(exc)))
    region = region.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        errors.append(FieldError("region", f"{region!r} is not a known region code"))
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
    clinic = Clinic(
        name=name,
        timezone=timezone,
        region=region,
        help_contact=help_contact.strip(),
        send_time=send,
        quiet_start=q_start,
        quiet_end=q_end,
        ipledge_enabled=ipledge,
        created_at=now,
    )
    session.add(clinic)
    session.flush()
    _row, key = create_api_key(
        session,
        clinic_id=clinic.id,  # type: ignore[arg-type]
        name=DEFAULT_KEY_NAME,
        admin=True,
        now=now,
    )
    return clinic, key


def get_clinic(session: Session, clinic_id: int) -> Clinic:
    clinic = session.get(Clinic, clinic_id)
    if clinic is None:
        raise NotFound(f"clinic {clinic_id} not found")
    return clinic
