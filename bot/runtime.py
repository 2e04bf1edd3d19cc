"""The running process: :class:`Runtime` runs Telegram (polling or webhook), Slack (Socket Mode
or HTTP), the outbox dispatcher, the one HTTP server (``handlers/http.py``) and, on the leader,
the scheduler.

It takes the core services from the composition root (:func:`bot.app.build_services`) and adds
everything that needs the network; nothing here runs at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import re
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from telegram.error import InvalidToken, NetworkError, TelegramError, TimedOut
from telegram.ext import Application, ApplicationBuilder

from bot.app import Services, reload_problem
from bot.config import ENV_TELEGRAM_WEBHOOK_SECRET, Config, ConfigError, delivery_problem
from bot.delivery.limits import RateLimits
from bot.delivery.outbox import OutboxDispatcher
from bot.ports import Messenger
from handlers.http import HttpServer, Metrics, Readiness, build_http_app
from handlers.network import http_address, proxy_for, shown
from handlers.telegram import register as register_telegram
from handlers.telegram.menus import set_menus
from handlers.telegram.messenger import TelegramMessenger
from handlers.telegram.request import AiohttpRequest
from handlers.telegram.transport import ALLOWED_UPDATES, poll, webhook_handler
from scheduler import build_scheduler, stop_scheduler
from storage.leader import LeaderLock, database_status, leader_lock
from storage.rates import shared_rate_buckets

# Slack, email and the web pages are imported where they are switched on: a process without them
# never holds them in memory (tests/test_startup_imports.py).
if TYPE_CHECKING:
    from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
    from slack_bolt.async_app import AsyncApp

log = logging.getLogger(__name__)
OFFSET_KEY = "telegram.offset"


def build_application(config: Config, token: str) -> Application:
    """The python-telegram-bot Application (no Updater: polling is ours, see transport.poll)."""
    api = config.telegram.api_base_url
    pool = config.telegram.max_in_flight + 4
    proxy = proxy_for(api, config.network.proxy_url)
    return (
        ApplicationBuilder()
        .token(token)
        .base_url(f"{api}/bot")
        .base_file_url(f"{api}/file/bot")
        .request(
            AiohttpRequest(
                pool_size=pool, read_timeout=15, write_timeout=15, connect_timeout=10, proxy=proxy
            )
        )
        .get_updates_request(
            AiohttpRequest(pool_size=2, read_timeout=config.telegram.poll_timeout + 15, proxy=proxy)
        )
        .updater(None)
        .build()
    )


WEBHOOK_SECRET_CHARS = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def webhook_secret(config: Config, token: str) -> str:
    """The secret token Telegram sends with every webhook post.

    From ``TENSIONBOT_TELEGRAM_WEBHOOK_SECRET`` when set; otherwise derived from the bot token
    (an HMAC), so every process behind one webhook URL checks the same secret without any more
    configuration, and it changes when the token is revoked.
    """
    pinned = config.secrets.telegram_webhook_secret
    if pinned is not None:
        value = pinned.get_secret_value()
        if not WEBHOOK_SECRET_CHARS.match(value):
            raise ConfigError(
                f"{ENV_TELEGRAM_WEBHOOK_SECRET}: 1-256 characters, only A-Z, a-z, 0-9, _ and -"
            )
        return value
    return hmac.new(token.encode(), b"tensionbot telegram webhook secret", "sha256").hexdigest()


class Runtime:
    """The running bot: Telegram in (polling or webhook), Slack in (Socket Mode or over HTTP), the
    outbox out, the scheduler ticking, and one HTTP server (webhook, Slack, /healthz, /readyz,
    /metrics).

    Every process sends the outbox and serves HTTP. The *leader* (see ``storage/leader.py``: a
    PostgreSQL advisory lock; on SQLite the one process) also runs the scheduler and, in polling
    mode, polls Telegram; it registers (or removes) the webhook when it becomes leader. A
    follower retries every ``cluster.leader_retry_seconds`` and takes over when the leader dies.
    """

    def __init__(
        self,
        services: Services,
        token: str,
        *,
        run_scheduler: bool = True,
        lease: timedelta | None = None,
        lock: LeaderLock | None = None,
    ) -> None:
        self.services = services
        self.config = services.config
        self.token = token
        self.application = build_application(self.config, token)
        register_telegram(
            self.application,
            services.conversation,
            services.summaries,
            services.pact,
            crisis=services.crisis,
        )
        self.application.add_error_handler(self._on_error)
        tg = self.config.telegram
        messengers: dict[str, Messenger] = {"telegram": TelegramMessenger(self.application.bot)}
        limits = {
            "telegram": RateLimits(
                tg.global_rate, tg.per_chat_rate, tg.max_in_flight, tg.per_chat_burst
            )
        }
        self.slack_app: AsyncApp | None = None
        secrets = self.config.secrets
        if secrets.slack_bot_token is not None and secrets.slack_signing_secret is not None:
            from handlers.slack.app import build_app, build_client
            from handlers.slack.messenger import SlackMessenger

            slack_api = self.config.slack.api_base_url
            client = build_client(
                slack_api,
                secrets.slack_bot_token.get_secret_value(),
                proxy_for(slack_api, self.config.network.proxy_url),
            )
            self.slack_app = build_app(
                client,
                secrets.slack_signing_secret.get_secret_value(),
                services.actions,
                services.reporting,
                services.summaries,
                pact=services.pact,
                seen=services.seen,
                crisis=services.crisis,
            )
            messengers["slack"] = SlackMessenger(client)
            limits["slack"] = RateLimits(
                self.config.slack.global_rate, self.config.slack.per_channel_rate, 4
            )
        if "email" in self.config.platforms:  # [email] host
            from handlers.email import EmailMessenger

            email = self.config.email
            messengers["email"] = EmailMessenger(self.config, services.web_buttons)
            limits["email"] = RateLimits(
                email.global_rate, email.per_recipient_rate, email.max_in_flight
            )
        self.dispatcher = OutboxDispatcher(
            services.db.uow,
            messengers,
            limits,
            lease=lease or timedelta(seconds=self.config.telegram.outbox_lease_seconds),
            hooks=[services.actions.on_sent, services.pact.on_sent],
            news_hold=timedelta(seconds=self.config.outbox.news_hold_seconds),
            business_clock=services.clock,
            # Every process on PostgreSQL takes from the same buckets: together they keep the
            # configured rates, however many run.
            shared_rates=shared_rate_buckets(services.db.engine),
        )
        services.wake.subscribe(self.dispatcher.wake)
        services.conversation.direct.attach(self.dispatcher)  # replies sent straight after commit
        self.run_scheduler = run_scheduler
        self.stop_event = asyncio.Event()
        # Set once requests can arrive: the HTTP server listens (and Socket Mode is connected).
        self.serving = asyncio.Event()
        self.lock: LeaderLock = lock or leader_lock(services.db.engine)
        self.is_leader = False
        self.address = http_address(self.config)
        self.metrics: Metrics | None = None
        if self.config.server.metrics:
            self.metrics = Metrics(
                stats=lambda: self.dispatcher.stats,
                figures=services.health.figures,
                is_leader=lambda: self.is_leader,
            )
        self._dispatch_stop = asyncio.Event()
        self._poll_stop = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None
        self._scheduler: AsyncIOScheduler | None = None
        self._ticks: set[asyncio.Task[None]] = set()
        self._webhook_ready = False

    @staticmethod
    async def _on_error(update: object, context: object) -> None:
        # Never log the update itself: it may carry report text (special-category data).
        error = getattr(context, "error", None)
        update_id = getattr(update, "update_id", None)
        log.error("handling update %s failed: %r", update_id, error, exc_info=error)

    def http_app(self) -> web.Application:
        """The one aiohttp application: webhook (in webhook mode), Slack (over HTTP), health,
        and the web pages (the web form, the public PACT pages) when they are on."""
        tg, sc = self.config.telegram, self.config.slack
        telegram = None
        if tg.mode == "webhook":
            secret = webhook_secret(self.config, self.token)
            telegram = (tg.webhook_path, webhook_handler(self.application, secret))
        slack = None
        signing = self.config.secrets.slack_signing_secret
        if self.slack_app is not None and signing is not None and sc.mode == "http":
            from handlers.slack.app import events_handler as slack_events_handler

            slack = (sc.path, slack_events_handler(self.slack_app, signing.get_secret_value()))
        pages: list[tuple[str, web.Application]] = []
        if self.services.web is not None:
            from handlers.web import web_app

            form = web_app(self.services.web, self.config, self.services.web_buttons)
            pages.append((self.config.web.path, form))
        if self.services.public_pact is not None:
            from handlers.web.public import public_pact_app

            pages.append(("/pact", public_pact_app(self.services.public_pact, self.config)))
        return build_http_app(
            readiness=self.readiness,
            metrics=self.metrics,
            telegram=telegram,
            slack=slack,
            pages=pages,
        )

    async def readiness(self) -> Readiness:
        """Ready for traffic: not stopping, the database reachable and migrated to head."""
        status = await database_status(self.services.db.engine)
        if not status.reachable:
            database = f"unreachable ({status.error})"
        else:
            database = "ok"
        migrations = (
            "current"
            if status.current
            else f"at {status.revision}, code expects {status.head}"
            if status.reachable
            else "unknown"
        )
        stopping = self.stop_event.is_set()
        return Readiness(
            status.current and not stopping,
            {
                "database": database,
                "migrations": migrations,
                "leader": self.is_leader,
                "stopping": stopping,
                "mode": self.config.telegram.mode,
                "pid": os.getpid(),
            },
        )

    async def run(self) -> None:
        """Run until :meth:`stop` is called, then shut down gracefully: stop taking updates (the
        poller stops, the HTTP server finishes the requests it has), stop the scheduler (ticks
        in progress finish), let the dispatcher finish its in-flight sends, give up leadership."""
        await self._initialize_telegram()
        server: HttpServer | None = None
        socket_handler: AsyncSocketModeHandler | None = None
        dispatcher: asyncio.Task[None] | None = None
        leading: asyncio.Task[None] | None = None
        grace = self.config.server.shutdown_seconds
        try:
            dispatcher = asyncio.create_task(
                self.dispatcher.run(self._dispatch_stop), name="outbox"
            )
            if self.slack_app is not None and self.config.slack.mode == "socket":
                app_token = self.config.secrets.slack_app_token
                if app_token is None:
                    raise ConfigError("slack.mode = 'socket' needs TENSIONBOT_SLACK_APP_TOKEN")
                from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

                socket_handler = AsyncSocketModeHandler(
                    self.slack_app, app_token.get_secret_value()
                )
                await socket_handler.connect_async()
            if self.address is not None:
                server = HttpServer(self.http_app(), *self.address, shutdown=grace)
                await server.start()
            self.serving.set()
            leading = asyncio.create_task(self._lead(), name="leadership")
            log.info("tensionbot is running (%s mode)", self.config.telegram.mode)
            await self.stop_event.wait()
        finally:
            self.stop_event.set()
            log.info("stopping: no new updates; finishing the work in hand")
            await self._stop_poller()
            if server is not None:
                await server.stop()
            if socket_handler is not None:
                await socket_handler.close_async()
            if leading is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await leading
            await self._step_down(grace)
            # Replies to the updates just handled (their sends were started after each commit).
            try:
                await asyncio.wait_for(self.services.conversation.direct.drain(), grace)
            except TimeoutError:
                log.error("the replies in hand were not sent in %.0fs", grace)
            self._dispatch_stop.set()
            if dispatcher is not None:
                try:
                    await asyncio.wait_for(dispatcher, grace)
                except TimeoutError:
                    log.error("the outbox did not finish its sends in %.0fs", grace)
                except asyncio.CancelledError:
                    pass
            await self.lock.release()
            await self.application.shutdown()
            log.info("stopped")

    async def _initialize_telegram(self) -> None:
        """PTB's initialize (getMe), with a one-line error instead of a traceback when Telegram
        cannot be reached (a council proxy not configured or down) or refuses the token."""
        api = self.config.telegram.api_base_url
        try:
            await self.application.initialize()
        except InvalidToken:
            await self.application.bot.shutdown()  # its HTTP sessions (the Application's own
            # shutdown does nothing when initialize failed). PTB's message quotes the token.
            raise ConfigError(
                "Telegram refused the token: set TENSIONBOT_TELEGRAM_TOKEN to the token "
                "@BotFather gave (`tensionbot doctor` checks it)"
            ) from None
        except (NetworkError, TimedOut) as exc:
            await self.application.bot.shutdown()
            proxy = shown(proxy_for(api, self.config.network.proxy_url))
            error = str(exc).replace(self.token, "<token>")  # never print the token
            raise ConfigError(
                f"cannot reach Telegram at {api} (proxy: {proxy}): {error}. Check network."
                "proxy_url or HTTPS_PROXY / NO_PROXY (`tensionbot doctor` checks them)"
            ) from None

    # ----------------------------------------------------------------- leadership

    async def _lead(self) -> None:
        """Try to lead until stopped; while leading, check the lock is still held."""
        retry = self.config.cluster.leader_retry_seconds
        while not self.stop_event.is_set():
            self._beat()
            try:
                if self.is_leader:
                    if not await self.lock.still_held():
                        log.error("lost leadership: stopping the scheduler and the poller")
                        await self._step_down(self.config.server.shutdown_seconds)
                    elif not self._webhook_ready:
                        await self._register_webhook()
                elif await self.lock.try_acquire():
                    if self.stop_event.is_set():
                        break
                    log.info("this process is the leader (pid %s)", os.getpid())
                    await self._step_up()
            except Exception:  # leadership must survive a transient failure
                log.exception("leadership check failed; retrying")
            await _sleep(self.stop_event, retry)

    def _beat(self) -> None:
        """Touch server.heartbeat_file: `tensionbot health` checks it when no HTTP server runs."""
        beat = self.config.server.heartbeat_file
        if beat is None:
            return
        try:
            beat.touch()
        except OSError as exc:
            log.error("cannot touch server.heartbeat_file %s: %s", beat, exc.strerror)

    async def _step_up(self) -> None:
        self.is_leader = True
        await self._register_webhook()
        try:  # the command menus, once per term (any process would do; the leader does)
            await set_menus(self.application.bot, self.services.conversation)
        except TelegramError as exc:
            log.error("setting the Telegram command menus failed: %s", exc)
        if self.run_scheduler:
            self._scheduler = build_scheduler(
                self.services.campaigns,
                self.services.actions,
                self.services.summaries,
                self.services.pact,
                self.services.privacy,
                crisis=self.services.crisis,
                tick_seconds=self.config.schedule.tick_seconds,
                now=self.services.clock.now(),
                running=self._ticks,
            )
            self._scheduler.start()

    async def _register_webhook(self) -> None:
        """Webhook mode: point Telegram at our URL. Polling: remove any webhook, start polling.
        The leader does it (once per term); any process would do, the calls are idempotent."""
        tg = self.config.telegram
        try:
            if tg.mode == "webhook":
                await self.application.bot.set_webhook(
                    f"{tg.webhook_url}",
                    secret_token=webhook_secret(self.config, self.token),
                    allowed_updates=ALLOWED_UPDATES,
                )
            else:
                await self.application.bot.delete_webhook()
        except TelegramError as exc:
            log.error("registering the webhook failed (%s); retrying", exc)
            return
        self._webhook_ready = True
        if tg.mode == "polling" and self._poller is None:
            self._poll_stop = asyncio.Event()
            state = self.services.state
            self._poller = asyncio.create_task(
                poll(
                    self.application,
                    lambda: state.get_int(OFFSET_KEY),
                    lambda v: state.set_int(OFFSET_KEY, v),
                    self._poll_stop,
                    timeout=tg.poll_timeout,
                ),
                name="poller",
            )

    async def _stop_poller(self) -> None:
        self._poll_stop.set()
        poller, self._poller = self._poller, None
        if poller is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await poller

    async def _step_down(self, grace: float) -> None:
        await self._stop_poller()
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            await stop_scheduler(scheduler, self._ticks, timeout=grace)
        self._webhook_ready = False
        if self.is_leader:
            self.is_leader = False
            log.info("no longer the leader")

    def stop(self) -> None:
        """Ask :meth:`run` to finish (in-flight sends complete first)."""
        self.stop_event.set()

    def reload(self, load: Callable[[], Config]) -> bool:
        """SIGHUP: read the configuration again and, if it is valid and changes only what may
        change while running (:data:`RELOADABLE`), swap it in for the runtime and the services.
        Otherwise the running configuration stays and the log says why."""
        try:
            new = load()
        except ConfigError as exc:
            log.error("configuration reload refused; the running configuration stays: %s", exc)
            return False
        problem = delivery_problem(new) or reload_problem(self.config, new)
        if problem is not None:
            log.error("configuration reload refused; the running configuration stays: %s", problem)
            return False
        self.services.reconfigure(new)
        self.config = new
        log.info(
            "configuration reloaded from %s: %d team(s), %d routing rule(s)",
            new.source,
            len(new.teams),
            len(new.routing.rules),
        )
        return True


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
