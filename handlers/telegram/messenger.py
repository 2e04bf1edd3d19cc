"""Sends neutral messages through python-telegram-bot and classifies the platform's answer."""

from __future__ import annotations

import logging
import warnings
from datetime import timedelta

from telegram import Bot, InputFile, LinkPreviewOptions
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.warnings import PTBDeprecationWarning

from bot.messages import OutgoingMessage
from bot.ports import SendResult
from handlers.telegram.render import render_keyboard, render_text
from handlers.telegram.request import MaybeSent

log = logging.getLogger(__name__)
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
MAX_CAPTION = 1024  # Telegram's limit for a caption


def retry_after_seconds(exc: RetryAfter) -> float:
    """``RetryAfter.retry_after`` as seconds, whichever type this PTB version returns."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _channel_hint(recipient: str) -> str | None:
    """What an admin can do when a channel (``@name`` or ``-100…``) refuses a post; None for a
    person's chat (they blocked the bot, or left)."""
    if recipient.startswith(("@", "-100")):
        return (
            "In Telegram, add the bot to the channel as an administrator allowed to post messages."
        )
    return None


class TelegramMessenger:
    """The :class:`bot.ports.Messenger` for Telegram."""

    channel = "telegram"

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send(
        self,
        recipient: str,
        message: OutgoingMessage,
        edit_ref: str | None = None,
        thread_ref: str | None = None,  # Telegram private chats have no threads
    ) -> SendResult:
        """Send (or edit in place) one message and say how it went."""
        text, parse_mode = render_text(message)
        markup = render_keyboard(message)
        # A person's chat is a number; a public channel may be its @username (Telegram takes
        # either as chat_id).
        chat_id: int | str = recipient if recipient.startswith("@") else int(recipient)
        try:
            if edit_ref is not None:
                try:
                    edited = await self.bot.edit_message_text(
                        text,
                        chat_id=chat_id,
                        message_id=int(edit_ref),
                        parse_mode=parse_mode,
                        reply_markup=markup,
                        link_preview_options=_NO_PREVIEW,
                    )
                    ref = str(edited.message_id) if not isinstance(edited, bool) else edit_ref
                    return SendResult(ok=True, message_ref=ref)
                except BadRequest as exc:
                    if "not modified" in exc.message.lower():
                        return SendResult(ok=True, message_ref=edit_ref)
                    if "edit" not in exc.message.lower() and "not found" not in exc.message.lower():
                        raise
                    # The message is gone or too old to edit: send a new one instead.
            if message.attachments:
                return await self._send_files(chat_id, message, text, parse_mode)
            sent = await self.bot.send_message(
                chat_id,
                text,
                parse_mode=parse_mode,
                reply_markup=markup,
                link_preview_options=_NO_PREVIEW,
            )
            return SendResult(ok=True, message_ref=str(sent.message_id))
        except RetryAfter as exc:
            seconds = retry_after_seconds(exc)
            return SendResult(ok=False, retry_after=seconds, error=f"429 retry after {seconds:g}s")
        except Forbidden as exc:
            return SendResult(
                ok=False,
                permanent=True,
                blocked=True,
                error=f"403 {exc.message}",
                hint=_channel_hint(recipient),
            )
        except BadRequest as exc:
            return SendResult(
                ok=False, permanent=True, error=f"400 {exc.message}", hint=_channel_hint(recipient)
            )
        except MaybeSent as exc:
            # Telegram may have it: at most once for a form (see SendResult.uncertain).
            return SendResult(ok=False, uncertain=True, error=f"no answer: {exc.message}")
        except (TimedOut, NetworkError) as exc:  # not connected; 500, 502, 503: not taken
            return SendResult(ok=False, error=f"{type(exc).__name__}: {exc.message}")
        except TelegramError as exc:
            return SendResult(ok=False, error=f"{type(exc).__name__}: {exc.message}")

    async def _send_files(
        self, chat_id: int | str, message: OutgoingMessage, text: str, parse_mode: str | None
    ) -> SendResult:
        """The text as the caption of the first file (one API call, so a retry after a failure
        never repeats the text); a text too long for a caption goes first on its own."""
        first, *rest = message.attachments
        caption: str | None = text
        if len(text) > MAX_CAPTION:
            await self.bot.send_message(
                chat_id, text, parse_mode=parse_mode, link_preview_options=_NO_PREVIEW
            )
            caption = None
        sent = await self.bot.send_document(
            chat_id,
            InputFile(first.data, filename=first.filename),
            caption=caption,
            parse_mode=parse_mode if caption else None,
            reply_markup=render_keyboard(message),
        )
        for extra in rest:
            await self.bot.send_document(chat_id, InputFile(extra.data, filename=extra.filename))
        return SendResult(ok=True, message_ref=str(sent.message_id))
