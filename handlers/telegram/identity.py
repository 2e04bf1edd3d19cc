"""Who the bot is on Telegram (getMe), for invitation links and ``tensionbot doctor``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from telegram import Bot, User

from bot.config import Config
from handlers.network import proxy_for
from handlers.telegram.request import AiohttpRequest


@asynccontextmanager
async def telegram_bot(config: Config, token: str) -> AsyncIterator[Bot]:
    """A bare Bot on the configured API, through the configured or environment proxy, not yet
    initialised; its HTTP session is closed on the way out, even when getMe failed."""
    api = config.telegram.api_base_url
    request = AiohttpRequest(pool_size=1, proxy=proxy_for(api, config.network.proxy_url))
    bot = Bot(
        token,
        base_url=f"{api}/bot",
        base_file_url=f"{api}/file/bot",
        request=request,
        get_updates_request=request,
    )
    try:
        yield bot
    finally:
        await request.shutdown()  # idempotent; also after a getMe that failed


async def get_me(config: Config, token: str) -> User:
    """The bot's own user (raises PTB's InvalidToken / NetworkError as they come)."""
    async with telegram_bot(config, token) as bot:
        await bot.initialize()  # calls getMe
        return bot.bot


async def with_bot_username(config: Config, token: str) -> Config:
    """``config`` with ``telegram.bot_username`` filled in from getMe when it is unset, so
    invitation links point at the bot this token belongs to."""
    if config.telegram.bot_username is not None:
        return config
    me = await get_me(config, token)
    telegram = config.telegram.model_copy(update={"bot_username": me.username})
    return config.model_copy(update={"telegram": telegram})
