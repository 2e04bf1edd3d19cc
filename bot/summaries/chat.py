"""A summary asked for in chat: who may ask, the filters they give, and the headline they get
(aggregates only, protected: bot/summaries/disclosure.py)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.messages import MessageBuilder, OutgoingMessage, bold
from bot.summaries.disclosure import shown
from bot.summaries.model import Summary
from bot.summaries.periods import parse_period
from bot.summaries.text import comparison, pocket_sentence, police_missing, unfiltered


class SummaryRefused(Exception):
    """Not allowed, or the request could not be understood; the message says why."""


SUMMARY_ROLES = frozenset({"prevent_officer", "admin"})


@dataclass(frozen=True)
class SummaryRequest:
    """Parsed filters of an on-demand summary."""

    month: str
    ward: str | None
    category: str | None


def parse_filters(
    text: str, *, default_month: str, wards: list[str], categories: dict[str, str]
) -> SummaryRequest:
    """``[YYYY-MM] [ward] [category]`` in any order; a ward or category may be several words.
    Anything not understood is named in the error."""
    rest = " ".join(text.split())
    month = default_month
    words = rest.split(" ") if rest else []
    for word in list(words):
        monthly = (
            len(word) == 7
            and word[4] == "-"
            and word.replace("-", "").isascii()
            and word.replace("-", "").isdigit()
        )
        quarterly = (
            len(word) == 7
            and word[4:6].upper() == "-Q"
            and word[:4].isascii()
            and word[:4].isdigit()
        )
        yearly = len(word) == 4 and word.isascii() and word.isdigit()
        if monthly or quarterly or yearly:
            month = parse_period(word).label
            words.remove(word)
    rest = " ".join(words).casefold()
    found: dict[str, str] = {}
    names = [(w.casefold(), "ward", w) for w in wards]
    names += [(label.casefold(), "category", value) for value, label in categories.items()]
    names += [(value.casefold(), "category", value) for value in categories]
    for name, kind, value in sorted(names, key=lambda x: -len(x[0])):
        if kind not in found and f" {name} " in f" {rest} ":
            found[kind] = value
            rest = f" {rest} ".replace(f" {name} ", " ", 1).strip()
    if rest.strip():
        raise SummaryRefused(
            f"I did not understand {rest.strip()!r}: give a period (YYYY-MM, YYYY-Qn or YYYY), "
            "a ward and/or a category"
        )
    return SummaryRequest(month, found.get("ward"), found.get("category"))


def headline(summary: Summary, threshold: int | None = None) -> OutgoingMessage:
    """The summary in a few lines for chat (aggregates only, protected: bot/summaries/disclosure.py)."""
    scope = " · ".join(x for x in (summary.ward, summary.category) if x)
    b = MessageBuilder().line(
        bold(f"Community tension summary, {summary.month}" + (f" ({scope})" if scope else ""))
    )
    if summary.empty:
        b.line("No tension reports and no hate-crime figures for this period.")
        if not summary.police_imported:
            b.line(police_missing(summary.month, summary.unit))
        return _pact_headline(b, summary).build()
    r = summary.released(threshold=threshold)
    n = shown
    if summary.unfiltered:
        b.line(unfiltered(summary.ward, summary.category, summary.unfiltered))
    b.line(f"Tension reports: {n(r.total)} ({comparison(summary.unit, r)})")
    categories = dict(r.breakdowns).get("category", [])
    top = [f"{summary.label(k)} {n(a)}" for k, a, _, _ in categories if a != 0][:5]
    if top:
        b.line("Top categories: " + ", ".join(top))
    if r.hate_crime:
        b.line("Hate crimes: " + ", ".join(f"{w} {n(c)}" for w, c, _ in r.hate_crime[:5]))
    if not summary.police_imported:
        b.line(police_missing(summary.month, summary.unit))
    if r.pockets:
        b.line(bold("Pockets of concern:"))
        for x in r.pockets:
            b.line(f"• {pocket_sentence(*x[:3], summary.unit)}")
    else:
        b.line("No pockets of concern: nothing is clearly above its usual level.")
    return _pact_headline(b, summary).build()


def _pact_headline(b: MessageBuilder, summary: Summary) -> MessageBuilder:
    """The PACT findings (which times and venues draw people), when meetings were recorded."""
    if summary.pact is None or summary.pact.empty:
        return b
    from bot.pact.rules import findings

    b.line(bold(f"PACT meetings ({summary.pact.since} to {summary.pact.until}):"))
    for line in findings(summary.pact):
        b.line(f"• {line}")
    return b
