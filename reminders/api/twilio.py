"""Twilio webhooks: patients' texts (STOP, START, HELP, anything else) and delivery reports.

Both are accepted only with a valid X-Twilio-Signature, computed by Twilio over the URL it
called (PUBLIC_BASE_URL + path + query) and the form fields, with the account's auth token.
Anything else answers 403 before a single row is read or written.
"""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from sqlalchemy.exc import OperationalError
from twilio.request_validator import RequestValidator

from reminders.api.errors import VALIDATION_RESPONSE
from reminders.api.schemas import ErrorBody
from reminders.api.texts import TWIML_MEDIA_TYPE, reply_text, twiml
from reminders.channels.twilio_status import read_status_callback
from reminders.config import Settings
from reminders.db import session_waiting
from reminders.deps import NowDep, RuntimeDep, SessionDep
from reminders.inbound import Keyword
from reminders.models import MAX_ID
from reminders.privacy import mask_phone
from reminders.runtime import Runtime
from reminders.services import (
    InboundOutcome,
    answer_to,
    receive_text,
    record_delivery,
    record_text,
    remember_answer,
)
from reminders.validation import InvalidInput

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Twilio-Signature"
FORBIDDEN: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "X-Twilio-Signature missing or invalid"},
}

router = APIRouter(
    prefix="/webhooks/twilio", tags=["webhooks"], responses={**FORBIDDEN, **VALIDATION_RESPONSE}
)


class Deadline:
    """Seconds left of a wait that began when it was made (the request's own clock)."""

    def __init__(self, seconds: float) -> None:
        self.until = time.monotonic() + seconds

    def left(self) -> float:
        # At least a moment: a transaction that finds the database free needs no wait at all.
        return max(0.05, self.until - time.monotonic())


def signed_url(request: Request, settings: Settings) -> str:
    """The URL Twilio called, as it signed it: the public base URL, not the one proxies pass on."""
    base = (settings.public_base_url or "").rstrip("/")
    if not base:
        return str(request.url)
    query = request.url.query
    return f"{base}{request.url.path}" + (f"?{query}" if query else "")


async def signed_form(request: Request, rt: RuntimeDep) -> dict[str, str]:
    """The posted form, once its X-Twilio-Signature is checked; 403 otherwise."""
    token = rt.settings.twilio_auth_token
    if token is None:
        log.error("Twilio webhook refused: TWILIO_AUTH_TOKEN is not set, so it cannot be checked")
        raise HTTPException(status_code=403, detail=f"{SIGNATURE_HEADER}: cannot be checked")
    form = await request.form()
    signature = request.headers.get(SIGNATURE_HEADER, "")
    validator = RequestValidator(token.get_secret_value())
    if not signature or not validator.validate(signed_url(request, rt.settings), form, signature):
        log.warning("Twilio webhook refused: %s missing or invalid", SIGNATURE_HEADER)
        raise HTTPException(status_code=403, detail=f"{SIGNATURE_HEADER}: missing or invalid")
    return {key: value for key, value in form.items() if isinstance(value, str)}


SignedForm = Annotated[dict[str, str], Depends(signed_form)]
TWIML_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {TWIML_MEDIA_TYPE: {"schema": {"type": "string"}}}, "description": "TwiML"},
}


def reply_for(outcome: InboundOutcome, *, twilio_handled: bool) -> str | None:
    """The reply to a text, if any.

    A STOP is confirmed once: a number already opted out gets no second confirmation, and
    after a STOP only START and HELP are answered. When Twilio's Advanced Opt-Out matched the
    keyword (OptOutType is set) Twilio has replied itself, so we stay silent.
    """
    keyword = Keyword(outcome.keyword)
    if twilio_handled and keyword != Keyword.other:
        return None
    if keyword == Keyword.stop and not outcome.changed:
        return None
    if keyword == Keyword.other and outcome.opted_out:
        return None
    return reply_text(keyword.value, locale=outcome.locale, clinics=outcome.clinics)


def _message_sid(form: dict[str, str]) -> str:
    sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()
    if not sid:
        raise InvalidInput.one("MessageSid", "required")
    return sid


@router.post(
    "/inbound",
    response_class=Response,
    responses={
        **TWIML_RESPONSE,
        503: {"description": "The database stayed busy: the text was not recorded"},
    },
)
def inbound(form: SignedForm, rt: RuntimeDep, now: NowDep) -> Response:
    """A patient's text: recorded first, then STOP/START/HELP honoured at each clinic and
    anything else kept for the clinic's staff; a replay changes nothing and is answered as
    the first delivery was."""
    sid = _message_sid(form)
    phone = form.get("From", "").strip()
    wait = Deadline(rt.settings.inbound_wait_seconds)
    try:
        # Its own short transaction: once committed the text is kept, whatever happens next.
        with session_waiting(rt.engine, seconds=wait.left()) as session:
            text_id = record_text(
                session,
                message_sid=sid,
                phone=phone,
                body=form.get("Body", ""),
                opt_out_type=form.get("OptOutType") or None,
                now=now,
            )
    except OperationalError:
        log.error(
            "text from %s not recorded: the database stayed busy for %g s",
            mask_phone(phone),
            rt.settings.inbound_wait_seconds,
        )
        return Response(status_code=503, headers={"Retry-After": "1"})
    if text_id is None:
        log.info("text from %s delivered again: answered as before", mask_phone(phone))
        return twiml(_first_answer(rt, sid, wait))
    try:
        with session_waiting(rt.engine, seconds=wait.left()) as session:
            outcome = receive_text(session, text_id=text_id, ctx=rt.context(now))
            reply = None
            if outcome is not None:
                reply = reply_for(outcome, twilio_handled=bool(form.get("OptOutType")))
            remember_answer(session, text_id=text_id, reply=reply)
    except Exception as exc:  # anything at all: the text is kept, and the worker applies it
        # Only the error's type: its message may quote the statement's values, the words
        # of the text among them.
        log.error(
            "text from %s recorded but not applied (%s); the worker applies it",
            mask_phone(phone),
            type(exc).__name__,
        )
        return twiml()
    if outcome is None:
        log.info("text from %s, a number not enrolled anywhere", mask_phone(phone))
        return twiml()
    log.info(
        "text from %s: %s at %d clinic(s)%s",
        mask_phone(phone),
        outcome.keyword,
        len(outcome.clinics),
        " (changed)" if outcome.changed else "",
    )
    return twiml(reply)


def _first_answer(rt: Runtime, sid: str, wait: Deadline) -> str | None:
    """The answer the first delivery of a text got; none when the database is busy."""
    try:
        with session_waiting(rt.engine, seconds=wait.left()) as session:
            return answer_to(session, message_sid=sid)
    except OperationalError:
        return None


@router.post(
    "/status",
    status_code=204,
    response_class=Response,
    responses={
        404: {"model": ErrorBody, "description": "No such outbox row"},
        422: {"model": ErrorBody, "description": "Missing or unknown status"},
    },
)
def status(
    form: SignedForm,
    session: SessionDep,
    now: NowDep,
    rt: RuntimeDep,
    outbox: Annotated[str | None, Query(description="The outbox row id")] = None,
) -> Response:
    """A delivery report for one outbox row; statuses only ever move forward."""
    # `outbox` is read here, after the signature, so an unsigned request is always a 403.
    if not (outbox and outbox.isascii() and outbox.isdigit() and 1 <= int(outbox) <= MAX_ID):
        raise InvalidInput.one("outbox", "required, the outbox row id")
    report = read_status_callback(form)
    changed = record_delivery(
        session,
        outbox_id=int(outbox),
        report=report,
        now=now,
        unreachable_after=rt.settings.unreachable_after,
    )
    log.debug(
        "outbox %s: %s report %s", outbox, report.delivery, "applied" if changed else "ignored"
    )
    return Response(status_code=204)
