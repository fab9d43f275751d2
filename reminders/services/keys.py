"""A clinic's API keys: one per integration, shown once, kept only as a hash, revocable."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from reminders.clock import as_utc
from reminders.models import ApiKey
from reminders.services.common import Conflict, NotFound
from reminders.validation import InvalidInput, check_text

# The key `reminders clinic add` prints, and the one `clinic rotate-key` replaces.
DEFAULT_KEY_NAME = "default"
# A key's last use is written at most this often: not one write per request.
LAST_USED_PRECISION = timedelta(minutes=1)


def hash_api_key(key: str) -> str:
    # A key is 256 random bits: a fast hash cannot be reversed, and costs nothing per request.
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key() -> tuple[str, str]:
    """A fresh API key and the hash that is stored in its place."""
    key = "rk_" + secrets.token_urlsafe(32)
    return key, hash_api_key(key)


def _key_name(name: str) -> str:
    name = name.strip()
    try:
        check_text(name)
    except ValueError as exc:
        raise InvalidInput.one("name", str(exc)) from None
    if not name or len(name) > 80:
        raise InvalidInput.one("name", "required, at most 80 characters")
    return name


def create_api_key(
    session: Session, *, clinic_id: int, name: str, admin: bool = False, now: datetime
) -> tuple[ApiKey, str]:
    """A new named key for the clinic; returns it and the key itself (shown once)."""
    name = _key_name(name)
    if any(key.name == name for key in active_keys(session, clinic_id=clinic_id)):
        raise InvalidInput.one("name", f"the clinic already has a key named {name!r}")
    key, key_hash = new_api_key()
    row = ApiKey(clinic_id=clinic_id, name=name, key_hash=key_hash, admin=admin, created_at=now)
    session.add(row)
    session.flush()
    return row, key


def list_api_keys(session: Session, *, clinic_id: int) -> list[ApiKey]:
    """Every key of the clinic, revoked ones too, oldest first."""
    query = select(ApiKey).where(ApiKey.clinic_id == clinic_id).order_by(col(ApiKey.id))
    return list(session.exec(query).all())


def active_keys(session: Session, *, clinic_id: int) -> list[ApiKey]:
    query = select(ApiKey).where(ApiKey.clinic_id == clinic_id, col(ApiKey.revoked_at).is_(None))
    return list(session.exec(query.order_by(col(ApiKey.id))).all())


def revoke_api_key(session: Session, *, clinic_id: int, key_id: int, now: datetime) -> ApiKey:
    """Stop one key at once; the clinic's other keys keep working."""
    key = session.get(ApiKey, key_id)
    if key is None or key.clinic_id != clinic_id:
        raise NotFound(f"API key {key_id} not found")
    if key.revoked_at is not None:
        raise Conflict("key", "is revoked already")
    key.revoked_at = now
    session.add(key)
    return key


def rotate_api_key(session: Session, *, clinic_id: int, now: datetime) -> str:
    """Replace the clinic's default key (its other keys keep working); returns the new key."""
    for old in active_keys(session, clinic_id=clinic_id):
        if old.name == DEFAULT_KEY_NAME:
            old.revoked_at = now
            session.add(old)
    session.flush()
    _row, key = create_api_key(
        session, clinic_id=clinic_id, name=DEFAULT_KEY_NAME, admin=True, now=now
    )
    return key


def active_key(session: Session, secret: str) -> ApiKey | None:
    """The active key `secret` is; None for an unknown or revoked key."""
    return session.exec(
        select(ApiKey).where(
            ApiKey.key_hash == hash_api_key(secret), col(ApiKey.revoked_at).is_(None)
        )
    ).first()


def stale_use(key: ApiKey, *, now: datetime) -> bool:
    """Whether the key's last use is worth writing down again (once per LAST_USED_PRECISION)."""
    last = key.last_used_at
    return last is None or as_utc(now) - as_utc(last) >= LAST_USED_PRECISION


def note_use(session: Session, *, key_id: int, now: datetime) -> None:
    """Write down that the key was used now."""
    session.execute(update(ApiKey).where(col(ApiKey.id) == key_id).values(last_used_at=now))
