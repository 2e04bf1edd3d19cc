"""Answers to "Where exactly?" that are not typed words: a link to a message on a platform.

A reporter who saw the tension in a chat channel can paste the message's link instead of
describing the place. Which links count, and how they are checked, is the platform's (a
:class:`bot.ports.MessageLinks` from its adapter); the core only keeps a checked link in one
stored form, ``Message link: https://…``, and shows it to the team as a link only when the same
checker accepts it again. Everything else stays text, whatever it looks like.
"""

from __future__ import annotations

LINK_PREFIX = "Message link: "
