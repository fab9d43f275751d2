"""Twilio's status callbacks, read into the service's words (a DeliveryReport).

Twilio posts `MessageStatus` (or the older `SmsStatus`), `MessageSid` and, for a message
that did not arrive, `ErrorCode`. Only this module knows those words and codes.
"""

from __future__ import annotations

from collections.abc import Mapping

from reminders.channels.base import Delivery, DeliveryReport
from reminders.channels.twilio_sms import UNREACHABLE_CODES
from reminders.validation import InvalidInput

# queued, accepted, scheduled and sending only say Twilio holds the message: the worker
# records `sent` itself when Twilio accepts the request.
_DELIVERIES = {
    "queued": Delivery.in_flight,
    "accepted": Delivery.in_flight,
    "scheduled": Delivery.in_flight,
    "sending": Delivery.in_flight,
    "sent": Delivery.accepted,
    "delivered": Delivery.reached,
    "read": Delivery.reached,
    "undelivered": Delivery.not_reached,
    "failed": Delivery.failed,
    "canceled": Delivery.failed,
}

# Carrier-side reasons an accepted SMS did not arrive.
UNDELIVERED_CODES = {
    30003: "unreachable handset",
    30004: "message blocked",
    30005: "unknown handset",
    30006: "landline or unreachable carrier",
    30007: "filtered by the carrier",
    30008: "unknown error",
}
RECIPIENT_UNSUBSCRIBED = 21610
# Reports that say the handset could not be reached: enough of them in a row mark the number
# unreachable. Blocked or filtered messages (30004, 30007) and unknown errors say nothing
# about the number itself.
HANDSET_UNREACHABLE = frozenset({30003, 30005, 30006})


def reason_for(status: str, code: int | None) -> str:
    """The reason for a failed delivery, naming the provider's code (never the number)."""
    if code is None:
        return f"twilio: {status}"
    label = UNDELIVERED_CODES.get(code)
    if code == RECIPIENT_UNSUBSCRIBED:
        label = "recipient unsubscribed"
    return f"twilio {code}: {label}" if label else f"twilio {code}: {status}"


def read_status_callback(form: Mapping[str, str]) -> DeliveryReport:
    """The report a signed status callback carries; InvalidInput names a missing or bad field.

    The MessageSid is required: it is what ties a report to the send of the row it names.
    """
    sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()
    if not sid:
        raise InvalidInput.one("MessageSid", "required")
    reported = (form.get("MessageStatus") or form.get("SmsStatus") or "").strip()
    if not reported:
        raise InvalidInput.one("MessageStatus", "required")
    word = reported.lower()
    delivery = _DELIVERIES.get(word)
    if delivery is None:
        raise InvalidInput.one("MessageStatus", f"{reported!r} is not a Twilio message status")
    text = (form.get("ErrorCode") or "").strip()
    code = int(text) if text.isascii() and text.isdigit() else None
    failed = delivery in (Delivery.not_reached, Delivery.failed)
    return DeliveryReport(
        delivery=delivery,
        provider_id=sid,
        reason=reason_for(word, code) if failed else None,
        opted_out=code == RECIPIENT_UNSUBSCRIBED,
        unreachable=code in UNREACHABLE_CODES,
        not_reached=failed and code in HANDSET_UNREACHABLE,
    )
