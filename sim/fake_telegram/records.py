"""The fake Telegram's records: the calls it saw, the messages it keeps, its chats and errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sim.fake_telegram.user import SimUser

SENDING_METHODS = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "editMessageText",
        "editMessageReplyMarkup",
        "copyMessage",
        "forwardMessage",
    }
)


@dataclass
class ApiCall:
    """One recorded request."""

    method: str
    params: dict[str, Any]
    chat_id: int | None
    at: float  # time.monotonic() when the request arrived
    status: int = 200
    retry_after: int | None = None  # of a 429 answer


@dataclass(frozen=True)
class WebhookAnswer:
    """One delivery attempt of an update to the bot's webhook and how it was answered."""

    update_id: int
    status: int  # the HTTP status; 0 when the connection failed or nothing came in time
    at: float  # time.monotonic() when the answer (or the failure) came


@dataclass
class SentMessage:
    """A bot message as it currently stands (edits applied)."""

    chat_id: int
    message_id: int
    text: str | None
    caption: str | None = None
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None
    edits: int = 0
    kind: str = "text"
    date: int = 0
    file_name: str | None = None  # a sent document or photo, as uploaded
    file_data: bytes | None = None

    def buttons(self) -> list[tuple[str, str]]:
        """(text, callback_data) of the inline keyboard, row by row."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [(b.get("text", ""), b.get("callback_data", "")) for row in rows for b in row]


@dataclass
class _Injection:
    status: int
    method: str | None
    chat_id: int | None
    times: int
    retry_after: int
    description: str | None
    hang: float = 30.0
    carried_out: bool = False  # the call takes effect, then the error is answered


@dataclass
class _Chat:
    user: SimUser
    messages: list[SentMessage] = field(default_factory=list)
    blocked: bool = False


@dataclass
class _Channel:
    """A public channel: the bot posts in it only as an administrator (as in Telegram)."""

    chat_id: int  # negative, -100…
    username: str  # without the @
    title: str
    bot_status: str = "administrator"  # "administrator" | "member" | "left" | "kicked"
    messages: list[SentMessage] = field(default_factory=list)


class _ApiError(Exception):
    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.retry_after = status, description, retry_after


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
