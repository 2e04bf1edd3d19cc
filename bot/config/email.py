"""The ``[email]`` section: forms and reminders by email, for people whose channel is email.

Email is on when ``host`` is set and the web form is on (``TENSIONBOT_WEB_SECRET``): every form
by email carries the person's personal link to the web form. The SMTP password, if the server
needs a login, comes only from ``TENSIONBOT_SMTP_PASSWORD``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from bot.config.base import OneLine, _Section

ENV_SMTP_PASSWORD = "TENSIONBOT_SMTP_PASSWORD"  # noqa: S105 - the variable's name, not a secret


class EmailConfig(_Section):
    """The SMTP server the bot sends through, and how fast."""

    host: OneLine | None = None  # unset: no email
    port: int = Field(default=587, ge=1, le=65535)
    # "starttls" (port 587), "tls" (implicit TLS, port 465); "none" only for a server on
    # 127.0.0.1 (tests, the demo): the password is never sent without TLS.
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: OneLine | None = None  # log in with this and TENSIONBOT_SMTP_PASSWORD
    from_address: OneLine = Field(default="tensions@example.gov.uk", pattern=r"^[^@\s]+@[^@\s]+$")
    from_name: OneLine = "Community tension return"  # the From header's display name
    timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    global_rate: float = Field(default=2.0, gt=0, description="messages per second overall")
    per_recipient_rate: float = Field(default=0.2, gt=0, description="per person per second")
    max_in_flight: int = Field(default=2, ge=1, le=16)
    # Someone unreachable on their own platform (never linked, or blocked the bot) gets the
    # form by email instead, once.
    fallback: bool = False

    @model_validator(mode="after")
    def _password_only_over_tls(self) -> EmailConfig:
        if self.username is not None and self.security == "none":
            raise ValueError('email.username needs security = "starttls" or "tls"')
        return self
