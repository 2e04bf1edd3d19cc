"""A local simulated Telegram Bot API server (aiohttp, 127.0.0.1).

It is a network peer, not a mock: python-telegram-bot talks to it over HTTP exactly as it talks to
api.telegram.org (``Bot(token, base_url=f"{fake.base_url}/bot")``), and it answers with real Bot API
JSON. It keeps each private chat's messages (with edits applied), delivers updates from simulated
users by ``getUpdates`` long polling or by webhook (in order per chat, each posted again with a
growing delay until the bot answers 2xx, as Telegram does), can enforce Telegram's rate limits (429 with
``retry_after``), and can inject errors (429, 403, 400, 5xx, timeouts) for fault tests.
``getMe``, ``getWebhookInfo`` and ``setMyCommands`` answer and check as the real API does (the
command menus are kept per scope: :meth:`FakeTelegram.commands`). Public channels
(:meth:`FakeTelegram.channel`, by ``@username`` or id) take posts only from a bot that
administers them, refusing the others as Telegram does ("chat not found", "bot is not a member
of the channel chat", "need administrator rights in the channel chat").

The parts: :mod:`.server` (the aiohttp server, faults and rate limits), :mod:`.methods` (the
message and command-menu methods), :mod:`.delivery` (the update queue, getUpdates and the
webhook), :mod:`.state` and :mod:`.records` (what it keeps), :mod:`.user` (:class:`SimUser`).
"""

from sim.fake_telegram.records import (
    SENDING_METHODS,
    ApiCall,
    SentMessage,
    WebhookAnswer,
    _Chat,
)
from sim.fake_telegram.server import FakeTelegram
from sim.fake_telegram.user import SimUser

# _Chat: bench/platform.py subclasses FakeTelegram and overrides _store(chat: _Chat, ...).
__all__ = [
    "SENDING_METHODS",
    "ApiCall",
    "FakeTelegram",
    "SentMessage",
    "SimUser",
    "WebhookAnswer",
    "_Chat",
]
