"""Periods and the monthly schedule: which ``YYYY-MM`` a moment falls in, and when a period's
return opens, is chased and closes (from ``[schedule]`` in the config, local times to UTC)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time

from bot.config import Config


class CampaignError(Exception):
    """A campaign request that cannot be done (the message says why)."""


@dataclass(frozen=True)
class Schedule:
    """When one period's monthly return opens, is chased and closes (UTC)."""

    opens_at: datetime
    reminders: list[datetime]
    closes_at: datetime


def period_of(when: datetime, config: Config) -> str:
    """The ``YYYY-MM`` period a moment falls in, in the partnership's timezone."""
    return f"{when.astimezone(config.partnership.tz):%Y-%m}"


def validate_period(period: str) -> str:
    """Check ``YYYY-MM``."""
    try:
        parsed = datetime.strptime(period, "%Y-%m")
    except ValueError:
        raise CampaignError(f"period {period!r} is not of the form YYYY-MM") from None
    if not 2000 <= parsed.year <= 2100:
        raise CampaignError(f"period {period!r} is out of range")
    return period


def schedule_for(period: str, config: Config) -> Schedule:
    """The monthly schedule of a period, from config (local times converted to UTC)."""
    year, month = (int(x) for x in validate_period(period).split("-"))
    s = config.schedule
    tz = config.partnership.tz

    def at(day: int, hour_minute: time) -> datetime:
        local = datetime(year, month, day, hour_minute.hour, hour_minute.minute, tzinfo=tz)
        return local.astimezone(UTC)

    return Schedule(
        opens_at=at(s.open_day, s.open_time),
        reminders=[at(d, s.open_time) for d in s.reminder_days],
        closes_at=at(s.close_day, s.close_time),
    )
