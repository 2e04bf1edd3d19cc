"""Acknowledge-by deadlines: working days (weekends and bank holidays skipped) or clock hours."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

from bot.config import Config

if TYPE_CHECKING:
    from holidays import HolidayBase


@lru_cache(maxsize=8)
def _calendar(spec: str) -> HolidayBase:
    # The holidays package is loaded with the first deadline, not when the service starts.
    import holidays as holiday_calendars

    country, _, subdiv = spec.partition("-")
    return holiday_calendars.country_holidays(country, subdiv=subdiv or None)


def is_working_day(day: date, spec: str) -> bool:
    """Monday to Friday and not a bank holiday."""
    return day.weekday() < 5 and day not in _calendar(spec)


def ack_deadline(config: Config, level: int, start: datetime) -> datetime:
    """When an action created at ``start`` for a tension of ``level`` must be acknowledged."""
    d = config.deadlines
    if level >= d.urgent_level:
        return start + timedelta(hours=d.urgent_ack_hours)
    tz = config.partnership.tz
    local = start.astimezone(tz)
    # Outside working hours the clock starts at the next working day's opening time.
    if not is_working_day(local.date(), d.holidays) or local.time() >= d.working_day_end:
        day = local.date() + timedelta(days=1)
        while not is_working_day(day, d.holidays):
            day += timedelta(days=1)
        local = datetime.combine(day, d.working_day_start, tzinfo=tz)
    elif local.time() < d.working_day_start:
        local = datetime.combine(local.date(), d.working_day_start, tzinfo=tz)
    day, remaining = local.date(), d.ack_working_days
    while remaining:
        day += timedelta(days=1)
        if is_working_day(day, d.holidays):
            remaining -= 1
    return datetime.combine(day, local.time(), tzinfo=tz).astimezone(UTC)


def working_hours(config: Config, start: datetime, end: datetime) -> float:
    """Hours between ``start`` and ``end`` that fall in working hours (working days, between
    ``deadlines.working_day_start`` and ``working_day_end``, in the partnership's time zone)."""
    d = config.deadlines
    tz = config.partnership.tz
    if end <= start:
        return 0.0
    first, last = start.astimezone(tz), end.astimezone(tz)
    total = 0.0
    day = first.date()
    while day <= last.date():
        if is_working_day(day, d.holidays):
            opens = datetime.combine(day, d.working_day_start, tzinfo=tz)
            shuts = datetime.combine(day, d.working_day_end, tzinfo=tz)
            lo, hi = max(opens, first), min(shuts, last)
            if hi > lo:
                total += (hi - lo).total_seconds() / 3600
        day += timedelta(days=1)
    return total
