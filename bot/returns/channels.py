"""Who gets the form where (issue 15): the platforms forms go on, and a person's place among them.

A form goes where :meth:`bot.domain.Person.reach` says (their ``channel`` first, then the chat
they connected, unless they blocked the bot there, then an imported address, then their email
address), with two rules of its own: email only with the web form on (a form email is its
personal link), and email only when it is the person's own channel. Someone whose own platform
is Telegram or Slack and who cannot be reached there (never linked, blocked the bot) is
unreachable, and gets the form by email only through ``email.fallback``, once.
"""

from __future__ import annotations

from bot.config import Config
from bot.domain import Person


def form_platforms(config: Config, *, web_form: bool) -> frozenset[str]:
    """The platforms forms go on: the bot's, email only when the web form is on."""
    return config.platforms if web_form else config.platforms - {"email"}


def form_reach(person: Person, platforms: frozenset[str]) -> tuple[str, str] | None:
    """Where ``person``'s form and reminders go, as (platform, recipient); None: unreachable."""
    reach = person.reach(platforms, skip_blocked=True)
    own = person.own_platform(platforms)
    if reach is not None and reach[0] == "email" and own not in (None, "email"):
        return None  # their own platform is a chat app they cannot be reached on
    return reach


def fallback_reach(
    person: Person, platforms: frozenset[str], *, fallback: bool
) -> tuple[str, str] | None:
    """``email.fallback``: where the form goes instead for someone unreachable on their own
    platform (their email address), or None when email or the fallback is off."""
    if "email" not in platforms or not fallback:
        return None
    return "email", person.email
