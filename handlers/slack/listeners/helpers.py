"""What every Slack listener does the same way: read a button's payload, read a modal's
metadata, and tell the person who clicked something that only they should see."""

from __future__ import annotations

import logging
from typing import Any

from bot.buttons import BadPayload, ButtonAction, Kind
from handlers.slack.render import escape

log = logging.getLogger(__name__)


def pressed(body: dict[str, Any], kind: Kind) -> ButtonAction | None:
    """The payload of the button clicked, if it is one we made and of ``kind`` (a payload of
    another kind names another kind of target: it is refused, not reinterpreted)."""
    try:
        action = ButtonAction.decode(str(body["actions"][0].get("value", "")))
    except (BadPayload, KeyError, IndexError):
        log.warning("refused a malformed Slack button payload")
        return None
    if action.kind is not kind:
        log.warning("refused a Slack button payload of the wrong kind")
        return None
    return action


def modal_payload(view: dict[str, Any], kind: Kind) -> ButtonAction | None:
    """The button payload a modal carries in its private_metadata, if ours and of ``kind``."""
    try:
        action = ButtonAction.decode(str(view.get("private_metadata", "")))
    except BadPayload:
        return None
    if action.kind is not kind:
        log.warning("refused a Slack modal with metadata of the wrong kind")
        return None
    return action


def modal_id(view: dict[str, Any]) -> int | None:
    """The record id a modal carries in its private_metadata (PACT modals), if well formed."""
    meta = str(view.get("private_metadata", ""))
    return int(meta) if meta.isascii() and meta.isdigit() and len(meta) < 16 else None


def clicker(body: dict[str, Any]) -> str:
    """The Slack user id of whoever clicked or submitted."""
    return str(body["user"]["id"])


async def tell_user(client: Any, user: str, text: str) -> None:
    """A note only ``user`` sees, in their DM with the bot."""
    dm = await client.conversations_open(users=user)
    await client.chat_postEphemeral(channel=dm["channel"]["id"], user=user, text=escape(text))


async def tell_here(respond: Any, client: Any, body: dict[str, Any], text: str) -> None:
    """A note only the clicker sees, where they clicked: through the click's response_url,
    which reaches them even in a channel they are not a member of (chat.postEphemeral would
    fail there with user_not_in_channel); without one, in their DM with the bot."""
    if respond is not None and body.get("response_url"):
        await respond(text=escape(text), response_type="ephemeral", replace_original=False)
        return
    await tell_user(client, clicker(body), text)


async def refuse_command(respond: Any, text: str) -> None:
    """A slash command's refusal, to the asker only. It may quote what was typed: escaped, like
    all text from a user. Through the response_url: it reaches the person even in a channel the
    bot is not in."""
    await respond(text=escape(text), response_type="ephemeral")
