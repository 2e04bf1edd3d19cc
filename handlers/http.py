"""The one HTTP server of ``tensionbot run``.

It mounts whichever of these the deployment uses: the Telegram webhook (secret token checked, see
:func:`handlers.telegram.transport.webhook_handler`), Slack's Events API and interactivity (Bolt
checks the signature, see :func:`handlers.slack.app.events_handler`), and always ``/healthz``
(the process answers), ``/readyz`` (ready for traffic: the probe given by the composition root
checks the database and its migrations) and ``/metrics`` (Prometheus, one registry per runtime).

Figures that need the database are read at scrape time through the core's
:class:`~bot.health.HealthService`; nothing here touches SQL.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from bot.delivery.recording import DispatchStats
from bot.domain import OutboxStatus
from bot.health import HealthFigures

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_BODY = 1024 * 1024  # bytes: the most any request to this server may carry (Telegram, Slack)


@dataclass(frozen=True)
class Readiness:
    """The answer of a readiness probe: ready or not, and why (JSON for /readyz)."""

    ready: bool
    detail: dict[str, Any] = field(default_factory=dict)


ReadinessProbe = Callable[[], Awaitable[Readiness]]


class _RuntimeCollector(Collector):
    """Turns a runtime's counters and a figures snapshot into metric families."""

    def __init__(self, stats: Callable[[], DispatchStats], is_leader: Callable[[], bool]) -> None:
        self.stats = stats
        self.is_leader = is_leader
        self.figures: HealthFigures | None = None

    def collect(self) -> Iterator[Metric]:
        stats = self.stats()
        for name, value, text in (
            ("messages_sent", stats.sent, "Messages sent by this process."),
            ("messages_failed", stats.failed, "Messages that failed for good in this process."),
            ("messages_retried", stats.retried, "Sends to be retried (5xx, timeouts, 429)."),
            ("messages_throttled", stats.throttled, "429 Too Many Requests received."),
            (
                "messages_uncertain",
                stats.uncertain,
                "Sends with no answer (a timeout, a 504), not re-sent: at most once.",
            ),
        ):
            yield CounterMetricFamily(f"tensionbot_{name}", text, value=value)
        recovered = CounterMetricFamily(
            "tensionbot_outbox_recovered",
            "Rows left in flight by a dead process, settled by this one.",
            labels=["outcome"],
        )
        recovered.add_metric(["uncertain"], stats.recovered_uncertain)
        recovered.add_metric(["resent"], stats.recovered_resent)
        yield recovered
        yield GaugeMetricFamily(
            "tensionbot_leader",
            "1 if this process is the leader (runs the scheduler), else 0.",
            value=1 if self.is_leader() else 0,
        )
        figures = self.figures
        yield GaugeMetricFamily(
            "tensionbot_figures_up",
            "1 if the database figures below could be read at this scrape.",
            value=0 if figures is None else 1,
        )
        if figures is None:
            return
        depth = GaugeMetricFamily(
            "tensionbot_outbox_messages", "Outbox rows by status.", labels=["status"]
        )
        for status in OutboxStatus:
            depth.add_metric([status.value], figures.outbox.get(status.value, 0))
        yield depth
        yield GaugeMetricFamily(
            "tensionbot_actions_open", "Actions not closed.", value=figures.actions_open
        )
        yield GaugeMetricFamily(
            "tensionbot_actions_overdue",
            "Actions not acknowledged by their deadline.",
            value=figures.actions_overdue,
        )
        rate = GaugeMetricFamily(
            "tensionbot_return_rate",
            "Share of an open return's recipients who answered (tensions or nil).",
            labels=["campaign"],
        )
        deliveries = GaugeMetricFamily(
            "tensionbot_return_deliveries",
            "An open return's deliveries by status.",
            labels=["campaign", "status"],
        )
        for ret in figures.returns:
            rate.add_metric([ret.key], ret.rate)
            for state, n in sorted(ret.deliveries.items()):
                deliveries.add_metric([ret.key, state], n)
        yield rate
        yield deliveries


class Metrics:
    """A Prometheus registry of one runtime (never the global default registry)."""

    def __init__(
        self,
        *,
        stats: Callable[[], DispatchStats],
        figures: Callable[[], Awaitable[HealthFigures]],
        is_leader: Callable[[], bool],
        timeout: float = 5.0,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._collector = _RuntimeCollector(stats, is_leader)
        self.registry.register(self._collector)
        ProcessCollector(namespace="tensionbot", registry=self.registry)
        self._figures = figures
        self._timeout = timeout

    async def render(self) -> bytes:
        """The exposition text, with the database figures read now."""
        try:
            snapshot: HealthFigures | None = await asyncio.wait_for(self._figures(), self._timeout)
        except Exception:  # a scrape reports the failure, it never raises
            log.warning("metrics: could not read the database figures", exc_info=True)
            snapshot = None
        # No await between setting the snapshot and rendering: concurrent scrapes cannot mix.
        self._collector.figures = snapshot
        return generate_latest(self.registry)


def build_http_app(
    *,
    readiness: ReadinessProbe,
    metrics: Metrics | None = None,
    telegram: tuple[str, Handler] | None = None,
    slack: tuple[str, Handler] | None = None,
    pages: Sequence[tuple[str, web.Application]] = (),
) -> web.Application:
    """One aiohttp application: the given platform endpoints plus health, readiness, metrics,
    and web pages (sub-applications mounted at their paths: the web form and the public PACT
    pages, see ``handlers/web``)."""
    app = web.Application(client_max_size=MAX_BODY)
    mounted = {"/healthz", "/readyz", "/metrics"}
    for prefix, pages_app in pages:
        app.add_subapp(prefix, pages_app)
    for endpoint in (telegram, slack):
        if endpoint is None:
            continue
        path, handler = endpoint
        if path in mounted:
            raise ValueError(f"two endpoints at {path}")
        mounted.add(path)
        app.router.add_post(path, handler)

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(_: web.Request) -> web.Response:
        answer = await readiness()
        return web.Response(
            status=200 if answer.ready else 503,
            text=json.dumps({"ready": answer.ready, **answer.detail}),
            content_type="application/json",
        )

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if metrics is not None:

        async def scrape(_: web.Request) -> web.Response:
            body = await metrics.render()
            response = web.Response(body=body)
            response.headers["Content-Type"] = CONTENT_TYPE_LATEST
            return response

        app.router.add_get("/metrics", scrape)
    return app


class HttpServer:
    """Starts and gracefully stops the one server."""

    def __init__(self, app: web.Application, host: str, port: int, *, shutdown: float) -> None:
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown)
        self.host, self.port = host, port
        self._started = False

    async def start(self) -> None:
        """Listen (raises if the port is taken)."""
        await self.runner.setup()
        self._started = True
        await web.TCPSite(self.runner, self.host, self.port).start()
        log.info("serving HTTP on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening, let requests in progress finish (up to the shutdown time), close."""
        if self._started:
            self._started = False
            await self.runner.cleanup()
