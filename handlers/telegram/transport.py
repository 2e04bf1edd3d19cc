"""Getting updates in: a durable long-polling loop and a webhook endpoint.

Both hand each update to the real ``Application.process_update`` and only then acknowledge it
(polling: the offset is stored and confirmed after processing; webhook: HTTP 200 after
processing), so an update is never lost to a crash. An update whose processing failed (the
database locked or away) is not acknowledged: polling fetches it again, the webhook answers 500
so that Telegram posts it again. A redelivered update is recognised by the core (update ids are
recorded in the same transaction as its effects, so a failed update's id is not) and does
nothing twice.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar

from aiohttp import web
from telegram import Update
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import Application

from handlers.http import MAX_BODY
from handlers.telegram.messenger import retry_after_seconds

log = logging.getLogger(__name__)

GetOffset = Callable[[], Awaitable[int | None]]
SetOffset = Callable[[int], Awaitable[None]]
# my_chat_member: a person blocking or unblocking the bot (Telegram sends it only if asked).
ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member"]
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
MAX_UPDATE_ATTEMPTS = 8  # then an update that keeps failing is skipped (logged), not retried
# Telegram refused our answer for good: posting the update again would fail the same way.
FINAL_REFUSALS = (BadRequest, Forbidden, ChatMigrated)
# The errors of the webhook request being processed in this task (see webhook_handler).
_request_errors: ContextVar[list[BaseException] | None] = ContextVar(
    "tensionbot_webhook_errors", default=None
)


async def poll(
    application: Application,
    get_offset: GetOffset,
    set_offset: SetOffset,
    stop: asyncio.Event,
    *,
    timeout: int = 25,
) -> None:
    """Long-poll ``getUpdates`` until ``stop`` is set, processing updates one by one in order."""
    offset = await get_offset()
    backoff = 1.0
    failed: dict[int, int] = {}  # update id -> failed attempts (e.g. the database was down)

    async def note_failure(update: object, context: object) -> None:
        if isinstance(update, Update):
            failed[update.update_id] = failed.get(update.update_id, 0) + 1

    application.add_error_handler(note_failure)
    while not stop.is_set():
        fetch = asyncio.ensure_future(
            application.bot.get_updates(
                offset=offset,
                timeout=timeout,
                allowed_updates=ALLOWED_UPDATES,
                read_timeout=timeout + 10,
            )
        )
        stopper = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait({fetch, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if fetch not in done:
            fetch.cancel()
            await asyncio.gather(fetch, return_exceptions=True)
            break
        stopper.cancel()
        try:
            updates = fetch.result()
        except RetryAfter as exc:
            await _sleep(stop, retry_after_seconds(exc))
            continue
        except Conflict:
            log.error("getUpdates refused: a webhook is set or another poller runs; retrying")
            await _sleep(stop, 5.0)
            continue
        except (TimedOut, NetworkError) as exc:
            log.warning("getUpdates failed (%s); retrying in %.0fs", type(exc).__name__, backoff)
            await _sleep(stop, backoff)
            backoff = min(backoff * 2, 30.0)
            continue
        backoff = 1.0
        for update in updates:
            before = failed.get(update.update_id, 0)
            await application.process_update(update)
            # Failed this time (not merely before: a retry that succeeded is acknowledged).
            if before < failed.get(update.update_id, 0) < MAX_UPDATE_ATTEMPTS:
                # Not acknowledged: Telegram delivers it again (its effects were rolled back).
                log.warning("update %s failed; fetching it again", update.update_id)
                await _sleep(stop, float(failed[update.update_id]))
                break
            failed.pop(update.update_id, None)
            offset = update.update_id + 1
            try:
                await set_offset(offset)
            except Exception:  # the next getUpdates confirms it anyway; a repeat is ignored
                log.exception("could not store the polling offset")


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def webhook_handler(application: Application, secret: str) -> Handler:
    """The aiohttp handler for Telegram's webhook posts: the secret token is checked (403 when
    wrong), a body that is not an update refused (400), the update processed, and only then
    is 200 returned. If processing failed (the database locked or unreachable, Telegram
    unreachable for a direct reply) the answer is 500, so Telegram posts the update again; its
    effects were rolled back and its id was not recorded, and a repeat of an update that did
    succeed is ignored by the core. Only Telegram's own final refusal of a reply (400, 403)
    is answered 200: another delivery would be refused the same way."""
    if not secret:
        raise ValueError("a webhook needs a secret token")
    expected = secret.encode()

    async def note_failure(update: object, context: object) -> None:
        # PTB calls error handlers inside process_update, in the request's task: the list set
        # by ``receive`` for this request is the one seen here (requests run concurrently).
        errors = _request_errors.get()
        error = getattr(context, "error", None)
        if errors is not None and isinstance(error, BaseException):
            errors.append(error)

    application.add_error_handler(note_failure)

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), expected):
            log.warning("refused a webhook call with a wrong secret token")
            return web.Response(status=403, text="forbidden")
        if request.content_length is not None and request.content_length > MAX_BODY:
            return web.Response(status=413, text="too large")
        try:
            data = json.loads(await request.read())
            if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
                raise ValueError("not an update")
            update = Update.de_json(data, application.bot)
            if update is None:
                raise ValueError("not an update")
        except (ValueError, KeyError, TypeError, AttributeError):
            # Never log the body: it may carry report text.
            log.warning("refused a webhook body that is not an update")
            return web.Response(status=400, text="bad update")
        errors: list[BaseException] = []
        token = _request_errors.set(errors)
        try:
            await application.process_update(update)
        finally:
            _request_errors.reset(token)
        if any(not isinstance(e, FINAL_REFUSALS) for e in errors):
            log.warning(
                "update %s failed; answering 500 so Telegram sends it again", update.update_id
            )
            return web.Response(status=500, text="failed; send it again")
        return web.Response(text="ok")

    return receive


def webhook_app(
    application: Application,
    *,
    path: str,
    secret: str,
) -> web.Application:
    """A stand-alone aiohttp app receiving Telegram webhook posts (benchmarks; ``tensionbot run``
    mounts :func:`webhook_handler` on its one server instead)."""

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post(path, webhook_handler(application, secret))
    app.router.add_get("/healthz", healthz)
    return app
