"""Which proxy (if any) a call to Telegram or Slack goes through, and where the one HTTP server
listens (:func:`http_address`: here, not in ``bot.runtime``, so that ``tensionbot health``,
Docker's frequent healthcheck, loads no chat library to find it).

Council networks often allow the internet only through a web proxy. ``network.proxy_url`` in
the config wins; without it the usual ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY`` variables
apply (read once, when the clients are built). The answer is passed explicitly to the Telegram
transport (aiohttp) and to slack_sdk's clients: slack_sdk on its own would read ``HTTPS_PROXY``
but ignore ``NO_PROXY``.
"""

from __future__ import annotations

import logging
import os
import urllib.parse
import urllib.request
from collections.abc import Mapping

from bot.config import Config

log = logging.getLogger(__name__)


def proxy_for(url: str, proxy_url: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """The proxy for requests to ``url``: ``proxy_url`` when configured, else the environment's
    proxy for the URL's scheme unless ``NO_PROXY`` names its host; None: connect directly."""
    if proxy_url:
        return proxy_url
    environ = os.environ if env is None else env
    proxies: dict[str, str] = {}
    for name, value in environ.items():  # as urllib.request.getproxies_environment reads them
        lowered = name.lower()
        if value and lowered.endswith("_proxy"):
            proxies.setdefault(lowered.removesuffix("_proxy"), value)
    parsed = urllib.parse.urlsplit(url)
    chosen = proxies.get(parsed.scheme) or (proxies.get("http") if parsed.scheme else None)
    if chosen is None:
        return None
    host = parsed.hostname or ""
    if parsed.port is not None:
        host = f"{host}:{parsed.port}"
    if urllib.request.proxy_bypass_environment(host, proxies):  # type: ignore[attr-defined]
        return None
    return chosen


def shown(proxy: str | None) -> str:
    """A proxy URL fit to print (any user name and password removed)."""
    if proxy is None:
        return "none (direct)"
    parts = urllib.parse.urlsplit(proxy)
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def http_address(config: Config) -> tuple[str, int] | None:
    """Where the one HTTP server listens, or None when nothing needs it (polling, no Slack HTTP
    and no ``server.port``). ``[server]`` wins; else the webhook's, else Slack's address."""
    server, tg, sc = config.server, config.telegram, config.slack
    slack_http = (
        config.secrets.slack_bot_token is not None
        and config.secrets.slack_signing_secret is not None
        and sc.mode == "http"
    )
    if server.port is not None:
        port = server.port
    elif tg.mode == "webhook":
        port = tg.webhook_port
        if slack_http and sc.port != port:
            log.warning(
                "Slack is served on the webhook's port %s (one server); slack.port %s is unused: "
                "set server.port to choose",
                port,
                sc.port,
            )
    elif slack_http:
        port = sc.port
    else:
        return None
    if server.listen is not None:
        listen = server.listen
    elif tg.mode == "webhook":
        listen = tg.webhook_listen
    elif slack_http:
        listen = sc.listen
    else:
        listen = "127.0.0.1"
    return listen, port
