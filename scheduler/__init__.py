"""Timed jobs: a few stable-id APScheduler ticks, each calling one idempotent core service.

The database is the record of truth, not the job store (which is in memory): a tick that runs
twice, late, or right after a restart does the right thing because the service it calls is
idempotent over database rows. The first tick runs at start-up, which is the catch-up.

Where the timing lives (this package only says *how often* to look):

| what | when is decided by | done by |
|---|---|---|
| the monthly return opens, reminders, it closes | ``[schedule]`` (``open_day``, ``reminder_days``, ``close_day``...) | ``bot.returns.campaigns.CampaignService.tick`` (``bot/returns/periods.py`` turns the config into times) |
| crisis returns | the cadence set by ``/crisis`` | ``bot.returns.crisis.CrisisService.tick`` |
| action reminders, escalation, the 4-weekly check | ``[deadlines]``, ``[escalation]`` | ``bot.actions.service.ActionService.tick`` |
| the summary after a return closes | the campaign's close | ``bot.summaries.service.post_scheduled`` |
| PACT invitations, report-backs, record prompts | the meetings' times, ``[pact]`` | ``bot.pact.service.PactService.tick`` |
| retention | ``[privacy] tick_hours`` | ``bot.people.privacy.PrivacyService.tick`` |
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.actions.service import ActionService
from bot.pact.service import PactService
from bot.people.privacy import PrivacyService
from bot.returns.campaigns import CampaignService
from bot.returns.crisis import CrisisService
from bot.summaries.service import SummaryService, post_scheduled

log = logging.getLogger(__name__)


def build_scheduler(
    campaigns: CampaignService,
    actions: ActionService,
    summaries: SummaryService,
    pact: PactService,
    privacy: PrivacyService,
    *,
    crisis: CrisisService,
    tick_seconds: int,
    now: datetime,
    running: set[asyncio.Task[None]] | None = None,
) -> AsyncIOScheduler:
    """An AsyncIOScheduler with stable-id ticks, each first run at ``now``: the campaign tick
    (open, remind, close), the action tick (remind, escalate), the summary tick (post after a
    return closes), the PACT tick (reminders, owners' report-backs, record prompts) and, every
    ``privacy.tick_hours``, the retention tick."""

    async def campaign_tick() -> None:
        report = await campaigns.tick()
        # Crisis cadences' occurrences (bot/returns/crisis.py): each opened once.
        opened = await crisis.tick()
        if opened:
            log.info("campaign tick: crisis returns opened %s", opened)
        if report.opened or report.reminded or report.closed or report.followed_up:
            log.info(
                "campaign tick: opened=%s reminded=%s followed_up=%s closed=%s",
                report.opened,
                report.reminded,
                report.followed_up,
                report.closed,
            )

    async def action_tick() -> None:
        fired = await actions.tick()
        if fired:
            log.info("action tick: reminders and escalations %s", fired)

    async def summary_tick() -> None:
        posted = await post_scheduled(summaries)
        if posted:
            log.info("summary tick: queued the summaries of %s", posted)

    async def pact_tick() -> None:
        fired = await pact.tick()
        if any(fired.values()):
            log.info("pact tick: %s", fired)

    async def retention_tick() -> None:
        result = await privacy.tick()
        log.info("retention tick: redacted %s, anonymised %s", result.redacted, result.anonymised)

    scheduler = AsyncIOScheduler(timezone="UTC")
    jobs = (
        (campaign_tick, "campaign-tick"),
        (action_tick, "action-tick"),
        (summary_tick, "summary-tick"),
        (pact_tick, "pact-tick"),
    )
    for job, job_id in jobs:
        scheduler.add_job(
            job if running is None else _tracked(job, running),
            "interval",
            seconds=tick_seconds,
            id=job_id,
            next_run_time=now,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
            replace_existing=True,
        )
    # Retention is daily work, not minute work: its own interval, first run at start-up.
    scheduler.add_job(
        retention_tick if running is None else _tracked(retention_tick, running),
        "interval",
        hours=privacy.config.privacy.tick_hours,
        id="retention-tick",
        next_run_time=now,
        coalesce=True,
        max_instances=1,
        misfire_grace_time=None,
        replace_existing=True,
    )
    return scheduler


def _tracked(
    job: Callable[[], Awaitable[None]], running: set[asyncio.Task[None]]
) -> Callable[[], Awaitable[None]]:
    """The job, recording its task in ``running`` while it runs (so shutdown can wait for it)."""

    async def tracked() -> None:
        task = asyncio.current_task()
        if task is not None:
            running.add(task)
        try:
            await job()
        finally:
            if task is not None:
                running.discard(task)

    tracked.__name__ = getattr(job, "__name__", "tick")
    return tracked


async def stop_scheduler(
    scheduler: AsyncIOScheduler, running: set[asyncio.Task[None]], *, timeout: float
) -> None:
    """Stop starting ticks, then give the ticks already running ``timeout`` seconds to finish
    (each is one idempotent service call; one cut short is rolled back and redone later)."""
    if scheduler.running:
        scheduler.shutdown(wait=False)
    pending = {t for t in running if not t.done()}
    if not pending:
        return
    _, late = await asyncio.wait(pending, timeout=timeout)
    for task in late:
        log.warning("a scheduler tick did not finish in %.0fs; cancelling it", timeout)
        task.cancel()
    for task in late:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
