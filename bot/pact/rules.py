"""PACT, the pure parts: time slots, calendar invitations, and what the attendance figures say.

PACT (Partners and Communities Together) meetings are where residents set up to three
neighbourhood priorities with the police and the council. The Neighbourhood Engagement Review
asked whether other times and venues would draw more people; :func:`findings` answers that from
the aggregates the storage layer computes (each neighbourhood's meetings are compared with that
neighbourhood's own usual attendance, so a big neighbourhood does not make its venue look good).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.pact.rows import MIN_MEETINGS as MIN_MEETINGS
from bot.pact.rows import MeetingRow as MeetingRow

if TYPE_CHECKING:
    from bot.pact.model import AttendanceModel, Review

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
SLOTS = ("morning", "afternoon", "evening")
FORMAT_LABELS = {
    "in_person": "in person",
    "online": "online",
    "street_briefing": "street briefing",
}
MAX_NEW_PRIORITIES = 3
#: Said to a chair recording a meeting and to an owner team reporting back: a record's
#: priorities and "what was done" are posted to the public channels and page as they are saved,
#: and a post is never withdrawn.
PUBLIC_WARNING = (
    "What you write here is published on the public page and channel: do not name anyone."
)
RESOLUTION_TARGET = 0.8  # the partnership's measure: over 80% of PACT priorities resolved


def slot_of(local: datetime) -> str:
    """Morning (before 12:00), afternoon (12:00-16:59) or evening (17:00 on), in local time."""
    if local.hour < 12:
        return "morning"
    return "afternoon" if local.hour < 17 else "evening"


def calendar_uid(meeting_id: int | None, install: str) -> str:
    """A meeting's calendar UID, the same in its invitations, their updates and the public
    feed, and unique across installs (meeting ids start at 1 in every database)."""
    return f"pact-{meeting_id}-{install}@tensionbot"


def calendar_invite(
    *,
    uid: str,
    title: str,
    starts_at: datetime,
    ends_at: datetime,
    venue: str,
    description: str,
    organiser: str,
    organiser_email: str | None,
    now: datetime,
    tz: ZoneInfo,
    sequence: int = 0,
    cancelled: bool = False,
) -> bytes:
    """An iCalendar (.ics) file for one meeting, in the partnership's time zone (with its
    VTIMEZONE). The publish model throughout (RFC 5546 3.2.1): the bot sends calendar entries,
    it does not run a meeting's replies, so there is no ATTENDEE and every file is
    METHOD:PUBLISH. An update keeps the ``uid`` with a higher ``sequence`` (RFC 5545 3.8.7.4),
    so calendars change their entry instead of adding one; a cancellation is the event
    STATUS:CANCELLED. The ORGANIZER is a ``mailto:`` address (the partnership's email
    from-address, named ``organiser``) when email is configured, and left out otherwise: a bare
    name is not a calendar address."""
    from icalendar import Calendar, Event, vCalAddress, vText  # some 90 modules: when inviting

    calendar = Calendar()
    calendar.add("prodid", "-//tensionbot//PACT meetings//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = Event()
    event.add("uid", uid)
    event.add("sequence", sequence)
    event.add("dtstamp", now)
    event.add("dtstart", starts_at.astimezone(tz))
    event.add("dtend", ends_at.astimezone(tz))
    event.add("summary", title)
    event.add("location", vText(venue))
    event.add("description", description)
    if organiser_email is not None:
        address = vCalAddress(f"mailto:{organiser_email}")
        address.params["CN"] = vText(organiser)
        event.add("organizer", address)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    calendar.add_component(event)
    calendar.add_missing_timezones()
    return calendar.to_ical()


@dataclass(frozen=True)
class GroupRow:
    """Recorded meetings of one venue, weekday, time slot, format or neighbourhood."""

    key: str
    meetings: int
    mean: float  # mean members of the public per meeting
    new: int
    public: int
    relative: float | None  # mean of attendance / the neighbourhood's own mean (1.0 = usual)
    partners_present: int
    partners_invited: int

    @property
    def new_rate(self) -> float | None:
        """Share of the public attending for the first time."""
        return self.new / self.public if self.public else None

    @property
    def turnout(self) -> float | None:
        """Share of invited partners who came."""
        return self.partners_present / self.partners_invited if self.partners_invited else None


@dataclass
class PactInsight:
    """Attendance and priorities over a window of months (aggregates, no names)."""

    since: str  # YYYY-MM, inclusive
    until: str  # YYYY-MM, inclusive
    neighbourhood: str | None
    meetings: list[MeetingRow] = field(default_factory=list)
    by: dict[str, list[GroupRow]] = field(default_factory=dict)  # slot, weekday, venue, ...
    counts: dict[str, int] = field(default_factory=dict)  # meetings by status
    priorities: dict[str, int] = field(default_factory=dict)  # set, closed, carried, open
    names: dict[str, str] = field(default_factory=dict)  # neighbourhood key -> name
    review: Review | None = None  # before/after a change, when one was asked for
    _model: list[AttendanceModel | None] = field(default_factory=list, repr=False, compare=False)

    def model(self) -> AttendanceModel | None:
        """The attendance regression (bot/pact/model.py), fitted once per insight."""
        if not self._model:
            from bot.pact.model import fit  # statsmodels is loaded only when asked

            self._model.append(fit(self.meetings))
        return self._model[0]

    @property
    def empty(self) -> bool:
        """No meeting was recorded in the window."""
        return not self.meetings

    @property
    def overall(self) -> GroupRow | None:
        """All recorded meetings together."""
        rows = self.by.get("neighbourhood", [])
        if not rows:
            return None
        public = sum(r.public for r in rows)
        meetings = sum(r.meetings for r in rows)
        return GroupRow(
            "all",
            meetings,
            public / meetings,
            sum(r.new for r in rows),
            public,
            1.0,
            sum(r.partners_present for r in rows),
            sum(r.partners_invited for r in rows),
        )

    def trend(self) -> dict[str, list[tuple[datetime, int]]]:
        """Attendance per meeting, per neighbourhood, in date order."""
        out: dict[str, list[tuple[datetime, int]]] = {}
        for m in self.meetings:
            out.setdefault(m.neighbourhood, []).append((m.starts_at, m.public))
        return out

    def label(self, group: str, key: str) -> str:
        """A readable name for a group key."""
        if group == "weekday":
            return WEEKDAYS[int(key)]
        if group == "format":
            return FORMAT_LABELS.get(key, key)
        if group == "neighbourhood":
            return self.names.get(key, key)
        return key


def usual_attendance(meetings: list[MeetingRow]) -> dict[int, float]:
    """Each meeting's usual attendance: the mean of its neighbourhood's *other* meetings (a
    meeting left in its own baseline pulls a small neighbourhood's figures towards 1.00x);
    a neighbourhood's only meeting has none."""
    totals: dict[str, tuple[int, int]] = {}
    for m in meetings:
        n, s = totals.get(m.neighbourhood, (0, 0))
        totals[m.neighbourhood] = (n + 1, s + m.public)
    out = {}
    for m in meetings:
        n, s = totals[m.neighbourhood]
        if n > 1:
            out[m.id] = (s - m.public) / (n - 1)
    return out


def relative_attendance(meetings: list[MeetingRow], group: str) -> dict[str, float | None]:
    """For each key of ``group``: its meetings' total attendance over the total they would
    usually draw (a ratio of totals, not a mean of ratios, which small meetings would sway)."""
    usual = usual_attendance(meetings)
    sums: dict[str, tuple[float, float]] = {}
    for m in meetings:
        key = str(getattr(m, group))
        public, expected = sums.get(key, (0.0, 0.0))
        if m.id in usual:
            sums[key] = (public + m.public, expected + usual[m.id])
        else:
            sums.setdefault(key, (public, expected))
    return {k: (p / e if e > 0 else None) for k, (p, e) in sums.items()}


def _best(rows: list[GroupRow]) -> tuple[GroupRow, GroupRow] | None:
    """The group that draws most above usual, and the one that draws least (enough meetings)."""
    ranked = sorted(
        (r for r in rows if r.meetings >= MIN_MEETINGS and r.relative is not None),
        key=lambda r: (-(r.relative or 0), r.key),
    )
    if len(ranked) < 2:
        return None
    return ranked[0], ranked[-1]


def findings(insight: PactInsight) -> list[str]:
    """Plain-language answers: which time slots, days, venues and formats drew more people."""
    if insight.empty:
        return ["No PACT meeting was recorded in this period."]
    out = []
    for group, noun in (
        ("slot", "meetings"),
        ("weekday", "meetings"),
        ("venue", ""),
        ("format", "meetings"),
    ):
        pair = _best(insight.by.get(group, []))
        if pair is None:
            continue
        top, bottom = pair
        if (top.relative or 0) - (bottom.relative or 0) < 0.1:
            out.append(f"No {group.replace('slot', 'time slot')} stands out (all within 10%).")
            continue
        what = f"{insight.label(group, top.key)} {noun}".strip()
        if group == "weekday":
            what = f"{insight.label(group, top.key)} meetings"
        out.append(
            f"{what[:1].upper()}{what[1:]} drew {top.relative:.2f}x the neighbourhood's usual "
            f"attendance (mean {top.mean:.1f} over {top.meetings} meetings); "
            f"{insight.label(group, bottom.key)} drew {bottom.relative:.2f}x "
            f"(mean {bottom.mean:.1f} over {bottom.meetings})."
        )
    out += model_findings(insight)
    if insight.review is not None:
        from bot.pact.model import review_findings

        out += review_findings(insight.review)
    overall = insight.overall
    if overall is not None:
        rate = overall.new_rate
        turnout = overall.turnout
        out.append(
            f"{overall.meetings} meetings, {overall.public} members of the public "
            f"(mean {overall.mean:.1f})"
            + (f", {rate:.0%} of them new" if rate is not None else "")
            + (f"; partner turnout {turnout:.0%}" if turnout is not None else "")
            + "."
        )
    p = insight.priorities
    if p:
        out.append(
            f"Priorities: {p.get('set', 0)} set, {p.get('closed', 0)} closed, "
            f"{p.get('carried', 0)} carried; {p.get('open', 0)} open now."
        )
        rate = resolution_rate(insight)
        if rate is not None:
            verdict = "meeting" if rate > RESOLUTION_TARGET else "short of"
            out.append(
                f"Of the {p['set']} priorities set in the period, {p.get('resolved', 0)} are "
                f"resolved ({rate:.0%}), {verdict} the partnership's measure of over "
                f"{RESOLUTION_TARGET:.0%}."
            )
    return out


def model_findings(insight: PactInsight) -> list[str]:
    """The attendance model in plain English: the rate ratios whose 95% interval excludes 1."""
    model = insight.model()
    if model is None or not model.ratios:
        return []
    out = []
    for r in model.ratios:
        if not r.clear:
            continue
        if r.factor == "neighbourhood":
            what = (
                f"Meetings in {insight.label(r.factor, r.level)} drew {r.ratio:.1f} times the "
                f"attendance of those in {insight.label(r.factor, r.reference)} at the same time "
                "slot, weekday and format"
            )
        else:
            level = insight.label(r.factor, r.level)
            what = (
                f"{level[:1].upper()}{level[1:]} meetings drew {r.ratio:.1f} times the "
                f"attendance of {insight.label(r.factor, r.reference)} ones in the same "
                "neighbourhood"
            )
        out.append(f"{what} (95% interval {r.low:.1f} to {r.high:.1f}).")
    if not out:
        out.append(
            f"A {model.method} model of attendance finds no clear difference by neighbourhood, "
            "time slot, weekday or format (every 95% interval includes no difference)."
        )
    return out


def resolution_rate(insight: PactInsight) -> float | None:
    """Of the priorities set in the period, the share resolved (closed) now; ``None`` when
    none were set."""
    set_ = insight.priorities.get("set", 0)
    return insight.priorities.get("resolved", 0) / set_ if set_ else None


def markdown(insight: PactInsight) -> str:
    """The insight as a Markdown section (for the summary and the exports)."""
    scope = (
        f" ({insight.names.get(insight.neighbourhood, insight.neighbourhood)})"
        if (insight.neighbourhood)
        else ""
    )
    out = [f"## PACT meetings, {insight.since} to {insight.until}{scope}\n"]
    out += [f"- {line}" for line in findings(insight)]
    if insight.empty:
        return "\n".join(out) + "\n"
    for group, title in (
        ("slot", "time slot"),
        ("weekday", "weekday"),
        ("venue", "venue"),
        ("format", "format"),
        ("neighbourhood", "neighbourhood"),
    ):
        rows = insight.by.get(group, [])
        if not rows:
            continue
        out.append(
            f"\n| {title} | meetings | mean attendance | vs usual | new | partner turnout |\n"
            "|---|---:|---:|---:|---:|---:|"
        )
        for r in rows:
            out.append(
                f"| {insight.label(group, r.key)} | {r.meetings} | {r.mean:.1f} | "
                f"{_x(r.relative)} | {_pct(r.new_rate)} | {_pct(r.turnout)} |"
            )
    model = insight.model()
    if model is not None and model.ratios:
        out.append(
            "\n| factor | level | against | meetings | rate ratio | 95% interval |\n"
            "|---|---|---|---:|---:|---|"
        )
        for rr in model.ratios:
            out.append(
                f"| {rr.factor.replace('slot', 'time slot')} | {insight.label(rr.factor, rr.level)}"
                f" | {insight.label(rr.factor, rr.reference)} | {rr.meetings} | {rr.ratio:.2f} | "
                f"{rr.low:.2f} to {rr.high:.2f} |"
            )
        out.append(
            f"\n_Rate ratios from a {model.method} regression of each meeting's attendance on "
            "neighbourhood, time slot, weekday and format (each against its most frequent "
            f"level, the others held equal); levels with fewer than {MIN_MEETINGS} meetings "
            "are not reported._"
        )
    if insight.review is not None:
        out.append(
            f"\n| since {insight.review.changed:%Y-%m-%d} | meetings before | per meeting before "
            "| meetings after | per meeting after | ratio | 95% interval |\n"
            "|---|---:|---:|---:|---:|---:|---|"
        )
        for c in insight.review.comparisons:
            out.append(
                f"| {'attendance' if c.measure == 'public' else 'new attendees'} | "
                f"{c.before_meetings} | {_num(c.before_mean)} | {c.after_meetings} | "
                f"{_num(c.after_mean)} | {_num(c.ratio, 2)} | {_num(c.low, 2)} to "
                f"{_num(c.high, 2)} |"
            )
        out.append(
            "\n_Before/after: the ratio of the means per meeting, with an exact Poisson 95% "
            "interval (conditional on the total); it assumes meetings vary no more than Poisson "
            "counts do, and anything else that changed on the date is mixed in._"
        )
    out.append(
        "\n_Attendance is members of the public. 'vs usual' compares a group's attendance with "
        "what its meetings' neighbourhoods usually draw (each meeting against the mean of its "
        "neighbourhood's other meetings; total over total, 1.00x = usual), so a large "
        "neighbourhood does not flatter its venue; groups with fewer than "
        f"{MIN_MEETINGS} meetings are not ranked._"
    )
    return "\n".join(out) + "\n"


def _num(value: float | None, places: int = 1) -> str:
    return "–" if value is None else f"{value:.{places}f}"


def _x(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}x"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"
