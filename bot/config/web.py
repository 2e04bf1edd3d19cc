"""The ``[web]`` section: the no-app web form served by the bot's own HTTP server.

The form is on only when ``TENSIONBOT_WEB_SECRET`` is set (it signs the personal links, the
session cookies and the CSRF tokens); the server must be listening (``[server] port``).
"""

from __future__ import annotations

from pydantic import Field

from bot.config.base import HttpUrl, _Section

#: Signs web links, sessions and CSRF tokens; at least 32 characters.
ENV_WEB_SECRET = "TENSIONBOT_WEB_SECRET"  # noqa: S105 - the variable's name, not a secret


class WebConfig(_Section):
    """Where people reach the web form and how long a session lasts."""

    # The address people's browsers reach the server at (a reverse proxy's https:// address in
    # production); personal links are made from it.
    base_url: HttpUrl = "http://127.0.0.1:8080"
    path: str = Field(default="/return", pattern=r"^/[a-z0-9/_-]*[a-z0-9]$")
    # A session (what a link is exchanged for) lasts this long, and never past the return's close.
    session_minutes: int = Field(default=30, ge=5, le=240)
    # Cookies only over HTTPS. Turn off only to test on http://127.0.0.1.
    secure_cookies: bool = True
    # Every form email also carries a link to report a tension at any time (the web's /report),
    # valid this many days (a monthly email always brings a fresh one).
    report_link_days: int = Field(default=35, ge=1, le=366)
    # A message's buttons by email (the four-weekly "is this still a problem?", a PACT chair's
    # "It was cancelled") are personal links to a page here, valid this many days.
    button_link_days: int = Field(default=28, ge=1, le=366)
    # Each PACT neighbourhood's upcoming meetings as a public page (/pact/<key>) and calendar
    # feed (/pact/<key>.ics): no personal data; needs no secret.
    public_pact: bool = False
