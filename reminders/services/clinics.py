"""Clinics and their API keys (stored only as hashes)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, time
from typing import Any

import phonenumbers
from sqlmodel import Session

from reminders.models import (
    Clinic,
)
from reminders.render import gsm_safe, is_gsm7, one_line
from reminders.services.common import NotFound
from reminders.services.keys import DEFAULT_KEY_NAME, create_api_key
from reminders.timing import is_quiet
from reminders.validation import (
    FieldError,
    InvalidInput,
    parse_email,
    parse_help_phone,
    parse_timezone,
    text_errors,
)

CLINIC_FIELDS = ("name", "timezone", "help_contact", "notify_email")


SMS_NAME_MAX = 20


def sms_name_for(name: str, given: str | None) -> str:
    """The clinic's name as SMS give it: `given` if any, else the name when it fits, else its
    first words. At most 20 characters of GSM-7, so no clinic can push an SMS past two
    segments (typographic punctuation is folded: "St. Mary’s" is "St. Mary's")."""
    if given is not None and given.strip():
        folded = one_line(gsm_safe(given))
        if len(folded) > SMS_NAME_MAX:
            raise ValueError(f"{folded!r} is longer than {SMS_NAME_MAX} characters")
        if not is_gsm7(folded):
            raise ValueError(f"{folded!r} has letters an SMS cannot carry without UCS-2")
        return folded
    folded = one_line(gsm_safe(name))
    if not is_gsm7(folded):
        raise ValueError("required: the name has letters an SMS cannot carry; give a short name")
    words, short = folded.split(" "), ""
    for word in words:
        if len(f"{short} {word}".strip()) > SMS_NAME_MAX:
            break
        short = f"{short} {word}".strip()
    return short or folded[:SMS_NAME_MAX]


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
    sms_name: str | None = None,
    home_tests: bool = False,
    lab_reminders: bool = True,
    now: datetime,
) -> tuple[Clinic, str]:
    """Create a clinic; returns it and its first API key (shown once, stored only as a hash)."""
    texts = {"name": name, "tz": timezone, "region": region, "help_contact": help_contact}
    texts |= {"sms_name": sms_name or "", "notify_email": notify_email or ""}
    errors = text_errors(texts)
    if errors:
        raise InvalidInput(errors)
    name = _check("name", _name, name, errors)
    _check("tz", parse_timezone, timezone, errors)
    region = region.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        errors.append(FieldError("region", f"{region!r} is not a known region code"))
    else:
        help_contact = _check("help_contact", parse_help_phone, help_contact, errors, region)
    notify_email = _check("notify_email", _notify_email, notify_email, errors)
    short = ""
    try:
        short = sms_name_for(name, sms_name)
    except ValueError as exc:
        errors.append(FieldError("sms_name", str(exc)))
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
        sms_name=short,
        timezone=timezone,
        region=region,
        help_contact=help_contact,
        notify_email=notify_email,
        send_time=send,
        quiet_start=q_start,
        quiet_end=q_end,
        ipledge_enabled=ipledge,
        home_tests=home_tests,
        lab_reminders=lab_reminders,
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


def update_clinic(session: Session, *, clinic: Clinic, changes: Mapping[str, Any]) -> Clinic:
    """Change a clinic's name, zone, help phone or notification email (None or "" clears it)."""
    errors = [
        FieldError(name, "unknown field") for name in sorted(set(changes) - set(CLINIC_FIELDS))
    ]
    errors += text_errors({name: value or "" for name, value in changes.items()})
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


def get_clinic(session: Session, clinic_id: int) -> Clinic:
    clinic = session.get(Clinic, clinic_id)
    if clinic is None:
        raise NotFound(f"clinic {clinic_id} not found")
    return clinic
