"""The clinic's web pages: sign-in, patients, enrolment, spreadsheet upload, timelines, the
inbox of patients' replies, the clinic's settings, and its staff and keys for admins.

Server-rendered HTML forms under /clinic, calling the same services as the API.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.staticfiles import StaticFiles

from reminders.web import account, admin, auth, course, edit, overview, patients, replies, settings
from reminders.web.pages import STATIC, install_handlers
from reminders.web.patients import IMPORT_PATH
from reminders.web.security import PREFIX

__all__ = ["IMPORT_PATH", "install"]


def install(app: FastAPI) -> None:
    """Add the pages and their static files to the app."""
    install_handlers(app)

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        """The web process's address opens the clinic pages (sign-in first)."""
        return RedirectResponse(PREFIX, status_code=307)

    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="clinic-static")
    # course last: its router ends with the catch-all 404 page of /clinic/...
    for module in (auth, account, admin, overview, patients, edit, replies, settings, course):
        app.include_router(module.router)
