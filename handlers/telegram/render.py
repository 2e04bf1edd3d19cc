"""Neutral messages -> Telegram HTML + inline keyboards. Every span is escaped here."""

from __future__ import annotations

import html

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.messages import OutgoingMessage, Span

MAX_TEXT = 4096  # Telegram's limit for one message
_TAGS = {"bold": ("<b>", "</b>"), "italic": ("<i>", "</i>"), "code": ("<code>", "</code>")}


def _span(span: Span) -> str:
    text = html.escape(span.text, quote=False)
    if span.link is not None:
        return f'<a href="{html.escape(span.link, quote=True)}">{text}</a>'
    if span.style == "plain" or not text:
        return text
    start, end = _TAGS[span.style]
    return f"{start}{text}{end}"


def render_text(message: OutgoingMessage) -> tuple[str, str | None]:
    """The message text and parse mode. Over-long messages fall back to truncated plain text."""
    rendered = "\n".join("".join(_span(s) for s in line) for line in message.lines)
    if len(rendered) <= MAX_TEXT:
        return rendered, "HTML"
    plain = message.plain_text()
    return plain[: MAX_TEXT - 1] + "…", None


def render_keyboard(message: OutgoingMessage) -> InlineKeyboardMarkup | None:
    """Button rows as an inline keyboard (None when there are no buttons)."""
    if not message.buttons:
        return None
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(b.label[:64], callback_data=b.data) for b in row]
            for row in message.buttons
        ]
    )
