"""Email out: the :class:`bot.ports.Messenger` for the ``email`` channel, over aiosmtplib.

A message's buttons become personal links to pages on the bot's web server (the core's
:class:`~bot.returns.web_buttons.WebButtonService`, which signs them for the person with the
recipient address), or words saying how to answer when the web is off.

One SMTP connection per message (a monthly return is tens to hundreds of emails, spread by the
outbox's rate limit), with STARTTLS or implicit TLS and a login from the environment. The outbox
gives each row's idempotency key (:class:`bot.ports.KeyedMessenger`), which becomes the email's
Message-ID, so a retried send is recognisable. SMTP answers are classified like a platform's:
4xx, timeouts and lost connections are retried with the outbox's backoff; 5xx for the recipient
(no such mailbox) fails for good. Never log an address or the message: personal data.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime

import aiosmtplib

from bot.config import Config
from bot.messages import OutgoingMessage
from bot.ports import SendResult, TransientStoreError
from bot.returns.web_buttons import WebButtonService, without_web
from handlers.email.render import build

log = logging.getLogger(__name__)


class EmailMessenger:
    """Sends neutral messages as email through the configured SMTP server."""

    channel = "email"

    def __init__(self, config: Config, buttons: WebButtonService | None = None) -> None:
        self.config, self.buttons = config, buttons
        email = config.email
        if email.host is None:
            raise ValueError("email.host is not set")
        self.settings = email
        password = config.secrets.smtp_password
        self._password = password.get_secret_value() if password is not None else None

    async def send(
        self,
        recipient: str,
        message: OutgoingMessage,
        edit_ref: str | None = None,
        thread_ref: str | None = None,
    ) -> SendResult:
        """Send without an outbox row's key: a Message-ID of its own, new each time."""
        return await self.send_keyed(f"unkeyed:{secrets.token_hex(16)}", recipient, message)

    async def send_keyed(
        self,
        key: str,
        recipient: str,
        message: OutgoingMessage,
        edit_ref: str | None = None,
        thread_ref: str | None = None,
    ) -> SendResult:
        """Send one email (an edit of an earlier message is sent as a new email)."""
        s = self.settings
        if message.buttons:
            try:
                message = (
                    await self.buttons.for_email(recipient, message)
                    if self.buttons is not None
                    else without_web(self.config, message)
                )
            except TransientStoreError:
                # The links need the person's id: nothing was sent, try again later.
                log.warning("email: the database is unavailable for a message's links")
                return SendResult(ok=False, error="database unavailable", not_sent=True)
        mail = build(
            message,
            key=key,
            recipient=recipient,
            from_address=s.from_address,
            from_name=s.from_name,
            now=datetime.now(UTC),
        )
        login = s.username is not None and self._password is not None
        try:
            await aiosmtplib.send(
                mail,
                hostname=s.host,
                port=s.port,
                use_tls=s.security == "tls",
                start_tls=True if s.security == "starttls" else False,
                username=s.username if login else None,
                password=self._password if login else None,
                timeout=s.timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [e.code for e in exc.recipients]
            permanent = all(500 <= c < 600 for c in codes)
            return SendResult(ok=False, permanent=permanent, error=f"recipient refused {codes}")
        except aiosmtplib.SMTPResponseException as exc:
            permanent = 500 <= exc.code < 600 and not isinstance(
                exc, aiosmtplib.SMTPAuthenticationError
            )
            log.warning("email: the SMTP server answered %s", exc.code)
            return SendResult(ok=False, permanent=permanent, error=f"SMTP {exc.code}")
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            # Not reached, timed out, disconnected, TLS refused: try again later.
            log.warning("email: sending failed (%s)", type(exc).__name__)
            return SendResult(ok=False, error=type(exc).__name__)
        return SendResult(ok=True, message_ref=str(mail["Message-ID"]))


__all__ = ["EmailMessenger"]
