"""The interface every channel implements, and the service's words for what a provider says.

A channel translates its provider's codes and status words (Twilio's 21610, SMTP's 5.1.1)
into these types inside its own module; nothing above `channels/` reads a provider code.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class OutgoingMessage:
    """A rendered message for one outbox row, ready for a transport."""

    outbox_id: int
    course_id: int
    key: str
    channel: str  # "sms" | "email"
    to: str
    body: str  # SMS text, or the plain-text part of an email
    subject: str | None = None
    html: str | None = None
    segments: int = 1
    # SMS: seconds the provider may hold the message before it must be dropped (quiet hours).
    validity_seconds: int | None = None
    status_callback: str | None = None
    unsubscribe_url: str | None = None
    # A stable RFC 5322 Message-ID derived from the outbox row, so a resend is recognisable.
    message_id_header: str | None = None


@dataclass(frozen=True)
class Receipt:
    """What the provider said when it accepted a message."""

    provider_id: str | None


class Failure(enum.StrEnum):
    """Why a send did not go through, as the service acts on it."""

    retry_later = "retry_later"  # a passing fault (rate limit, outage, timeout): try again
    permanent = "permanent"  # refused for good; the same message would fail again
    opted_out = "opted_out"  # the recipient unsubscribed at the provider: their STOP
    unreachable = "unreachable"  # the number or address cannot receive (never an opt-out)


class DeliveryError(Exception):
    """A send that did not go through, with the reason in the service's words."""

    def __init__(
        self,
        reason: str,
        *,
        permanent: bool,
        opted_out: bool = False,
        unreachable: bool = False,
        retry_after: float | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        # The recipient has unsubscribed at the provider (Twilio 21610).
        self.opted_out = opted_out
        # The address or number does not exist or cannot receive (SMTP 5.1.1).
        self.unreachable = unreachable
        # Seconds the provider asked us to wait (HTTP Retry-After).
        self.retry_after = retry_after
        # The provider's error code, or a short word for a failure on the way ("timeout"):
        # a bounded value, the label of reminders_provider_errors_total.
        self.code = code

    @property
    def failure(self) -> Failure:
        if self.opted_out:
            return Failure.opted_out
        if self.unreachable:
            return Failure.unreachable
        return Failure.permanent if self.permanent else Failure.retry_later


class Delivery(enum.StrEnum):
    """What a delivery report says became of a message the provider accepted."""

    in_flight = "in_flight"  # still with the provider: nothing to record
    accepted = "accepted"  # handed to the carrier
    reached = "reached"  # arrived on the handset
    not_reached = "not_reached"  # the carrier could not deliver it
    failed = "failed"  # the provider gave it up


@dataclass(frozen=True)
class DeliveryReport:
    """A provider's delivery report in the service's words, with a short reason."""

    delivery: Delivery
    provider_id: str | None = None
    reason: str | None = None  # names the provider's code, never the recipient
    opted_out: bool = False  # the recipient unsubscribed at the carrier (their STOP)
    unreachable: bool = False  # the number cannot receive at all (invalid, not mobile)
    not_reached: bool = False  # the handset could not be reached: counts toward unreachable


class Transport(Protocol):
    """A channel: `send` one message, look one up after a crash, `close` reused connections."""

    name: str

    def send(self, message: OutgoingMessage) -> Receipt: ...

    def find_sent(self, *, to: str, body: str | Collection[str], since: datetime) -> str | None:
        """The provider's id of a message with this body (or one of these) sent to `to` since
        `since`; None when there is none or the provider cannot tell (email)."""
        ...

    def close(self) -> None: ...
