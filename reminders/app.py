"""The web process's app, assembled above its parts: the clinic API, the Twilio webhooks, the
unsubscribe links, health and metrics (reminders/api/) and the clinic pages (reminders/web/)."""

from __future__ import annotations

from fastapi import FastAPI

from reminders import __version__, web
from reminders.api import (
    clinic,
    docs,
    errors,
    health,
    imports,
    replies,
    twilio,
    unsubscribe,
    worklist,
)
from reminders.api.imports import HARD_LIMIT_BYTES
from reminders.api.limits import BodyLimit
from reminders.config import get_settings
from reminders.headers import SecurityHeaders
from reminders.metrics import WebMetrics
from reminders.metrics_http import RequestMetrics
from reminders.runtime import Runtime

MAX_BODY_BYTES = 64 * 1024

DESCRIPTION = """
Enroll patients, change their courses and read what they were sent.

Authenticate with the clinic's key: `Authorization: Bearer <api key>`. Every error answers
`{"message": "field: reason", "detail": [{"field": ..., "reason": ...}]}`.
"""


def create_app(runtime: Runtime | None = None) -> FastAPI:
    """The app; without a runtime, one is built from the environment on the first request."""
    # Without a runtime the app builds one from the environment later; the settings are the
    # same ones it will read.
    settings = runtime.settings if runtime is not None else get_settings()
    app = FastAPI(
        title="Treatment reminders",
        version=__version__,
        description=DESCRIPTION,
        # The schema and its pages only when asked for (API_DOCS=1), and then from our files.
        openapi_url="/openapi.json" if settings.api_docs else None,
        docs_url=None,
        redoc_url=None,
        openapi_tags=[
            {"name": "patients", "description": "Enrolment, contact details, history"},
            {"name": "courses", "description": "Pause, resume, stop, end, move, events"},
            {"name": "replies", "description": "Patients' texts: the inbox, marked handled"},
            {"name": "clinic", "description": "The help phone and who hears of replies"},
            {"name": "webhooks", "description": "Called by Twilio, signed"},
            {"name": "unsubscribe", "description": "Email one-click unsubscribe (RFC 8058)"},
            {"name": "audit", "description": "Who saw or changed what (admin keys)"},
            {"name": "operations", "description": "Health and Prometheus metrics"},
        ],
    )
    app.state.runtime = runtime
    # This app's own registry: request counts, sign-ins, and the backlog read at each scrape.
    app.state.metrics = WebMetrics(
        lambda: app.state.runtime.engine if app.state.runtime is not None else None
    )
    # JSON bodies and Twilio's forms are a few kilobytes; only imports carry a file.
    uploads = {"/v1/imports": HARD_LIMIT_BYTES, web.IMPORT_PATH: HARD_LIMIT_BYTES}
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES, paths=uploads)
    # Outermost, so that refusals by the body limit and error pages carry the headers too.
    app.add_middleware(SecurityHeaders, https=settings.https)
    # Outside everything: refusals and errors are counted with the rest.
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)
    errors.install(app)
    app.include_router(clinic.router)
    app.include_router(imports.router)
    app.include_router(replies.router)
    app.include_router(worklist.router)
    app.include_router(twilio.router)
    app.include_router(unsubscribe.router)
    app.include_router(health.router)
    if settings.api_docs:
        docs.install(app)
    web.install(app)
    return app
