"""The HTTP API: the clinic API under /v1, Twilio's webhooks, unsubscribe links, health.

The app that serves them, with the clinic pages, is assembled in reminders/app.py.
"""
