"""The composition root: builds everything inside functions and runs one event loop.

Nothing here runs at import time. :func:`build_services` wires the core to storage;
:class:`TelegramRuntime` adds python-telegram-bot, the outbox dispatcher and the scheduler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from telegram.ext import Application, ApplicationBuilder

from bot.clock import Clock, SystemClock
from bot.config import Config, ConfigError
from bot.forms import load_form
from bot.ports import Messenger
from bot.services.actions import ActionService
from bot.services.campaigns import CampaignService
from bot.services.common import Waker
from bot.services.conversation import ConversationService
from bot.services.forms import FormService
from bot.services.outbox import OutboxDispatcher, RateLimits
from bot.services.pact import PactService
from bot.services.people import PeopleService
from bot.services.reports import ReportingService
from bot.services.state import StateService
from bot.services.summary import SummaryService
from handlers.slack.app import build_app as build_slack_app
from handlers.slack.app import build_client as build_slack_client
from handlers.slack.app import http_app as slack_http_app
from handlers.slack.messenger import SlackMessenger
from handlers.telegram import register as register_telegram
from handlers.telegram.messenger import TelegramMessenger
from handlers.telegram.request import AiohttpRequest
from handlers.telegram.transport import poll, webhook_app
from scheduler import build_scheduler
from storage.database import Database
from storage.migrate import upgrade

log = logging.getLogger(__name__)
OFFSET_KEY = "telegram.offset"


@dataclass
class _WakeRelay:
    """Lets services wake a dispatcher that is created after them."""

    targets: list[Waker] = field(default_factory=list)

    def __call__(self) -> None:
        for target in self.targets:
            target()


@dataclass
class Services:
    """Everything the adapters and the CLI call."""

    config: Config
    db: Database
    clock: Clock
    forms: FormService
    people: PeopleService
    campaigns: CampaignService
    conversation: ConversationService
    actions: ActionService
    reporting: ReportingService
    summaries: SummaryService
    state: StateService
    wake: _WakeRelay
    pact: PactService

    async def close(self) -> None:
        """Release the database."""
        await self.db.dispose()


async def build_services(
    config: Config, *, clock: Clock | None = None, migrate: bool = True
) -> Services:
    """Open the database (migrating it), load the form and wire the core services."""
    clock = clock or SystemClock()
    definition = load_form(config.form.path)
    db = Database(config.database.url, echo=config.database.echo)
    if migrate:
        await upgrade(db.engine)
    wake = _WakeRelay()
    forms = FormService(definition, clock)
    people = PeopleService(config, db.uow, clock, forms)
    campaigns = CampaignService(config, db.uow, clock, forms, wake)
    people.campaigns = campaigns
    conversation = ConversationService(config, db.uow, clock, forms, people, wake)
    actions = ActionService(config, db.uow, clock, forms, wake)
    conversation.actions = actions
    reporting = ReportingService(config, db.uow, clock, forms, actions, wake)
    pact = PactService(config, db.uow, clock, wake)
    conversation.pact = pact
    summaries = SummaryService(config, db.uow, clock, forms, pact)
    async with db.uow() as uow:
        await forms.current(uow)  # store the form version now, failing early if it is wrong
        await uow.commit()
    return Services(
        config,
        db,
        clock,
        forms,
        people,
        campaigns,
        conversation,
        actions,
        reporting,
        summaries,
        StateService(db.uow),
        wake,
        pact,
    )


def build_application(config: Config, token: str) -> Application:
    """The python-telegram-bot Application (no Updater: polling is ours, see transport.poll)."""
    api = config.telegram.api_base_url
    pool = config.telegram.max_in_flight + 4
    return (
        ApplicationBuilder()
        .token(token)
        .base_url(f"{api}/bot")
        .base_file_url(f"{api}/file/bot")
        .request(
            AiohttpRequest(pool_size=pool, read_timeout=15, write_timeout=15, connect_timeout=10)
        )
        .get_updates_request(
            AiohttpRequest(pool_size=2, read_timeout=config.telegram.poll_timeout + 15)
        )
        .updater(None)
        .build()
    )


class TelegramRuntime:
    """The running bot: Telegram in (polling or webhook), the outbox out, the scheduler ticking."""

    def __init__(
        self,
        services: Services,
        token: str,
        *,
        run_scheduler: bool = True,
        lease: timedelta | None = None,
    ) -> None:
        self.services = services
        self.config = services.config
        self.application = build_application(self.config, token)
        register_telegram(
            self.application, services.conversation, services.summaries, services.pact
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
            client = build_slack_client(
                self.config.slack.api_base_url, secrets.slack_bot_token.get_secret_value()
            )
            self.slack_app = build_slack_app(
                client,
                secrets.slack_signing_secret.get_secret_value(),
                services.actions,
                services.reporting,
                services.summaries,
                pact=services.pact,
            )
            messengers["slack"] = SlackMessenger(client)
            limits["slack"] = RateLimits(
                self.config.slack.global_rate, self.config.slack.per_channel_rate, 4
            )
        self.dispatcher = OutboxDispatcher(
            services.db.uow,
            messengers,
            limits,
            lease=lease or timedelta(seconds=self.config.telegram.outbox_lease_seconds),
            hooks=[services.actions.on_sent],
        )
        services.wake.targets.append(self.dispatcher.wake)
        self.run_scheduler = run_scheduler
        self.stop_event = asyncio.Event()

    @staticmethod
    async def _on_error(update: object, context: object) -> None:
        # Never log the update itself: it may carry report text (special-category data).
        error = getattr(context, "error", None)
        update_id = getattr(update, "update_id", None)
        log.error("handling update %s failed: %r", update_id, error, exc_info=error)

    async def run(self) -> None:
        """Run until :meth:`stop` is called."""
        services = self.services
        await self.application.initialize()
        scheduler = None
        runner: web.AppRunner | None = None
        runners: list[web.AppRunner] = []
        socket_handler: AsyncSocketModeHandler | None = None
        tasks: list[asyncio.Task[None]] = []
        try:
            tasks.append(asyncio.create_task(self.dispatcher.run(self.stop_event), name="outbox"))
            tg = self.config.telegram
            if tg.mode == "webhook":
                secret = self._webhook_secret()
                runner = web.AppRunner(
                    webhook_app(self.application, path=tg.webhook_path, secret=secret)
                )
                await runner.setup()
                await web.TCPSite(runner, tg.webhook_listen, tg.webhook_port).start()
                await self.application.bot.set_webhook(
                    f"{tg.webhook_url}",
                    secret_token=secret,
                    allowed_updates=["message", "callback_query"],
                )
            else:
                await self.application.bot.delete_webhook()
                tasks.append(
                    asyncio.create_task(
                        poll(
                            self.application,
                            lambda: services.state.get_int(OFFSET_KEY),
                            lambda v: services.state.set_int(OFFSET_KEY, v),
                            self.stop_event,
                            timeout=tg.poll_timeout,
                        ),
                        name="poller",
                    )
                )
            if self.slack_app is not None and self.config.slack.mode == "socket":
                app_token = self.config.secrets.slack_app_token
                if app_token is None:
                    raise ConfigError("slack.mode = 'socket' needs TENSIONBOT_SLACK_APP_TOKEN")
                socket_handler = AsyncSocketModeHandler(
                    self.slack_app, app_token.get_secret_value()
                )
                await socket_handler.connect_async()
            elif self.slack_app is not None:
                sc = self.config.slack
                slack_runner = web.AppRunner(
                    slack_http_app(self.slack_app, sc.path), access_log=None
                )
                await slack_runner.setup()
                await web.TCPSite(slack_runner, sc.listen, sc.port).start()
                runners.append(slack_runner)
            if self.run_scheduler:
                scheduler = build_scheduler(
                    services.campaigns,
                    services.actions,
                    services.summaries,
                    services.pact,
                    tick_seconds=self.config.schedule.tick_seconds,
                    now=services.clock.now(),
                )
                scheduler.start()
            log.info("tensionbot is running (%s mode)", tg.mode)
            await self.stop_event.wait()
        finally:
            self.stop_event.set()
            if scheduler is not None:
                scheduler.shutdown(wait=False)
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if runner is not None:
                await runner.cleanup()
            for extra in runners:
                await extra.cleanup()
            if socket_handler is not None:
                await socket_handler.close_async()
            await self.application.shutdown()

    def _webhook_secret(self) -> str:
        # The webhook secret is derived per run unless the deployment pins one in the environment;
        # Telegram re-registers it with set_webhook on every start.
        return secrets.token_urlsafe(32)

    def stop(self) -> None:
        """Ask :meth:`run` to finish (in-flight sends complete first)."""
        self.stop_event.set()


def telegram_token(config: Config) -> str:
    """The Telegram token from the environment, or a clear error."""
    if config.secrets.telegram_token is None:
        raise ConfigError(
            "TENSIONBOT_TELEGRAM_TOKEN is not set: the bot needs a Telegram token to run "
            "(try `make demo` to see it work offline)"
        )
    return config.secrets.telegram_token.get_secret_value()
