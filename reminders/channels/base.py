"""The interface every channel implements, and the one error type it raises."""

from __future__ import annotations

from dataclasses import dataclass
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


class DeliveryError(Exception):
    """A send that did not go through; `permanent` says whether retrying can help."""

    def __init__(
        self,
        reason: str,
        *,
        permanent: bool,
        opted_out: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        # The recipient has unsubscribed at the provider (Twilio 21610, SMTP 5.1.1 unknown user).
        self.opted_out = opted_out
        # Seconds the provider asked us to wait (HTTP Retry-After).
        self.retry_after = retry_after


class Transport(Protocol):
    """A channel: `send` one message, `close` whatever connection a batch reused."""

    name: str

    def send(self, message: OutgoingMessage) -> Receipt: ...

    def close(self) -> None: ...
