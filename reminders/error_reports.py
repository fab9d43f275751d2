"""Error reports to Sentry, scrubbed of contacts, message texts and secrets before they leave."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal, cast

import sentry_sdk
from sentry_sdk.integrations.logging import LoggingIntegration

from reminders.config import Settings
from reminders.privacy import scrub

if TYPE_CHECKING:
    from sentry_sdk.transport import Transport
    from sentry_sdk.types import Event, Hint

Process = Literal["web", "worker"]

# What a patient or a clinic sent, and what signs in as them, stays out of every report.
_REQUEST_PARTS_DROPPED = ("data", "cookies", "query_string", "env")
_HEADERS_DROPPED = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "x-twilio-signature",
    }
)
# The stdlib HTTP breadcrumbs of Twilio lookups carry the recipient in the query.
_BREADCRUMB_DATA_DROPPED = ("http.query", "http.fragment")


def init_error_reports(
    settings: Settings, *, process: Process, transport: Transport | None = None
) -> bool:
    """Report errors to Sentry when SENTRY_DSN is set; True when reports are on."""
    if settings.sentry_dsn is None:
        return False
    options: dict[str, Any] = {}
    if transport is not None:
        options["transport"] = transport
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        environment=settings.sentry_environment,
        # send_default_pii stays unset: off is its default in every 2.x release, and recent
        # releases warn that the option is deprecated whatever value it is given.
        max_request_body_size="never",
        include_local_variables=False,
        traces_sample_rate=0,
        before_send=scrub_event,
        before_send_transaction=drop_transaction,
        # Log lines become breadcrumbs (scrubbed with the event they leave in), errors events.
        integrations=[LoggingIntegration(level=logging.INFO, event_level=logging.ERROR)],
        **options,
    )
    sentry_sdk.get_global_scope().set_tag("process", process)
    return True


def scrub_event(event: Event, _hint: Hint) -> Event | None:
    """The event without request bodies, cookies, query strings or credentials; text masked."""
    request = event.get("request")
    if isinstance(request, dict):
        for part in _REQUEST_PARTS_DROPPED:
            request.pop(part, None)
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {
                name: value
                for name, value in headers.items()
                if name.lower() not in _HEADERS_DROPPED
            }
    breadcrumbs = event.get("breadcrumbs")
    if isinstance(breadcrumbs, dict) and isinstance(breadcrumbs.get("values"), list):
        for crumb in breadcrumbs["values"]:
            data = crumb.get("data") if isinstance(crumb, dict) else None
            if isinstance(data, dict):
                for key in _BREADCRUMB_DATA_DROPPED:
                    data.pop(key, None)
    return cast("Event", scrub(event))


def drop_transaction(_event: Event, _hint: Hint) -> Event | None:
    """Performance data is not collected: a transaction never leaves."""
    return None
