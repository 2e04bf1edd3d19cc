"""The platform name the Telegram adapter gives the core's identity step (``bot/people/identity.py``)."""

from __future__ import annotations

PLATFORM = "telegram"
