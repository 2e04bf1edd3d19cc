"""Timed jobs: a few stable-id APScheduler ticks, each calling one idempotent core service.

The database is the record of truth, not the job store (which is in memory): a tick that runs
twice, late, or right after a restart does the right thing because the service it calls is
idempotent over database rows. The first tick runs at start-up, which is the catch-up.
"""

from __future__ import annotations

import logging
from datetime import datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.services.actions import ActionService
from bot.services.campaigns import CampaignService
from bot.services.pact import PactService
from bot.services.summary import SummaryService, post_scheduled

log = logging.getLogger(__name__)


def build_scheduler(
    campaigns: CampaignService,
    actions: ActionService,
    summaries: SummaryService | None = None,
    pact: PactService | None = None,
    *,
    tick_seconds: int,
    now: datetime,
) -> AsyncIOScheduler:
    """An AsyncIOScheduler with stable-id ticks, each first run at ``now``: the campaign tick
    (open, remind, close), the action tick (remind, escalate), the summary tick (post after a
    return closes) and the PACT tick (reminders, owners' report-backs, record prompts)."""

    async def campaign_tick() -> None:
        report = await campaigns.tick()
        if report.opened or report.reminded or report.closed:
            log.info(
                "campaign tick: opened=%s reminded=%s closed=%s",
                report.opened,
                report.reminded,
                report.closed,
            )

    async def action_tick() -> None:
        fired = await actions.tick()
        if fired:
            log.info("action tick: reminders and escalations %s", fired)

    async def summary_tick() -> None:
        if summaries is not None:
            posted = await post_scheduled(summaries)
            if posted:
                log.info("summary tick: queued the summaries of %s", posted)

    async def pact_tick() -> None:
        if pact is not None:
            fired = await pact.tick()
            if any(fired.values()):
                log.info("pact tick: %s", fired)

    scheduler = AsyncIOScheduler(timezone="UTC")
    jobs = (
        (campaign_tick, "campaign-tick"),
        (action_tick, "action-tick"),
        (summary_tick, "summary-tick"),
        (pact_tick, "pact-tick"),
    )
    for job, job_id in jobs:
        scheduler.add_job(
            job,
            "interval",
            seconds=tick_seconds,
            id=job_id,
            next_run_time=now,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
            replace_existing=True,
        )
    return scheduler
