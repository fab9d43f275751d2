"""What every route receives, API and web pages alike: the runtime, one transaction, the request's
instant, the service context, the client's address, and (for the API) the key and its clinic."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from reminders.audit import Actor
from reminders.clock import utcnow
from reminders.db import read_scope, session_scope
from reminders.models import Clinic
from reminders.runtime import Runtime, build
from reminders.services import Context, active_key, get_clinic, note_use, stale_use

_build_lock = threading.Lock()
_bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="API key",
    description="One of the clinic's API keys (`reminders clinic add`, `clinic key add`).",
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


def client_address(request: Request) -> str:
    """The client's address (uvicorn puts the proxy's X-Forwarded-For here when trusted)."""
    return request.client.host if request.client is not None else ""


AddressDep = Annotated[str, Depends(client_address)]


@dataclass(frozen=True)
class Caller:
    """An API call's key and clinic, and who to name in the audit trail."""

    clinic: Clinic
    key_id: int
    admin: bool
    actor: Actor

    @property
    def clinic_id(self) -> int:
        return self.clinic.id  # type: ignore[return-value]


def current_caller(
    rt: RuntimeDep,
    now: NowDep,
    address: AddressDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The API key in `Authorization: Bearer <key>` and its clinic; 401 otherwise.

    Read in a transaction of its own that takes no write lock, apart from the route's; the
    key's last use is written, at most once a minute, in a short transaction of its own.
    """
    key, clinic = None, None
    if credentials is not None and credentials.credentials:
        with read_scope(rt.engine) as session:
            key = active_key(session, credentials.credentials)
            clinic = get_clinic(session, key.clinic_id) if key is not None else None
    if key is None:
        reason = "missing API key" if credentials is None else "unknown or revoked API key"
        raise HTTPException(
            status_code=401,
            detail=f"Authorization: {reason}; send `Authorization: Bearer <api key>`",
            headers={"WWW-Authenticate": 'Bearer realm="reminders"'},
        )
    if stale_use(key, now=now):
        with session_scope(rt.engine) as session:
            note_use(session, key_id=key.id, now=now)  # type: ignore[arg-type]
    assert clinic is not None
    return Caller(
        clinic=clinic,
        key_id=key.id,  # type: ignore[arg-type]
        admin=key.admin,
        actor=Actor(kind="key", name=key.name, address=address),
    )


CallerDep = Annotated[Caller, Depends(current_caller, scope="function")]


def current_clinic(caller: CallerDep) -> Clinic:
    """The clinic of the API key; 401 without a valid key."""
    return caller.clinic


ClinicDep = Annotated[Clinic, Depends(current_clinic, scope="function")]


def admin_caller(caller: CallerDep) -> Caller:
    """The caller, when its key is an admin key; 403 otherwise."""
    if not caller.admin:
        raise HTTPException(
            status_code=403, detail="Authorization: this needs an admin key of the clinic"
        )
    return caller


AdminDep = Annotated[Caller, Depends(admin_caller, scope="function")]
