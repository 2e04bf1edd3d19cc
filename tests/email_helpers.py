"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives, and can refuse a
recipient or ask for a message to be sent again later, as real mail servers do."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.smtp import SMTP


@dataclass
class Inbox:
    """What the server received (parsed), and how it should answer."""

    port: int = 0
    messages: list[EmailMessage] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)  # 550: no such mailbox
    try_later: int = 0  # answer this many DATA commands 451 (after reading them)
    deferred: list[EmailMessage] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address in self.refused:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = BytesParser(policy=policy.default).parsebytes(envelope.content)
        assert isinstance(message, EmailMessage)
        if self.try_later > 0:
            self.try_later -= 1
            self.deferred.append(message)
            return "451 4.3.0 Please try again later"
        self.messages.append(message)
        return "250 Message accepted"

    def to(self, address: str) -> list[EmailMessage]:
        """Messages received for ``address``."""
        return [m for m in self.messages if m["To"] == address]


@asynccontextmanager
async def smtp_server() -> AsyncIterator[Inbox]:
    """An SMTP server on 127.0.0.1 (a free port), in this event loop."""
    inbox = Inbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(inbox, hostname="mail.test", ident="test SMTP"), "127.0.0.1", 0
    )
    inbox.port = int(server.sockets[0].getsockname()[1])
    try:
        yield inbox
    finally:
        server.close()
        await server.wait_closed()


def text_of(message: EmailMessage, subtype: str) -> str:
    """The message's text/plain or text/html part."""
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None, f"no text/{subtype} part"
    return str(part.get_content())
