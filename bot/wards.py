"""Ward names: Wolverhampton's current wards, the ones they replaced, and "did you mean" hints.

The current wards come from The City of Wolverhampton (Electoral Changes) Order 2022, made on the
Local Government Boundary Commission for England's final recommendations and in force from the
May 2023 elections: 20 three-councillor wards, 14 with new boundaries, the Bilston, Ettingshall
and Spring Vale wards renamed. The names were written from the Order as the project knows it
(no copy of the Order was at hand): check them against it before relying on them elsewhere.

A name that was a ward before May 2023 and is not one now (say in a police extract or an old
people CSV) gets a message naming the current ward(s) that took in its area.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

#: The 20 wards of the City of Wolverhampton since May 2023 (the 2022 Order).
WOLVERHAMPTON_WARDS: tuple[str, ...] = (
    "Bilston North", "Bilston South", "Blakenhall", "Bushbury North",
    "Bushbury South and Low Hill", "East Park", "Ettingshall North",
    "Ettingshall South and Spring Vale", "Fallings Park", "Graiseley", "Heath Town",
    "Merry Hill", "Oxley", "Park", "Penn", "St Peter's", "Tettenhall Regis",
    "Tettenhall Wightwick", "Wednesfield North", "Wednesfield South",
)  # fmt: skip

#: Pre-2023 wards that no longer exist, and the current wards that took in their area.
#: (Bilston North kept its name with new boundaries: it took in Bilston town centre.)
RETIRED_WOLVERHAMPTON_WARDS: dict[str, tuple[str, ...]] = {
    "Bilston East": ("Bilston South", "Bilston North"),
    "Ettingshall": ("Ettingshall North", "Ettingshall South and Spring Vale"),
    "Spring Vale": ("Ettingshall South and Spring Vale",),
}

ORDER = "The City of Wolverhampton (Electoral Changes) Order 2022"


def retired(name: str) -> tuple[str, ...] | None:
    """The current wards that replaced ``name``, if it is a pre-2023 Wolverhampton ward."""
    for old, new in RETIRED_WOLVERHAMPTON_WARDS.items():
        if old.casefold() == name.strip().casefold():
            return new
    return None


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """A hint for an unknown name: ``" (did you mean 'X'?)"``, or ``""`` when nothing is close."""
    choices = {k.casefold(): k for k in known}
    close = difflib.get_close_matches(name.casefold(), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {choices[close[0]]!r}?)" if close else ""


def unknown_ward(name: str, known: Iterable[str]) -> str:
    """Why ``name`` is refused as a ward: a retired ward says what replaced it; otherwise a
    "did you mean" for a near miss."""
    replaced_by = retired(name)
    if replaced_by is not None:
        return (
            f"ward {name!r} no longer exists since May 2023 ({ORDER}): it was replaced by "
            + " and ".join(repr(w) for w in replaced_by)
        )
    return f"ward {name!r} is not in partnership.wards{did_you_mean(name, known)}"
