"""Answers to "Where exactly?" that are not typed words: a chat message link.

A reporter who saw the tension in a chat channel can paste the message's link (Slack's "Copy
link" on a message) instead of describing the place. The link is checked for its shape (and,
when the workspace the form came from is known, that it is a message of that workspace), kept
in a canonical form as ``Message link: https://…``, and shown to the team as a link. Only links
this module has checked are ever shown as links: everything else stays text.
"""

from __future__ import annotations

import re

LINK_PREFIX = "Message link: "

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


def message_link(answer: str, workspace: str | None) -> tuple[str | None, str | None]:
    """``(stored, None)`` for a valid message link of ``workspace`` (any workspace when it is
    not known), ``(None, why)`` for a Slack link that is broken or another workspace's, and
    ``(None, None)`` for anything else (an ordinary answer, kept as typed)."""
    text = answer.strip()
    if not _LOOKS_LIKE.match(text):
        return None, None
    found = _PERMALINK.match(text)
    if found is None:
        return None, f"That does not look like a link to a Slack message. {_HOW}"
    if workspace and found["workspace"] != workspace.lower():
        return None, (
            f"That message is in another Slack workspace ({found['workspace']}.slack.com), "
            f"which the team cannot open. Please link a message in this workspace "
            f"({workspace}.slack.com), or describe the place in words."
        )
    canonical = f"https://{found['workspace']}.slack.com/archives/{found['channel']}/p{found['ts']}"
    return LINK_PREFIX + canonical, None


def stored_link(answer: str) -> str | None:
    """The URL of a stored message link (written by :func:`message_link`), else None."""
    if not answer.startswith(LINK_PREFIX):
        return None
    url = answer.removeprefix(LINK_PREFIX)
    return url if _PERMALINK.match(url) else None
