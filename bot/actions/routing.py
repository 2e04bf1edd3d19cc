"""Routing: a tension -> the teams that must act on it. Pure, driven by configuration data.

Every rule whose categories, wards and minimum level all match contributes its teams (in rule
order, without repeats). With no match the default team is used. A private category (anything
touching extremism, by default) only ever reaches restricted (need-to-know) teams, never a broad
channel. A tension that reaches no team is reported, so the gap can be fixed in configuration.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.config import Config, TeamConfig


@dataclass(frozen=True)
class Route:
    """Where one tension goes."""

    teams: tuple[str, ...]
    reason: str

    @property
    def unrouted(self) -> bool:
        """True when nobody would receive it."""
        return not self.teams


def _matches(values: Sequence[str], value: str) -> bool:
    return "*" in values or value.casefold() in {v.casefold() for v in values}


def route(config: Config, *, category: str, ward: str, level: int) -> Route:
    """The teams for a tension of this category, ward and level."""
    teams: dict[str, TeamConfig] = {t.key: t for t in config.teams}
    chosen: list[str] = []
    for rule in config.routing.rules:
        if (
            _matches(rule.categories, category)
            and _matches(rule.wards, ward)
            and level >= rule.min_level
        ):
            chosen.extend(t for t in rule.teams if t not in chosen)
    reason = "matched routing rules"
    if not chosen and config.routing.default_team:
        chosen = [config.routing.default_team]
        reason = "no rule matched: default team"
    if category in config.routing.private_categories:
        restricted = [k for k in chosen if teams[k].restricted]
        if len(restricted) != len(chosen):
            reason += "; private category: restricted teams only"
        chosen = restricted
    if not chosen:
        reason = "no team receives this"
    return Route(tuple(chosen), reason)


@dataclass(frozen=True)
class Gap:
    """A combination that reaches no team."""

    category: str
    ward: str
    levels: tuple[int, ...]


def gaps(config: Config, categories: Iterable[str]) -> list[Gap]:
    """Every category x ward (with the levels) that no team would receive."""
    found: list[Gap] = []
    for category in categories:
        for ward in config.partnership.wards:
            levels = tuple(
                lv
                for lv in range(1, 6)
                if route(config, category=category, ward=ward, level=lv).unrouted
            )
            if levels:
                found.append(Gap(category, ward, levels))
    return found
