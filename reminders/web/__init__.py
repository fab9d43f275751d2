"""The clinic's web pages: sign-in, patients, enrolment, spreadsheet upload, timelines.

Server-rendered HTML forms under /clinic, calling the same services as the API.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from reminders.config import Settings
from reminders.web import auth, course, overview, patients
from reminders.web.pages import STATIC, install_handlers
from reminders.web.patients import IMPORT_PATH
from reminders.web.security import PREFIX, add_sessions

__all__ = ["IMPORT_PATH", "install"]


def install(app: FastAPI, settings: Settings) -> None:
    """Add the pages, their static files and the session cookie to the app."""
    add_sessions(app, settings)
    install_handlers(app)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="clinic-static")
    for module in (auth, overview, patients, course):
        app.include_router(module.router)
