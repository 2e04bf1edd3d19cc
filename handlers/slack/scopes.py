"""Which feature calls which Slack Web API method, and the bot token scope each needs.

The one table of the bot's Slack needs. ``tensionbot doctor`` checks the installed token's
scopes (the ``x-oauth-scopes`` header) against :func:`needed_scopes`; a test checks that
``deploy/slack-manifest.yml`` asks for exactly these scopes and that every Web API method the
Slack handlers call is in the table. Scopes from Slack's method documentation; views.open,
views.publish and auth.test need none.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Use:
    """A feature calls ``method``, which needs ``scope`` (None: no scope)."""

    feature: str
    method: str
    scope: str | None


FEATURES: dict[str, str] = {
    "actions": "tensions routed to teams: the action message, its updates and thread",
    "ephemeral": "answers only the person sees (buttons, slash commands, refusals)",
    "reporters": "reporters in Slack: the return as a DM, the form modal, App Home",
    "uploads": "the board summary, /tensions, /pact and PACT calendar invitations (files)",
    "commands": "the /tensions, /pact and /crisis slash commands and the crisis shortcuts",
    "channels": "checking the bot is in each team, duty and summary channel (doctor)",
}
"""Every feature, with what it is for (a missing scope is reported with this)."""

USES: tuple[Use, ...] = (
    Use("actions", "chat.postMessage", "chat:write"),
    Use("actions", "chat.update", "chat:write"),
    Use("ephemeral", "chat.postEphemeral", "chat:write"),
    Use("reporters", "conversations.open", "im:write"),
    Use("reporters", "chat.postMessage", "chat:write"),
    Use("reporters", "views.open", None),
    Use("reporters", "views.publish", None),
    Use("uploads", "files.getUploadURLExternal", "files:write"),  # files_upload_v2
    Use("uploads", "files.completeUploadExternal", "files:write"),  # files_upload_v2
    # Not a Web API method: slash commands and shortcuts need it.
    Use("commands", "commands", "commands"),
    Use("channels", "conversations.info", "channels:read"),  # public channels
    Use("channels", "conversations.info", "groups:read"),  # private channels
    Use("channels", "auth.test", None),
)

SDK_METHODS: dict[str, tuple[str, ...]] = {
    "files_upload_v2": ("files.getUploadURLExternal", "files.completeUploadExternal"),
}
"""slack_sdk helpers that call several Web API methods."""


def needed_scopes(features: Iterable[str] | None = None) -> dict[str, list[str]]:
    """Scope -> the features that need it (all features when ``features`` is None)."""
    wanted = set(FEATURES) if features is None else set(features)
    needed: dict[str, list[str]] = {}
    for use in USES:
        if use.scope is not None and use.feature in wanted:
            users = needed.setdefault(use.scope, [])
            if use.feature not in users:
                users.append(use.feature)
    return needed


def methods() -> set[str]:
    """Every Web API method in the table."""
    return {use.method for use in USES if "." in use.method}
