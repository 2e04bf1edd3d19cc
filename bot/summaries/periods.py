"""Summary periods: a month (``2026-12``), a quarter (``2026-Q4``) or a year (``2026``), and
month arithmetic."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


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
    if len(value) == 4 and value.isascii() and value.isdigit():
        return period_of(f"{value}-01", 12)
    if (
        len(value) == 7
        and value[4:6] == "-Q"
        and value[:4].isascii()
        and value[:4].isdigit()
        and value[6] in "1234"
    ):
        return period_of(f"{value[:4]}-{3 * int(value[6]) - 2:02d}", 3)
    try:
        validate_month(value)
    except ValueError:
        raise ValueError(
            f"period {text!r} is not of the form YYYY-MM, YYYY-Qn (a quarter) or YYYY (a year)"
        ) from None
    return period_of(value, 1)
