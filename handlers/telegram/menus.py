"""The Telegram command menu ("/" button), per role: setMyCommands with scopes.

Everyone gets a reporter's commands (the default scope); a chair, the Prevent and Cohesion
Officer and admins get their own fuller menu in their chat (BotCommandScopeChat). The menus
come from the same list as /help (``bot.texts.commands_for``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from telegram import Bot, BotCommand, BotCommandScopeChat, BotCommandScopeDefault
from telegram.error import TelegramError

from bot.returns.conversation import ConversationService
from handlers.telegram.who import PLATFORM

log = logging.getLogger(__name__)


def _commands(commands: Sequence[tuple[str, str]]) -> list[BotCommand]:
    return [BotCommand(command.removeprefix("/"), what) for command, what in commands]


async def set_menus(bot: Bot, conversation: ConversationService) -> None:
    """Set everyone's menu and each privileged person's own (at start-up). A chat Telegram
    refuses (e.g. the person deleted the chat) is logged by id and skipped."""
    default, extra = await conversation.menus(PLATFORM)
    await bot.set_my_commands(_commands(default), scope=BotCommandScopeDefault())
    for chat, commands in extra.items():
        await set_chat_menu(bot, int(chat), commands)


async def set_chat_menu(bot: Bot, chat_id: int, commands: Sequence[tuple[str, str]]) -> None:
    """One person's menu in their chat."""
    try:
        await bot.set_my_commands(_commands(commands), scope=BotCommandScopeChat(chat_id))
    except TelegramError as exc:
        log.warning("could not set the command menu of chat %s: %s", chat_id, exc)
