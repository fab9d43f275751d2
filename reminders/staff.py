"""Clinic staff who sign in to the web pages: accounts, roles, passwords, two-factor codes.

Passwords are hashed with argon2id (argon2-cffi), OWASP's first choice, in the PHC string
format that names the variant and its costs. Hashes written before it, scrypt with its
parameters in the stored string, still verify, and are replaced by an argon2id hash at the
next sign-in (as are argon2id hashes of older costs). Only this module knows the schemes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import pyotp
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, col, select

from reminders.models import StaffRole, StaffUser
from reminders.services import Conflict, NotFound, get_clinic
from reminders.sessions import end_user_sessions
from reminders.validation import FieldError, InvalidInput, check_text, parse_email

MIN_PASSWORD = 12
MAX_PASSWORD = 1024
# OWASP's first argon2id configuration (Password Storage Cheat Sheet): 19 MiB, 2 passes,
# one lane. About 20-40 ms a hash here: enough to slow guessing, cheap for a sign-in.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID)
# The scheme before argon2id: `scrypt$n$r$p$salt$hash`, verified only, never written.
LEGACY_SCRYPT = "scrypt"
COMMON_PASSWORDS = Path(__file__).parent / "common_passwords.txt"
ISSUER = "Treatment reminders"


def hash_password(password: str) -> str:
    """An argon2id hash in PHC format (`$argon2id$v=19$m=...`), with a fresh salt."""
    return _HASHER.hash(password)


def verify_password(password: str, stored: str) -> bool:
    """True when `password` hashes to `stored` (argon2id, or a legacy scrypt hash); a damaged
    stored value never matches."""
    if stored.startswith(f"{LEGACY_SCRYPT}$"):
        return _verify_scrypt(password, stored)
    try:
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """Whether a hash that just verified should be replaced: scrypt, or argon2id of other
    costs than today's."""
    if stored.startswith(f"{LEGACY_SCRYPT}$"):
        return True
    try:
        return _HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return True


def _verify_scrypt(password: str, stored: str) -> bool:
    try:
        _scheme, n, r, p, salt, digest = stored.split("$")
        cost, block, lanes = int(n), int(r), int(p)
        actual = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=cost,
            r=block,
            p=lanes,
            maxmem=256 * cost * block,
            dklen=32,
        )
        expected = base64.b64decode(digest)
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


# Compared against when the email is unknown, so a wrong email takes as long as a wrong
# password and the answer's timing does not tell which addresses have accounts.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS.read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def password_errors(password: str, field: str = "password") -> list[FieldError]:
    """Why a new password is refused: too short or long, or one of the common passwords."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        return [FieldError(field, f"must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long")]
    if password.lower() in _common_passwords():
        return [FieldError(field, "is one of the most common passwords; choose another")]
    return []


def normal_email(value: str) -> str:
    return value.strip().lower()


def _role(value: str) -> StaffRole:
    try:
        return StaffRole(value.strip().lower())
    except ValueError:
        raise InvalidInput.one("role", f"{value!r} is not one of admin, staff") from None


def create_staff(
    session: Session,
    *,
    clinic_id: int,
    email: str,
    password: str,
    now: datetime,
    role: str = StaffRole.staff,
) -> StaffUser:
    """Add a staff user to a clinic; the email must be new and the password acceptable."""
    get_clinic(session, clinic_id)
    errors: list[FieldError] = []
    address = ""
    try:
        address = normal_email(parse_email(check_text(email.strip())))
    except ValueError as exc:
        errors.append(FieldError("email", str(exc)))
    errors += password_errors(password)
    if address and staff_by_email(session, address) is not None:
        errors.append(FieldError("email", "already has a staff account"))
    if errors:
        raise InvalidInput(errors)
    user = StaffUser(
        clinic_id=clinic_id,
        email=address,
        password_hash=hash_password(password),
        role=_role(role),
        created_at=now,
    )
    session.add(user)
    session.flush()
    return user


def staff_by_email(session: Session, email: str) -> StaffUser | None:
    return session.exec(select(StaffUser).where(StaffUser.email == normal_email(email))).first()


def get_staff(session: Session, *, user_id: int, clinic_id: int | None = None) -> StaffUser:
    """A staff user (of this clinic, when given); NotFound otherwise."""
    user = session.get(StaffUser, user_id)
    if user is None or (clinic_id is not None and user.clinic_id != clinic_id):
        raise NotFound(f"staff user {user_id} not found")
    return user


def list_staff(session: Session, *, clinic_id: int | None = None) -> list[StaffUser]:
    """The staff users of a clinic (or of every clinic), in the order they were added."""
    query = select(StaffUser)
    if clinic_id is not None:
        query = query.where(StaffUser.clinic_id == clinic_id)
    return list(session.exec(query.order_by(col(StaffUser.id))).all())


def authenticate(session: Session, *, email: str, password: str) -> StaffUser | None:
    """The active staff user with this email and password, or None (same time either way).

    A hash of an older scheme or cost is replaced by today's (the session must write)."""
    try:
        check_text(email)
    except ValueError:
        email = ""  # no account has such an address; PostgreSQL could not even look for it
    user = staff_by_email(session, email) if email and len(password) <= MAX_PASSWORD else None
    if user is None or user.disabled_at is not None:
        verify_password(password[:MAX_PASSWORD], _DUMMY_HASH)
        return None
    if not verify_password(password, user.password_hash):
        return None
    if needs_rehash(user.password_hash):
        # The password is in hand only now: the old hash is replaced in this transaction.
        user.password_hash = hash_password(password)
        session.add(user)
    return user


def set_disabled(session: Session, *, user: StaffUser, disabled: bool, now: datetime) -> int:
    """Disable a user (every session ends at once) or enable them again; sessions ended."""
    if disabled and user.disabled_at is None:
        user.disabled_at = now
    elif not disabled:
        user.disabled_at = None
    session.add(user)
    return end_user_sessions(session, user_id=user.id) if disabled else 0  # type: ignore[arg-type]


def reset_password(session: Session, *, user: StaffUser, password: str) -> int:
    """Give a user a new password; every session of theirs ends. Returns how many did."""
    errors = password_errors(password)
    if errors:
        raise InvalidInput(errors)
    user.password_hash = hash_password(password)
    session.add(user)
    return end_user_sessions(session, user_id=user.id)  # type: ignore[arg-type]


def check_not_self(actor_id: int, user: StaffUser, action: str) -> None:
    """An admin may not lock themselves out: no disabling one's own account."""
    if actor_id == user.id:
        raise Conflict("user", f"you cannot {action} your own account")


# -- two-factor codes (TOTP, RFC 6238) -------------------------------------------------------


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, *, email: str) -> str:
    """The otpauth:// address an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def _matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code `code` is, allowing one step of clock drift either way."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    step = totp.timecode(now)
    for candidate in (step, step - 1, step + 1):
        if hmac.compare_digest(totp.generate_otp(candidate), code):
            return candidate
    return None


def verify_totp(user: StaffUser, code: str, *, now: datetime) -> bool:
    """Whether `code` is the user's current code and was not used before (then it is used)."""
    if not user.totp_secret:
        return False
    step = _matching_step(user.totp_secret, code, now)
    if step is None or (user.totp_last_step is not None and step <= user.totp_last_step):
        return False
    user.totp_last_step = step
    return True


def enable_totp(user: StaffUser, *, secret: str, code: str, now: datetime) -> None:
    """Turn on two-factor sign-in once a code from the new secret proves the app has it."""
    step = _matching_step(secret, code, now)
    if step is None:
        raise InvalidInput.one("code", "is not the code the app shows now")
    user.totp_secret = secret
    user.totp_last_step = step


def disable_totp(user: StaffUser) -> None:
    user.totp_secret = None
    user.totp_last_step = None
