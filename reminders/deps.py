"""What every route receives, API and web pages alike: the runtime, one transaction, the request's
instant, the service context, and (for the API) the clinic of the key."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from reminders.clock import utcnow
from reminders.db import read_scope, session_scope
from reminders.models import Clinic
from reminders.runtime import Runtime, build
from reminders.services import Context, clinic_by_api_key

_build_lock = threading.Lock()
_bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="API key",
    description="The clinic's API key, printed once by `reminders clinic add`.",
)


def get_runtime(request: Request) -> Runtime:
    """The app's runtime; built from the environment on first use when none was given."""
    state = request.app.state
    if state.runtime is None:
        with _build_lock:
            if state.runtime is None:
                state.runtime = build()
    return state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


# Requests that only read: their transaction takes no write lock, so a long import or a busy
# worker never keeps a clinic's list or a timeline waiting, and they never delay a write.
READ_METHODS = frozenset({"GET", "HEAD"})


def get_session(request: Request, rt: RuntimeDep) -> Iterator[Session]:
    """One transaction per request: committed before the answer is sent, rolled back on error.

    A GET or HEAD reads in a transaction that takes no write lock; whatever it writes would
    be rolled back, so a read route writes through its own session_scope (e.g. an audit line).
    """
    scope = read_scope if request.method in READ_METHODS else session_scope
    with scope(rt.engine) as session:
        yield session


# scope="function" closes the transaction before the response goes out, so a failed commit
# is an error answer, never a success answer for a change that was lost.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def request_now() -> datetime:
    """The request's instant, read once so that every change in it agrees on the time."""
    return utcnow()


NowDep = Annotated[datetime, Depends(request_now)]


def get_context(rt: RuntimeDep, now: NowDep) -> Context:
    return rt.context(now)


ContextDep = Annotated[Context, Depends(get_context)]


def current_clinic(
    rt: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Clinic:
    """The clinic whose API key is in `Authorization: Bearer <key>`; 401 otherwise.

    Read in a transaction of its own that takes no write lock, apart from the route's.
    """
    clinic = None
    if credentials is not None and credentials.credentials:
        with read_scope(rt.engine) as session:
            clinic = clinic_by_api_key(session, credentials.credentials)
    if clinic is None:
        reason = "missing API key" if credentials is None else "unknown API key"
        raise HTTPException(
            status_code=401,
            detail=f"Authorization: {reason}; send `Authorization: Bearer <api key>`",
            headers={"WWW-Authenticate": 'Bearer realm="reminders"'},
        )
    return clinic


ClinicDep = Annotated[Clinic, Depends(current_clinic, scope="function")]
