"""Validation of enrolment input from the CLI, a CSV file or the API: one set of rules."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from reminders.render import LOCALES
from reminders.timing import local_today

ENROLL_FIELDS = (
    "first_name",
    "phone",
    "email",
    "channel",
    "timezone",
    "start_date",
    "weeks",
    "locale",
    "ipledge",
    "last_name",
    "date_of_birth",
    "external_id",
)
REQUIRED_FIELDS = ("first_name", "channel", "timezone", "start_date")
CHANNELS = ("sms", "email", "both")
# Dates staff give (a start, a last dose) lie within this of today: months counted from a date
# far off would overflow while planning, and such a date is a typing mistake.
MAX_DATE_DISTANCE = timedelta(days=365)
_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"", "0", "false", "no", "n", "off"}


@dataclass(frozen=True)
class FieldError:
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


class InvalidInput(ValueError):
    """Input that was refused; `errors` names each field and why."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(str(error) for error in errors))
        self.errors = errors

    @classmethod
    def one(cls, field: str, reason: str) -> InvalidInput:
        return cls([FieldError(field, reason)])


# Unicode's "control" (Cc: NUL, CR, ESC, DEL...) and "format" (Cf: bidi overrides such as
# U+202E, zero-width characters such as U+200B) categories. Neither has a place in a name, an
# address or a label: a control character breaks logs, CSV and PostgreSQL (which refuses NUL);
# a format character makes one name look like another on screen.
_REFUSED_CATEGORIES = {"Cc": "a control character", "Cf": "an invisible formatting character"}


def check_text(value: str) -> str:
    """`value` unchanged; ValueError naming the first control or formatting character in it."""
    for char in value:
        kind = _REFUSED_CATEGORIES.get(unicodedata.category(char))
        if kind is not None:
            raise ValueError(f"contains {kind} (U+{ord(char):04X})")
    return value


def strip_refused(value: str) -> str:
    """`value` without the characters check_text refuses: for searches, which store nothing."""
    return "".join(char for char in value if unicodedata.category(char) not in _REFUSED_CATEGORIES)


def text_errors(values: Mapping[str, Any]) -> list[FieldError]:
    """One FieldError for each text value in `values` that check_text refuses."""
    errors = []
    for name, value in values.items():
        if isinstance(value, str):
            try:
                check_text(value)
            except ValueError as exc:
                errors.append(FieldError(name, str(exc)))
    return errors


@dataclass(frozen=True)
class Enrollment:
    """A validated enrolment: a patient and the start of their course."""

    first_name: str
    phone: str | None
    email: str | None
    channel: str
    timezone: str
    start_date: date
    weeks: int
    locale: str
    ipledge: bool
    last_name: str = ""
    date_of_birth: date | None = None
    external_id: str | None = None  # the clinic's chart number, unique at the clinic


def parse_name(value: Any, *, required: bool) -> str:
    """A first or last name: stripped, at most 80 characters."""
    text = "" if value is None else str(value).strip()
    if required and not text:
        raise ValueError("required")
    if len(text) > 80:
        raise ValueError("longer than 80 characters")
    return text


def parse_date_of_birth(value: Any, *, today: date) -> date:
    """A birth date: not in the future, and within 120 years."""
    day = parse_date(value)
    if day > today:
        raise ValueError(f"{day} is in the future")
    if today.year - day.year > 120:
        raise ValueError(f"{day} is more than 120 years ago")
    return day


def parse_external_id(value: Any) -> str | None:
    """The clinic's chart number: any text up to 64 characters; blank means none."""
    text = "" if value is None else str(value).strip()
    if len(text) > 64:
        raise ValueError("longer than 64 characters")
    return text or None


def _phone_number(value: str, region: str) -> phonenumbers.PhoneNumber:
    """A valid phone number, read with `region` when it has no country code."""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise ValueError(f"{value!r} is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"{value!r} is not a valid phone number")
    return number


def parse_phone(value: str, region: str) -> str:
    """A phone number in E.164, parsed with the clinic's region when it has no country code."""
    return phonenumbers.format_number(
        _phone_number(value, region), phonenumbers.PhoneNumberFormat.E164
    )


# Every automatic answer to a patient gives the clinic's phone, so its length is part of the
# SMS budget.
HELP_PHONE_MAX = 20


def parse_help_phone(value: str, region: str) -> str:
    """A clinic's phone for patients, as they would dial it: national format in `region`,
    international for a number abroad; at most HELP_PHONE_MAX characters."""
    text = value.strip()
    if not text:
        raise ValueError("required: the phone patients call about anything urgent")
    number = _phone_number(text, region)
    local = phonenumbers.region_code_for_number(number) == region
    style = phonenumbers.PhoneNumberFormat.NATIONAL if local else None
    shown = phonenumbers.format_number(
        number, style or phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    if len(shown) > HELP_PHONE_MAX:
        raise ValueError(f"{shown!r} is longer than {HELP_PHONE_MAX} characters")
    return shown


def parse_email(value: str) -> str:
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"{value!r} is not a valid email address ({exc})") from None


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    # available_timezones() walks the tz database on disk: read it once per process. Some
    # entries are not places: "Factory" has no offset, "localtime" is the server's own zone.
    return frozenset(available_timezones()) - {"Factory", "localtime", "posixrules"}


def parse_timezone(value: str) -> str:
    if value not in _zones():
        raise ValueError(f"{value!r} is not a known IANA time zone")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not a known IANA time zone") from None
    return value


def parse_date(value: Any) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValueError(f"{value!r} is not a date (use YYYY-MM-DD)") from None


def parse_date_near(value: Any, *, today: date) -> date:
    """A date within a year of `today`, either way; `today` is the patient's local date."""
    day = parse_date(value)
    if abs(day - today) > MAX_DATE_DISTANCE:
        raise ValueError(f"{day} is more than a year from today")
    return day


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = "" if value is None else str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{value!r} is not yes or no")


def parse_weeks(value: Any) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        return 20
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number of weeks")
    try:
        weeks = int(str(value).strip())
    except ValueError:
        raise ValueError(f"{value!r} is not a number of weeks") from None
    if not 1 <= weeks <= 104:
        raise ValueError(f"{weeks} is outside 1-104 weeks")
    return weeks


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def validate_enrollment(raw: Mapping[str, Any], *, region: str, now: datetime) -> Enrollment:
    """Check every field of an enrolment; raise InvalidInput naming each bad field.

    The start date is checked against the patient's own today, in their time zone.
    """
    errors: list[FieldError] = []
    unknown = sorted(set(raw) - set(ENROLL_FIELDS))
    for name in unknown:
        errors.append(FieldError(name, "unknown field"))
    # Checked first and on its own: a field with a control character says only that.
    refused = text_errors({name: raw.get(name) for name in ENROLL_FIELDS})
    if refused:
        raise InvalidInput(errors + refused)
    for name in REQUIRED_FIELDS:
        if _blank(raw.get(name)):
            errors.append(FieldError(name, "required"))

    def check(name: str, parse: Any, *args: Any) -> Any:
        value = raw.get(name)
        if _blank(value) and name in REQUIRED_FIELDS:
            return None
        try:
            return parse(value, *args)
        except ValueError as exc:
            errors.append(FieldError(name, str(exc)))
            return None

    first_name = str(raw.get("first_name") or "").strip()
    if first_name and len(first_name) > 80:
        errors.append(FieldError("first_name", "longer than 80 characters"))
    last_name = check("last_name", lambda value: parse_name(value, required=False)) or ""
    external_id = check("external_id", parse_external_id)
    phone = None if _blank(raw.get("phone")) else check("phone", parse_phone, region)
    email = None if _blank(raw.get("email")) else check("email", parse_email)
    channel = str(raw.get("channel") or "").strip().lower()
    if channel and channel not in CHANNELS:
        errors.append(FieldError("channel", f"{channel!r} is not one of sms, email, both"))
    if channel in ("sms", "both") and _blank(raw.get("phone")):
        errors.append(FieldError("phone", f"required for channel {channel}"))
    if channel in ("email", "both") and _blank(raw.get("email")):
        errors.append(FieldError("email", f"required for channel {channel}"))
    timezone = check("timezone", parse_timezone) if not _blank(raw.get("timezone")) else None
    start = None
    if not _blank(raw.get("start_date")):
        today = local_today(now, timezone) if timezone else now.date()
        start = check("start_date", lambda value: parse_date_near(value, today=today))
    weeks = check("weeks", parse_weeks)
    locale = str(raw.get("locale") or "en").strip().lower()
    if locale not in LOCALES:
        errors.append(FieldError("locale", f"{locale!r} is not one of {', '.join(LOCALES)}"))
    ipledge = check("ipledge", parse_bool)
    born = None
    if not _blank(raw.get("date_of_birth")):
        born = check("date_of_birth", lambda value: parse_date_of_birth(value, today=now.date()))
    if errors:
        raise InvalidInput(errors)
    # Both are required: had either been blank or invalid, an error was reported above.
    assert timezone is not None and start is not None
    return Enrollment(
        first_name=first_name,
        phone=phone,
        email=email,
        channel=channel,
        timezone=timezone,
        start_date=start,
        weeks=weeks,
        locale=locale,
        ipledge=bool(ipledge),
        last_name=last_name,
        date_of_birth=born,
        external_id=external_id,
    )
