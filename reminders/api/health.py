"""Liveness for the platform (/healthz) and Prometheus metrics (/metrics)."""

from __future__ import annotations

import logging
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client.exposition import choose_encoder
from pydantic import BaseModel
from sqlalchemy import text

from reminders.deps import RuntimeDep
from reminders.metrics_http import CHALLENGE, UNAUTHORIZED, bearer_matches

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    database: Literal["reachable", "unreachable"]


@router.get(
    "/healthz",
    responses={503: {"model": Health, "description": "The database cannot be reached"}},
)
def healthz(rt: RuntimeDep) -> Any:
    """200 when the database answers, 503 when it does not."""
    try:
        with rt.engine.connect() as connection:
            connection.execute(text("select 1"))
    # Any failure to reach the database, whatever the driver raises, means: not healthy.
    except Exception as exc:
        log.warning("health check: database unreachable (%s)", type(exc).__name__)
        body = Health(status="unavailable", database="unreachable")
        return JSONResponse(body.model_dump(), status_code=503)
    return Health(status="ok", database="reachable")


def _check_metrics_token(request: Request, rt: RuntimeDep) -> None:
    """404 when METRICS_TOKEN is unset (no metrics here); 401 without that bearer token."""
    expected = rt.settings.metrics_token
    if expected is None or not expected.get_secret_value():
        raise HTTPException(status_code=404, detail="Not Found")
    if not bearer_matches(request.headers.get("authorization"), expected.get_secret_value()):
        raise HTTPException(
            status_code=401, detail=UNAUTHORIZED, headers={"WWW-Authenticate": CHALLENGE}
        )


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        401: {"description": "Without `Authorization: Bearer <METRICS_TOKEN>`"},
        404: {"description": "METRICS_TOKEN is not set: no metrics are served"},
    },
)
def metrics(request: Request, rt: RuntimeDep) -> Response:
    """Prometheus metrics (with `Authorization: Bearer <METRICS_TOKEN>`): this process's
    requests and sign-ins, and the database-wide backlog, read now (docs/operations.md)."""
    _check_metrics_token(request, rt)
    registry = request.app.state.metrics.registry
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    # The backlog is read in a thread of the pool, like any other synchronous route's work.
    return Response(encoder(registry), media_type=content_type)
