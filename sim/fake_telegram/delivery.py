"""Updates from simulated users to the bot: the queue ``getUpdates`` long-polls, and webhook
delivery (in order per chat, each update posted again with a growing delay until the bot
answers 2xx, as Telegram does), with ``setWebhook``, ``deleteWebhook`` and ``getWebhookInfo``."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import time
from typing import Any

import aiohttp

from sim.fake_telegram.records import WebhookAnswer, _ApiError, _int_or_none
from sim.fake_telegram.state import _FakeState


class _Delivery(_FakeState):
    """The update queue, getUpdates and the webhook (see :class:`FakeTelegram`)."""

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

    # ----------------------------------------------------------------- methods

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
