"""A council web proxy: Telegram and Slack calls go through ``network.proxy_url`` or the
``HTTP(S)_PROXY`` environment (``NO_PROXY`` respected), shown by a small local forward proxy
that counts what passes through it; a proxy that is required but unreachable stops
``tensionbot run`` with one clear line."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.app import build_services
from bot.clock import FakeClock
from bot.messages import MessageBuilder
from bot.runtime import Runtime
from sim.fake_slack import FakeSlack
from sim.fake_telegram import FakeTelegram
from tests.conftest import SLACK_ENV, TOKEN
from tests.helpers import slack_config, team_slack

ROOT = Path(__file__).resolve().parents[1]
HOP_BY_HOP = {"connection", "proxy-connection", "keep-alive", "transfer-encoding", "host"}


class CountingProxy:
    """A forward proxy for plain HTTP (the fakes are http://): it relays each absolute-form
    request and counts them by target (host:port, method path)."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._relay)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self._http = aiohttp.ClientSession(auto_decompress=False)

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def through(self, base_url: str) -> int:
        """Requests relayed to the server at ``base_url``."""
        target = base_url.removeprefix("http://")
        return sum(n for key, n in self.seen.items() if key.startswith(target))

    async def _relay(self, request: web.Request) -> web.StreamResponse:
        # A client talking to a proxy sends the absolute-form target ("GET http://host/path").
        url = request.raw_path if request.raw_path.startswith("http://") else str(request.url)
        self.seen[url.removeprefix("http://")] += 1
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        assert self._http is not None
        async with self._http.request(
            request.method, url, headers=headers, data=await request.read(), allow_redirects=False
        ) as upstream:
            body = await upstream.read()
            out = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
            out.pop("Content-Length", None)  # aiohttp sets it for the relayed body
            return web.Response(status=upstream.status, body=body, headers=out)


@pytest.fixture
async def proxy() -> AsyncIterator[CountingProxy]:
    p = CountingProxy()
    await p.start()
    yield p
    await p.stop()


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with team_slack() as fake:
        yield fake


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def exercise(db_url: str, telegram: FakeTelegram, slack: FakeSlack, **sections: Any) -> None:
    """Build the real runtime and make one Telegram and two Slack calls through it (PTB's
    getMe, Bolt's client, the outbox's Slack messenger)."""
    config = slack_config(db_url, telegram.base_url, slack, free_port(), **sections)
    services = await build_services(
        config, clock=FakeClock(datetime(2026, 12, 1, 9, 30, tzinfo=UTC)), migrate=False
    )
    try:
        runtime = Runtime(services, TOKEN)
        await runtime.application.initialize()  # getMe
        try:
            assert runtime.slack_app is not None
            await runtime.slack_app.client.auth_test()
            messenger = runtime.dispatcher.messengers["slack"]
            sent = await messenger.send("C0NPT", MessageBuilder().line("through the proxy").build())
            assert sent.ok, sent.error
        finally:
            await runtime.application.shutdown()
    finally:
        await services.close()


async def test_network_proxy_url_carries_both_platforms(
    db_url: str,
    fake_telegram: FakeTelegram,
    slack: FakeSlack,
    proxy: CountingProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # the explicit setting still applies
    await exercise(db_url, fake_telegram, slack, network={"proxy_url": proxy.url})
    assert proxy.through(fake_telegram.base_url) >= 1
    assert proxy.through(slack.base_url) >= 2
    assert fake_telegram.calls_for("getMe") and slack.calls_for("chat.postMessage")


async def test_the_environment_proxy_is_used_unless_no_proxy_names_the_host(
    db_url: str,
    fake_telegram: FakeTelegram,
    slack: FakeSlack,
    proxy: CountingProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    await exercise(db_url, fake_telegram, slack)
    assert proxy.through(fake_telegram.base_url) >= 1
    assert proxy.through(slack.base_url) >= 2

    proxy.seen.clear()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    await exercise(db_url, fake_telegram, slack)
    assert sum(proxy.seen.values()) == 0  # straight to the fakes
    assert len(slack.calls_for("chat.postMessage")) == 2


async def test_an_unreachable_proxy_is_one_clear_line(
    tmp_path: Path, db_url: str, fake_telegram: FakeTelegram
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{db_url}"\n[telegram]\napi_base_url = "{fake_telegram.base_url}"\n'
        f'[network]\nproxy_url = "http://127.0.0.1:{free_port()}"\n'
    )
    # Should the proxy be bypassed, the bot must not start and run for ever: Telegram then
    # refuses it, and the assertions below fail at once.
    fake_telegram.inject(401, method="getMe", times=10, description="Unauthorized")
    env = {
        **os.environ,
        "TENSIONBOT_TELEGRAM_TOKEN": TOKEN,
        **{k: "" for k in SLACK_ENV},
        "PYTHONPATH": str(ROOT),
    }
    # A process of its own: `run` installs signal handlers, which only the main thread may.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from bot.cli import main; main()",
        "--config",
        str(config),
        "run",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    output = out.decode()
    assert process.returncode == 2, output
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    (line,) = lines
    assert line.startswith(f"error: cannot reach Telegram at {fake_telegram.base_url} (proxy: ")
    assert "network.proxy_url" in line
    assert fake_telegram.calls == []
