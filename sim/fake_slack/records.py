"""What the fake Slack records and answers with: the recorded calls and messages, its
constants (scopes, ids, limits), the bookkeeping it keeps per channel, trigger and injection,
and :class:`_SlackError` (Slack's ``{"ok": false, "error": ...}``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

RATE_LIMITED = frozenset({"chat.postMessage", "chat.update"})
"""Methods counted by ``per_channel_rate`` (Slack allows about one message a second per channel)."""
JSON_FIELDS = ("blocks", "attachments", "view", "files", "metadata")
"""Parameters that arrive JSON-encoded in form bodies and query strings."""
FIRST_TS = 1_700_000_000
TRIGGER_TTL = 3.0  # seconds, as documented for views.open / views.push
MAX_VIEW_STACK = 3
BOT_ID = "B0BOT"
APP_ID = "A0TEST"
METHOD_SCOPES: dict[str, str] = {
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.postEphemeral": "chat:write",
    "conversations.open": "im:write",  # mpim:write for a group DM (checked in the method)
    "users.info": "users:read",
    "reactions.add": "reactions:write",
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
}
"""The bot token scope each Web API method needs, as Slack's method documentation says
(auth.test and views.* need none; conversations.info / .members depend on the channel's kind)."""
READ_SCOPES = {
    "public": "channels:read",
    "private": "groups:read",
    "im": "im:read",
    "mpim": "mpim:read",
}
NOT_INTERACTIVE = frozenset({"image", "plain_text", "mrkdwn"})
_HTML_ERROR = "<html><body><h1>{status}</h1>Slack is having trouble.</body></html>"


@dataclass
class SlackCall:
    """One recorded Web API request (the token is not kept)."""

    method: str
    params: dict[str, Any]
    at: float  # time.monotonic() when the request arrived
    status: int = 200
    error: str | None = None
    retry_after: int | None = None  # of a 429 answer


@dataclass
class SlackMessage:
    """A message as it currently stands (updates applied)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None
    user: str  # the bot's user id
    updates: int = 0
    reactions: list[str] = field(default_factory=list)

    def action_ids(self) -> list[str]:
        """The action_id of every interactive element in the blocks."""
        return [element["action_id"] for _, element in _interactive(self.blocks)]

    def element(self, action_id: str) -> tuple[str, dict[str, Any]]:
        """(block_id, element) of the interactive element with ``action_id``."""
        for block_id, element in _interactive(self.blocks):
            if element["action_id"] == action_id:
                return block_id, element
        raise AssertionError(f"no {action_id!r} in message {self.ts}: {self.action_ids()}")


class _Uploads(list[dict[str, Any]]):
    """Completed uploads. A list (``fake.uploads``) that can also be called (``fake.uploads()``)."""

    def __call__(self) -> list[dict[str, Any]]:
        """A copy of the completed uploads."""
        return list(self)


@dataclass
class _Injection:
    method: str | None
    error: str | None
    status: int
    retry_after: int
    times: int
    channel: str | None = None
    hang: float = 30.0


@dataclass
class _Channel:
    id: str
    name: str
    members: list[str]
    bot_is_member: bool = True
    im_user: str | None = None
    messages: list[SlackMessage] = field(default_factory=list)


@dataclass
class _Trigger:
    user: str
    issued: float
    view_id: str | None
    used: bool = False


@dataclass
class _ResponseTarget:
    user: str
    channel: str | None
    message_ts: str | None


class _SlackError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


Handler = Callable[[dict[str, Any]], dict[str, Any]]


def _interactive(blocks: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(block_id, element) for every interactive element (with an action_id) in ``blocks``."""
    for block in blocks:
        kind = block.get("type")
        elements: list[Any] = []
        if kind == "actions":
            elements = list(block.get("elements") or [])
        elif kind == "input" and isinstance(block.get("element"), dict):
            elements = [block["element"]]
        if isinstance(block.get("accessory"), dict):
            elements.append(block["accessory"])
        for element in elements:
            if isinstance(element, dict) and "action_id" in element:
                yield str(block.get("block_id", "")), element
