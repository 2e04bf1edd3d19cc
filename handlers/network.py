"""Which proxy (if any) a call to Telegram or Slack goes through.

Council networks often allow the internet only through a web proxy. ``network.proxy_url`` in
the config wins; without it the usual ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY`` variables
apply (read once, when the clients are built). The answer is passed explicitly to the Telegram
transport (aiohttp) and to slack_sdk's clients: slack_sdk on its own would read ``HTTPS_PROXY``
but ignore ``NO_PROXY``.
"""

from __future__ import annotations

import os
import urllib.parse
import urllib.request
from collections.abc import Mapping


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
