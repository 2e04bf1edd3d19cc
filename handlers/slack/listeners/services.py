"""The core services the Slack listeners call, handed to every ``register(app, services)``."""

from __future__ import annotations

from dataclasses import dataclass

from bot.actions.service import ActionService
from bot.delivery.seen import SeenRequests
from bot.pact.service import PactService
from bot.returns.crisis import CrisisService
from bot.returns.reports import ReportingService
from bot.summaries.service import SummaryService


@dataclass(frozen=True)
class SlackServices:
    """What Slack can reach in the core."""

    actions: ActionService
    reporting: ReportingService
    summaries: SummaryService
    seen: SeenRequests
    pact: PactService
    crisis: CrisisService
