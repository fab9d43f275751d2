"""The web process: `reminders.api:app` (its runtime is built from the environment)."""

from reminders.api.application import create_app

app = create_app()

__all__ = ["app", "create_app"]
