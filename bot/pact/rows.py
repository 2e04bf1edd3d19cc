"""One recorded PACT meeting as the attendance analysis reads it, shared by the rules
(:mod:`bot.pact.rules`) and the model (:mod:`bot.pact.model`), so neither imports the other at
load time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

MIN_MEETINGS = 5  # a group needs at least this many meetings before it is ranked


@dataclass(frozen=True)
class MeetingRow:
    """One recorded meeting."""

    id: int
    neighbourhood: str
    starts_at: datetime
    venue: str
    format: str
    weekday: int
    slot: str
    public: int
    new: int
    partners_invited: int
    partners_present: int
