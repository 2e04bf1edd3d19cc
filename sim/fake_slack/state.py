"""The fake Slack's state: its settings, channels, DMs, views, triggers and records; setting
up channels and users; what a test reads back; and the helpers that find a channel and post
to it, shared by the parts of :class:`FakeSlack`."""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict, deque
from typing import Any

from aiohttp import web

from sim.fake_slack.blocks import _checked_blocks
from sim.fake_slack.records import (
    APP_ID,
    BOT_ID,
    FIRST_TS,
    TRIGGER_TTL,
    Handler,
    SlackCall,
    SlackMessage,
    _Channel,
    _Injection,
    _ResponseTarget,
    _SlackError,
    _Trigger,
    _Uploads,
)


class _SlackState:
    """What every part of the fake server keeps and reads (see :class:`FakeSlack`)."""

    def __init__(
        self,
        *,
        token: str = "xoxb-test-token",  # noqa: S107 - a fake server's fake token
        signing_secret: str = "test-signing-secret",  # noqa: S107
        team_id: str = "T0TEST",
        bot_user_id: str = "U0BOT",
        per_channel_rate: float | None = None,
        scopes: list[str] | None = None,
    ) -> None:
        from sim.manifest import manifest_scopes

        self.token, self.signing_secret = token, signing_secret
        # The bot token's scopes: by default exactly what the deploy/ manifest asks for.
        self.scopes: list[str] = list(manifest_scopes() if scopes is None else scopes)
        self.team_id, self.bot_user_id = team_id, bot_user_id
        self.per_channel_rate = per_channel_rate
        self.trigger_ttl = TRIGGER_TTL
        self._trigger_clock = 0.0  # seconds; moved only by advance_trigger_clock
        self.app_token = "xapp-test-token"  # noqa: S105 - Socket Mode's app-level token
        self.base_url = ""
        self.calls: list[SlackCall] = []
        self.throttled = 0
        self.uploads = _Uploads()
        self.socket_acks: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []  # everything posted to a response_url
        self._channels: dict[str, _Channel] = {}
        self._users: dict[str, str] = {bot_user_id: "tensionbot"}
        self._dms: dict[str, str] = {}
        self._ephemeral: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._opened: list[dict[str, Any]] = []
        self._opener: dict[str, str] = {}  # view id -> the user whose interaction opened it
        self._views: dict[str, dict[str, Any]] = {}
        self._stacks: dict[str, list[str]] = {}
        self._home: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._triggers: dict[str, _Trigger] = {}
        self._response_urls: dict[str, _ResponseTarget] = {}
        self._injections: list[_Injection] = []
        # hold_answers(): the method whose answers are held (after doing the work) until
        # release_answers(); `held` counts the answers waiting now.
        self._hold_method: str | None = None
        self._released = asyncio.Event()
        self.held = 0
        self._ts = itertools.count(100, 100)
        self._ids = itertools.count(1)
        self._windows: dict[str, deque[float]] = defaultdict(deque)
        self._files: dict[str, dict[str, Any]] = {}
        self._runner: web.AppRunner | None = None
        self._sockets: list[web.WebSocketResponse] = []
        self._connected = asyncio.Event()
        self._methods: dict[str, Handler] = self._method_table()

    def _method_table(self) -> dict[str, Handler]:
        """The handler of each Web API method (the server's; see ``FakeSlack._method_table``)."""
        raise NotImplementedError

    # ----------------------------------------------------------------- set-up

    def add_channel(
        self,
        channel_id: str,
        name: str,
        members: list[str] | None = None,
        *,
        bot_is_member: bool = True,
    ) -> None:
        """A channel. Posting to an unknown one fails with ``channel_not_found``; to one the bot
        is not in, with ``not_in_channel``; an ephemeral to someone not in ``members``, with
        ``user_not_in_channel``."""
        self._channels[channel_id] = _Channel(channel_id, name, list(members or []), bot_is_member)

    def add_user(self, user_id: str, name: str) -> None:
        """A workspace member (``users.info`` knows only these and the bot)."""
        self._users[user_id] = name

    # ----------------------------------------------------------------- inspection

    def calls_for(self, method: str) -> list[SlackCall]:
        """Recorded calls of one method, in order."""
        return [c for c in self.calls if c.method == method]

    def messages(self, channel: str) -> list[SlackMessage]:
        """Messages in a channel (top level and thread replies), in post order."""
        ch = self._channels.get(channel)
        return list(ch.messages) if ch else []

    def top_level(self, channel: str) -> list[SlackMessage]:
        """Messages of a channel that are not thread replies."""
        return [m for m in self.messages(channel) if m.thread_ts is None]

    def thread(self, channel: str, ts: str) -> list[SlackMessage]:
        """Replies whose thread_ts is ``ts``."""
        return [m for m in self.messages(channel) if m.thread_ts == ts]

    def dm(self, user: str) -> list[SlackMessage]:
        """Messages in the bot's direct-message channel with a user."""
        channel = self._dms.get(user)
        return self.messages(channel) if channel else []

    def ephemerals(self, user: str) -> list[dict[str, Any]]:
        """chat.postEphemeral payloads (and ephemeral response_url replies) for a user."""
        return list(self._ephemeral[user])

    def views_opened(self, user: str | None = None) -> list[dict[str, Any]]:
        """Modals opened (views.open, then views.push), as Slack returned them (with ``id``);
        with ``user``, only those opened from that user's interactions."""
        return [v for v in self._opened if user is None or self._opener[v["id"]] == user]

    def view(self, view_id: str) -> dict[str, Any]:
        """A modal as it currently stands (views.update applied)."""
        return self._views[view_id]

    def home_views(self, user: str) -> list[dict[str, Any]]:
        """App Home views published for a user (views.publish), oldest first."""
        return list(self._home[user])

    # ----------------------------------------------------------------- scopes

    def _require(self, scope: str) -> None:
        """Slack's answer to a token without ``scope``: missing_scope, needed, provided."""
        if scope not in self.scopes:
            raise _SlackError("missing_scope", needed=scope, provided=",".join(self.scopes))

    # ----------------------------------------------------------------- channels and messages

    def _next_ts(self) -> str:
        n = next(self._ts)
        return f"{FIRST_TS + n // 1_000_000}.{n % 1_000_000:06d}"

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):08d}"

    def _open_dm(self, user: str) -> str:
        dm = self._dms.get(user)
        if dm is None:
            dm = self._dms[user] = self._new_id("D")
            self._channels[dm] = _Channel(dm, user, [user, self.bot_user_id], im_user=user)
        return dm

    def _find_channel(self, ref: str) -> _Channel | None:
        """A channel by id or ``#name``; a user id (as in chat.postMessage) means their DM."""
        if ref in self._channels:
            return self._channels[ref]
        if ref in self._dms or (ref in self._users and ref != self.bot_user_id):
            return self._channels[self._open_dm(ref)]
        name = ref.removeprefix("#")
        return next((c for c in self._channels.values() if c.name == name and not c.im_user), None)

    def _postable(self, ref: Any) -> _Channel:
        if not ref:
            raise _SlackError("channel_not_found")
        ch = self._find_channel(str(ref))
        if ch is None:
            raise _SlackError("channel_not_found")
        if not ch.bot_is_member:
            raise _SlackError("not_in_channel")
        return ch

    def _message_json(self, m: SlackMessage) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": "message",
            "user": m.user,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "ts": m.ts,
            "text": m.text,
            "blocks": m.blocks,
            "team": self.team_id,
        }
        if m.thread_ts:
            data["thread_ts"] = m.thread_ts
        if m.updates:
            data["edited"] = {"user": m.user, "ts": m.ts}
        return data

    def _content(self, params: dict[str, Any], *, required: bool) -> tuple[str, list[Any] | None]:
        text = params.get("text")
        text = None if text is None else str(text)
        blocks = params.get("blocks")
        if blocks is not None:
            blocks = _checked_blocks(blocks, limit=50, ids=itertools.count(1))
        if required and not text and not blocks and not params.get("attachments"):
            raise _SlackError("no_text")
        if text is not None and len(text) > 40_000:
            raise _SlackError("msg_too_long")
        return text or "", blocks

    def _post(self, ch: _Channel, text: str, blocks: list[Any], thread: str | None) -> SlackMessage:
        m = SlackMessage(ch.id, self._next_ts(), text, blocks, thread, self.bot_user_id)
        ch.messages.append(m)
        return m
