"""Running the service: migrations, the worker, a pass of sends, status, the web process, a demo."""

from __future__ import annotations

from typing import Annotated

import typer

from reminders.cli.base import app, clear_errors, db_app, runtime
from reminders.clock import utcnow
from reminders.config import get_settings, require_secret_key
from reminders.db import read_scope
from reminders.error_reports import init_error_reports
from reminders.logs import setup_logging
from reminders.runtime import Runtime


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration to DATABASE_URL (run by the Procfile's release phase)."""
    from reminders.migrations import upgrade

    with clear_errors():
        settings = get_settings()
    setup_logging(settings)
    upgrade(settings.database_url)
    typer.echo("database is up to date")


@app.command("send-due")
def send_due_command() -> None:
    """Plan, then send every message that is due now, and exit."""
    from reminders.worker import send_due

    rt = runtime()
    with clear_errors():
        report = send_due(rt)
    typer.echo(", ".join(f"{k} {v}" for k, v in vars(report).items() if v) or "nothing due")


@app.command()
def worker() -> None:
    """Run the background worker (planner, dispatcher, reaper) until SIGTERM."""
    from reminders.channels.registry import build_transports
    from reminders.metrics import WorkerMetrics
    from reminders.metrics_http import worker_metrics_server
    from reminders.worker import run

    rt = runtime()
    metrics = WorkerMetrics()
    with clear_errors():
        require_secret_key(rt.settings)
        build_transports(rt.settings)  # a missing provider setting stops the start, clearly
        # Before anything else runs, so a missing token or a port taken stops the start.
        server = worker_metrics_server(rt.settings, metrics.registry)
    init_error_reports(rt.settings, process="worker")
    if _live_courses(rt) == 0:
        typer.echo(
            "No course is enrolled yet: nothing to send. Enroll a patient (reminders enroll, "
            "reminders import, or the clinic page) and the worker picks it up within a minute."
        )
    run(rt, metrics=metrics, metrics_server=server)


def _live_courses(rt: Runtime) -> int | None:
    """How many courses are running; None when the database cannot say yet (not migrated:
    the worker itself says so)."""
    from sqlalchemy.exc import DBAPIError
    from sqlmodel import col, func, select

    from reminders.models import Course
    from reminders.services import LIVE_STATUSES

    try:
        with read_scope(rt.engine) as session:
            query = select(func.count()).select_from(Course)
            return session.exec(query.where(col(Course.status).in_(LIVE_STATUSES))).one()
    except DBAPIError:
        return None


@app.command()
def status() -> None:
    """Backlog and live workers; exits 1 when messages are overdue or no worker is alive."""
    from reminders.status import collect, render

    rt = runtime()
    with read_scope(rt.engine) as session:
        report = collect(session, now=utcnow())
    typer.echo(render(report))
    if not report.healthy:
        raise typer.Exit(1)


@app.command()
def demo(
    days: Annotated[int, typer.Option(help="Days of the course to play.")] = 240,
) -> None:
    """A tour on a throw-away database: a clinic, three patients, a course played on a clock."""
    from reminders.demo import run_demo

    run_demo(days=days)


def clinic_address(public_base_url: str | None, host: str, port: int) -> str:
    """Where staff open the clinic pages: the public address, else this machine's."""
    if public_base_url:
        return public_base_url.rstrip("/") + "/clinic"
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in shown:  # an IPv6 address goes in brackets
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/clinic"


@app.command()
def web(
    port: Annotated[int, typer.Option(envvar="PORT", help="Port to listen on.")] = 8000,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "0.0.0.0",
) -> None:
    """Run the web process: clinic API, Twilio webhooks, unsubscribe links, health, metrics."""
    import uvicorn

    from reminders.app import create_app

    rt = runtime()
    with clear_errors():
        require_secret_key(rt.settings)
    init_error_reports(rt.settings, process="web")
    typer.echo(f"Clinic pages: {clinic_address(rt.settings.public_base_url, host, port)}")
    # log_config=None leaves logging as set up above, so uvicorn's lines are masked too.
    uvicorn.run(create_app(rt), host=host, port=port, log_config=None)
