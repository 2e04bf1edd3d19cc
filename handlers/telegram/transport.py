"""Getting updates in: a durable long-polling loop and a webhook endpoint.

Both hand each update to the real ``Application.process_update`` and only then acknowledge it
(polling: the offset is stored and confirmed after processing; webhook: HTTP 200 after
processing), so an update is never lost to a crash. A redelivered update is recognised by the core
(update ids are recorded in the same transaction as its effects) and does nothing twice.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from telegram import Update
from telegram.error import Conflict, NetworkError, RetryAfter, TimedOut
from telegram.ext import Application

from handlers.telegram.messenger import retry_after_seconds

log = logging.getLogger(__name__)

GetOffset = Callable[[], Awaitable[int | None]]
SetOffset = Callable[[int], Awaitable[None]]
ALLOWED_UPDATES = ["message", "callback_query"]
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
MAX_BODY = 1024 * 1024
MAX_UPDATE_ATTEMPTS = 8  # then an update that keeps failing is skipped (logged), not retried


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
            await application.process_update(update)
            if 0 < failed.get(update.update_id, 0) < MAX_UPDATE_ATTEMPTS:
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
    wrong), the update processed, and only then is 200 returned."""
    if not secret:
        raise ValueError("a webhook needs a secret token")
    expected = secret.encode()

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), expected):
            log.warning("refused a webhook call with a wrong secret token")
            return web.Response(status=403, text="forbidden")
        if request.content_length is not None and request.content_length > MAX_BODY:
            return web.Response(status=413, text="too large")
        try:
            data = json.loads(await request.read())
            update = Update.de_json(data, application.bot)
        except (ValueError, KeyError, TypeError):
            return web.Response(status=400, text="bad update")
        if update is None:
            return web.Response(status=400, text="bad update")
        await application.process_update(update)
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
