"""Conversation handling: simulated reporters fill in the form at once, over the webhook path.

*Durable* is the product: ``Runtime`` in webhook mode (transport.webhook_app -> the real
python-telegram-bot ``Application.process_update`` -> handlers -> ConversationService, one
database transaction per update, replies queued in the outbox and sent by the OutboxDispatcher).

*In memory* is the baseline of what durability costs: the same ``Application`` (built by
``bot.runtime.build_application``), the same webhook endpoint (``transport.webhook_app``), the same
form walk (``FormDefinition`` prune/next_unanswered), the same messages (``bot.texts``)
rendered and sent by the same ``TelegramMessenger`` — but the conversation is a dict, and the reply
is sent directly from the handler. It has no database, no outbox, no dispatcher and no rate
limiter, no update-id de-duplication, no audit log, no routing or actions on submit, and no
checks of who the sender is.

The simulated platform lifts Telegram's limits here (and the bot is configured at 1,000/s overall
and 50/s per chat) so that the figure is the bot's own cost, not the platform's limit.
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from sqlalchemy import func, select
from telegram import Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bench.common import (
    BENCH_NOW,
    TOKEN,
    WARDS,
    BenchDatabase,
    Platform,
    RssSampler,
    insert_linked_people,
    make_config,
)
from bot import texts
from bot.app import build_services
from bot.buttons import BadPayload, ButtonAction, Kind
from bot.clock import FakeClock
from bot.config import Config
from bot.domain import Conversation, Report
from bot.forms import FormDefinition, load_form
from bot.messages import MessageBuilder
from bot.runtime import Runtime, build_application
from handlers.telegram.messenger import TelegramMessenger
from handlers.telegram.transport import webhook_app
from sim.world import free_port

FIRST_USER = 20_000_000
FAST = {"global_rate": 1000.0, "per_chat_rate": 50.0}


def _summarise(result: dict[str, Any]) -> dict[str, Any]:
    lat = sorted(result.pop("latencies"))
    if lat:
        q = statistics.quantiles(lat, n=100, method="inclusive")
        result["p50_ms"], result["p99_ms"] = q[49] * 1000, q[98] * 1000
    else:
        result["p50_ms"] = result["p99_ms"] = float("nan")
    result["updates_per_s"] = result["updates"] / result["seconds"] if result["seconds"] else 0.0
    return result


def _webhook_config(db_url: str, base_url: str, port: int) -> Config:
    return make_config(
        db_url,
        base_url,
        mode="webhook",
        webhook_url=f"http://127.0.0.1:{port}/telegram",
        webhook_port=port,
        webhook_listen="127.0.0.1",
        **FAST,
    )


async def run_durable(
    backend: str = "sqlite", users: int = 200, profile: bool = False
) -> dict[str, Any]:
    """The product's durable path on one backend (``profile``: with pyinstrument running)."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.001, async_mode="disabled") if profile else None
    async with Platform() as platform, BenchDatabase(backend) as db:
        port = free_port()
        config = _webhook_config(db.url, platform.base_url, port)
        services = await build_services(config, clock=FakeClock(BENCH_NOW))
        await insert_linked_people(services.db.engine, FIRST_USER, users)
        runtime = Runtime(services, TOKEN, run_scheduler=False)
        task = asyncio.create_task(runtime.run())
        try:
            while not (await platform.call("webhook"))["url"]:
                await asyncio.sleep(0.05)
            sampler = RssSampler()
            sampler.start()
            if profiler is not None:
                profiler.start()
            result = await platform.call("converse", first=FIRST_USER, count=users, wards=WARDS)
            if profiler is not None:
                profiler.stop()
                result["profile"] = profiler.output_text(unicode=False, color=False)
            result["peak_rss_kib"] = await sampler.stop()
            from storage import tables

            async with services.db.engine.connect() as conn:
                result["reports_stored"] = await conn.scalar(
                    select(func.count()).select_from(tables.reports)
                )
            result["outbox_failed"] = runtime.dispatcher.stats.failed
        finally:
            runtime.stop()
            await task
            await services.close()
    result["backend"] = backend
    return _summarise(result)


class MemoryFlow:
    """The same form walk with the state in a dict (the baseline; see the module docstring)."""

    def __init__(self, form: FormDefinition, wards: list[str], messenger: TelegramMessenger):
        self.form, self.wards, self.messenger = form, wards, messenger
        self.convs: dict[int, Conversation] = {}
        self.references = 0

    def register(self, application: Application) -> None:
        """Attach the handlers."""
        private = filters.ChatType.PRIVATE
        application.add_handler(CommandHandler("report", self.on_report, filters=private))
        application.add_handler(
            MessageHandler(private & filters.TEXT & ~filters.COMMAND, self.on_text)
        )
        application.add_handler(CallbackQueryHandler(self.on_button))

    async def on_report(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """``/report``: a new conversation, the intro and the first question."""
        assert update.effective_chat is not None and update.effective_user is not None
        uid, chat = update.effective_user.id, str(update.effective_chat.id)
        now = datetime.now(UTC)
        conv = Conversation(
            person_id=uid,
            flow="adhoc",
            form_version_id=1,
            started_at=now,
            updated_at=now,
            step=self.form.questions[0].id,
            id=uid,
        )
        self.convs[uid] = conv
        intro = (
            MessageBuilder()
            .line(texts.bold("Report a tension"))
            .line(texts.italic(self.form.emergency_notice))
            .build()
        )
        await self.messenger.send(chat, intro)
        await self._ask(conv, chat, None)

    async def _ask(self, conv: Conversation, chat: str, edit_ref: str | None) -> None:
        if conv.step == "review":
            msg = texts.review_message(conv, self.form)
        else:
            msg = texts.question_message(conv, self.form, self.form.question(conv.step), self.wards)
        await self.messenger.send(chat, msg, edit_ref)

    async def _accept(self, conv: Conversation, chat: str, value: str, ref: str | None) -> None:
        conv.draft = self.form.prune({**conv.draft, conv.step: value})
        nxt = self.form.next_unanswered(conv.draft)
        if nxt is None:
            conv.history = [v.id for v in self.form.visible_questions(conv.draft)]
            conv.step, conv.seq = "review", conv.seq + 1
        else:
            conv.history = [*conv.history, conv.step]
            conv.step, conv.seq = nxt.id, conv.seq + 1
        await self._ask(conv, chat, ref)

    async def on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A typed answer."""
        assert update.effective_user is not None and update.effective_message is not None
        conv = self.convs.get(update.effective_user.id)
        if conv is None or conv.step == "review":
            return
        await self._accept(
            conv, str(update.effective_message.chat_id), update.effective_message.text or "", None
        )

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A tap: answer, skip or submit (edits the question in place)."""
        query = update.callback_query
        assert query is not None and update.effective_user is not None
        conv = self.convs.get(update.effective_user.id)
        message = query.message
        ref = str(message.message_id) if message is not None else None
        chat = str(update.effective_user.id)
        try:
            action = ButtonAction.decode(query.data or "")
        except BadPayload:
            action = None
        if conv is None or action is None or action.seq != conv.seq:
            await query.answer("That question has moved on.")
            return
        if action.kind is Kind.REVIEW_SUBMIT:
            await query.answer("Submitted. Thank you.")
            self.references += 1
            d = conv.draft
            report = Report(
                reference=f"TR-2026-12-{self.references:04d}",
                person_id=conv.person_id,
                source="adhoc",
                ward=d["ward"],
                category=d["category"],
                level=int(d["level"]),
                basis=d["basis"],
                answers=dict(d),
                form_version_id=1,
                created_at=datetime.now(UTC),
            )
            conv.status = "submitted"
            await self.messenger.send(chat, texts.submitted([report], self.form), ref)
            return
        await query.answer()
        q = self.form.question(conv.step)
        if action.kind is Kind.SKIP:
            await self._accept(conv, chat, "", ref)
        elif action.kind is Kind.ANSWER:
            values = [o.value for o in q.options] if q.kind == "choice" else self.wards
            await self._accept(conv, chat, values[action.value], ref)


async def run_memory(users: int = 200) -> dict[str, Any]:
    """The in-memory baseline."""
    async with Platform() as platform:
        port = free_port()
        config = _webhook_config("sqlite+aiosqlite:///unused.sqlite3", platform.base_url, port)
        application = build_application(config, TOKEN)
        flow = MemoryFlow(
            load_form(config.form.path),
            list(config.partnership.wards),
            TelegramMessenger(application.bot),
        )
        flow.register(application)
        await application.initialize()
        secret = secrets.token_urlsafe(32)
        runner = web.AppRunner(webhook_app(application, path="/telegram", secret=secret))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            await application.bot.set_webhook(
                f"http://127.0.0.1:{port}/telegram", secret_token=secret
            )
            sampler = RssSampler()
            sampler.start()
            result = await platform.call("converse", first=FIRST_USER, count=users, wards=WARDS)
            result["peak_rss_kib"] = await sampler.stop()
            result["reports_stored"] = flow.references
        finally:
            await runner.cleanup()
            await application.shutdown()
    result["backend"] = "memory"
    return _summarise(result)
