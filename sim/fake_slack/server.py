"""The aiohttp server itself: start and stop, the route every Web API method comes in by, the
token and scope checks (``x-oauth-scopes`` on every answer), per-channel rate windows (429 with
``Retry-After``), injected faults, held answers, and the Bot's Socket Mode connection."""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import Any

import aiohttp
from aiohttp import web

from sim.fake_slack.params import _read_params
from sim.fake_slack.records import (
    _HTML_ERROR,
    APP_ID,
    METHOD_SCOPES,
    RATE_LIMITED,
    Handler,
    SlackCall,
    _Injection,
    _SlackError,
)
from sim.fake_slack.views import _Views


class FakeSlack(_Views):
    """The fake Slack Web API server (start it, then point ``AsyncWebClient`` at ``/api/``)."""

    def _method_table(self) -> dict[str, Handler]:
        """The handler of each Web API method the fake answers (any other: unknown_method)."""
        return {
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
