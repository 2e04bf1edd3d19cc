"""Telegram adapter: register handlers on a python-telegram-bot ``Application``.

Each callback builds a :class:`~bot.common.Sender` from the update, calls one core
service, then answers the button tap and sends any direct (unstored) reply. Only private chats
are served.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import ChatMember, Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.common import Outcome, Sender
from bot.pact.service import PactError, PactService, insight_message
from bot.returns.conversation import ConversationService
from bot.returns.crisis import CrisisService
from bot.summaries.chat import SummaryRefused
from bot.summaries.service import SummaryService
from handlers.telegram.menus import set_chat_menu
from handlers.telegram.render import render_keyboard, render_text
from handlers.telegram.who import PLATFORM

log = logging.getLogger(__name__)

Callback = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]
COMMANDS = ("help", "report", "status", "cancel", "return", "meeting", "schedule")


def _sender(update: Update) -> Sender:
    user = update.effective_user
    chat = update.effective_chat
    assert user is not None and chat is not None
    return Sender(platform=PLATFORM, user_id=user.id, chat_id=chat.id, update_id=update.update_id)


async def _finish(update: Update, outcome: Outcome) -> None:
    query = update.callback_query
    if query is not None:
        await query.answer(outcome.toast)
    if outcome.direct is not None and update.effective_chat is not None:
        text, parse_mode = render_text(outcome.direct)
        await update.effective_chat.send_message(
            text, parse_mode=parse_mode, reply_markup=render_keyboard(outcome.direct)
        )


def _kind(update: Update) -> str:
    message = update.effective_message
    if message is None:
        return "message"
    for attr, name in (
        ("photo", "photo"),
        ("voice", "voice note"),
        ("sticker", "sticker"),
        ("video", "video"),
        ("video_note", "video message"),
        ("audio", "audio file"),
        ("document", "file"),
        ("location", "location"),
        ("contact", "contact"),
        ("animation", "GIF"),
        ("poll", "poll"),
    ):
        if getattr(message, attr, None):
            return name
    return "message of that kind"


def register(
    application: Application,
    conversation: ConversationService,
    summaries: SummaryService,
    pact: PactService,
    *,
    crisis: CrisisService,
) -> None:
    """Attach tensionbot's handlers to ``application``."""
    # A private chat with a person: an update without a sender is nothing for us (ignored).
    private = filters.ChatType.PRIVATE & filters.USER

    async def on_crisis(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        assert chat is not None
        reply = await crisis.command(_sender(update).who, " ".join(context.args or []))
        await chat.send_message(reply)  # plain text: it may quote what was typed

    async def on_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        token = context.args[0] if context.args else None
        sender = _sender(update)
        await _finish(update, await conversation.start(sender, token))
        if token:  # just linked: a chair, officer or admin gets their fuller menu now
            menu = await conversation.menu_for(sender)
            if menu is not None:
                await set_chat_menu(context.bot, sender.chat_id, menu)

    def command(name: str) -> Callback:
        async def on_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            args = " ".join(context.args or [])
            await _finish(update, await conversation.command(_sender(update), name, args))

        return on_command

    async def on_other_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await _finish(update, await conversation.command(_sender(update), "unknown"))

    async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None and message.text is not None
        await _finish(update, await conversation.text(_sender(update), message.text))

    async def on_location(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None and message.location is not None
        point = message.location
        outcome = await conversation.location(_sender(update), point.latitude, point.longitude)
        await _finish(update, outcome)

    async def on_other(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await _finish(update, await conversation.unsupported(_sender(update), _kind(update)))

    async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        message = query.message
        ref = str(message.message_id) if message is not None else None
        outcome = await conversation.button(_sender(update), query.data or "", ref)
        await _finish(update, outcome)

    async def on_summary(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        assert chat is not None
        try:
            answer = await summaries.ask(
                "telegram", str(_sender(update).user_id), " ".join(context.args or [])
            )
        except SummaryRefused as exc:
            await chat.send_message(str(exc))
            return
        text, parse_mode = render_text(answer)
        await chat.send_message(text, parse_mode=parse_mode)
        for chart in answer.attachments:
            await chat.send_photo(chart.data, caption=chart.title)

    async def on_pact(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        assert chat is not None
        try:
            insight = await pact.ask_insight(
                "telegram", str(_sender(update).user_id), " ".join(context.args or [])
            )
        except PactError as exc:
            await chat.send_message(str(exc))
            return
        text, parse_mode = render_text(insight_message(insight))
        await chat.send_message(text, parse_mode=parse_mode)
        if not insight.empty:
            from handlers.files.charts import pact_attendance, png  # matplotlib, only now

            # Drawing takes a moment: off the event loop, so other chats are not held up.
            image = await asyncio.to_thread(lambda: png(pact_attendance(insight)))
            await chat.send_photo(image, caption="PACT attendance")

    application.add_handler(CommandHandler("start", on_start, filters=private))
    application.add_handler(CommandHandler("pact", on_pact, filters=private))
    application.add_handler(CommandHandler("summary", on_summary, filters=private))
    application.add_handler(CommandHandler("crisis", on_crisis, filters=private))
    for name in COMMANDS:
        application.add_handler(CommandHandler(name, command(name), filters=private))
    application.add_handler(MessageHandler(private & filters.COMMAND, on_other_command))
    application.add_handler(MessageHandler(private & filters.TEXT & ~filters.COMMAND, on_text))
    application.add_handler(MessageHandler(private & filters.LOCATION, on_location))
    application.add_handler(
        MessageHandler(private & ~filters.TEXT & ~filters.StatusUpdate.ALL, on_other)
    )
    application.add_handler(CallbackQueryHandler(on_button))

    async def on_my_member(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The person blocked the bot (``kicked``) or unblocked it (``member``) in their private
        chat: Telegram tells us at once, so nobody waits for a send to fail to find out."""
        change = update.my_chat_member
        if change is None or change.chat.type != "private":
            return
        status = change.new_chat_member.status
        if status in (ChatMember.BANNED, ChatMember.MEMBER):
            await conversation.people.bot_blocked(_sender(update), status == ChatMember.BANNED)

    application.add_handler(ChatMemberHandler(on_my_member, ChatMemberHandler.MY_CHAT_MEMBER))
