"""A local simulated Telegram Bot API server (aiohttp, 127.0.0.1).

It is a network peer, not a mock: python-telegram-bot talks to it over HTTP exactly as it talks to
api.telegram.org (``Bot(token, base_url=f"{fake.base_url}/bot")``), and it answers with real Bot API
JSON. It keeps each private chat's messages (with edits applied), delivers updates from simulated
users by ``getUpdates`` long polling or by webhook (in order per chat, each posted again with a
growing delay until the bot answers 2xx, as Telegram does), can enforce Telegram's rate limits (429 with
``retry_after``), and can inject errors (429, 403, 400, 5xx, timeouts) for fault tests.
``getMe``, ``getWebhookInfo`` and ``setMyCommands`` answer and check as the real API does (the
command menus are kept per scope: :meth:`FakeTelegram.commands`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import re
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

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


@dataclass
class _Chat:
    user: SimUser
    messages: list[SentMessage] = field(default_factory=list)
    blocked: bool = False


class _ApiError(Exception):
    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.retry_after = status, description, retry_after


class FakeTelegram:
    """The fake Bot API server."""

    def __init__(
        self,
        *,
        token: str = "123456:TEST-TOKEN",  # noqa: S107 - a fake server's fake token
        bot_username: str = "tensionbot_demo_bot",
        global_rate: float | None = None,
        per_chat_rate: float | None = None,
        webhook_retry_delay: float = 0.25,
        webhook_max_attempts: int = 30,
    ) -> None:
        self.token = token
        self.bot_username = bot_username
        self.global_rate = global_rate
        self.per_chat_rate = per_chat_rate
        self.base_url = ""
        self.calls: list[ApiCall] = []
        self.answers: dict[str, str | None] = {}  # callback query id -> toast text
        self.throttled = 0
        self._chats: dict[int, _Chat] = {}
        self._injections: list[_Injection] = []
        self._updates: deque[dict[str, Any]] = deque()
        self._update_ids = itertools.count(1)
        self._message_ids: dict[int, itertools.count[int]] = defaultdict(lambda: itertools.count(1))
        self._new_update = asyncio.Condition()
        self.changed = asyncio.Condition()
        self._sent_times: deque[float] = deque()
        self._chat_times: dict[int, deque[float]] = defaultdict(deque)
        self._webhook_url: str | None = None
        self._webhook_secret: str | None = None
        # Webhook delivery (see _deliver): per-chat queues, their workers, every attempt.
        self._webhook_queues: dict[int, deque[dict[str, Any]]] = defaultdict(deque)
        self._webhook_workers: dict[int, asyncio.Task[None]] = {}
        self._webhook_slots = asyncio.Semaphore(40)
        self.updates_pushed: list[int] = []  # every update id from a user, in push order
        # The bot's allowed_updates (getUpdates or setWebhook; kept until changed, as Telegram
        # keeps it). None: never given, Telegram's default. Updates of other kinds are dropped.
        self.allowed_updates: list[str] | None = None
        self.updates_not_allowed: list[dict[str, Any]] = []
        self.webhook_answers: list[WebhookAnswer] = []
        self.webhook_dropped: list[int] = []
        self.webhook_retry_delay = webhook_retry_delay
        self.webhook_retry_max_delay = 4.0
        self.webhook_max_attempts = webhook_max_attempts
        self.webhook_timeout = 30.0
        self._webhook_options: dict[str, Any] = {}
        self._webhook_error: tuple[int, str] | None = None  # (unix time, message)
        self._commands: dict[str, list[dict[str, str]]] = {}
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self.bot_id = int(token.split(":", 1)[0])
        # hold_sends(): how many more matching sends pass before the rest are held, and what
        # matches; `held` counts the calls parked right now.
        self._hold_allowance: int | None = None
        self._hold_containing = ""
        self._released = asyncio.Event()
        self.held = 0

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

    # ----------------------------------------------------------------- inspection

    def calls_for(self, method: str) -> list[ApiCall]:
        """Recorded calls of one method (successful or not)."""
        return [c for c in self.calls if c.method == method]

    def messages(self, chat_id: int) -> list[SentMessage]:
        """The bot's messages in a chat, in send order, edits applied."""
        chat = self._chats.get(chat_id)
        return list(chat.messages) if chat else []

    def sends_to(self, chat_id: int) -> int:
        """Successful sends (not edits) to a chat."""
        return sum(
            1
            for c in self.calls
            if c.chat_id == chat_id
            and c.status == 200
            and c.method in ("sendMessage", "sendPhoto", "sendDocument")
        )

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
    ) -> None:
        """Make the next ``times`` matching calls fail (status 0: hang for ``hang`` seconds
        without doing anything, then answer 504: a timeout for a client that waits less)."""
        self._injections.append(
            _Injection(status, method, chat_id, times, retry_after, description, hang)
        )

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

    # ----------------------------------------------------------------- users and updates

    def user(self, user_id: int, first_name: str = "Test", username: str | None = None) -> SimUser:
        """The simulated person with this id (private chat id == user id)."""
        chat = self._chats.get(user_id)
        if chat is None:
            chat = _Chat(SimUser(self, user_id, first_name, username))
            self._chats[user_id] = chat
        return chat.user

    def _chat(self, chat_id: int) -> _Chat:
        chat = self._chats.get(chat_id)
        if chat is None:
            raise _ApiError(400, "Bad Request: chat not found")
        return chat

    async def push_update(self, update: dict[str, Any]) -> None:
        """Deliver an update from a user: queued for ``getUpdates``, or with a webhook set,
        queued for delivery to it (see :meth:`_deliver`); this returns once it is queued."""
        if not self._allowed(update):
            self.updates_not_allowed.append(update)
            return
        update = {"update_id": next(self._update_ids), **update}
        self.updates_pushed.append(update["update_id"])
        if self._webhook_url:
            chat = _update_chat(update)
            self._webhook_queues[chat].append(update)
            if chat not in self._webhook_workers:
                self._webhook_workers[chat] = asyncio.create_task(
                    self._deliver(chat), name=f"fake-telegram-webhook-{chat}"
                )
            return
        async with self._new_update:
            self._updates.append(update)
            self._new_update.notify_all()

    def _allowed(self, update: dict[str, Any]) -> bool:
        """Whether the bot asked for updates of this kind: by default everything except
        chat_member and message reactions (the Bot API's own default); an empty list is the
        default too."""
        kinds = set(update) - {"update_id"}
        allowed = self.allowed_updates
        if not allowed:
            return not kinds & _NOT_BY_DEFAULT
        return kinds <= set(allowed)

    @property
    def webhook_pending(self) -> int:
        """Updates queued for the webhook and not yet answered with a 2xx."""
        return sum(len(q) for q in self._webhook_queues.values())

    def webhook_answers_for(self, update_id: int) -> list[WebhookAnswer]:
        """Every delivery attempt of one update to the webhook, in order."""
        return [a for a in self.webhook_answers if a.update_id == update_id]

    async def _deliver(self, chat: int) -> None:
        """Post one chat's queued updates to the webhook as Telegram does: one at a time and in
        order (a later update of the chat waits), each until the bot answers 2xx. Any other
        answer, a refused connection or no answer within ``webhook_timeout`` is a failure: the
        same update is posted again after a growing delay, and after ``webhook_max_attempts``
        failures it is dropped (recorded in ``webhook_dropped``), as Telegram gives up "after
        a reasonable amount of attempts". Chats are delivered in parallel, at most
        ``max_connections`` requests at once (setWebhook's parameter, 40 by default)."""
        queue = self._webhook_queues[chat]
        try:
            while queue and self._webhook_url:
                update = queue[0]
                failures = 0
                while self._webhook_url:
                    status = await self._post_webhook(update)
                    if 200 <= status < 300:
                        break
                    failures += 1
                    if failures >= self.webhook_max_attempts:
                        self.webhook_dropped.append(update["update_id"])
                        break
                    delay = self.webhook_retry_delay * 2 ** (failures - 1)
                    await asyncio.sleep(min(delay, self.webhook_retry_max_delay))
                queue.popleft()
                async with self.changed:
                    self.changed.notify_all()
        finally:
            self._webhook_workers.pop(chat, None)
            if not queue:
                self._webhook_queues.pop(chat, None)

    async def _post_webhook(self, update: dict[str, Any]) -> int:
        """One delivery attempt; the HTTP status (0: no connection or no answer in time)."""
        if self._http is None:
            self._http = aiohttp.ClientSession()
        headers = (
            {"X-Telegram-Bot-Api-Secret-Token": self._webhook_secret}
            if self._webhook_secret
            else {}
        )
        assert self._webhook_url is not None
        status = 0
        async with self._webhook_slots:
            try:
                async with self._http.post(
                    self._webhook_url,
                    json=update,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=self.webhook_timeout),
                ) as resp:
                    await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError):
                status = 0
        if not 200 <= status < 300:
            # As getWebhookInfo reports it: "Wrong response from the webhook: 500 ..."
            self._webhook_error = (
                int(time.time()),
                f"Wrong response from the webhook: {status}" if status else "Connection refused",
            )
        self.webhook_answers.append(WebhookAnswer(update["update_id"], status, time.monotonic()))
        async with self.changed:
            self.changed.notify_all()
        return status

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
            await self._apply_injection(method, chat_id)
            if method in SENDING_METHODS:
                self._enforce_rate(chat_id)
            if method == "sendMessage" and not await self._hold(request, params):
                return web.Response(status=499)  # nobody is listening: not carried out
            handler = getattr(self, f"_api_{method}", None)
            if handler is None:
                raise _ApiError(404, "Not Found")
            result = await handler(params)
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

    async def _apply_injection(self, method: str, chat_id: int | None) -> None:
        for inj in self._injections:
            if inj.times <= 0:
                continue
            if inj.method is not None and inj.method != method:
                continue
            if inj.chat_id is not None and inj.chat_id != chat_id:
                continue
            inj.times -= 1
            if inj.status == 0:
                await asyncio.sleep(inj.hang)
                raise _ApiError(504, "Gateway Timeout")
            if inj.status == 429:
                raise _ApiError(
                    429,
                    inj.description or f"Too Many Requests: retry after {inj.retry_after}",
                    inj.retry_after,
                )
            default = {
                403: "Forbidden: bot was blocked by the user",
                400: "Bad Request",
                500: "Internal Server Error",
                502: "Bad Gateway",
            }
            raise _ApiError(inj.status, inj.description or default.get(inj.status, "Error"))

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

    # ----------------------------------------------------------------- methods

    def _bot_user(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "tensionbot",
            "username": self.bot_username,
        }

    def _message_json(self, m: SentMessage) -> dict[str, Any]:
        chat = self._chats[m.chat_id]
        data: dict[str, Any] = {
            "message_id": m.message_id,
            "date": m.date,
            "chat": {"id": m.chat_id, "type": "private", "first_name": chat.user.first_name},
            "from": self._bot_user(),
        }
        if m.kind == "text":
            data["text"] = m.text or ""
        elif m.kind == "photo":
            data["photo"] = [
                {
                    "file_id": f"photo{m.message_id}",
                    "file_unique_id": f"p{m.message_id}",
                    "width": 640,
                    "height": 480,
                }
            ]
        else:
            data["document"] = {
                "file_id": f"doc{m.message_id}",
                "file_unique_id": f"d{m.message_id}",
            }
        if m.caption:
            data["caption"] = m.caption
        if m.reply_markup:
            data["reply_markup"] = m.reply_markup
        return data

    def _writable_chat(self, params: dict[str, Any]) -> _Chat:
        chat_id = _int_or_none(params.get("chat_id"))
        if chat_id is None:
            raise _ApiError(400, "Bad Request: chat_id is empty")
        chat = self._chat(chat_id)
        if chat.blocked:
            raise _ApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    async def _store(self, chat: _Chat, message: SentMessage) -> dict[str, Any]:
        chat.messages.append(message)
        async with self.changed:
            self.changed.notify_all()
        return self._message_json(message)

    async def _api_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            **self._bot_user(),
            "can_join_groups": False,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _api_getUpdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self._webhook_url:
            raise _ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        if params.get("allowed_updates") is not None:
            self.allowed_updates = list(params["allowed_updates"])
        offset = _int_or_none(params.get("offset"))
        limit = _int_or_none(params.get("limit")) or 100
        timeout = float(params.get("timeout") or 0)
        async with self._new_update:
            if offset is not None:
                while self._updates and self._updates[0]["update_id"] < offset:
                    self._updates.popleft()
            if not self._updates and timeout > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._new_update.wait(), timeout)
                if offset is not None:
                    while self._updates and self._updates[0]["update_id"] < offset:
                        self._updates.popleft()
            return list(itertools.islice(self._updates, 0, limit))

    async def _api_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._writable_chat(params)
        text = params.get("text")
        if not text:
            raise _ApiError(400, "Bad Request: message text is empty")
        if len(str(text)) > 4096:
            raise _ApiError(400, "Bad Request: message is too long")
        message = SentMessage(
            chat_id=chat.user.chat_id,
            message_id=next(self._message_ids[chat.user.chat_id]),
            text=str(text),
            parse_mode=params.get("parse_mode"),
            reply_markup=params.get("reply_markup"),
            date=int(time.time()),
        )
        return await self._store(chat, message)

    async def _media(self, params: dict[str, Any], kind: str) -> dict[str, Any]:
        chat = self._writable_chat(params)
        message = SentMessage(
            chat_id=chat.user.chat_id,
            message_id=next(self._message_ids[chat.user.chat_id]),
            text=None,
            caption=params.get("caption"),
            parse_mode=params.get("parse_mode"),
            reply_markup=params.get("reply_markup"),
            kind=kind,
            date=int(time.time()),
        )
        upload = params.get(kind)
        if isinstance(upload, dict):
            message.file_name, message.file_data = upload.get("filename"), upload.get("data")
        return await self._store(chat, message)

    async def _api_sendPhoto(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self._media(params, "photo")

    async def _api_sendDocument(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self._media(params, "document")

    def _find(self, chat: _Chat, params: dict[str, Any]) -> SentMessage:
        message_id = _int_or_none(params.get("message_id"))
        for m in chat.messages:
            if m.message_id == message_id:
                return m
        raise _ApiError(400, "Bad Request: message to edit not found")

    async def _api_editMessageText(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._writable_chat(params)
        m = self._find(chat, params)
        text, markup = str(params.get("text") or ""), params.get("reply_markup")
        if not text:
            raise _ApiError(400, "Bad Request: message text is empty")
        if text == m.text and markup == m.reply_markup:
            raise _ApiError(
                400,
                "Bad Request: message is not modified: specified new message "
                "content and reply markup are exactly the same as a current "
                "content and reply markup of the message",
            )
        m.text, m.reply_markup, m.parse_mode = text, markup, params.get("parse_mode")
        m.edits += 1
        async with self.changed:
            self.changed.notify_all()
        return {**self._message_json(m), "edit_date": int(time.time())}

    async def _api_editMessageReplyMarkup(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._writable_chat(params)
        m = self._find(chat, params)
        m.reply_markup = params.get("reply_markup")
        m.edits += 1
        async with self.changed:
            self.changed.notify_all()
        return self._message_json(m)

    async def _api_answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        self.answers[str(params.get("callback_query_id"))] = params.get("text")
        async with self.changed:
            self.changed.notify_all()
        return True

    async def answer_to(self, query_id: str, timeout: float = 10.0) -> str | None:
        """Wait until the bot has answered button tap ``query_id``; its toast text (or None)."""

        async def wait() -> str | None:
            async with self.changed:
                while query_id not in self.answers:
                    await self.changed.wait()
                return self.answers[query_id]

        return await asyncio.wait_for(wait(), timeout)

    async def _api_deleteMessage(self, params: dict[str, Any]) -> bool:
        chat = self._writable_chat(params)
        m = self._find(chat, params)
        chat.messages.remove(m)
        return True

    async def _api_setWebhook(self, params: dict[str, Any]) -> bool:
        secret = params.get("secret_token")
        if secret and not _SECRET_TOKEN.match(str(secret)):
            raise _ApiError(400, "Bad Request: secret token contains unallowed characters")
        max_connections = int(params.get("max_connections") or 40)
        if not 1 <= max_connections <= 100:
            raise _ApiError(400, "Bad Request: invalid max_connections")
        self._webhook_url = params.get("url") or None
        self._webhook_secret = secret or None
        self._webhook_slots = asyncio.Semaphore(max_connections)
        self._webhook_error = None
        self._webhook_options = {"max_connections": max_connections}
        if params.get("allowed_updates") is not None:
            self._webhook_options["allowed_updates"] = list(params["allowed_updates"])
            self.allowed_updates = list(params["allowed_updates"])
        return True

    async def _api_deleteWebhook(self, params: dict[str, Any]) -> bool:
        self._webhook_url = None
        self._webhook_secret = None
        self._webhook_options, self._webhook_error = {}, None
        return True

    async def _api_getWebhookInfo(self, params: dict[str, Any]) -> dict[str, Any]:
        # As the Bot API answers: with no webhook only url, has_custom_certificate and
        # pending_update_count; with one, its options and the last delivery error if any.
        info: dict[str, Any] = {
            "url": self._webhook_url or "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates) + self.webhook_pending,
        }
        if self._webhook_url:
            info.update(self._webhook_options, ip_address="127.0.0.1")
            if self._webhook_error is not None:
                info["last_error_date"], info["last_error_message"] = self._webhook_error
        return info

    def commands(self, scope: str = "default") -> list[tuple[str, str]]:
        """The command menu set for a scope: ``"default"``, ``"all_private_chats"`` or
        ``"chat:<id>"`` (as (command, description) pairs; empty when none is set)."""
        return [(c["command"], c["description"]) for c in self._commands.get(scope, [])]

    def _scope_key(self, params: dict[str, Any]) -> str:
        scope = params.get("scope") or {"type": "default"}
        if isinstance(scope, str):
            scope = json.loads(scope)
        kind = scope.get("type")
        if kind in ("default", "all_private_chats", "all_group_chats", "all_chat_administrators"):
            return str(kind)
        if kind in ("chat", "chat_administrators", "chat_member"):
            chat_id = _int_or_none(scope.get("chat_id"))
            if chat_id is None or chat_id not in self._chats:
                raise _ApiError(400, "Bad Request: chat not found")
            return f"chat:{chat_id}" if kind == "chat" else f"{kind}:{chat_id}"
        raise _ApiError(400, "Bad Request: unsupported bot command scope type")

    async def _api_setMyCommands(self, params: dict[str, Any]) -> bool:
        commands = params.get("commands")
        if isinstance(commands, str):
            commands = json.loads(commands)
        if not isinstance(commands, list) or len(commands) > 100:
            raise _ApiError(400, "Bad Request: can't parse commands JSON object")
        for c in commands:
            if not _COMMAND.match(str(c.get("command", ""))):
                raise _ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(c.get("description", ""))) <= 256:
                raise _ApiError(400, "Bad Request: command description is empty or too long")
        key = self._scope_key(params)
        self._commands[key] = [
            {"command": str(c["command"]), "description": str(c["description"])} for c in commands
        ]
        return True

    async def _api_deleteMyCommands(self, params: dict[str, Any]) -> bool:
        self._commands.pop(self._scope_key(params), None)
        return True

    async def _api_getMyCommands(self, params: dict[str, Any]) -> list[Any]:
        return list(self._commands.get(self._scope_key(params), []))

    async def _api_logOut(self, params: dict[str, Any]) -> bool:
        return True

    async def _api_close(self, params: dict[str, Any]) -> bool:
        return True


_NOT_BY_DEFAULT = {"chat_member", "message_reaction", "message_reaction_count"}


def _update_chat(update: dict[str, Any]) -> int:
    """The chat an update belongs to (its delivery order is kept per chat); 0 if none."""
    for key in ("message", "edited_message", "callback_query", "my_chat_member"):
        part = update.get(key)
        if isinstance(part, dict):
            chat = part.get("chat") or (part.get("message") or {}).get("chat") or {}
            sender = part.get("from") or {}
            found = _int_or_none(chat.get("id")) or _int_or_none(sender.get("id"))
            if found is not None:
                return found
    return 0


_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_COMMAND = re.compile(r"^[a-z0-9_]{1,32}$")


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class SimUser:
    """A simulated person in a private chat with the bot."""

    def __init__(
        self, fake: FakeTelegram, user_id: int, first_name: str, username: str | None
    ) -> None:
        self.fake = fake
        self.user_id = user_id
        self.chat_id = user_id
        self.first_name = first_name
        self.username = username
        self._message_ids = itertools.count(1_000_000)
        self._sent: list[str] = []  # what the person typed, for the transcript

    async def _push(self, update: dict[str, Any]) -> None:
        # Writing to a bot means the person has (un)blocked it: they can be reached again.
        chat = self.fake._chats.get(self.chat_id)
        if chat is not None:
            chat.blocked = False
        await self.fake.push_update(update)

    def _user_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.user_id, "is_bot": False, "first_name": self.first_name}
        if self.username:
            data["username"] = self.username
        return data

    def _message(self, **content: Any) -> dict[str, Any]:
        return {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": self.chat_id, "type": "private", "first_name": self.first_name},
            "from": self._user_json(),
            **content,
        }

    async def send_text(self, text: str) -> None:
        """Type and send a message."""
        self._sent.append(text if len(text) < 200 else text[:200] + "…")
        content: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            length = len(text.split()[0])
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        await self._push({"message": self._message(**content)})

    async def send_command(self, command: str, args: str = "") -> None:
        """Send ``/command args``."""
        await self.send_text(f"{command} {args}".strip())

    async def send_photo(self) -> None:
        """Send a photo."""
        self._sent.append("[photo]")
        await self._push(
            {
                "message": self._message(
                    photo=[{"file_id": "AgAD", "file_unique_id": "AQAD", "width": 90, "height": 90}]
                )
            }
        )

    async def send_sticker(self) -> None:
        """Send a sticker."""
        self._sent.append("[sticker]")
        await self._push(
            {
                "message": self._message(
                    sticker={
                        "file_id": "CAAD",
                        "file_unique_id": "AgAD",
                        "type": "regular",
                        "width": 512,
                        "height": 512,
                        "is_animated": False,
                        "is_video": False,
                    }
                )
            }
        )

    async def send_location(self, latitude: float, longitude: float) -> None:
        """Share a location (the paperclip's Location, as a phone sends it)."""
        self._sent.append("[location]")
        await self._push(
            {
                "message": self._message(
                    location={
                        "latitude": latitude,
                        "longitude": longitude,
                        "horizontal_accuracy": 12.5,
                    }
                )
            }
        )

    async def block_bot(self) -> None:
        """Block the bot (Telegram's "Stop and block bot"): later sends to the chat get 403, and
        the bot gets a ``my_chat_member`` update (new status ``kicked``) if it asked for that
        kind of update."""
        self.fake._chat(self.chat_id).blocked = True
        self._sent.append("[blocked the bot]")
        await self.fake.push_update(self._member_update("member", "kicked"))

    async def unblock_bot(self) -> None:
        """Unblock the bot: sends reach the chat again, and the bot gets a ``my_chat_member``
        update (new status ``member``) if it asked for that kind of update."""
        self.fake._chat(self.chat_id).blocked = False
        self._sent.append("[unblocked the bot]")
        await self.fake.push_update(self._member_update("kicked", "member"))

    def _member_update(self, old: str, new: str) -> dict[str, Any]:
        bot = self.fake._bot_user()

        def member(status: str) -> dict[str, Any]:
            # A banned member always carries until_date (0: for ever), as the Bot API sends.
            return {
                "user": bot,
                "status": status,
                **({"until_date": 0} if status == "kicked" else {}),
            }

        return {
            "my_chat_member": {
                "chat": {"id": self.chat_id, "type": "private", "first_name": self.first_name},
                "from": self._user_json(),
                "date": int(time.time()),
                "old_chat_member": member(old),
                "new_chat_member": member(new),
            }
        }

    async def send_voice(self) -> None:
        """Send a voice note."""
        self._sent.append("[voice note]")
        await self._push(
            {
                "message": self._message(
                    voice={"file_id": "AwAD", "file_unique_id": "AgAD", "duration": 3}
                )
            }
        )

    @property
    def messages(self) -> list[SentMessage]:
        """The bot's messages in this chat."""
        return self.fake.messages(self.chat_id)

    @property
    def last(self) -> SentMessage | None:
        """The newest bot message."""
        messages = self.messages
        return messages[-1] if messages else None

    async def press(self, label: str, message: SentMessage | None = None) -> str:
        """Tap the button whose text contains ``label`` (an exact match wins) on the newest
        message that has one."""
        candidates = [message] if message is not None else list(reversed(self.messages))
        wanted = label.casefold()
        for m in candidates:
            buttons = m.buttons()
            chosen = next((b for b in buttons if b[0].casefold() == wanted), None) or next(
                (b for b in buttons if wanted in b[0].casefold()), None
            )
            if chosen is None:
                continue
            self._sent.append(f"[taps {chosen[0]}]")
            query_id = f"{self.user_id}-{next(self._message_ids)}"
            await self._push(
                {
                    "callback_query": {
                        "id": query_id,
                        "from": self._user_json(),
                        "chat_instance": str(self.chat_id),
                        "data": chosen[1],
                        "message": self.fake._message_json(m),
                    }
                }
            )
            return query_id
        available = [b[0] for m in candidates[:3] for b in m.buttons()]
        raise AssertionError(
            f"no button {label!r} for {self.first_name}; newest buttons: {available}"
        )

    async def press_data(self, data: str, message: SentMessage | None = None) -> str:
        """Send a button tap with any callback data (a forged or stale payload, or a button
        already taken away), as if on ``message`` (default: the newest). Returns the tap's id."""
        self._sent.append(f"[taps a button with data {data!r}]")
        message = message or self.last
        query_id = f"{self.user_id}-{next(self._message_ids)}"
        await self._push(
            {
                "callback_query": {
                    "id": query_id,
                    "from": self._user_json(),
                    "chat_instance": str(self.chat_id),
                    "data": data,
                    **({"message": self.fake._message_json(message)} if message else {}),
                }
            }
        )
        return query_id

    async def wait_for(
        self, match: str | Callable[[SentMessage], bool], timeout: float = 60.0, after: int = 0
    ) -> SentMessage:
        """Wait until a bot message in this chat matches (``str``: a case-insensitive substring
        of its text or caption). The timeout is generous on purpose: it only bounds a failure,
        a match returns at once, and a busy machine may take seconds. Candidates: the newest message when called, any message sent
        since, any message edited since, and with ``after`` every message from that index on."""
        predicate: Callable[[SentMessage], bool]
        if isinstance(match, str):
            needle = match.casefold()

            def predicate(m: SentMessage) -> bool:
                return needle in (m.text or m.caption or "").casefold()
        else:
            predicate = match
        seen_edits = {m.message_id: m.edits for m in self.messages}
        first = max(0, min(len(self.messages) - 1, after if after else len(self.messages)))

        def found() -> SentMessage | None:
            for i, m in enumerate(self.messages):
                edited = m.edits != seen_edits.get(m.message_id, m.edits)
                if (i >= first or edited) and predicate(m):
                    return m
            return None

        async def wait() -> SentMessage:
            async with self.fake.changed:
                while (m := found()) is None:
                    await self.fake.changed.wait()
                return m

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"{self.first_name} never got {match!r} in {timeout}s. "
                f"Chat so far:\n{self.transcript()}"
            ) from None

    def transcript(self) -> str:
        """The chat so far, readable (bot messages as they stand now)."""
        lines = [f"Chat with {self.first_name} (id {self.user_id})"]
        for m in self.messages:
            body = m.text or m.caption or f"[{m.kind}]"
            buttons = " | ".join(b[0] for b in m.buttons())
            lines.append(f"--- bot #{m.message_id}{' (edited)' if m.edits else ''}\n{body}")
            if buttons:
                lines.append(f"    [{buttons}]")
        lines.append("--- what the person sent: " + " / ".join(self._sent))
        return "\n".join(lines)
