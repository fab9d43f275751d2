"""Compose: turn an outbox row (or a planned message) into the message a channel sends.

Rendering, the status-callback and unsubscribe links, the Message-ID and the SMS validity
period are decided here, once, for the dispatcher, the reaper (which re-renders to find a
stranded SMS at the provider) and the preview.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import urlsplit

from reminders.channels.base import OutgoingMessage
from reminders.config import Settings
from reminders.models import Channel, Clinic, Message, Patient
from reminders.render import MessageContext, Part, Renderer, count_segments, countdown_params
from reminders.timing import seconds_until_quiet, to_local, zone
from reminders.tokens import unsubscribe_token

# Twilio holds a queued message at most this long; shorter when quiet hours come sooner.
MAX_VALIDITY_SECONDS = 4 * 3600
# SMS give the clinic's phone, which must fit their length budget.
SMS_PHONE_MAX = 20


@dataclass(frozen=True)
class Draft:
    """What compose needs of a message: which row it is, on which channel, with which parts."""

    outbox_id: int
    course_id: int
    key: str
    channel: Channel
    parts: tuple[Part, ...]

    @classmethod
    def of(cls, row: Message) -> Draft:
        """The draft of an outbox row: its templates, primary first, as planned."""
        parts = tuple(Part(template, params) for template, params in json.loads(row.parts))
        return cls(row.id or 0, row.course_id, row.key, Channel(row.channel), parts)


def message_context(
    clinic: Clinic,
    patient: Patient,
    *,
    channel: Channel,
    first: bool,
    unsubscribe_url: str | None,
) -> MessageContext:
    """What every template of a message may say about its sender and its reader.

    An SMS names the clinic by its short SMS name, which keeps every SMS within two segments.
    """
    sms = channel == Channel.sms
    phone = clinic.help_contact if len(clinic.help_contact) <= SMS_PHONE_MAX else ""
    return MessageContext(
        clinic=(clinic.sms_name or clinic.name) if sms else clinic.name,
        help_contact=clinic.help_contact,
        clinic_phone=phone,
        first_name=patient.first_name,
        locale=patient.locale,
        ipledge=patient.ipledge and clinic.ipledge_enabled,
        home_tests=clinic.home_tests,
        first=first,
        unsubscribe_url=unsubscribe_url,
    )


def as_sent(parts: tuple[Part, ...], *, today: date, locale: str) -> tuple[Part, ...]:
    """The parts as they read on the day they go out: a countdown counts its days left then,
    not when it was planned (a message deferred to the next day says one day less)."""
    return tuple(
        Part(part.template, countdown_params(part.params, today, locale))
        if "test_date" in part.params
        else part
        for part in parts
    )


def compose(
    draft: Draft,
    *,
    patient: Patient,
    clinic: Clinic,
    first: bool,
    now: datetime,
    settings: Settings,
    renderer: Renderer,
    links: bool = True,
) -> OutgoingMessage:
    """The message for `draft`, rendered as it goes out at `now`.

    `links=False` leaves out the links that act for the patient (the preview shows texts to
    staff, and an unsubscribe token must not travel there).
    """
    base = (settings.public_base_url or "").rstrip("/") if links else ""
    unsubscribe = None
    if base and draft.channel == Channel.email:
        unsubscribe = f"{base}/unsubscribe/{unsubscribe_token(patient, settings)}"
    context = message_context(
        clinic, patient, channel=draft.channel, first=first, unsubscribe_url=unsubscribe
    )
    common = {"outbox_id": draft.outbox_id, "course_id": draft.course_id, "key": draft.key}
    tz = zone(patient.timezone)
    parts = as_sent(draft.parts, today=to_local(now, tz).date(), locale=patient.locale)
    if draft.channel == Channel.sms:
        body = renderer.sms(parts, context)
        quiet = {"quiet_start": clinic.quiet_start, "quiet_end": clinic.quiet_end}
        left = seconds_until_quiet(now, tz, **quiet)
        callback = f"{base}/webhooks/twilio/status?outbox={draft.outbox_id}" if base else None
        return OutgoingMessage(
            **common,  # type: ignore[arg-type]
            channel="sms",
            to=patient.phone or "",
            body=body,
            segments=count_segments(body).count,
            validity_seconds=min(left, MAX_VALIDITY_SECONDS),
            status_callback=callback,
        )
    email = renderer.email(parts, context)
    domain = (urlsplit(base).hostname if base else None) or "reminders.invalid"
    return OutgoingMessage(
        **common,  # type: ignore[arg-type]
        channel="email",
        to=patient.email or "",
        body=email.text,
        subject=email.subject,
        html=email.html,
        unsubscribe_url=unsubscribe,
        message_id_header=f"<outbox-{draft.outbox_id}.{draft.course_id}@{domain}>",
    )
