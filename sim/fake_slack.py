"""A local simulated Slack: the Web API the bot calls, and a user who clicks in Slack.

:class:`FakeSlack` is an ``aiohttp.web`` server on 127.0.0.1 that answers the real ``slack_sdk``
``AsyncWebClient`` (``base_url=f"{fake.base_url}/api/"``) with real Slack JSON: messages,
updates, threads, ephemerals, modals, App Home, DMs and file uploads. Like Slack it answers
``{"ok": false, "error": ...}`` with HTTP 200, except rate limits (HTTP 429 with
``Retry-After``); errors, 5xx answers and rate limits can be injected, and a per-channel posting
rate can be enforced. Like Slack it checks the token's scopes (``missing_scope`` with
``needed`` and ``provided``; every answer carries ``x-oauth-scopes``): by default the token has
exactly the scopes ``deploy/slack-manifest.yml`` asks for. Block Kit payloads are checked against Slack's documented limits
(``invalid_blocks``), and ``trigger_id`` s expire after 3 s and can be exchanged only once. The
3 s run on the fake's own trigger clock, which moves only when a test calls
:meth:`FakeSlack.advance_trigger_clock` (a busy machine must not expire a trigger: CI found one
expired by load alone).

:class:`SlackUser` sends what Slack's servers send to the bot — signed ``block_actions``,
``view_submission``, slash commands and Events API envelopes — to the bot's real Bolt endpoint.
Their ``response_url`` points back at this server, so Bolt's ``respond()`` works offline too.

The bot's Socket Mode connection (``apps.connections.open`` + a WebSocket) is simulated as well.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import itertools
import json
import math
import re
import time
import urllib.parse
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

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


_DATE_TOKEN = re.compile(r"<!date\^\d+\^[^|>]*\|([^>]*)>")
_ANGLE_TOKEN = re.compile(r"<([^>]*)>")
_PLACEHOLDER = "\ue000"  # a private-use character standing for a date token's fallback
_MARKS = {"*": "bold", "_": "italic", "~": "strike", "`": "code"}


@dataclass(frozen=True)
class Shown:
    """How a Slack client shows a mrkdwn text: the visible characters and what formatting,
    links and mentions it applied."""

    text: str
    styles: tuple[str, ...]


def shown(mrkdwn: str) -> Shown:
    """Render mrkdwn as a Slack client would, erring on the strict side: a formatting mark
    counts whenever *any* non-alphanumeric character (invisible ones included) stands before
    an opening mark or after a closing one, so an escape that only works by luck fails here.

    The one documented-in-practice way to show a mark literally is the fallback text of a date
    token with an invalid format, ``<!date^0^{_}|*>``: Slack always shows the fallback as plain
    text. A line-start ``>`` is a quote unless something visible-or-not (a soft hyphen) comes
    first."""
    styles: list[str] = []
    fallbacks: list[str] = []

    def date(match: re.Match[str]) -> str:
        fallbacks.append(match.group(1))
        return _PLACEHOLDER

    text = _DATE_TOKEN.sub(date, mrkdwn)

    def token(match: re.Match[str]) -> str:
        inner = match.group(1)
        styles.append("mention" if inner[:1] in "!@#" else "link")
        return inner.split("|", 1)[-1]

    text = _ANGLE_TOKEN.sub(token, text)
    if "```" in text:
        styles.append("pre")
        text = text.replace("```", "")
    lines = []
    # Any line break Unicode knows starts a line here, and any whitespace may lead a quote.
    for line in re.split(r"([\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029])", text):
        if line.lstrip().startswith("&gt;"):
            styles.append("quote")
            line = line.lstrip()[4:]
        lines.append(line)
    text = "".join(lines)
    for mark, style in _MARKS.items():
        m = re.escape(mark)
        pair = re.compile(rf"(^|[^0-9A-Za-z]){m}(?=[^\s{m}])([^\n]*?[^\s]){m}(?=$|[^0-9A-Za-z])")
        while (found := pair.search(text)) is not None:
            styles.append(style)
            text = text[: found.start()] + found.group(1) + found.group(2) + text[found.end() :]
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    for fallback in fallbacks:
        text = text.replace(_PLACEHOLDER, fallback, 1)
    return Shown(text.replace("\u00ad", ""), tuple(styles))


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


class FakeSlack:
    """The fake Slack Web API server (start it, then point ``AsyncWebClient`` at ``/api/``)."""

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
        self._methods: dict[str, Handler] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "conversations.open": self._conversations_open,
            "conversations.info": self._conversations_info,
            "conversations.members": self._conversations_members,
            "users.info": self._users_info,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "reactions.add": self._reactions_add,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
        }

    # ----------------------------------------------------------------- lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start listening (port 0: any free port); returns and sets ``base_url``."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle)
        app.router.add_route("*", "/upload/{file_id}", self._upload)
        app.router.add_post("/response/{key}", self._respond)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        assert server is not None
        actual = getattr(server, "sockets", [])[0].getsockname()[1]
        self.base_url = f"http://{host}:{actual}"
        return self.base_url

    async def stop(self) -> None:
        """Stop the server (closing any Socket Mode connection)."""
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

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

    def hold_answers(self, method: str) -> None:
        """Carry out every later ``method`` call (a post is visible at once) but hold its
        answer until :meth:`release_answers`: the gap, on a slow network or a busy machine,
        between Slack showing a message and the bot learning its ``ts``."""
        self._hold_method = method
        self._released.clear()

    def release_answers(self) -> None:
        """Send the held answers and stop holding."""
        self._hold_method = None
        self._released.set()

    def inject(
        self,
        method: str | None = None,
        *,
        error: str | None = None,
        status: int = 200,
        retry_after: int = 1,
        times: int = 1,
        channel: str | None = None,
        hang: float = 30.0,
    ) -> None:
        """The next ``times`` calls of ``method`` (any method if None; only those naming
        ``channel`` if given) fail.

        ``status`` 429: rate limited (``Retry-After: retry_after``); 5xx: that HTTP status with
        an HTML body; 0: no answer for ``hang`` seconds (nothing done), then 504 (a timeout for
        a client that waits less); otherwise HTTP 200 ``{"ok": false, "error": error}``."""
        self._injections.append(
            _Injection(method, error, status, retry_after, times, channel, hang)
        )

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

    # ----------------------------------------------------------------- Web API over HTTP

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        parse_error: str | None = None
        try:
            params = await _read_params(request)
        except _SlackError as exc:
            params, parse_error = {}, exc.error
        bearer = request.headers.get("Authorization", "")
        token = bearer.removeprefix("Bearer ").strip() if bearer.startswith("Bearer ") else ""
        token = token or str(params.pop("token", "") or "")
        params.pop("token", None)
        call = SlackCall(method, params, time.monotonic())
        self.calls.append(call)
        if method == "apps.connections.open":
            if token != self.app_token:
                return self._fail(call, "invalid_auth")
            return web.json_response({"ok": True, "url": f"{self._ws_base()}/socket"})
        if token != self.token:
            return self._fail(call, "invalid_auth")
        response = await self._answer(call, method, params, parse_error)
        if response.status < 500:  # as the Web API sends; not on the edge's HTML 5xx pages
            response.headers["x-oauth-scopes"] = ",".join(self.scopes)
        return response

    async def _answer(
        self, call: SlackCall, method: str, params: dict[str, Any], parse_error: str | None
    ) -> web.Response:
        if parse_error is not None:
            return self._fail(call, parse_error)
        needed = METHOD_SCOPES.get(method)
        if needed is not None:
            try:
                self._require(needed)
            except _SlackError as exc:
                return self._fail(call, exc.error, **exc.extra)
        injected = self._injected(call)
        if isinstance(injected, float):  # a hang: answer late, having done nothing
            await asyncio.sleep(injected)
            injected = self._server_error(call, 504)
        if injected is not None:
            return injected
        if method in RATE_LIMITED and self.per_channel_rate is not None:
            wait = self._throttle(str(params.get("channel", "")))
            if wait is not None:
                self.throttled += 1
                return self._rate_limited(call, wait)
        handler = self._methods.get(method)
        if handler is None:
            return self._fail(call, "unknown_method", req_method=method)
        try:
            result = handler(params)
        except _SlackError as exc:
            return self._fail(call, exc.error, **exc.extra)
        if method == self._hold_method:
            self.held += 1
            try:
                await self._released.wait()
            finally:
                self.held -= 1
        return web.json_response({"ok": True, **result})

    def _injected(self, call: SlackCall) -> web.Response | float | None:
        for inj in self._injections:
            if inj.times > 0 and inj.method in (None, call.method):
                if inj.channel is not None and str(call.params.get("channel")) != inj.channel:
                    continue
                inj.times -= 1
                if inj.status == 0:
                    return inj.hang
                if inj.status == 429:
                    return self._rate_limited(call, inj.retry_after)
                if inj.status >= 500:
                    return self._server_error(call, inj.status)
                return self._fail(call, inj.error or "internal_error")
        return None

    @staticmethod
    def _server_error(call: SlackCall, status: int) -> web.Response:
        call.status, call.error = status, f"http_{status}"
        return web.Response(
            status=status, text=_HTML_ERROR.format(status=status), content_type="text/html"
        )

    def _throttle(self, channel: str) -> int | None:
        """Seconds to wait if a post to ``channel`` now would exceed the per-channel rate."""
        assert self.per_channel_rate is not None
        window, now = self._windows[channel], time.monotonic()
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= self.per_channel_rate:
            return max(1, math.ceil(window[0] + 1.0 - now))
        window.append(now)
        return None

    def _require(self, scope: str) -> None:
        """Slack's answer to a token without ``scope``: missing_scope, needed, provided."""
        if scope not in self.scopes:
            raise _SlackError("missing_scope", needed=scope, provided=",".join(self.scopes))

    def _fail(self, call: SlackCall, error: str, **extra: Any) -> web.Response:
        call.error = error
        return web.json_response({"ok": False, "error": error, **extra})

    def _rate_limited(self, call: SlackCall, retry_after: int) -> web.Response:
        call.status, call.error, call.retry_after = 429, "ratelimited", retry_after
        return web.json_response(
            {"ok": False, "error": "ratelimited"},
            status=429,
            headers={"Retry-After": str(retry_after)},
        )

    def _ws_base(self) -> str:
        return "ws" + self.base_url.removeprefix("http")

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

    # ----------------------------------------------------------------- Web API methods

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://tensionbot-test.slack.com/",
            "team": "Test",
            "user": self._users[self.bot_user_id],
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        ch = self._postable(params.get("channel"))
        text, blocks = self._content(params, required=True)
        thread = str(params.get("thread_ts") or "") or None
        if thread is not None:
            parent = next((m for m in ch.messages if m.ts == thread), None)
            if parent is None:
                raise _SlackError("thread_not_found")
            thread = parent.thread_ts or parent.ts  # a reply to a reply joins the same thread
        m = self._post(ch, text, blocks or [], thread)
        return {"channel": ch.id, "ts": m.ts, "message": self._message_json(m)}

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        ch = self._postable(params.get("channel"))
        m = next((m for m in ch.messages if m.ts == params.get("ts")), None)
        if m is None:
            raise _SlackError("message_not_found")
        text, blocks = self._content(params, required=True)
        if "text" in params:
            m.text = text
        if blocks is not None:
            m.blocks = blocks
        m.updates += 1
        return {"channel": ch.id, "ts": m.ts, "text": m.text, "message": self._message_json(m)}

    def _chat_post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        ch = self._postable(params.get("channel"))
        user = str(params.get("user") or "")
        if not user:
            raise _SlackError("user_not_found")
        if user not in self._members(ch):  # as Slack: only a member of the channel sees it
            raise _SlackError("user_not_in_channel")
        text, blocks = self._content(params, required=True)
        payload = {**params, "channel": ch.id, "text": text}
        if blocks is not None:
            payload["blocks"] = blocks
        self._ephemeral[user].append(payload)
        return {"message_ts": self._next_ts()}

    def _conversations_open(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("channel"):
            ch = self._channels.get(str(params["channel"]))
            if ch is None:
                raise _SlackError("channel_not_found")
            return {"channel": {"id": ch.id}, "no_op": True, "already_open": True}
        users = [u for u in str(params.get("users", "")).split(",") if u.strip()]
        if not users:
            raise _SlackError("users_list_not_supplied")
        if any(not u.startswith(("U", "W")) for u in users):
            raise _SlackError("user_not_found")
        if len(users) > 1:  # a group DM, stable per set of people
            self._require("mpim:write")
            key = ",".join(sorted(set(users)))
            if key not in self._dms:
                self._dms[key] = self._new_id("G")
                self._channels[self._dms[key]] = _Channel(
                    self._dms[key], f"mpdm-{key}", [*sorted(set(users)), self.bot_user_id]
                )
            return {"channel": {"id": self._dms[key]}}
        existed = users[0] in self._dms
        dm = self._open_dm(users[0])
        return {"channel": {"id": dm}, "no_op": existed, "already_open": existed}

    def _readable(self, ref: Any) -> _Channel:
        """A channel for conversations.info / .members: the scope needed is its kind's."""
        ch = self._channels.get(str(ref or ""))
        if ch is None:
            raise _SlackError("channel_not_found")
        if ch.im_user is not None:
            kind = "im"
        elif ch.name.startswith("mpdm-"):
            kind = "mpim"
        else:
            kind = "private" if ch.id.startswith("G") else "public"
        self._require(READ_SCOPES[kind])
        return ch

    def _conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        ch = self._readable(params.get("channel"))
        if ch.im_user is not None:
            info: dict[str, Any] = {"id": ch.id, "is_im": True, "user": ch.im_user, "is_open": True}
            return {"channel": info}
        return {
            "channel": {
                "id": ch.id,
                "name": ch.name,
                "is_channel": not ch.id.startswith("G"),
                "is_group": False,
                "is_im": False,
                "is_mpim": ch.name.startswith("mpdm-"),
                "is_private": ch.id.startswith("G"),
                "is_archived": False,
                "is_member": ch.bot_is_member,
                "num_members": len(self._members(ch)),
                "context_team_id": self.team_id,
            }
        }

    def _members(self, ch: _Channel) -> list[str]:
        members = list(ch.members)
        if ch.bot_is_member and self.bot_user_id not in members:
            members.append(self.bot_user_id)
        return members

    def _conversations_members(self, params: dict[str, Any]) -> dict[str, Any]:
        ch = self._readable(params.get("channel"))
        return {"members": self._members(ch), "response_metadata": {"next_cursor": ""}}

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = str(params.get("user", ""))
        if user not in self._users:
            raise _SlackError("user_not_found")
        name = self._users[user]
        return {
            "user": {
                "id": user,
                "team_id": self.team_id,
                "name": name,
                "real_name": name,
                "deleted": False,
                "is_bot": user == self.bot_user_id,
                "is_admin": False,
                "tz": "Europe/London",
                "profile": {"real_name": name, "display_name": name, "team": self.team_id},
            }
        }

    # ----------------------------------------------------------------- views

    def _exchange(self, trigger_id: Any) -> _Trigger:
        trigger = self._triggers.get(str(trigger_id or ""))
        if trigger is None:
            raise _SlackError("invalid_trigger_id")
        if trigger.used:
            raise _SlackError("exchanged_trigger_id")
        if self._trigger_clock - trigger.issued > self.trigger_ttl:
            raise _SlackError("expired_trigger_id")
        trigger.used = True
        return trigger

    def _make_view(
        self, view: Any, kind: str, root: str | None = None, previous: str | None = None
    ) -> dict[str, Any]:
        if not isinstance(view, dict) or view.get("type") != kind:
            raise _SlackError("invalid_arguments")
        errors = _view_errors(view)
        if errors:
            raise _SlackError("invalid_arguments", **_details(errors))
        view_id = self._new_id("V")
        blocks = _checked_blocks(view.get("blocks"), limit=100, ids=itertools.count(1))
        made = {
            **view,
            "id": view_id,
            "team_id": self.team_id,
            "blocks": blocks,
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""),
            "state": {"values": {}},
            "hash": self._new_id("h."),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "root_view_id": root or view_id,
            "previous_view_id": previous,
            "app_id": APP_ID,
            "bot_id": BOT_ID,
        }
        self._views[view_id] = made
        return made

    def _views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        trigger = self._exchange(params.get("trigger_id"))
        view = self._make_view(params.get("view"), "modal")
        self._stacks[view["id"]] = [view["id"]]
        self._opened.append(view)
        self._opener[view["id"]] = trigger.user
        return {"view": view}

    def _views_push(self, params: dict[str, Any]) -> dict[str, Any]:
        trigger = self._exchange(params.get("trigger_id"))
        if trigger.view_id is None or trigger.view_id not in self._views:
            raise _SlackError("invalid_trigger_id")  # a push needs an interaction in a modal
        root = self._views[trigger.view_id]["root_view_id"]
        stack = self._stacks.setdefault(root, [root])
        if len(stack) >= MAX_VIEW_STACK:
            raise _SlackError("push_limit_reached")
        view = self._make_view(params.get("view"), "modal", root, stack[-1])
        stack.append(view["id"])
        self._opened.append(view)
        self._opener[view["id"]] = trigger.user
        return {"view": view}

    def _views_update(self, params: dict[str, Any]) -> dict[str, Any]:
        view_id = str(params.get("view_id") or "")
        if not view_id and params.get("external_id"):
            found = [v for v in self._views.values() if v["external_id"] == params["external_id"]]
            view_id = found[-1]["id"] if found else ""
        old = self._views.get(view_id)
        if old is None:
            raise _SlackError("not_found")
        if params.get("hash") and params["hash"] != old["hash"]:
            raise _SlackError("hash_conflict")
        new = self._make_view(params.get("view"), old["type"], old["root_view_id"])
        del self._views[new["id"]]
        new.update(id=view_id, previous_view_id=old["previous_view_id"], state=old["state"])
        self._views[view_id] = new
        return {"view": new}

    def _views_publish(self, params: dict[str, Any]) -> dict[str, Any]:
        user = str(params.get("user_id") or "")
        if not user.startswith(("U", "W")):
            raise _SlackError("invalid_arguments")
        view = self._make_view(params.get("view"), "home")
        self._home[user].append(view)
        return {"view": view}

    # ----------------------------------------------------------------- reactions and files

    def _reactions_add(self, params: dict[str, Any]) -> dict[str, Any]:
        ch = self._postable(params.get("channel"))
        m = next((m for m in ch.messages if m.ts == params.get("timestamp")), None)
        if m is None:
            raise _SlackError("message_not_found")
        name = str(params.get("name") or "")
        if not name:
            raise _SlackError("invalid_name")
        if name in m.reactions:
            raise _SlackError("already_reacted")
        m.reactions.append(name)
        return {}

    def _files_get_upload_url(self, params: dict[str, Any]) -> dict[str, Any]:
        if not params.get("filename") or not str(params.get("length", "")).isdigit():
            raise _SlackError("invalid_arguments")
        alt = params.get("alt_txt")
        if alt is not None and len(str(alt)) > 1000:  # Slack's limit for alt text
            raise _SlackError("invalid_arguments")
        file_id = self._new_id("F")
        self._files[file_id] = {
            "filename": str(params["filename"]),
            "length": int(params["length"]),
            "content": None,
            "alt_txt": None if alt is None else str(alt),
        }
        return {"upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}

    def _files_complete_upload(self, params: dict[str, Any]) -> dict[str, Any]:
        files = params.get("files")
        if not isinstance(files, list) or not files:
            raise _SlackError("invalid_arguments")
        channels = [str(params["channel_id"])] if params.get("channel_id") else []
        channels += [c for c in str(params.get("channels") or "").split(",") if c]
        resolved = [self._postable(c).id for c in channels]
        done = []
        for f in files:
            stored = self._files.get(str(f.get("id") if isinstance(f, dict) else ""))
            if stored is None or stored["content"] is None:
                raise _SlackError("file_not_found")
            title = f.get("title") or stored["filename"]
            targets: list[str | None] = [*resolved] or [None]  # no channel: a private file
            for channel in targets:
                self.uploads.append(
                    {
                        "file_id": f["id"],
                        "channel_id": channel,
                        "filename": stored["filename"],
                        "title": title,
                        "alt_txt": stored["alt_txt"],  # given when the upload was started
                        "content": stored["content"],
                        "length": stored["length"],
                        "initial_comment": params.get("initial_comment"),
                        "thread_ts": params.get("thread_ts"),
                    }
                )
            done.append(
                {
                    "id": f["id"],
                    "name": stored["filename"],
                    "title": title,
                    "size": len(stored["content"]),
                    "user": self.bot_user_id,
                    "created": int(time.time()),
                    "channels": resolved,
                    "is_public": any(c.startswith("C") for c in resolved),
                }
            )
        return {"files": done}

    async def _upload(self, request: web.Request) -> web.Response:
        """The upload URL handed out by files.getUploadURLExternal (POST or PUT of the bytes)."""
        stored = self._files.get(request.match_info["file_id"])
        if stored is None or request.method not in ("POST", "PUT"):
            return web.Response(status=404, text="not found")
        if request.content_type == "multipart/form-data":
            form = await _form(request)
            content = next((v for v in form.values() if isinstance(v, bytes)), b"")
        else:
            content = await request.read()
        stored["content"] = content
        return web.Response(text=f"OK - {len(content)}")

    # ----------------------------------------------------------------- response_url

    def _response_url(self, user: str, channel: str | None, message_ts: str | None) -> str:
        key = hashlib.sha256(f"{next(self._ids)}:{user}".encode()).hexdigest()[:24]
        self._response_urls[key] = _ResponseTarget(user, channel, message_ts)
        return f"{self.base_url}/response/{key}"

    async def _respond(self, request: web.Request) -> web.Response:
        """What Slack does with a POST to a response_url (Bolt's ``respond()``)."""
        target = self._response_urls.get(request.match_info["key"])
        if target is None:
            return web.Response(status=404, text="no_service")
        try:
            payload = await request.json()
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        self.responses.append({"user": target.user, "channel": target.channel, **payload})
        ch = self._channels.get(target.channel or "")
        original = next((m for m in ch.messages if m.ts == target.message_ts), None) if ch else None
        blocks = None
        if payload.get("blocks") is not None:
            try:
                blocks = _checked_blocks(payload["blocks"], limit=50, ids=itertools.count(1))
            except _SlackError:
                return web.Response(status=400, text="invalid_blocks")
        if payload.get("delete_original") and ch and original:
            ch.messages.remove(original)
        elif payload.get("replace_original") and original:
            original.text = str(payload.get("text", original.text))
            original.blocks = blocks if blocks is not None else original.blocks
            original.updates += 1
        elif payload.get("response_type") == "in_channel" and ch:
            self._post(ch, str(payload.get("text", "")), blocks or [], payload.get("thread_ts"))
        else:
            self._ephemeral[target.user].append(
                {**payload, "channel": target.channel, "user": target.user}
            )
        return web.Response(text="ok")

    # ----------------------------------------------------------------- triggers

    def advance_trigger_clock(self, seconds: float) -> None:
        """Let ``seconds`` pass for the triggers issued so far (they expire after
        ``trigger_ttl``)."""
        self._trigger_clock += seconds

    def _issue_trigger(self, user: str, view_id: str | None = None) -> str:
        n = next(self._ids)
        trigger_id = f"{n}.{FIRST_TS + n}.{hashlib.sha256(str(n).encode()).hexdigest()[:32]}"
        self._triggers[trigger_id] = _Trigger(user, self._trigger_clock, view_id)
        return trigger_id

    # ----------------------------------------------------------------- Socket Mode

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self._sockets),
                "connection_info": {"app_id": APP_ID},
            }
        )
        self._connected.set()
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.socket_acks.append(json.loads(msg.data))
        self._sockets.remove(ws)
        return ws

    async def wait_connected(self, timeout: float = 60.0) -> None:
        """Wait until the bot has opened a Socket Mode connection."""
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def socket_send(self, kind: str, payload: dict[str, Any]) -> str:
        """Send an envelope (``interactive``, ``events_api``, ``slash_commands``) over the socket;
        returns its envelope id (the bot must acknowledge it)."""
        envelope_id = f"env-{next(self._ids):06d}"
        await self._sockets[-1].send_json(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": kind != "events_api",
            }
        )
        return envelope_id


# --------------------------------------------------------------------- request parsing


async def _read_params(request: web.Request) -> dict[str, Any]:
    """Query string plus JSON, urlencoded or multipart body, JSON-encoded fields decoded."""
    params: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise _SlackError("invalid_json") from None
            if not isinstance(body, dict):
                raise _SlackError("invalid_json")
            params.update(body)
        else:
            params.update(await _form(request))
    for key in JSON_FIELDS:
        value = params.get(key)
        if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
            try:
                params[key] = json.loads(value)
            except ValueError:
                raise _SlackError(
                    "invalid_blocks_format" if key == "blocks" else "invalid_arguments"
                ) from None
    return params


async def _form(request: web.Request) -> dict[str, Any]:
    """Fields of a urlencoded or multipart body (uploaded files as bytes)."""
    fields: dict[str, Any] = {}
    for key, value in (await request.post()).items():
        fields[key] = value.file.read() if isinstance(value, web.FileField) else value
    return fields


# --------------------------------------------------------------------- Block Kit


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


def _plain_text_errors(obj: Any, limit: int, where: str) -> list[str]:
    if obj is None:
        return []
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        return [f"must provide an object [json-pointer:{where}]"]
    if len(obj["text"]) > limit:
        return [f"must be less than {limit + 1} characters [json-pointer:{where}/text]"]
    return []


def _element_errors(element: dict[str, Any], where: str) -> list[str]:
    errors: list[str] = []
    kind = element.get("type")
    if not isinstance(kind, str):
        return [f"missing required field: type [json-pointer:{where}]"]
    if len(str(element.get("action_id", ""))) > 255:
        errors.append(f"must be less than 256 characters [json-pointer:{where}/action_id]")
    if kind == "button":
        if "text" not in element:
            errors.append(f"missing required field: text [json-pointer:{where}]")
        errors += _plain_text_errors(element.get("text"), 75, f"{where}/text")
        if len(str(element.get("value", ""))) > 2000:
            errors.append(f"must be less than 2001 characters [json-pointer:{where}/value]")
    for i, option in enumerate(element.get("options") or []):
        errors += _plain_text_errors(option.get("text"), 75, f"{where}/options/{i}/text")
        if len(str(option.get("value", ""))) > 150:
            errors.append(
                f"must be less than 151 characters [json-pointer:{where}/options/{i}/value]"
            )
    if len(element.get("options") or []) > 100:
        errors.append(f"must provide at most 100 items [json-pointer:{where}/options]")
    return errors


def _block_errors(block: Any, where: str) -> list[str]:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        return [f"missing required field: type [json-pointer:{where}]"]
    errors: list[str] = []
    kind = block["type"]
    if len(str(block.get("block_id", ""))) > 255:
        errors.append(f"must be less than 256 characters [json-pointer:{where}/block_id]")
    if kind == "section":
        if "text" not in block and "fields" not in block:
            errors.append(f"must provide either text or fields [json-pointer:{where}]")
        text = block.get("text")
        if isinstance(text, dict) and len(str(text.get("text", ""))) > 3000:
            errors.append(f"must be less than 3001 characters [json-pointer:{where}/text/text]")
        if len(block.get("fields") or []) > 10:
            errors.append(f"must provide at most 10 items [json-pointer:{where}/fields]")
    elif kind == "header":
        errors += _plain_text_errors(block.get("text"), 150, f"{where}/text")
    elif kind == "actions":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
            errors.append(f"must provide 1 to 25 items [json-pointer:{where}/elements]")
    elif kind == "input":
        errors += _plain_text_errors(block.get("label"), 2000, f"{where}/label")
        if not isinstance(block.get("element"), dict):
            errors.append(f"missing required field: element [json-pointer:{where}]")
    seen: set[str] = set()
    elements = list(block.get("elements") or []) if kind == "actions" else []
    for name in ("accessory", "element"):
        if isinstance(block.get(name), dict):
            elements.append(block[name])
    for i, element in enumerate(elements):
        if not isinstance(element, dict):
            errors.append(f"must provide an object [json-pointer:{where}/elements/{i}]")
            continue
        errors += _element_errors(element, f"{where}/elements/{i}")
        action_id = element.get("action_id")
        if action_id is not None and action_id in seen:
            errors.append(f"action_id already exists: {action_id} [json-pointer:{where}]")
        seen.add(str(action_id))
    return errors


def _details(errors: list[str]) -> dict[str, Any]:
    return {"errors": errors, "response_metadata": {"messages": [f"[ERROR] {e}" for e in errors]}}


def _checked_blocks(blocks: Any, limit: int, ids: Iterator[int]) -> list[dict[str, Any]]:
    """Blocks as Slack stores them (missing block_id / action_id filled in), or invalid_blocks."""
    if blocks is None:
        return []
    if not isinstance(blocks, list):
        raise _SlackError("invalid_blocks_format")
    blocks = copy.deepcopy(blocks)
    errors: list[str] = []
    if len(blocks) > limit:
        errors.append(f"must provide at most {limit} items [json-pointer:/blocks]")
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        errors += _block_errors(block, f"/blocks/{i}")
        if isinstance(block, dict) and "block_id" in block:
            if block["block_id"] in block_ids:
                errors.append(
                    f"block_id already exists: {block['block_id']} [json-pointer:/blocks]"
                )
            block_ids.add(str(block["block_id"]))
    if errors:
        raise _SlackError("invalid_blocks", **_details(errors))
    for block in blocks:
        while "block_id" not in block:
            candidate = _short_id(next(ids), "b")
            if candidate not in block_ids:
                block["block_id"] = candidate
                block_ids.add(candidate)
        for name in ("accessory", "element"):
            element = block.get(name)
            if isinstance(element, dict) and element.get("type") not in NOT_INTERACTIVE:
                element.setdefault("action_id", _short_id(next(ids), "a"))
        if block["type"] == "actions":
            for element in block["elements"]:
                element.setdefault("action_id", _short_id(next(ids), "a"))
    return blocks


def _short_id(n: int, salt: str) -> str:
    """A short opaque id like Slack's generated block_ids ("Xk3=")."""
    return hashlib.sha256(f"{salt}{n}".encode()).hexdigest()[:5]


def _view_errors(view: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    if not isinstance(view.get("blocks"), list):
        return ["missing required field: blocks [json-pointer:/view]"]
    if view["type"] == "modal":
        if "title" not in view:
            errors.append("missing required field: title [json-pointer:/view]")
        errors += _plain_text_errors(view.get("title"), 24, "/view/title")
        errors += _plain_text_errors(view.get("submit"), 24, "/view/submit")
        errors += _plain_text_errors(view.get("close"), 24, "/view/close")
        has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in view["blocks"])
        if has_input and "submit" not in view:
            errors.append("submit is required when an input block is present [json-pointer:/view]")
    if len(str(view.get("private_metadata", ""))) > 3000:
        errors.append("must be less than 3001 characters [json-pointer:/view/private_metadata]")
    if len(str(view.get("callback_id", ""))) > 255:
        errors.append("must be less than 256 characters [json-pointer:/view/callback_id]")
    return errors


# --------------------------------------------------------------------- the person in Slack

_EMPTY_STATE = {  # element type -> (key of its state, whether that is a list)
    "plain_text_input": ("value", False),
    "email_text_input": ("value", False),
    "url_text_input": ("value", False),
    "number_input": ("value", False),
    "static_select": ("selected_option", False),
    "external_select": ("selected_option", False),
    "radio_buttons": ("selected_option", False),
    "users_select": ("selected_user", False),
    "conversations_select": ("selected_conversation", False),
    "channels_select": ("selected_channel", False),
    "datepicker": ("selected_date", False),
    "timepicker": ("selected_time", False),
    "checkboxes": ("selected_options", True),
    "multi_static_select": ("selected_options", True),
    "multi_external_select": ("selected_options", True),
    "multi_users_select": ("selected_users", True),
    "multi_conversations_select": ("selected_conversations", True),
    "multi_channels_select": ("selected_channels", True),
}


def _complete_state(values: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """View state as Slack sends it: an element left empty still has its key, set to null (or
    to an empty list for checkboxes and multi-selects)."""
    complete: dict[str, dict[str, Any]] = {}
    for block_id, actions in values.items():
        complete[block_id] = {}
        for action_id, state in actions.items():
            state = dict(state)
            key, is_list = _EMPTY_STATE.get(str(state.get("type", "")), ("", False))
            if key:
                state.setdefault(key, [] if is_list else None)
            complete[block_id][action_id] = state
    return complete


class SlackUser:
    """A person in Slack: their clicks, submissions, commands and events reach the bot signed
    with the fake's signing secret, exactly as Slack's servers would send them."""

    def __init__(self, fake: FakeSlack, user_id: str, app_url: str) -> None:
        self.fake, self.user_id, self.app_url = fake, user_id, app_url
        self.last_trigger_id: str | None = None

    def sign(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """Slack's signature headers for ``body`` (v0 HMAC-SHA256 of ``v0:timestamp:body``)."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        base = f"v0:{ts}:".encode() + body
        digest = hmac.new(self.fake.signing_secret.encode(), base, hashlib.sha256).hexdigest()
        return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}

    async def raw(self, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        """POST bytes to the bot as they are (for negative tests); returns (status, body)."""
        async with (
            aiohttp.ClientSession() as http,
            http.post(self.app_url, data=body, headers=headers) as resp,
        ):
            return resp.status, await resp.text()

    async def _post_form(self, fields: dict[str, str]) -> tuple[int, str]:
        body = urllib.parse.urlencode(fields).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", **self.sign(body)}
        return await self.raw(body, headers)

    def _trigger(self, view_id: str | None = None) -> str:
        self.last_trigger_id = self.fake._issue_trigger(self.user_id, view_id)
        return self.last_trigger_id

    def _user(self) -> dict[str, Any]:
        name = self.fake._users.get(self.user_id, self.user_id.lower())
        return {"id": self.user_id, "username": name, "name": name, "team_id": self.fake.team_id}

    def _base(self) -> dict[str, Any]:
        return {
            "user": self._user(),
            "api_app_id": APP_ID,
            "token": "legacy-verification-token",
            "team": {"id": self.fake.team_id, "domain": "tensionbot-test"},
            "enterprise": None,
            "is_enterprise_install": False,
        }

    def _channel_json(self, channel_id: str) -> dict[str, Any]:
        ch = self.fake._channels.get(channel_id)
        if ch is None or ch.im_user is not None:
            return {"id": channel_id, "name": "directmessage" if ch else "unknown"}
        return {"id": channel_id, "name": ch.name}

    def _action(
        self, block_id: str, element: dict[str, Any], value: str | None, selected: str | None
    ) -> dict[str, Any]:
        kind = element["type"]
        action: dict[str, Any] = {
            "type": kind,
            "action_id": element["action_id"],
            "block_id": block_id,
            "action_ts": f"{time.time():.6f}",
        }
        if kind == "button":
            action["text"] = element.get("text", {})
            action["value"] = element.get("value", "") if value is None else value
            if "style" in element:
                action["style"] = element["style"]
        elif kind in ("static_select", "overflow", "radio_buttons", "external_select"):
            wanted = selected if selected is not None else value
            options = list(element.get("options") or [])
            for group in element.get("option_groups") or []:
                options += group.get("options") or []
            option = next((o for o in options if o.get("value") == wanted), None)
            if option is None and kind == "external_select" and wanted is not None:
                option = {"text": {"type": "plain_text", "text": wanted}, "value": wanted}
            if option is None:
                have = [o.get("value") for o in options]
                raise AssertionError(f"no option {wanted!r} in {element['action_id']}: {have}")
            action["selected_option"] = option
        elif kind in ("users_select", "conversations_select", "channels_select"):
            key = {"users_select": "selected_user", "conversations_select": "selected_conversation"}
            action[key.get(kind, "selected_channel")] = selected or value
        elif kind == "datepicker":
            action["selected_date"] = selected or value
        elif kind == "checkboxes":
            chosen = set((selected or value or "").split(","))
            action["selected_options"] = [
                o for o in element.get("options") or [] if o.get("value") in chosen
            ]
        elif value is not None:
            action["value"] = value
        return action

    async def click(
        self,
        message: SlackMessage,
        action_id: str,
        value: str | None = None,
        *,
        selected_option: str | None = None,
        socket: bool = False,
    ) -> int:
        """Use an interactive element of a message (as it now stands): a button (``value``
        overrides the button's own), or a select / overflow (``selected_option`` is the value of
        the option chosen). Sends the signed ``block_actions`` payload; returns Bolt's HTTP
        status (over Socket Mode when ``socket``; then returns 0)."""
        block_id, element = message.element(action_id)
        payload = {
            **self._base(),
            "type": "block_actions",
            "container": {
                "type": "message",
                "message_ts": message.ts,
                "channel_id": message.channel,
                "is_ephemeral": False,
            },
            "trigger_id": self._trigger(),
            "channel": self._channel_json(message.channel),
            "message": self.fake._message_json(message),
            "state": {"values": {}},
            "response_url": self.fake._response_url(self.user_id, message.channel, message.ts),
            "actions": [self._action(block_id, element, value, selected_option)],
        }
        if socket:
            await self.fake.socket_send("interactive", payload)
            return 0
        status, _ = await self._post_form({"payload": json.dumps(payload)})
        return status

    async def submit_view(
        self, view: dict[str, Any], values: dict[str, dict[str, Any]]
    ) -> tuple[int, dict[str, Any] | None]:
        """Submit a modal with ``values`` (block_id -> action_id -> element state, e.g.
        ``{"type": "plain_text_input", "value": "..."}``). Returns Bolt's status and its JSON
        answer (``response_action`` errors/update/push), or None for a plain acknowledgement."""
        view_id = view.get("id") or self.fake._new_id("V")
        current = self.fake._views.get(view_id, view)
        submitted = {
            "id": view_id,
            "team_id": self.fake.team_id,
            "type": current.get("type", "modal"),
            "blocks": current.get("blocks", []),
            "private_metadata": current.get("private_metadata", ""),
            "callback_id": current.get("callback_id", ""),
            "external_id": current.get("external_id", ""),
            "title": current.get("title"),
            "submit": current.get("submit"),
            "close": current.get("close"),
            "hash": current.get("hash", ""),
            "state": {"values": _complete_state(values)},
            "root_view_id": current.get("root_view_id", view_id),
            "previous_view_id": current.get("previous_view_id"),
            "app_id": APP_ID,
            "bot_id": BOT_ID,
        }
        payload = {
            **self._base(),
            "type": "view_submission",
            "trigger_id": self._trigger(view_id),
            "view": submitted,
            "response_urls": [],
        }
        status, text = await self._post_form({"payload": json.dumps(payload)})
        body = json.loads(text) if text.strip().startswith("{") else None
        return status, body

    async def slash(
        self, command: str, text: str = "", channel_id: str = "C0GENERAL"
    ) -> tuple[int, str]:
        """Run a slash command in a channel; returns Bolt's status and body."""
        channel = self._channel_json(channel_id)
        return await self._post_form(
            {
                "token": "legacy-verification-token",
                "team_id": self.fake.team_id,
                "team_domain": "tensionbot-test",
                "channel_id": channel_id,
                "channel_name": channel["name"],
                "user_id": self.user_id,
                "user_name": self._user()["name"],
                "command": command,
                "text": text,
                "api_app_id": APP_ID,
                "is_enterprise_install": "false",
                "response_url": self.fake._response_url(self.user_id, channel_id, None),
                "trigger_id": self._trigger(),
            }
        )

    async def shortcut(self, callback_id: str) -> int:
        """Pick a global shortcut from Slack's shortcut menu: the signed ``shortcut`` payload
        (with a fresh trigger_id, good for one ``views.open``) as Slack sends it; returns
        Bolt's HTTP status."""
        payload = {
            "type": "shortcut",
            "token": "legacy-verification-token",
            "action_ts": f"{time.time():.6f}",
            "team": {"id": self.fake.team_id, "domain": "tensionbot-test"},
            "user": {
                "id": self.user_id,
                "username": self._user()["username"],
                "team_id": self.fake.team_id,
            },
            "is_enterprise_install": False,
            "enterprise": None,
            "callback_id": callback_id,
            "trigger_id": self._trigger(),
        }
        status, _ = await self._post_form({"payload": json.dumps(payload)})
        return status

    async def event(self, event: dict[str, Any]) -> int:
        """Deliver an Events API ``event_callback`` (e.g. ``app_home_opened``, a ``message`` in
        a DM) as Slack does; ``user`` and ``event_ts`` are filled in if absent."""
        event_ts = f"{time.time():.6f}"
        event = {"user": self.user_id, "event_ts": event_ts, **event}
        n = next(self.fake._ids)
        envelope = {
            "token": "legacy-verification-token",
            "team_id": self.fake.team_id,
            "context_team_id": self.fake.team_id,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{n:08d}",
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.fake.team_id,
                    "user_id": self.fake.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": f"4-{hashlib.sha256(str(n).encode()).hexdigest()[:16]}",
        }
        body = json.dumps(envelope).encode()
        status, _ = await self.raw(body, {"Content-Type": "application/json", **self.sign(body)})
        return status
