"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives: the demo's mail
server (the tests have their own in ``tests/email_helpers.py``)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

LINK = re.compile(r"https?://\S+/t/\S+")


@dataclass
class MailInbox:
    """What the demo's SMTP server received."""

    port: int = 0
    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = BytesParser(policy=policy.default).parsebytes(envelope.content)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted"

    def to(self, address: str) -> list[EmailMessage]:
        """Messages received for ``address``."""
        return [m for m in self.messages if m["To"] == address]


@asynccontextmanager
async def mail_server() -> AsyncIterator[MailInbox]:
    """A real SMTP server on 127.0.0.1 (a free port) in this event loop."""
    from aiosmtpd.smtp import SMTP

    inbox = MailInbox()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(inbox, hostname="mail.demo", ident="demo SMTP"), "127.0.0.1", 0
    )
    inbox.port = int(server.sockets[0].getsockname()[1])
    try:
        yield inbox
    finally:
        server.close()
        await server.wait_closed()


def link_in(message: EmailMessage) -> str:
    """The personal web-form link in an email's plain-text part."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    found = LINK.findall(str(part.get_content()))
    assert found, "no link in the email"
    return str(found[0])
