"""Who sent a Slack request, as the core's identity step takes it (``bot/people/identity.py``)."""

from __future__ import annotations

from bot.people.identity import Who

PLATFORM = "slack"


def who(user_id: str) -> Who:
    """A Slack user, by their Slack user id."""
    return Who(PLATFORM, user_id)
