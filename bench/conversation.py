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

*PicklePersistence peer* is what a Python developer would pick instead: the same questions, texts,
endpoint and messenger, as python-telegram-bot's own ``ConversationHandler`` with
``PicklePersistence`` and PTB's default flush (every 60 s). ``bench/killtest.py`` counts what it
loses on kill -9 (``serve_peer`` runs it as a process of its own).

The simulated platform lifts Telegram's limits here (and the bot is configured at 1,000/s overall
and 50/s per chat) so that the figure is the bot's own cost, not the platform's limit.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import statistics
import sys
import tempfile
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from sqlalchemy import func, select
from telegram import Update
from telegram.ext import (
    Application,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    PersistenceInput,
    PicklePersistence,
    filters,
)
from telegram.warnings import PTBUserWarning

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
    """The same form walk with the state in a dict (the baseline; see the module docstring).

    Each handler returns the conversation's new step (``None``: unchanged; ``END``: submitted),
    which :class:`PickleFlow` uses as its ``ConversationHandler`` state.
    """

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

    def _get(self, uid: int, context: ContextTypes.DEFAULT_TYPE) -> Conversation | None:
        return self.convs.get(uid)

    def _put(self, uid: int, context: ContextTypes.DEFAULT_TYPE, conv: Conversation) -> None:
        self.convs[uid] = conv

    async def on_report(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> str:
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
        self._put(uid, context, conv)
        intro = (
            MessageBuilder()
            .line(texts.bold("Report a tension"))
            .line(texts.italic(self.form.emergency_notice))
            .build()
        )
        await self.messenger.send(chat, intro)
        await self._ask(conv, chat, None)
        return conv.step

    async def _ask(self, conv: Conversation, chat: str, edit_ref: str | None) -> None:
        if conv.step == "review":
            msg = texts.review_message(conv, self.form)
        else:
            msg = texts.question_message(conv, self.form, self.form.question(conv.step), self.wards)
        await self.messenger.send(chat, msg, edit_ref)

    async def _accept(self, conv: Conversation, chat: str, value: str, ref: str | None) -> str:
        conv.draft = self.form.prune({**conv.draft, conv.step: value})
        nxt = self.form.next_unanswered(conv.draft)
        if nxt is None:
            conv.history = [v.id for v in self.form.visible_questions(conv.draft)]
            conv.step, conv.seq = "review", conv.seq + 1
        else:
            conv.history = [*conv.history, conv.step]
            conv.step, conv.seq = nxt.id, conv.seq + 1
        await self._ask(conv, chat, ref)
        return conv.step

    async def on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> str | None:
        """A typed answer."""
        assert update.effective_user is not None and update.effective_message is not None
        conv = self._get(update.effective_user.id, context)
        if conv is None or conv.step == "review":
            return None
        return await self._accept(
            conv, str(update.effective_message.chat_id), update.effective_message.text or "", None
        )

    async def on_button(
        self, update: Update, context: ContextTypes.DEFAULT_TYPE
    ) -> str | int | None:
        """A tap: answer, skip or submit (edits the question in place)."""
        query = update.callback_query
        assert query is not None and update.effective_user is not None
        conv = self._get(update.effective_user.id, context)
        message = query.message
        ref = str(message.message_id) if message is not None else None
        chat = str(update.effective_user.id)
        try:
            action = ButtonAction.decode(query.data or "")
        except BadPayload:
            action = None
        if conv is None or action is None or action.seq != conv.seq:
            await query.answer("That question has moved on.")
            return None
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
            return ConversationHandler.END
        await query.answer()
        q = self.form.question(conv.step)
        if action.kind is Kind.SKIP:
            return await self._accept(conv, chat, "", ref)
        if action.kind is Kind.ANSWER:
            values = [o.value for o in q.options] if q.kind == "choice" else self.wards
            return await self._accept(conv, chat, values[action.value], ref)
        return None


class PickleFlow(MemoryFlow):
    """The peer a Python developer would pick instead: the same form walk, messages and
    messenger, but as python-telegram-bot's own ``ConversationHandler`` (one state per
    question, ``persistent=True``) with the draft in ``user_data``, both kept by
    ``PicklePersistence`` with its default flush (every ``update_interval`` = 60 s, and at a
    clean shutdown)."""

    def register(self, application: Application) -> None:
        """Attach one ``ConversationHandler``."""
        private = filters.ChatType.PRIVATE
        answer: list[BaseHandler[Update, Any, Any]] = [
            CallbackQueryHandler(self.on_button),
            MessageHandler(private & filters.TEXT & ~filters.COMMAND, self.on_text),
        ]
        steps = [q.id for q in self.form.questions] + ["review"]
        with warnings.catch_warnings():  # per_message=False with buttons: what we want here
            warnings.simplefilter("ignore", PTBUserWarning)
            handler = ConversationHandler(
                entry_points=[CommandHandler("report", self.on_report, filters=private)],
                states={step: answer for step in steps},
                fallbacks=[CommandHandler("report", self.on_report, filters=private)],
                name=PEER_CONVERSATION,
                persistent=True,
            )
        application.add_handler(handler)

    def _get(self, uid: int, context: ContextTypes.DEFAULT_TYPE) -> Conversation | None:
        conv = context.user_data.get("conv") if context.user_data is not None else None
        return conv if isinstance(conv, Conversation) else None

    def _put(self, uid: int, context: ContextTypes.DEFAULT_TYPE, conv: Conversation) -> None:
        assert context.user_data is not None
        context.user_data["conv"] = conv


PEER_CONVERSATION = "report"

F = TypeVar("F", bound=MemoryFlow)


def _flow(kind: type[F], config: Config, application: Application) -> F:
    """The form walk of ``kind`` (the baseline or the peer), attached to ``application``."""
    flow = kind(
        load_form(config.form.path),
        list(config.partnership.wards),
        TelegramMessenger(application.bot),
    )
    flow.register(application)
    return flow


async def _serve_webhook(application: Application, port: int) -> web.AppRunner:
    """The product's webhook endpoint (``transport.webhook_app``) for ``application`` on
    127.0.0.1:``port``, and the platform told to push there."""
    secret = secrets.token_urlsafe(32)
    runner = web.AppRunner(webhook_app(application, path="/telegram", secret=secret))
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await application.bot.set_webhook(f"http://127.0.0.1:{port}/telegram", secret_token=secret)
    except BaseException:
        await runner.cleanup()
        raise
    return runner


async def start_peer(
    platform_url: str, port: int, pickle_path: Path, update_interval: float | None = None
) -> tuple[Application, web.AppRunner, PickleFlow]:
    """The PicklePersistence peer, serving the webhook on ``port`` (same Application settings,
    endpoint and messenger as the baseline); started like a PTB deployment (``start()``, so its
    persistence job flushes every ``update_interval``). Returns what :func:`stop_peer` needs."""
    config = _webhook_config("sqlite+aiosqlite:///unused.sqlite3", platform_url, port)
    application = build_application(config, TOKEN)
    # build_application is the product's builder (no persistence); the peer adds PTB's own,
    # with its defaults except that it keeps only what this flow uses (user_data, conversations).
    store = PersistenceInput(bot_data=False, chat_data=False, callback_data=False)
    application.persistence = (
        PicklePersistence(pickle_path, store_data=store)
        if update_interval is None
        else PicklePersistence(pickle_path, store_data=store, update_interval=update_interval)
    )
    flow = _flow(PickleFlow, config, application)
    await application.initialize()
    await application.start()
    return application, await _serve_webhook(application, port), flow


async def _converse(platform: Platform, users: int, flow: MemoryFlow) -> dict[str, Any]:
    """``users`` reporters walk the form at once (the platform's ``converse``): its figures, the
    process's peak RSS meanwhile and the reports ``flow`` stored."""
    sampler = RssSampler()
    sampler.start()
    result: dict[str, Any] = await platform.call(
        "converse", first=FIRST_USER, count=users, wards=WARDS
    )
    result["peak_rss_kib"] = await sampler.stop()
    result["reports_stored"] = flow.references
    return result


async def stop_peer(application: Application, runner: web.AppRunner) -> None:
    """A clean stop (which flushes the pickle file)."""
    await runner.cleanup()
    await application.stop()
    await application.shutdown()


async def run_pickle(users: int = 200) -> dict[str, Any]:
    """The PicklePersistence peer's throughput (in this process, like the baseline)."""
    with tempfile.TemporaryDirectory(prefix="tensionbot-bench-pickle-") as tmp:
        async with Platform() as platform:
            port = free_port()
            application, runner, flow = await start_peer(
                platform.base_url, port, Path(tmp) / "peer.pickle"
            )
            try:
                result = await _converse(platform, users, flow)
            finally:
                await stop_peer(application, runner)
    result["backend"] = "pickle"
    return _summarise(result)


async def serve_peer(
    platform_url: str, port: int, pickle_path: str, update_interval: float | None = None
) -> None:
    """``python -m bench.conversation serve-peer URL PORT FILE [INTERVAL]``: the peer as a process of its
    own (for the kill -9 run). Prints one JSON line once it serves: the conversation states it
    restored from the pickle file, by user id."""
    application, runner, _flow = await start_peer(
        platform_url, port, Path(pickle_path), update_interval
    )
    handler = next(
        h for hs in application.handlers.values() for h in hs if isinstance(h, ConversationHandler)
    )
    restored = {
        str(key[-1]): state
        for key, state in handler._conversations.items()  # what it restored at initialize()
        if isinstance(state, str)
    }
    print(json.dumps({"ready": True, "restored": restored}), flush=True)
    try:
        await asyncio.Event().wait()  # until killed
    finally:
        await stop_peer(application, runner)


async def run_memory(users: int = 200) -> dict[str, Any]:
    """The in-memory baseline."""
    async with Platform() as platform:
        port = free_port()
        config = _webhook_config("sqlite+aiosqlite:///unused.sqlite3", platform.base_url, port)
        application = build_application(config, TOKEN)
        flow = _flow(MemoryFlow, config, application)
        await application.initialize()
        runner = await _serve_webhook(application, port)
        try:
            result = await _converse(platform, users, flow)
        finally:
            await runner.cleanup()
            await application.shutdown()
    result["backend"] = "memory"
    return _summarise(result)


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve-peer"]:
        interval = float(sys.argv[5]) if len(sys.argv) > 5 else None
        asyncio.run(serve_peer(sys.argv[2], int(sys.argv[3]), sys.argv[4], interval))
