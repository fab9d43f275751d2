"""Clinic staff who sign in to the web pages: creating them and checking their passwords.

Passwords are hashed with scrypt (standard library) and a random salt per user; the stored
string names its parameters, so they can be raised later without breaking old hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime

from sqlmodel import Session, select

from reminders.models import StaffUser
from reminders.services import get_clinic
from reminders.validation import FieldError, InvalidInput, parse_email

MIN_PASSWORD = 12
MAX_PASSWORD = 1024
# scrypt's cost: 16 MiB of memory and about 50 ms per hash, enough to slow guessing.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SCHEME = "scrypt"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r, dklen=32
    )


def hash_password(password: str) -> str:
    """`scrypt$n$r$p$salt$hash`, with a fresh 16-byte salt."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"{SCHEME}${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """True when `password` hashes to `stored`; a damaged stored value never matches."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != SCHEME:
            return False
        expected = base64.b64decode(digest)
        actual = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


# Compared against when the email is unknown, so a wrong email takes as long as a wrong
# password and the answer's timing does not tell which addresses have accounts.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def normal_email(value: str) -> str:
    return value.strip().lower()


def create_staff(
    session: Session, *, clinic_id: int, email: str, password: str, now: datetime
) -> StaffUser:
    """Add a staff user to a clinic; the email must be new and the password long enough."""
    get_clinic(session, clinic_id)
    errors: list[FieldError] = []
    address = ""
    try:
        address = normal_email(parse_email(email.strip()))
    except ValueError as exc:
        errors.append(FieldError("email", str(exc)))
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        errors.append(
            FieldError("password", f"must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long")
        )
    if address and staff_by_email(session, address) is not None:
        errors.append(FieldError("email", "already has a staff account"))
    if errors:
        raise InvalidInput(errors)
    user = StaffUser(
        clinic_id=clinic_id, email=address, password_hash=hash_password(password), created_at=now
    )
    session.add(user)
    session.flush()
    return user


def staff_by_email(session: Session, email: str) -> StaffUser | None:
    return session.exec(select(StaffUser).where(StaffUser.email == normal_email(email))).first()


def authenticate(session: Session, *, email: str, password: str) -> StaffUser | None:
    """The staff user with this email and password, or None (same time either way)."""
    user = staff_by_email(session, email) if len(password) <= MAX_PASSWORD else None
    if user is None:
        verify_password(password[:MAX_PASSWORD], _DUMMY_HASH)
        return None
    return user if verify_password(password, user.password_hash) else None


def session_stamp(user: StaffUser) -> str:
    """A short digest of the password hash: a new password ends every signed-in session."""
    return hashlib.sha256(user.password_hash.encode("ascii")).hexdigest()[:16]
