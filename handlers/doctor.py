"""``tensionbot doctor``'s checks of the live platforms, each a line with ✓ or ✗ and the fix.

Run before go-live and after every change: is the Telegram token valid, is it the bot the
invitation links name, is the webhook where the config says; is the Slack token valid, does it
have every scope the features need (handlers/slack/scopes.py), is the bot in every channel the
config names, can Slack's requests be verified; which proxy is in use. Nothing here changes
anything on either platform. (The database check is the composition root's: bot/app.py.)
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from telegram import Bot
from telegram.error import InvalidToken, TelegramError

from bot.config import ENV_SLACK_BOT_TOKEN, ENV_TELEGRAM_TOKEN, Config
from handlers.network import proxy_for, shown
from handlers.slack import scopes
from handlers.slack.app import build_client
from handlers.telegram.identity import telegram_bot

SCOPE_HEADER = "x-oauth-scopes"


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report: what was checked, whether it passed, and the fix."""

    ok: bool
    what: str
    fix: str = ""

    def line(self) -> str:
        """``✓ what`` or ``✗ what: fix``."""
        if self.ok:
            return f"✓ {self.what}"
        return f"✗ {self.what}" + (f" — {self.fix}" if self.fix else "")


def proxy_check(config: Config) -> list[Check]:
    """Which proxy each platform's calls go through (information; the platform checks show
    whether it works)."""
    checks = []
    tg = proxy_for(config.telegram.api_base_url, config.network.proxy_url)
    source = "network.proxy_url" if config.network.proxy_url else "environment"
    where = f" (from {source})"
    checks.append(Check(True, f"proxy for Telegram: {shown(tg)}{where if tg else ''}"))
    if config.secrets.slack_bot_token is not None:
        sl = proxy_for(config.slack.api_base_url, config.network.proxy_url)
        checks.append(Check(True, f"proxy for Slack: {shown(sl)}{where if sl else ''}"))
    return checks


async def telegram_checks(config: Config) -> list[Check]:
    """The token (getMe), the bot's username against the config, the webhook against the
    config (getWebhookInfo)."""
    if config.secrets.telegram_token is None:
        return [Check(False, "Telegram token", f"set {ENV_TELEGRAM_TOKEN} (from @BotFather)")]
    async with telegram_bot(config, config.secrets.telegram_token.get_secret_value()) as bot:
        return await _telegram_checks(config, bot)


async def _telegram_checks(config: Config, bot: Bot) -> list[Check]:
    tg = config.telegram
    try:
        await bot.initialize()  # getMe
    except InvalidToken:
        return [
            Check(
                False,
                "Telegram refused the token (getMe: Unauthorized)",
                f"set {ENV_TELEGRAM_TOKEN} to the token @BotFather gave this bot (/token)",
            )
        ]
    except TelegramError as exc:
        proxy = shown(proxy_for(tg.api_base_url, config.network.proxy_url))
        error = str(exc).replace(bot.token, "<token>")  # never print the token
        return [
            Check(
                False,
                f"cannot reach Telegram at {tg.api_base_url} through proxy {proxy}: {error}",
                "check network.proxy_url or HTTPS_PROXY / NO_PROXY, and the firewall",
            )
        ]
    me = bot.bot
    checks = [Check(True, f"Telegram token valid: the bot is @{me.username}")]
    if tg.bot_username is None:
        checks.append(
            Check(True, f"invitation links name @{me.username} (getMe; bot_username unset)")
        )
    elif tg.bot_username.casefold() == (me.username or "").casefold():
        checks.append(Check(True, f"telegram.bot_username is @{me.username}"))
    else:
        checks.append(
            Check(
                False,
                f"telegram.bot_username is @{tg.bot_username} but the token is "
                f"@{me.username}'s: invitation links would go to another bot",
                f'set bot_username = "{me.username}" under [telegram] (or remove it)',
            )
        )
    checks.append(await _webhook_check(config, bot))
    return checks


async def _webhook_check(config: Config, bot: Bot) -> Check:
    tg = config.telegram
    try:
        info = await bot.get_webhook_info()
    except TelegramError as exc:
        return Check(False, f"getWebhookInfo failed: {exc}", "run `tensionbot doctor` again")
    if tg.mode == "polling":
        if info.url:
            return Check(
                False,
                f"a webhook is set ({info.url}) but telegram.mode is polling",
                "if another deployment uses this bot's token, give this one its own bot; "
                "otherwise `tensionbot run` removes the webhook when it starts",
            )
        return Check(True, "no webhook set (telegram.mode is polling)")
    if not info.url:
        return Check(
            True, f"webhook not set yet: `tensionbot run` sets it to {tg.webhook_url} at start"
        )
    if info.url != tg.webhook_url:
        return Check(
            False,
            f"Telegram's webhook is {info.url}, the config says {tg.webhook_url}",
            "fix telegram.webhook_url (`tensionbot run` re-registers it at start); if another "
            "deployment set it, give each deployment its own bot",
        )
    if info.last_error_message:
        return Check(
            False,
            f"webhook {info.url}: Telegram's last delivery failed: {info.last_error_message}",
            "check the reverse proxy forwards that URL to the server port and that "
            "tensionbot is running",
        )
    return Check(True, f"webhook is {info.url}, as configured")


async def slack_checks(config: Config) -> list[Check]:
    """The token (auth.test), its scopes (the x-oauth-scopes header) against the features'
    needs, the bot's membership of every configured channel, the signing secret."""
    secrets = config.secrets
    if secrets.slack_bot_token is None:
        return [Check(True, f"Slack off ({ENV_SLACK_BOT_TOKEN} not set)")]
    sc = config.slack
    client = build_client(
        sc.api_base_url,
        secrets.slack_bot_token.get_secret_value(),
        proxy_for(sc.api_base_url, config.network.proxy_url),
    )
    client.retry_handlers = []  # a doctor reports, it does not wait
    checks: list[Check] = []
    if sc.mode == "http" and secrets.slack_signing_secret is None:
        checks.append(
            Check(
                False,
                "Slack signing secret not set (slack.mode is http)",
                "set TENSIONBOT_SLACK_SIGNING_SECRET from the app's Basic Information → "
                "Signing Secret; without it Slack's requests cannot be verified",
            )
        )
    elif sc.mode == "socket" and secrets.slack_app_token is None:
        checks.append(
            Check(
                False,
                "Slack app-level token not set (slack.mode is socket)",
                "set TENSIONBOT_SLACK_APP_TOKEN (an xapp- token with connections:write)",
            )
        )
    else:
        checks.append(Check(True, f"Slack requests can be verified ({sc.mode} mode)"))
    try:
        auth = await client.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error", "unknown_error")
        return [
            *checks,
            Check(
                False,
                f"Slack refused the token (auth.test: {error})",
                f"set {ENV_SLACK_BOT_TOKEN} to the app's Bot User OAuth Token (xoxb-…)",
            ),
        ]
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        proxy = shown(proxy_for(sc.api_base_url, config.network.proxy_url))
        return [
            *checks,
            Check(
                False,
                f"cannot reach Slack at {sc.api_base_url} through proxy {proxy}: {exc}",
                "check network.proxy_url or HTTPS_PROXY / NO_PROXY, and the firewall",
            ),
        ]
    checks.append(
        Check(True, f"Slack token valid: bot {auth.get('user_id')} in {auth.get('team')}")
    )
    header = next((v for k, v in auth.headers.items() if k.lower() == SCOPE_HEADER), "")
    checks.append(_scope_check(str(header)))
    for channel, purpose in _channels(config):
        checks.append(await _channel_check(client, channel, purpose, str(auth.get("user"))))
    return checks


def _scope_check(header: str) -> Check:
    granted = {s.strip() for s in header.split(",") if s.strip()}
    missing = {s: f for s, f in scopes.needed_scopes().items() if s not in granted}
    if not missing:
        return Check(True, f"Slack token has every scope the features need ({len(granted)})")
    listed = "; ".join(f"{s} ({', '.join(features)})" for s, features in sorted(missing.items()))
    return Check(
        False,
        f"Slack token lacks scopes: {listed}",
        "add them under OAuth & Permissions (deploy/slack-manifest.yml has them all) and "
        "reinstall the app to the workspace",
    )


def _channels(config: Config) -> list[tuple[str, str]]:
    """(channel, what it is for) for every team, duty (escalation) and summary channel."""
    found: dict[str, str] = {}
    for team in config.teams:
        found.setdefault(team.slack_channel, f"team {team.key}")
    for rung in config.escalation.rungs:
        if rung.target[0] in "CG":
            found.setdefault(rung.target, "escalation (duty)")
    for channel in config.summaries.channels:
        found.setdefault(channel, "summaries")
    return list(found.items())


async def _channel_check(client: AsyncWebClient, channel: str, purpose: str, bot: str) -> Check:
    try:
        info = (await client.conversations_info(channel=channel))["channel"]
    except SlackApiError as exc:
        error = exc.response.get("error", "unknown_error")
        if error == "channel_not_found":
            return Check(
                False,
                f"Slack channel {channel} ({purpose}) not found",
                "check the channel id (channel details, at the bottom); for a private "
                "channel, invite the bot first",
            )
        if error == "missing_scope":
            return Check(
                False,
                f"cannot check channel {channel} ({purpose}): missing {exc.response.get('needed')}",
                "add the scope (see the scopes line) and reinstall the app",
            )
        return Check(False, f"cannot check channel {channel} ({purpose}): {error}")
    name = f"#{info.get('name', channel)} ({channel}, {purpose})"
    if not info.get("is_member"):
        return Check(
            False,
            f"the bot is not a member of {name}",
            f"in that channel type /invite @{bot}",
        )
    return Check(True, f"the bot is a member of {name}")
