"""The aiohttp server itself: start and stop, the one route every Bot API method comes in by,
the token check, rate limits (429 with ``retry_after``), injected faults and held sends."""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import Any

from aiohttp import web

from sim.fake_telegram.methods import _Methods
from sim.fake_telegram.records import (
    SENDING_METHODS,
    ApiCall,
    _ApiError,
    _Channel,
    _Chat,
    _Injection,
    _int_or_none,
)
from sim.fake_telegram.user import SimUser

_STRING_FIELDS = frozenset(
    {
        "text",
        "caption",
        "callback_query_id",
        "parse_mode",
        "url",
        "secret_token",
        "inline_message_id",
    }
)


class FakeTelegram(_Methods):
    """The fake Bot API server."""

    # ----------------------------------------------------------------- lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start listening; returns the base URL (``http://127.0.0.1:PORT``)."""
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        actual = sockets[0].getsockname()[1]
        self.base_url = f"http://{host}:{actual}"
        return self.base_url

    async def stop(self) -> None:
        """Stop the server (and any webhook deliveries still being retried)."""
        workers = list(self._webhook_workers.values())
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ----------------------------------------------------------------- users

    def user(self, user_id: int, first_name: str = "Test", username: str | None = None) -> SimUser:
        """The simulated person with this id (private chat id == user id)."""
        chat = self._chats.get(user_id)
        if chat is None:
            chat = _Chat(SimUser(self, user_id, first_name, username))
            self._chats[user_id] = chat
        return chat.user

    def channel(self, username: str, *, title: str = "", bot_status: str = "administrator") -> int:
        """A public channel ``@username``; its id. ``bot_status`` is the bot's place in it:
        ``"administrator"`` (it may post), ``"member"`` (it may not: 400), ``"left"`` or
        ``"kicked"`` (403). A channel never created here is "chat not found" (400)."""
        name = username.removeprefix("@")
        existing = self._find_channel(f"@{name}")
        if existing is not None:
            existing.bot_status = bot_status
            return existing.chat_id
        chat_id = -1001000000000 - len(self._channels)
        self._channels[chat_id] = _Channel(chat_id, name, title or name, bot_status)
        return chat_id

    # ----------------------------------------------------------------- faults

    def inject(
        self,
        status: int,
        *,
        method: str | None = None,
        chat_id: int | None = None,
        times: int = 1,
        retry_after: int = 1,
        description: str | None = None,
        hang: float = 30.0,
        carried_out: bool = False,
    ) -> None:
        """Make the next ``times`` matching calls fail (status 0: hang for ``hang`` seconds,
        then answer 504: a timeout for a client that waits less). Not carried out, unless
        ``carried_out`` (status 0 or 5xx only): then the call takes effect (the message is in
        the chat) and the error is answered after it, as Telegram's front end does when its
        back end answers too late."""
        if carried_out and not (status == 0 or status >= 500):
            raise ValueError("only a timeout or a 5xx can come after the call was carried out")
        self._injections.append(
            _Injection(status, method, chat_id, times, retry_after, description, hang, carried_out)
        )

    def clear_injections(self) -> None:
        """Forget every injected fault not used yet (the platform is well again)."""
        self._injections.clear()

    def hold_sends(self, after: int, *, containing: str = "") -> None:
        """Let ``after`` more ``sendMessage`` calls whose text contains ``containing`` through,
        then hold every later one at the server, unanswered, until :meth:`release_sends`.

        The way a test stops the bot at an exact point (say, a third of the forms sent) however
        fast or slow the machine is: it waits for :attr:`held`, never for a time. A held call
        whose client has gone (the bot was killed) is dropped on release, as a request that never
        reached Telegram."""
        self._hold_allowance, self._hold_containing = after, containing
        self._released.clear()

    def release_sends(self) -> None:
        """Stop holding: the held calls go on (or are dropped if their client has gone)."""
        self._hold_allowance = None
        self._released.set()

    async def _hold(self, request: web.Request, params: dict[str, Any]) -> bool:
        """Wait here while sends are held; False when the client went away meanwhile."""
        if self._hold_allowance is None or self._hold_containing not in str(params.get("text")):
            return True
        if self._hold_allowance > 0:
            self._hold_allowance -= 1
            return True
        self.held += 1
        try:
            await self._released.wait()
        finally:
            self.held -= 1
        transport = request.transport
        return transport is not None and not transport.is_closing()

    def block(self, chat_id: int) -> None:
        """The person blocks the bot: every later send or edit to the chat gets 403."""
        self._chat(chat_id).blocked = True

    # ----------------------------------------------------------------- HTTP

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        chat_id = _int_or_none(params.get("chat_id"))
        call = ApiCall(method, params, chat_id, time.monotonic())
        self.calls.append(call)
        if request.match_info["token"] != self.token:
            return self._error(call, _ApiError(401, "Unauthorized"))
        try:
            after = await self._apply_injection(method, chat_id)
            if method in SENDING_METHODS:
                self._enforce_rate(chat_id)
            if method == "sendMessage" and not await self._hold(request, params):
                return web.Response(status=499)  # nobody is listening: not carried out
            handler = getattr(self, f"_api_{method}", None)
            if handler is None:
                raise _ApiError(404, "Not Found")
            result = await handler(params)
            if after is not None:  # carried out; the answer is the fault
                raise await self._fault_after_hang(after)
        except _ApiError as exc:
            return self._error(call, exc)
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    async def _params(request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            body = await request.json()
            params.update(body if isinstance(body, dict) else {})
            return params
        if request.can_read_body:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    data = value.file.read()
                    params[key] = {"filename": value.filename, "size": len(data), "data": data}
                elif key in _STRING_FIELDS:
                    params[key] = value
                else:
                    try:
                        params[key] = json.loads(value)
                    except ValueError:
                        params[key] = value
        return params

    def _error(self, call: ApiCall, exc: _ApiError) -> web.Response:
        call.status = exc.status
        body: dict[str, Any] = {
            "ok": False,
            "error_code": exc.status,
            "description": exc.description,
        }
        if exc.retry_after is not None:
            body["parameters"] = {"retry_after": exc.retry_after}
            call.retry_after = exc.retry_after
        return web.json_response(body, status=exc.status)

    async def _apply_injection(self, method: str, chat_id: int | None) -> _Injection | None:
        """Raise the first matching fault; one to be carried out first is returned instead."""
        for inj in self._injections:
            if inj.times <= 0:
                continue
            if inj.method is not None and inj.method != method:
                continue
            if inj.chat_id is not None and inj.chat_id != chat_id:
                continue
            inj.times -= 1
            if inj.carried_out:
                return inj
            raise await self._fault_after_hang(inj)
        return None

    async def _fault_after_hang(self, inj: _Injection) -> _ApiError:
        if inj.status == 0:
            await asyncio.sleep(inj.hang)
        return self._fault(inj)

    @staticmethod
    def _fault(inj: _Injection) -> _ApiError:
        if inj.status == 0:
            return _ApiError(504, "Gateway Timeout")
        if inj.status == 429:
            return _ApiError(
                429,
                inj.description or f"Too Many Requests: retry after {inj.retry_after}",
                inj.retry_after,
            )
        default = {
            403: "Forbidden: bot was blocked by the user",
            400: "Bad Request",
            500: "Internal Server Error",
            502: "Bad Gateway",
            504: "Gateway Timeout",
        }
        return _ApiError(inj.status, inj.description or default.get(inj.status, "Error"))

    def _enforce_rate(self, chat_id: int | None) -> None:
        now = time.monotonic()
        wait = 0.0
        if self.global_rate is not None:
            while self._sent_times and self._sent_times[0] <= now - 1.0:
                self._sent_times.popleft()
            if len(self._sent_times) >= self.global_rate:
                wait = max(wait, self._sent_times[0] + 1.0 - now)
        if self.per_chat_rate is not None and chat_id is not None:
            times = self._chat_times[chat_id]
            while times and times[0] <= now - 1.0:
                times.popleft()
            if len(times) >= self.per_chat_rate:
                wait = max(wait, times[0] + 1.0 - now)
        if wait > 0:
            self.throttled += 1
            retry = max(1, math.ceil(wait))
            raise _ApiError(429, f"Too Many Requests: retry after {retry}", retry)
        self._sent_times.append(now)
        if chat_id is not None:
            self._chat_times[chat_id].append(now)
