"""Slack message links as answers to "Where exactly?" (:class:`bot.ports.MessageLinks`).

A reporter filling in the form in Slack can paste a message's link (Slack's "Copy link" on a
message) instead of describing the place. The link is checked for its shape (and, when the
workspace the form came from is known, that it is a message of that workspace) and kept in a
canonical form, ``Message link: https://…`` (:data:`bot.places.LINK_PREFIX`). Only links this
module has checked are ever shown to a team as links: everything else stays text.
"""

from __future__ import annotations

import re

from bot.places import LINK_PREFIX

_LOOKS_LIKE = re.compile(r"^\s*(https?://)?[^\s/]*\.slack\.com/", re.IGNORECASE)
_PERMALINK = re.compile(
    r"^https://(?P<workspace>[a-z0-9][a-z0-9-]{0,62})\.slack\.com/archives/"
    r"(?P<channel>[CGD][A-Z0-9]{6,20})/p(?P<ts>\d{16})"
    r"(?:\?thread_ts=\d{10}\.\d{6}(?:&cid=[CGD][A-Z0-9]{6,20})?)?$"
)
_HOW = (
    "In Slack, choose “Copy link” on the message: it looks like "
    "https://your-workspace.slack.com/archives/C…/p…. Or describe the place in words."
)


class SlackMessageLinks:
    """Links to messages of one Slack workspace (any workspace when it is not known)."""

    def __init__(self, workspace: str | None = None) -> None:
        self.workspace = workspace

    def check(self, answer: str) -> tuple[str | None, str | None]:
        """``(stored, None)`` for a valid message link of the workspace, ``(None, why)`` for a
        Slack link that is broken or another workspace's, and ``(None, None)`` for anything
        else (an ordinary answer, kept as typed)."""
        text = answer.strip()
        if not _LOOKS_LIKE.match(text):
            return None, None
        found = _PERMALINK.match(text)
        if found is None:
            return None, f"That does not look like a link to a Slack message. {_HOW}"
        workspace = self.workspace
        if workspace and found["workspace"] != workspace.lower():
            return None, (
                f"That message is in another Slack workspace ({found['workspace']}.slack.com), "
                f"which the team cannot open. Please link a message in this workspace "
                f"({workspace}.slack.com), or describe the place in words."
            )
        canonical = (
            f"https://{found['workspace']}.slack.com/archives/{found['channel']}/p{found['ts']}"
        )
        return LINK_PREFIX + canonical, None

    def url(self, stored: str) -> str | None:
        """The URL of a stored message link (written by :meth:`check`), else None."""
        if not stored.startswith(LINK_PREFIX):
            return None
        url = stored.removeprefix(LINK_PREFIX)
        return url if _PERMALINK.match(url) else None
