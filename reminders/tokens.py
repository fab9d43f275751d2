"""Signed tokens for links in messages: they name no record and cannot be forged."""

from __future__ import annotations

from itsdangerous import BadSignature, URLSafeSerializer

from reminders.config import Settings
from reminders.models import Patient


def _serializer(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(settings.secret_key.get_secret_value(), salt="unsubscribe")


def unsubscribe_token(patient: Patient, settings: Settings) -> str:
    """A token for the patient's email unsubscribe link (carries only the opaque public id)."""
    return _serializer(settings).dumps(patient.public_id)


def read_unsubscribe_token(token: str, settings: Settings) -> str | None:
    """The public id inside a valid token, or None for a forged or damaged one."""
    try:
        value = _serializer(settings).loads(token)
    except BadSignature:
        return None
    return value if isinstance(value, str) else None
