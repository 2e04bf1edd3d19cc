"""The Bot API methods on chats and messages: what the bot sends and edits (checked as strictly
as Telegram checks it), button answers, ``getMe`` and the command menus."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

from sim.fake_telegram.delivery import _Delivery
from sim.fake_telegram.records import SentMessage, _ApiError, _Channel, _Chat, _int_or_none


class _Methods(_Delivery):
    """The Bot API methods the bot calls on chats and messages (see :class:`FakeTelegram`)."""

    def _writable_chat(self, params: dict[str, Any]) -> _Chat:
        chat_id = _int_or_none(params.get("chat_id"))
        if chat_id is None:
            raise _ApiError(400, "Bad Request: chat_id is empty")
        chat = self._chat(chat_id)
        if chat.blocked:
            raise _ApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    def _channel_target(self, params: dict[str, Any]) -> _Channel | None:
        """The public channel a send is for (None: a private chat), refused as Telegram refuses
        it: an unknown @username or channel id is "chat not found"; a bot that is not in the
        channel is forbidden; a member that is not an administrator cannot post."""
        raw = params.get("chat_id")
        is_channel = (isinstance(raw, str) and raw.startswith("@")) or (
            (value := _int_or_none(raw)) is not None and value < 0
        )
        if not is_channel:
            return None
        channel = self._find_channel(raw)
        if channel is None:
            raise _ApiError(400, "Bad Request: chat not found")
        if channel.bot_status == "kicked":
            raise _ApiError(403, "Forbidden: bot was kicked from the channel chat")
        if channel.bot_status == "left":
            raise _ApiError(403, "Forbidden: bot is not a member of the channel chat")
        if channel.bot_status != "administrator":
            raise _ApiError(400, "Bad Request: need administrator rights in the channel chat")
        return channel

    async def _post_in_channel(
        self, channel: _Channel, params: dict[str, Any], text: str
    ) -> dict[str, Any]:
        message = SentMessage(
            chat_id=channel.chat_id,
            message_id=len(channel.messages) + 1,
            text=text,
            parse_mode=params.get("parse_mode"),
            reply_markup=params.get("reply_markup"),
            date=int(time.time()),
        )
        channel.messages.append(message)
        async with self.changed:
            self.changed.notify_all()
        chat = {
            "id": channel.chat_id,
            "type": "channel",
            "title": channel.title,
            "username": channel.username,
        }
        return {
            "message_id": message.message_id,
            "date": message.date,
            "chat": chat,
            "sender_chat": chat,
            "text": text,
        }

    async def _store(self, chat: _Chat, message: SentMessage) -> dict[str, Any]:
        chat.messages.append(message)
        async with self.changed:
            self.changed.notify_all()
        return self._message_json(message)

    async def _api_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            **self._bot_user(),
            "can_join_groups": False,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _api_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_target(params)
        chat = self._writable_chat(params) if channel is None else None
        text = params.get("text")
        if not text:
            raise _ApiError(400, "Bad Request: message text is empty")
        if len(str(text)) > 4096:
            raise _ApiError(400, "Bad Request: message is too long")
        if channel is not None:
            return await self._post_in_channel(channel, params, str(text))
        assert chat is not None
        message = SentMessage(
            chat_id=chat.user.chat_id,
            message_id=next(self._message_ids[chat.user.chat_id]),
            text=str(text),
            parse_mode=params.get("parse_mode"),
            reply_markup=params.get("reply_markup"),
            date=int(time.time()),
        )
        return await self._store(chat, message)

    async def _media(self, params: dict[str, Any], kind: str) -> dict[str, Any]:
        if self._channel_target(params) is not None:  # posts in channels: text only, here
            raise _ApiError(400, "Bad Request: the fake posts only text in channels")
        chat = self._writable_chat(params)
        message = SentMessage(
            chat_id=chat.user.chat_id,
            message_id=next(self._message_ids[chat.user.chat_id]),
            text=None,
            caption=params.get("caption"),
            parse_mode=params.get("parse_mode"),
            reply_markup=params.get("reply_markup"),
            kind=kind,
            date=int(time.time()),
        )
        upload = params.get(kind)
        if isinstance(upload, dict):
            message.file_name, message.file_data = upload.get("filename"), upload.get("data")
        return await self._store(chat, message)

    async def _api_sendPhoto(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self._media(params, "photo")

    async def _api_sendDocument(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self._media(params, "document")

    def _find(self, chat: _Chat, params: dict[str, Any]) -> SentMessage:
        message_id = _int_or_none(params.get("message_id"))
        for m in chat.messages:
            if m.message_id == message_id:
                return m
        raise _ApiError(400, "Bad Request: message to edit not found")

    async def _api_editMessageText(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._writable_chat(params)
        m = self._find(chat, params)
        text, markup = str(params.get("text") or ""), params.get("reply_markup")
        if not text:
            raise _ApiError(400, "Bad Request: message text is empty")
        if text == m.text and markup == m.reply_markup:
            raise _ApiError(
                400,
                "Bad Request: message is not modified: specified new message "
                "content and reply markup are exactly the same as a current "
                "content and reply markup of the message",
            )
        m.text, m.reply_markup, m.parse_mode = text, markup, params.get("parse_mode")
        m.edits += 1
        async with self.changed:
            self.changed.notify_all()
        return {**self._message_json(m), "edit_date": int(time.time())}

    async def _api_editMessageReplyMarkup(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._writable_chat(params)
        m = self._find(chat, params)
        m.reply_markup = params.get("reply_markup")
        m.edits += 1
        async with self.changed:
            self.changed.notify_all()
        return self._message_json(m)

    async def _api_answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        self.answers[str(params.get("callback_query_id"))] = params.get("text")
        async with self.changed:
            self.changed.notify_all()
        return True

    async def answer_to(self, query_id: str, timeout: float = 10.0) -> str | None:
        """Wait until the bot has answered button tap ``query_id``; its toast text (or None)."""

        async def wait() -> str | None:
            async with self.changed:
                while query_id not in self.answers:
                    await self.changed.wait()
                return self.answers[query_id]

        return await asyncio.wait_for(wait(), timeout)

    async def _api_deleteMessage(self, params: dict[str, Any]) -> bool:
        chat = self._writable_chat(params)
        m = self._find(chat, params)
        chat.messages.remove(m)
        return True

    def commands(self, scope: str = "default") -> list[tuple[str, str]]:
        """The command menu set for a scope: ``"default"``, ``"all_private_chats"`` or
        ``"chat:<id>"`` (as (command, description) pairs; empty when none is set)."""
        return [(c["command"], c["description"]) for c in self._commands.get(scope, [])]

    def _scope_key(self, params: dict[str, Any]) -> str:
        scope = params.get("scope") or {"type": "default"}
        if isinstance(scope, str):
            scope = json.loads(scope)
        kind = scope.get("type")
        if kind in ("default", "all_private_chats", "all_group_chats", "all_chat_administrators"):
            return str(kind)
        if kind in ("chat", "chat_administrators", "chat_member"):
            chat_id = _int_or_none(scope.get("chat_id"))
            if chat_id is None or chat_id not in self._chats:
                raise _ApiError(400, "Bad Request: chat not found")
            return f"chat:{chat_id}" if kind == "chat" else f"{kind}:{chat_id}"
        raise _ApiError(400, "Bad Request: unsupported bot command scope type")

    async def _api_setMyCommands(self, params: dict[str, Any]) -> bool:
        commands = params.get("commands")
        if isinstance(commands, str):
            commands = json.loads(commands)
        if not isinstance(commands, list) or len(commands) > 100:
            raise _ApiError(400, "Bad Request: can't parse commands JSON object")
        for c in commands:
            if not _COMMAND.match(str(c.get("command", ""))):
                raise _ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(c.get("description", ""))) <= 256:
                raise _ApiError(400, "Bad Request: command description is empty or too long")
        key = self._scope_key(params)
        self._commands[key] = [
            {"command": str(c["command"]), "description": str(c["description"])} for c in commands
        ]
        return True

    async def _api_deleteMyCommands(self, params: dict[str, Any]) -> bool:
        self._commands.pop(self._scope_key(params), None)
        return True

    async def _api_getMyCommands(self, params: dict[str, Any]) -> list[Any]:
        return list(self._commands.get(self._scope_key(params), []))

    async def _api_logOut(self, params: dict[str, Any]) -> bool:
        return True

    async def _api_close(self, params: dict[str, Any]) -> bool:
        return True


_COMMAND = re.compile(r"^[a-z0-9_]{1,32}$")
