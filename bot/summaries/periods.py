"""Summary periods: a month (``2026-12``), a quarter (``2026-Q4``) or a year (``2026``), and
month arithmetic."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

#: The years a summary can be asked for: its comparisons reach a year back, and a year outside
#: these is a typing slip (``9999``), not a period the partnership has figures for.
FIRST_YEAR, LAST_YEAR = 2000, 2099
_PERIOD = re.compile(r"(?P<year>[0-9]{4})(?:-Q(?P<quarter>[1-4])|-(?P<month>[0-9]{2}))?", re.ASCII)


def shift(month: str, months: int) -> str:
    """``2026-12`` shifted by ``months`` (may be negative)."""
    year, mon = (int(x) for x in month.split("-"))
    index = year * 12 + (mon - 1) + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def validate_month(month: str) -> str:
    """Check ``YYYY-MM``; ValueError naming the value otherwise."""
    try:
        datetime.strptime(month, "%Y-%m")
    except ValueError:
        raise ValueError(f"period {month!r} is not of the form YYYY-MM") from None
    return month


@dataclass(frozen=True)
class Period:
    """A summary's period: a month (``2026-12``), a quarter (``2026-Q4``) or a year (``2026``)."""

    label: str
    months: tuple[str, ...]  # its calendar months, in order

    @property
    def unit(self) -> str:
        """ "month", "quarter" or "year": how the summary words it."""
        return {1: "month", 3: "quarter", 12: "year"}[len(self.months)]

    def shift(self, periods: int) -> Period:
        """The period ``periods`` periods later (earlier when negative)."""
        return period_of(shift(self.months[0], periods * len(self.months)), len(self.months))


def period_of(first_month: str, length: int) -> Period:
    """The period of ``length`` months (1, 3 or 12) starting at ``first_month``."""
    year, mon = (int(x) for x in first_month.split("-"))
    months = tuple(shift(first_month, k) for k in range(length))
    if length == 12:
        return Period(f"{year:04d}", months)
    if length == 3:
        return Period(f"{year:04d}-Q{(mon - 1) // 3 + 1}", months)
    return Period(first_month, months)


def parse_period(text: str) -> Period:
    """``YYYY-MM``, ``YYYY-Qn`` or ``YYYY``; ValueError naming the value otherwise."""
    value = text.strip().upper()
    found = _PERIOD.fullmatch(value)
    if found is None:
        raise ValueError(
            f"period {text!r} is not of the form YYYY-MM, YYYY-Qn (a quarter) or YYYY (a year)"
        )
    year = found["year"]
    if not FIRST_YEAR <= int(year) <= LAST_YEAR:
        raise ValueError(f"period {text!r}: the year must be from {FIRST_YEAR} to {LAST_YEAR}")
    if found["quarter"]:
        return period_of(f"{year}-{3 * int(found['quarter']) - 2:02d}", 3)
    if found["month"] is None:
        return period_of(f"{year}-01", 12)
    try:
        validate_month(value)
    except ValueError:
        raise ValueError(
            f"period {text!r} is not of the form YYYY-MM, YYYY-Qn (a quarter) or YYYY (a year)"
        ) from None
    return period_of(value, 1)
