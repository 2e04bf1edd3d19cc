"""A local simulated Slack: the Web API the bot calls, and a user who clicks in Slack.

:class:`FakeSlack` answers the real ``slack_sdk`` ``AsyncWebClient`` over HTTP with real Slack
JSON (``base_url=f"{fake.base_url}/api/"``): messages, updates, threads, ephemerals, modals, DMs.
It can inject errors and rate limits (HTTP 429 with ``Retry-After``). :class:`SlackUser` sends
what Slack's servers send to the bot — signed ``block_actions``, ``view_submission``, slash
commands and events — to the bot's real Bolt endpoint.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
import urllib.parse
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

# Slack's special "1 message per second per channel" limit is on posting, not on updates.
POSTING = frozenset({"chat.postMessage"})


@dataclass
class SlackCall:
    """One recorded Web API request."""

    method: str
    params: dict[str, Any]
    at: float
    status: int = 200
    error: str | None = None


@dataclass
class SlackMessage:
    """A message as it currently stands (updates applied)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None
    user: str
    updates: int = 0

    def action_ids(self) -> list[str]:
        """The action_id of every interactive element."""
        return [
            e["action_id"]
            for b in self.blocks
            if b.get("type") == "actions"
            for e in b.get("elements", [])
            if "action_id" in e
        ]

    def element(self, action_id: str) -> tuple[str, dict[str, Any]]:
        """(block_id, element) of an interactive element."""
        for b in self.blocks:
            for e in b.get("elements", []) if b.get("type") == "actions" else []:
                if e.get("action_id") == action_id:
                    return b.get("block_id", ""), e
        raise AssertionError(f"no {action_id!r} in message {self.ts}: {self.action_ids()}")


@dataclass
class _Injection:
    method: str | None
    error: str | None
    status: int
    retry_after: int
    times: int


@dataclass
class _Channel:
    name: str
    members: list[str]
    bot_is_member: bool = True
    messages: list[SlackMessage] = field(default_factory=list)


class FakeSlack:
    """The fake Slack Web API server."""

    def __init__(
        self,
        *,
        token: str = "xoxb-test-token",  # noqa: S107 - a fake server's fake token
        signing_secret: str = "test-signing-secret",  # noqa: S107
        team_id: str = "T0TEST",
        bot_user_id: str = "U0BOT",
        per_channel_rate: float | None = None,
    ) -> None:
        self.token, self.signing_secret = token, signing_secret
        self.team_id, self.bot_user_id = team_id, bot_user_id
        self.per_channel_rate = per_channel_rate
        self.base_url = ""
        self.calls: list[SlackCall] = []
        self.throttled = 0
        self._channels: dict[str, _Channel] = {}
        self._users: dict[str, str] = {}
        self._dms: dict[str, str] = {}
        self._ephemeral: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._views: list[dict[str, Any]] = []
        self._home: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._injections: list[_Injection] = []
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._times: dict[str, deque[float]] = defaultdict(deque)
        self._runner: web.AppRunner | None = None
        self.app_token = "xapp-test-token"  # noqa: S105
        self._sockets: list[web.WebSocketResponse] = []
        self.socket_acks: list[dict[str, Any]] = []
        self._connected = asyncio.Event()
        self._files: dict[str, dict[str, Any]] = {}
        self.uploads: list[dict[str, Any]] = []  # completed uploads, with their bytes

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start listening; returns the base URL."""
        app = web.Application()
        app.router.add_post("/api/{method}", self._handle)
        app.router.add_get("/socket", self._socket)
        app.router.add_post("/upload/{file_id}", self._upload)
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
        """Stop the server."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ----------------------------------------------------------------- set-up and inspection

    def add_channel(
        self,
        channel_id: str,
        name: str,
        members: list[str] | None = None,
        *,
        bot_is_member: bool = True,
    ) -> None:
        """A channel; posting elsewhere fails with channel_not_found."""
        self._channels[channel_id] = _Channel(name, list(members or []), bot_is_member)

    def add_user(self, user_id: str, name: str) -> None:
        """A workspace member."""
        self._users[user_id] = name

    def calls_for(self, method: str) -> list[SlackCall]:
        """Recorded calls of one method."""
        return [c for c in self.calls if c.method == method]

    def messages(self, channel: str) -> list[SlackMessage]:
        """Messages in a channel (top level and thread replies), in post order."""
        ch = self._channels.get(channel)
        return list(ch.messages) if ch else []

    def top_level(self, channel: str) -> list[SlackMessage]:
        """Messages not in a thread."""
        return [m for m in self.messages(channel) if m.thread_ts is None]

    def thread(self, channel: str, ts: str) -> list[SlackMessage]:
        """Replies in a thread."""
        return [m for m in self.messages(channel) if m.thread_ts == ts]

    def home_views(self, user: str) -> list[dict[str, Any]]:
        """App Home views published for a user."""
        return list(self._home[user])

    def dm(self, user: str) -> list[SlackMessage]:
        """Messages in the bot's direct-message channel with a user."""
        channel = self._dms.get(user)
        return self.messages(channel) if channel else []

    def ephemerals(self, user: str) -> list[dict[str, Any]]:
        """chat.postEphemeral payloads sent to a user."""
        return list(self._ephemeral[user])

    def views_opened(self) -> list[dict[str, Any]]:
        """Modals opened (views.open)."""
        return list(self._views)

    def inject(
        self,
        method: str | None = None,
        *,
        error: str | None = None,
        status: int = 200,
        retry_after: int = 1,
        times: int = 1,
    ) -> None:
        """The next ``times`` matching calls fail (429: rate limited with Retry-After)."""
        self._injections.append(_Injection(method, error, status, retry_after, times))

    # ----------------------------------------------------------------- HTTP

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await _params(request)
        call = SlackCall(method, params, time.monotonic())
        self.calls.append(call)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        token = token or str(params.get("token", ""))
        if method == "apps.connections.open":
            if token != self.app_token:
                return self._fail(call, "invalid_auth")
            return web.json_response(
                {"ok": True, "url": f"{self.base_url.replace('http', 'ws')}/socket"}
            )
        if token != self.token:
            return self._fail(call, "invalid_auth")
        for inj in self._injections:
            if inj.times > 0 and inj.method in (None, method):
                inj.times -= 1
                if inj.status == 429:
                    return self._rate_limited(call, inj.retry_after)
                if inj.status >= 500:
                    call.status = inj.status
                    return web.Response(status=inj.status, text="upstream error")
                return self._fail(call, inj.error or "internal_error")
        if method in POSTING and self.per_channel_rate is not None:
            channel = str(params.get("channel", ""))
            window, now = self._times[channel], time.monotonic()
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= self.per_channel_rate:
                self.throttled += 1
                return self._rate_limited(call, 1)
            window.append(now)
        handler = getattr(self, "_api_" + method.replace(".", "_"), None)
        if handler is None:
            return self._fail(call, "unknown_method")
        try:
            result = handler(params)
        except _SlackError as exc:
            return self._fail(call, exc.error)
        return web.json_response({"ok": True, **result})

    def _fail(self, call: SlackCall, error: str) -> web.Response:
        call.error = error
        return web.json_response({"ok": False, "error": error})

    def _rate_limited(self, call: SlackCall, retry_after: int) -> web.Response:
        call.status, call.error = 429, "ratelimited"
        return web.json_response(
            {"ok": False, "error": "ratelimited"},
            status=429,
            headers={"Retry-After": str(retry_after)},
        )

    def _channel(self, params: dict[str, Any]) -> tuple[str, _Channel]:
        channel_id = str(params.get("channel", ""))
        ch = self._channels.get(channel_id)
        if ch is None:
            raise _SlackError("channel_not_found")
        if not ch.bot_is_member:
            raise _SlackError("not_in_channel")
        return channel_id, ch

    def _message_json(self, m: SlackMessage) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": "message",
            "user": m.user,
            "bot_id": "B0BOT",
            "ts": m.ts,
            "text": m.text,
            "blocks": m.blocks,
            "team": self.team_id,
        }
        if m.thread_ts:
            data["thread_ts"] = m.thread_ts
        return data

    async def _upload(self, request: web.Request) -> web.Response:
        stored = self._files.get(request.match_info["file_id"])
        if stored is None:
            return web.Response(status=404)
        stored["content"] = await request.read()
        return web.Response(text=f"OK - {len(stored['content'])}")

    # ----------------------------------------------------------------- Socket Mode

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self._sockets),
                "connection_info": {"app_id": "A0TEST"},
            }
        )
        self._connected.set()
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.socket_acks.append(json.loads(msg.data))
        self._sockets.remove(ws)
        return ws

    async def wait_connected(self, timeout: float = 10.0) -> None:
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

    # ----------------------------------------------------------------- methods

    def _api_auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://tensionbot-test.slack.com/",
            "team": "Test",
            "user": "tensionbot",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": "B0BOT",
            "is_enterprise_install": False,
        }

    def _api_chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        channel_id, ch = self._channel(params)
        blocks = params.get("blocks") or []
        if not params.get("text") and not blocks:
            raise _SlackError("no_text")
        thread = params.get("thread_ts") or None
        if thread and not any(m.ts == thread for m in ch.messages):
            raise _SlackError("thread_not_found")
        m = SlackMessage(
            channel_id,
            f"1700000000.{next(self._ts):06d}",
            str(params.get("text", "")),
            blocks,
            thread,
            self.bot_user_id,
        )
        ch.messages.append(m)
        return {"channel": channel_id, "ts": m.ts, "message": self._message_json(m)}

    def _api_chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel_id, ch = self._channel(params)
        for m in ch.messages:
            if m.ts == params.get("ts"):
                m.text = str(params.get("text", m.text))
                m.blocks = params.get("blocks") or m.blocks
                m.updates += 1
                return {
                    "channel": channel_id,
                    "ts": m.ts,
                    "text": m.text,
                    "message": self._message_json(m),
                }
        raise _SlackError("message_not_found")

    def _api_chat_postEphemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        self._channel(params)
        self._ephemeral[str(params.get("user"))].append(params)
        return {"message_ts": f"1700000000.{next(self._ts):06d}"}

    def _api_conversations_open(self, params: dict[str, Any]) -> dict[str, Any]:
        user = str(params.get("users", "")).split(",")[0]
        if not user:
            raise _SlackError("users_list_not_supplied")
        dm = self._dms.setdefault(user, f"D{next(self._ids):08d}")
        self._channels.setdefault(dm, _Channel(f"dm-{user}", [user]))
        return {"channel": {"id": dm}}

    def _api_users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = str(params.get("user"))
        if user not in self._users:
            raise _SlackError("user_not_found")
        return {"user": {"id": user, "name": self._users[user], "team_id": self.team_id}}

    def _api_views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        if not params.get("trigger_id"):
            raise _SlackError("invalid_arguments")
        view = {**params["view"], "id": f"V{next(self._ids):08d}"}
        self._views.append(view)
        return {"view": view}

    def _api_views_update(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"view": params.get("view", {})}

    def _api_views_publish(self, params: dict[str, Any]) -> dict[str, Any]:
        self._home[str(params.get("user_id"))].append(params.get("view", {}))
        return {"view": params.get("view", {})}

    def _api_reactions_add(self, params: dict[str, Any]) -> dict[str, Any]:
        return {}

    def _api_files_getUploadURLExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = f"F{next(self._ids):08d}"
        self._files[file_id] = {
            "filename": params.get("filename"),
            "length": int(params.get("length", 0)),
            "content": None,
        }
        return {"upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}

    def _api_files_completeUploadExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        files = params.get("files")
        files = json.loads(files) if isinstance(files, str) else files
        channel = str(params.get("channel_id", ""))
        if channel and channel not in self._channels:
            raise _SlackError("channel_not_found")
        done = []
        for f in files or []:
            stored = self._files.get(f["id"])
            if stored is None or stored["content"] is None:
                raise _SlackError("file_not_found")
            self.uploads.append(
                {
                    "channel_id": channel,
                    "title": f.get("title"),
                    "initial_comment": params.get("initial_comment"),
                    **stored,
                }
            )
            done.append({"id": f["id"], "title": f.get("title"), "name": stored["filename"]})
        return {"files": done}


class _SlackError(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


async def _params(request: web.Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        body = await request.json()
        params.update(body if isinstance(body, dict) else {})
    elif request.can_read_body:
        for key, value in (await request.post()).items():
            if isinstance(value, str) and key in ("blocks", "view", "attachments") and value:
                params[key] = json.loads(value)
            else:
                params[key] = value
    return params


class SlackUser:
    """A person in Slack: their clicks and submissions reach the bot signed, as from Slack."""

    def __init__(self, fake: FakeSlack, user_id: str, app_url: str) -> None:
        self.fake, self.user_id, self.app_url = fake, user_id, app_url
        self._triggers = itertools.count(1)

    def sign(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """Slack's request signature headers for ``body``."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        base = f"v0:{ts}:".encode() + body
        digest = hmac.new(self.fake.signing_secret.encode(), base, hashlib.sha256).hexdigest()
        return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}

    async def raw(self, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        """POST bytes to the bot (for negative tests)."""
        async with (
            aiohttp.ClientSession() as http,
            http.post(self.app_url, data=body, headers=headers) as resp,
        ):
            return resp.status, await resp.text()

    async def _post_form(self, fields: dict[str, str]) -> tuple[int, str]:
        body = urllib.parse.urlencode(fields).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", **self.sign(body)}
        return await self.raw(body, headers)

    def _base(self) -> dict[str, Any]:
        return {
            "user": {"id": self.user_id, "team_id": self.fake.team_id},
            "team": {"id": self.fake.team_id},
            "api_app_id": "A0TEST",
            "token": "legacy",
            "trigger_id": f"{next(self._triggers)}.trigger",
        }

    async def click(self, message: SlackMessage, action_id: str, *, socket: bool = False) -> int:
        """Click a button of a message (over Socket Mode when ``socket``; then returns 0)."""
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
            "channel": {"id": message.channel},
            "message": self.fake._message_json(message),
            "response_url": "https://hooks.slack.invalid/actions/T0/1/x",
            "actions": [
                {
                    "type": element["type"],
                    "action_id": action_id,
                    "block_id": block_id,
                    "value": element.get("value", ""),
                    "action_ts": str(time.time()),
                }
            ],
        }
        if socket:
            await self.fake.socket_send("interactive", payload)
            return 0
        status, _ = await self._post_form({"payload": json.dumps(payload)})
        return status

    async def submit_view(
        self, view: dict[str, Any], values: dict[str, dict[str, Any]]
    ) -> tuple[int, dict[str, Any] | None]:
        """Submit a modal with ``values`` (block_id -> action_id -> element state)."""
        payload = {
            **self._base(),
            "type": "view_submission",
            "view": {**view, "state": {"values": values}},
        }
        status, text = await self._post_form({"payload": json.dumps(payload)})
        return status, (json.loads(text) if text.strip().startswith("{") else None)

    async def slash(
        self, command: str, text: str = "", channel_id: str = "C0GENERAL"
    ) -> tuple[int, str]:
        """Run a slash command."""
        return await self._post_form(
            {
                "command": command,
                "text": text,
                "user_id": self.user_id,
                "channel_id": channel_id,
                "team_id": self.fake.team_id,
                "trigger_id": f"{next(self._triggers)}.trigger",
                "response_url": "https://hooks.slack.invalid/commands/T0/1/x",
                "token": "legacy",
            }
        )

    async def event(self, event: dict[str, Any]) -> int:
        """Deliver an Events API event (e.g. app_home_opened) as Slack does."""
        envelope = {
            "token": "legacy",
            "team_id": self.fake.team_id,
            "api_app_id": "A0TEST",
            "type": "event_callback",
            "event_id": f"Ev{next(self._triggers):08d}",
            "event_time": int(time.time()),
            "event": event,
        }
        body = json.dumps(envelope).encode()
        status, _ = await self.raw(body, {"Content-Type": "application/json", **self.sign(body)})
        return status
