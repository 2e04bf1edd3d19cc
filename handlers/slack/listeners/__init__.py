"""Slack listeners, one module per kind, the way Slack's Bolt starter template lays them out:
``actions`` (buttons), ``views`` (modal submissions), ``commands`` (slash commands), ``shortcuts``
(global shortcuts), ``events`` (the App Home), each with ``register(app, services)``; ``middleware`` runs before all of them.

Every listener does the same few things: ``ack()`` first (Slack wants it within 3 seconds; a
modal submission's ``ack`` carries its errors, so it comes after the one service call), decode
the payload (``helpers``), call one core service, and render its answer. The identifiers they
match on are in :mod:`handlers.slack.ids`.
"""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from handlers.slack.listeners import actions, commands, events, middleware, shortcuts, views
from handlers.slack.listeners.services import SlackServices

__all__ = ["SlackServices", "register_listeners"]


def register_listeners(app: AsyncApp, services: SlackServices) -> None:
    """Attach every tensionbot listener to ``app``."""
    middleware.register(app, services)
    actions.register(app, services)
    views.register(app, services)
    commands.register(app, services)
    shortcuts.register(app, services)
    events.register(app, services)
