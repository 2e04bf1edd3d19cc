"""The fake Telegram's state: its settings, chats, queues and records, and what a test reads
back (the calls made, the messages in a chat), shared by the parts of :class:`FakeTelegram`."""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict, deque
from typing import Any

import aiohttp
from aiohttp import web

from sim.fake_telegram.records import (
    ApiCall,
    SentMessage,
    WebhookAnswer,
    _ApiError,
    _Channel,
    _Chat,
    _Injection,
)


class _FakeState:
    """What every part of the fake server keeps and reads (see :class:`FakeTelegram`)."""

    def __init__(
        self,
        *,
        token: str = "123456:TEST-TOKEN",  # noqa: S107 - a fake server's fake token
        bot_username: str = "tensionbot_demo_bot",
        global_rate: float | None = None,
        per_chat_rate: float | None = None,
        webhook_retry_delay: float = 0.25,
        webhook_max_attempts: int = 30,
    ) -> None:
        self.token = token
        self.bot_username = bot_username
        self.global_rate = global_rate
        self.per_chat_rate = per_chat_rate
        self.base_url = ""
        self.calls: list[ApiCall] = []
        self.answers: dict[str, str | None] = {}  # callback query id -> toast text
        self.throttled = 0
        self._chats: dict[int, _Chat] = {}
        self._channels: dict[int, _Channel] = {}  # public channels, by their (negative) id
        self._injections: list[_Injection] = []
        self._updates: deque[dict[str, Any]] = deque()
        self._update_ids = itertools.count(1)
        self._message_ids: dict[int, itertools.count[int]] = defaultdict(lambda: itertools.count(1))
        self._new_update = asyncio.Condition()
        self.changed = asyncio.Condition()
        self._sent_times: deque[float] = deque()
        self._chat_times: dict[int, deque[float]] = defaultdict(deque)
        self._webhook_url: str | None = None
        self._webhook_secret: str | None = None
        # Webhook delivery (see _deliver): per-chat queues, their workers, every attempt.
        self._webhook_queues: dict[int, deque[dict[str, Any]]] = defaultdict(deque)
        self._webhook_workers: dict[int, asyncio.Task[None]] = {}
        self._webhook_slots = asyncio.Semaphore(40)
        self.updates_pushed: list[int] = []  # every update id from a user, in push order
        # The bot's allowed_updates (getUpdates or setWebhook; kept until changed, as Telegram
        # keeps it). None: never given, Telegram's default. Updates of other kinds are dropped.
        self.allowed_updates: list[str] | None = None
        self.updates_not_allowed: list[dict[str, Any]] = []
        self.webhook_answers: list[WebhookAnswer] = []
        self.webhook_dropped: list[int] = []
        self.webhook_retry_delay = webhook_retry_delay
        self.webhook_retry_max_delay = 4.0
        self.webhook_max_attempts = webhook_max_attempts
        self.webhook_timeout = 30.0
        self._webhook_options: dict[str, Any] = {}
        self._webhook_error: tuple[int, str] | None = None  # (unix time, message)
        self._commands: dict[str, list[dict[str, str]]] = {}
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self.bot_id = int(token.split(":", 1)[0])
        # hold_sends(): how many more matching sends pass before the rest are held, and what
        # matches; `held` counts the calls parked right now.
        self._hold_allowance: int | None = None
        self._hold_containing = ""
        self._released = asyncio.Event()
        self.held = 0

    # ----------------------------------------------------------------- inspection

    def calls_for(self, method: str) -> list[ApiCall]:
        """Recorded calls of one method (successful or not)."""
        return [c for c in self.calls if c.method == method]

    def messages(self, chat_id: int) -> list[SentMessage]:
        """The bot's messages in a chat, in send order, edits applied."""
        chat = self._chats.get(chat_id)
        return list(chat.messages) if chat else []

    def channel_messages(self, ref: int | str) -> list[SentMessage]:
        """The bot's posts in a public channel (by ``@username`` or id), in order."""
        channel = self._find_channel(ref)
        return list(channel.messages) if channel else []

    def _find_channel(self, ref: object) -> _Channel | None:
        if isinstance(ref, str) and ref.startswith("@"):
            name = ref[1:].casefold()
            return next((c for c in self._channels.values() if c.username.casefold() == name), None)
        if isinstance(ref, int) or (isinstance(ref, str) and ref.lstrip("-").isdigit()):
            return self._channels.get(int(ref))
        return None

    def sends_to(self, chat_id: int) -> int:
        """Successful sends (not edits) to a chat."""
        return sum(
            1
            for c in self.calls
            if c.chat_id == chat_id
            and c.status == 200
            and c.method in ("sendMessage", "sendPhoto", "sendDocument")
        )

    # ----------------------------------------------------------------- chats

    def _chat(self, chat_id: int) -> _Chat:
        chat = self._chats.get(chat_id)
        if chat is None:
            raise _ApiError(400, "Bad Request: chat not found")
        return chat

    def _bot_user(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "tensionbot",
            "username": self.bot_username,
        }

    def _message_json(self, m: SentMessage) -> dict[str, Any]:
        chat = self._chats[m.chat_id]
        data: dict[str, Any] = {
            "message_id": m.message_id,
            "date": m.date,
            "chat": {"id": m.chat_id, "type": "private", "first_name": chat.user.first_name},
            "from": self._bot_user(),
        }
        if m.kind == "text":
            data["text"] = m.text or ""
        elif m.kind == "photo":
            data["photo"] = [
                {
                    "file_id": f"photo{m.message_id}",
                    "file_unique_id": f"p{m.message_id}",
                    "width": 640,
                    "height": 480,
                }
            ]
        else:
            data["document"] = {
                "file_id": f"doc{m.message_id}",
                "file_unique_id": f"d{m.message_id}",
            }
        if m.caption:
            data["caption"] = m.caption
        if m.reply_markup:
            data["reply_markup"] = m.reply_markup
        return data
