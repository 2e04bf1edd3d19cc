"""Police hate-crime figures: CSV import (validated, all or nothing, a month replaced whole)."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from bot.clock import Clock
from bot.common import audit
from bot.config import Config
from bot.ports import UnitOfWorkFactory
from bot.wards import unknown_ward

#: The five monitored strands, and the spellings accepted for each.
STRANDS = {
    "race_ethnicity": ("race", "race/ethnicity", "race_ethnicity", "racial", "ethnicity"),
    "religion_belief": ("religion", "religion/belief", "religion_belief", "faith"),
    "sexual_orientation": ("sexual orientation", "sexual_orientation"),
    "disability": ("disability",),
    "transgender_identity": ("transgender identity", "transgender_identity", "transgender"),
}
_ALIASES = {alias: key for key, aliases in STRANDS.items() for alias in aliases}
_MONTH = re.compile(r"^(19|20)\d\d-(0[1-9]|1[0-2])$")


class FigureImportError(Exception):
    """The CSV was refused whole; ``problems`` name the file, line and value."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class FigureImport:
    """What an import did."""

    months: list[str]
    rows: int
    total: int


class HateCrimeService:
    """Imports the police's monthly hate-crime figures."""

    def __init__(self, config: Config, uow_factory: UnitOfWorkFactory, clock: Clock) -> None:
        self.config, self.uow_factory, self.clock = config, uow_factory, clock

    def parse(self, text: str, source: str) -> list[tuple[str, str, str, int]]:
        """Validate every line; raise with all the problems found."""
        reader = csv.DictReader(io.StringIO(text))
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        if set(header) != {"month", "ward", "strand", "count"}:
            raise FigureImportError(
                [
                    f"{source}: line 1: the columns must be month, ward, "
                    f"strand, count (found: {', '.join(header) or 'none'})"
                ]
            )
        reader.fieldnames = header
        wards = {w.casefold(): w for w in self.config.partnership.wards}
        rows: list[tuple[str, str, str, int]] = []
        seen: dict[tuple[str, str, str], int] = {}
        problems: list[str] = []
        for raw in reader:
            line = reader.line_num
            values = {k: (v or "").strip() for k, v in raw.items() if k is not None}
            if not any(values.values()):
                continue
            where = f"{source}: line {line}"
            month, ward = values["month"], wards.get(values["ward"].casefold())
            strand = _ALIASES.get(values["strand"].casefold())
            if not _MONTH.match(month):
                problems.append(f"{where}: month {values['month']!r} is not YYYY-MM")
            if ward is None:
                known = self.config.partnership.wards
                problems.append(f"{where}: {unknown_ward(values['ward'], known)}")
            if strand is None:
                problems.append(
                    f"{where}: strand {values['strand']!r} is not one of {', '.join(STRANDS)}"
                )
            try:
                count = int(values["count"])
                if not 0 <= count <= 100_000:
                    raise ValueError
            except ValueError:
                problems.append(
                    f"{where}: count {values['count']!r} is not a whole number from 0 up"
                )
                continue
            if ward is None or strand is None or not _MONTH.match(month):
                continue
            key = (month, ward, strand)
            if key in seen:
                problems.append(f"{where}: {month} {ward} {strand} repeats line {seen[key]}")
                continue
            seen[key] = line
            rows.append((month, ward, strand, count))
        if problems:
            raise FigureImportError(problems)
        if not rows:
            raise FigureImportError([f"{source}: no figures in the file"])
        return rows

    async def import_csv(self, text: str, *, source: str, actor: str) -> FigureImport:
        """Replace the months in the file with its figures, in one transaction."""
        rows = self.parse(text, source)
        months = sorted({r[0] for r in rows})
        now = self.clock.now()
        async with self.uow_factory() as uow:
            await uow.figures.replace_months(months, rows, now)
            await audit(uow, now, actor, "hatecrime.import", source, months=months, rows=len(rows))
            await uow.commit()
        return FigureImport(months, len(rows), sum(r[3] for r in rows))
