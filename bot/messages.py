"""Platform-neutral outgoing messages.

The core describes *what* to say as lines of styled spans and rows of buttons; each platform's
``render`` module turns that into Telegram HTML or Slack Block Kit, escaping every span. Nothing
in here is ever pre-escaped, so user text cannot inject markup.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Style = Literal["plain", "bold", "italic", "code"]


class Span(BaseModel):
    """A run of text in one style."""

    model_config = ConfigDict(frozen=True)
    text: str
    style: Style = "plain"
    link: str | None = None  # a URL the core has checked (bot.places); the text links to it


class Button(BaseModel):
    """A button; ``data`` is an encoded :class:`bot.buttons.ButtonAction`."""

    model_config = ConfigDict(frozen=True)
    label: str
    data: str


class Attachment(BaseModel):
    """A file sent with a message (a chart). Kept in the outbox row, base64 in JSON."""

    model_config = ConfigDict(frozen=True, ser_json_bytes="base64", val_json_bytes="base64")
    filename: str
    title: str
    data: bytes
    alt_text: str = ""  # what the image shows, for screen readers (Slack's alt_txt)


class OutgoingMessage(BaseModel):
    """A message: paragraphs (each a list of spans), rows of buttons, and files."""

    model_config = ConfigDict(frozen=True)
    lines: list[list[Span]]
    buttons: list[list[Button]] = []
    attachments: list[Attachment] = []

    def plain_text(self) -> str:
        """The message as plain text (for logs at DEBUG, the CLI and tests)."""
        return "\n".join("".join(s.text for s in line) for line in self.lines)


def combined(messages: list[OutgoingMessage]) -> OutgoingMessage:
    """Several messages as one: their paragraphs one after another, a blank line between."""
    if len(messages) == 1:
        return messages[0]
    lines: list[list[Span]] = []
    for message in messages:
        if lines:
            lines.append([])
        lines.extend(message.lines)
    return OutgoingMessage(
        lines=lines,
        buttons=[row for m in messages for row in m.buttons],
        attachments=[a for m in messages for a in m.attachments],
    )


class MessageBuilder:
    """Small helper to compose an :class:`OutgoingMessage`."""

    def __init__(self) -> None:
        self._lines: list[list[Span]] = []
        self._buttons: list[list[Button]] = []

    def line(self, *parts: str | Span) -> MessageBuilder:
        """Add a paragraph; plain strings become plain spans."""
        self._lines.append([p if isinstance(p, Span) else Span(text=p) for p in parts])
        return self

    def blank(self) -> MessageBuilder:
        """Add an empty line."""
        self._lines.append([])
        return self

    def row(self, *buttons: Button) -> MessageBuilder:
        """Add a row of buttons (empty rows are dropped)."""
        if buttons:
            self._buttons.append(list(buttons))
        return self

    def build(self) -> OutgoingMessage:
        """The finished message."""
        return OutgoingMessage(lines=self._lines, buttons=self._buttons)


def bold(text: str) -> Span:
    """A bold span."""
    return Span(text=text, style="bold")


def italic(text: str) -> Span:
    """An italic span."""
    return Span(text=text, style="italic")


def link(text: str, url: str) -> Span:
    """A span linking to ``url`` (only a URL the core has checked, never one as typed)."""
    return Span(text=text, link=url)


def code(text: str) -> Span:
    """A monospace span (references)."""
    return Span(text=text, style="code")
