"""Sends neutral messages to Slack channels through slack_sdk and classifies Slack's answer."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.messages import OutgoingMessage, Span
from bot.ports import SendResult
from handlers.slack.render import render

log = logging.getLogger(__name__)

# The channel exists but we cannot post there yet: keep the message queued (an admin can invite
# the bot) rather than drop it.
_RETRY_LATER = {"channel_not_found", "not_in_channel", "is_archived", "team_access_not_granted"}


class SlackMessenger:
    """The :class:`bot.ports.Messenger` for Slack."""

    channel = "slack"

    def __init__(self, client: AsyncWebClient) -> None:
        # The outbox's own copy of the client, without slack_sdk's 429 retry: a 429 must reach
        # the dispatcher at once, which then holds back every Slack send for Retry-After. (With
        # the SDK's retry, this one request slept while the dispatcher sent others into the
        # limit: the fault suite caught a post inside a 429's Retry-After.) Direct calls made in
        # Slack's 3-second window (modals, ephemeral replies) keep the retrying client.
        self.client = AsyncWebClient(
            token=client.token,
            base_url=client.base_url,
            timeout=client.timeout,
            headers=client.headers,
            proxy=client.proxy,
            retry_handlers=[
                h
                for h in client.retry_handlers
                if not isinstance(h, AsyncRateLimitErrorRetryHandler)
            ],
        )
        self.client.proxy = client.proxy  # not slack_sdk's own pick from the environment
        self._dms: dict[str, str] = {}

    async def _channel_for(self, recipient: str) -> str:
        """A user id becomes their direct-message channel (opened once, then cached)."""
        if not recipient.startswith(("U", "W")):
            return recipient
        if recipient not in self._dms:
            response = await self.client.conversations_open(users=recipient)
            self._dms[recipient] = str(response["channel"]["id"])
        return self._dms[recipient]

    async def send(
        self,
        recipient: str,
        message: OutgoingMessage,
        edit_ref: str | None = None,
        thread_ref: str | None = None,
    ) -> SendResult:
        """Post (or update in place, or reply in a thread) and say how it went."""
        text, blocks = render(message)
        try:
            recipient = await self._channel_for(recipient)
            if message.attachments:
                await self.client.files_upload_v2(
                    channel=recipient,
                    initial_comment=text,
                    file_uploads=[
                        {
                            "content": a.data,
                            "filename": a.filename,
                            "title": a.title,
                            "alt_txt": a.alt_text or a.title,  # read aloud by screen readers
                        }
                        for a in message.attachments
                    ],
                )
                return SendResult(ok=True, message_ref=None)
            if edit_ref is not None:
                response = await self.client.chat_update(
                    channel=recipient, ts=edit_ref, text=text, blocks=blocks
                )
            else:
                response = await self.client.chat_postMessage(
                    channel=recipient,
                    text=text,
                    blocks=blocks,
                    thread_ts=thread_ref,
                    unfurl_links=False,
                    unfurl_media=False,
                )
            return SendResult(ok=True, message_ref=str(response.get("ts") or edit_ref))
        except SlackApiError as exc:
            error = str(exc.response.get("error", "unknown_error"))
            if exc.response.status_code == 429:
                retry = float(exc.response.headers.get("Retry-After", "1") or 1)
                return SendResult(ok=False, retry_after=retry, error="ratelimited")
            if error in _RETRY_LATER:
                log.error("cannot post to Slack channel %s: %s (kept queued)", recipient, error)
                return SendResult(ok=False, error=error, hint=_CHANNEL_HINTS.get(error))
            if exc.response.status_code >= 500:
                return SendResult(ok=False, error=f"slack {exc.response.status_code}")
            return SendResult(ok=False, permanent=True, error=error)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return SendResult(ok=False, error=f"{type(exc).__name__}: {exc}")


async def post_with_charts(
    client: Any,
    channel: str,
    message: OutgoingMessage,
    charts: Sequence[tuple[str, bytes, str, str]],
) -> None:
    """Answer a slash command: the message, with the charts (filename, PNG, title, alt text)
    uploaded under it as one post, or the message alone when there are none."""
    text, blocks = render(message)
    if not charts:
        await client.chat_postMessage(channel=channel, text=text, blocks=blocks)
        return
    await client.files_upload_v2(
        channel=channel,
        initial_comment=text,
        file_uploads=[
            {"content": data, "filename": name, "title": title, "alt_txt": alt}
            for name, data, title, alt in charts
        ],
    )


# What an admin can do when a channel refuses the bot's post (a public PACT channel).
_CHANNEL_HINTS = {
    "not_in_channel": "In Slack, /invite the bot to the channel.",
    "channel_not_found": "In Slack, check the channel id and /invite the bot to the channel "
    "(a private channel is not found until it is invited).",
}


# Why the bot could not post where a slash command was typed, in words the person can act on.
_CANNOT_POST = {
    "not_in_channel": "I'm not in this channel, so I can't post here. Ask someone to "
    "/invite {bot} here, or use the command in a channel I'm in.",
    "channel_not_found": "I'm not in this channel, so I can't post here (private channels "
    "and direct messages included). Ask someone to /invite @tensionbot here, or use the "
    "command in a channel I'm in.",
    "is_archived": "This channel is archived, so I can't post here.",
}


CHARTS_IN_DM = "The charts are in your direct messages with me."


async def answer_command(
    client: Any,
    respond: Any,
    command: dict[str, Any],
    message: OutgoingMessage,
    charts: Sequence[tuple[str, bytes, str, str]],
    *,
    public_channels: Sequence[str],
    bot_user_id: str | None = None,
) -> None:
    """Answer ``/tensions`` or ``/pact``. Typed in one of ``public_channels`` (the configured
    summary channels, whose members are chosen to see summaries): posted there, charts and all.
    Anywhere else (a channel may hold people refused summaries, or people the bot does not
    know): only the asker sees it, as an ephemeral answer through the command's response_url
    (which, unlike chat.postEphemeral, reaches them in any channel, the bot a member or not),
    and the charts, which cannot be ephemeral, go to their direct messages with the bot. When
    Slack refuses a post (the bot is not in the channel, a missing scope, …) the asker is told
    why through the response_url instead of being left at "Working on it…"."""
    channel, user = str(command["channel_id"]), str(command["user_id"])
    if channel in public_channels:
        try:
            await post_with_charts(client, channel, message, charts)
        except SlackApiError as exc:
            await _explain(respond, channel, exc, bot_user_id)
        return
    shown = message
    if charts:
        shown = message.model_copy(
            update={"lines": [*message.lines, [Span(text=CHARTS_IN_DM, style="italic")]]}
        )
    text, blocks = render(shown)
    await respond(text=text, blocks=blocks, response_type="ephemeral", replace_original=False)
    if charts:
        try:
            dm = await client.conversations_open(users=user)
            await post_with_charts(client, str(dm["channel"]["id"]), message, charts)
        except SlackApiError as exc:
            await _explain(respond, "a direct message", exc, bot_user_id)


async def _explain(respond: Any, where: str, exc: SlackApiError, bot_user_id: str | None) -> None:
    """Tell the person who typed a command, privately, why Slack refused the answer."""
    error = str(exc.response.get("error", "unknown_error"))
    log.warning("could not answer a slash command in %s: %s", where, error)
    bot = f"<@{bot_user_id}>" if bot_user_id else "@tensionbot"  # Slack shows the name
    text = _CANNOT_POST.get(error, "Sorry, Slack refused the answer ({error}).")
    await respond(
        text=text.format(bot=bot, error=error), response_type="ephemeral", replace_original=False
    )
