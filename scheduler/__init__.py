"""Timed jobs: a few stable-id APScheduler ticks, each calling one idempotent core service.

The database is the record of truth, not the job store (which is in memory): a tick that runs
twice, late, or right after a restart does the right thing because the service it calls is
idempotent over database rows. The first tick runs at start-up, which is the catch-up.
"""

from __future__ import annotations

import logging
from datetime import datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.services.campaigns import CampaignService

log = logging.getLogger(__name__)


def build_scheduler(
    campaigns: CampaignService, *, tick_seconds: int, now: datetime
) -> AsyncIOScheduler:
    """An AsyncIOScheduler with the campaign tick (open, remind, close), first run at ``now``."""

    async def campaign_tick() -> None:
        report = await campaigns.tick()
        if report.opened or report.reminded or report.closed:
            log.info(
                "campaign tick: opened=%s reminded=%s closed=%s",
                report.opened,
                report.reminded,
                report.closed,
            )

    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_job(
        campaign_tick,
        "interval",
        seconds=tick_seconds,
        id="campaign-tick",
        next_run_time=now,
        coalesce=True,
        max_instances=1,
        misfire_grace_time=None,
        replace_existing=True,
    )
    return scheduler
