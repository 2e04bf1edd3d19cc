"""Hate-crime import and the monthly summary, checked against a hand-computed fixture."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.clock import FakeClock
from bot.domain import Report
from bot.summaries.hatecrime import FigureImportError, HateCrimeService
from bot.summaries.periods import parse_period, shift
from tests.helpers import PEOPLE_CSV, services_for
from tests.test_actions import ROUTING, TEAMS


def _figures() -> str:
    rows = ["month,ward,strand,count"]
    for k in range(12, 0, -1):
        month = shift("2026-12", -k)
        rows += [f"{month},Park,race,1", f"{month},Heath Town,religion,2"]
    rows += ["2026-12,Park,Race/Ethnicity,9", "2026-12,Heath Town,faith,2"]
    return "\n".join(rows) + "\n"


async def _report(s: object, n: int, period: str, ward: str, category: str) -> None:
    services = s  # type: ignore[assignment]
    async with services.db.uow() as uow:  # type: ignore[attr-defined]
        form = await services.forms.current(uow)  # type: ignore[attr-defined]
        when = datetime.strptime(period + "-10", "%Y-%m-%d").replace(tzinfo=UTC)
        for i in range(n):
            await uow.reports.add(
                Report(
                    reference=f"TR-{period}-{ward[:2]}{category[:2]}{i}",
                    person_id=1,
                    source="adhoc",
                    ward=ward,
                    category=category,
                    level=2,
                    basis="experienced",
                    answers={},
                    form_version_id=form.id,
                    created_at=when,
                    period=period,
                )
            )
        await uow.commit()


async def test_summary_numbers(db_url: str) -> None:
    clock = FakeClock(datetime(2027, 1, 2, tzinfo=UTC))
    async with services_for(db_url, clock) as s:
        await s.people.import_csv(PEOPLE_CSV, source="p.csv", actor="t")
        await _report(s, 2, "2026-12", "Park", "race")
        await _report(s, 1, "2026-12", "Park", "religion")
        await _report(s, 1, "2026-12", "Penn", "race")
        await _report(s, 1, "2026-11", "Park", "race")
        await _report(s, 3, "2025-12", "Penn", "other")
        figures = HateCrimeService(s.config, s.db.uow, clock)
        result = await figures.import_csv(_figures(), source="hc.csv", actor="t")
        assert result.months[0] == "2025-12" and len(result.months) == 13 and result.total == 47

        summary = await s.summaries.build("2026-12", actor="admin")
        assert (summary.total, summary.previous_total, summary.last_year_total) == (4, 1, 3)
        by = {b.by: b.rows for b in summary.breakdowns}
        assert by["category"] == [("race", 3, 1, 0), ("religion", 1, 0, 0), ("other", 0, 0, 3)]
        assert by["ward"] == [("Park", 3, 1, 0), ("Penn", 1, 0, 3)]
        assert summary.hate_crime == [("Park", 9, 1.0), ("Heath Town", 2, 2.0)]
        assert summary.hate_crime_by_strand == [
            ("race_ethnicity", 9, 1.0),
            ("religion_belief", 2, 2.0),
        ]
        # Park (and the race strand, Park's alone): 9 hate crimes after 12 in 12 months. Given
        # the 21, the month's share is binomial(21, 1/13) if nothing changed; the wards' counts
        # are steady, so no overdispersion. Recomputed from the rows imported above.
        tail = sum(math.comb(21, k) * (1 / 13) ** k * (12 / 13) ** (21 - k) for k in range(9, 22))
        assert [(p.ward, p.by, p.source) for p in summary.pockets] == [
            ("Park", "ward", "hate crimes"),
            ("race_ethnicity", "strand", "hate crimes"),
        ]
        assert all(math.isclose(p.p_value, tail, rel_tol=1e-9) for p in summary.pockets)
        # Park's 3 tension reports after 1 in the year are not enough among the month's tests
        # (p = P(binomial(4, 1/13) >= 3) ~ 0.0017, above the false-discovery-rate threshold);
        # Heath Town's 2 against its usual 2 is not a pocket.

        text = summary.markdown()
        assert "Tension reports: **4** (previous month [c], same month last year 3)" in text
        assert "| Religion or faith | [c] | 0 | 0 |" in text
        # race (3) is withheld too: with the total of 4 it would give religion's 1 away.
        assert "| Race or ethnicity | [c] | [c] | 0 |" in text
        assert (
            "- Park: 9 hate crimes this month against about 1 a month usually; this is very "
            "unlikely to be chance." in text
        )
        assert "p =" not in text and "Poisson" not in text
        assert "| Religion or faith | 1 | 0 | 0 |" in summary.markdown(suppressed=False)

        park = await s.summaries.build("2026-12", actor="admin", ward="park", category="race")
        assert (park.total, park.previous_total) == (2, 1)

        # A re-imported month replaces that month only.
        await figures.import_csv(
            "month,ward,strand,count\n2026-12,Park,race,1\n", source="fix.csv", actor="t"
        )
        again = await s.summaries.build("2026-12", actor="admin")
        assert again.pockets == []
        assert ("Park", 1, 1.0) in again.hate_crime
        async with s.db.uow() as uow:
            session = uow.people.session  # type: ignore[attr-defined]
            from sqlalchemy import func, select

            from storage.tables import audit_log

            views = await session.scalar(
                select(func.count())
                .select_from(audit_log)
                .where(audit_log.c.action == "summary.view")
            )
        assert views == 3

        # January's police figures are not imported yet: said, not tested as zeros.
        january = await s.summaries.build("2027-01", actor="t")
        assert not january.police_imported and january.hate_crime == []
        assert not [p for p in january.pockets if p.source == "hate crimes"]
        assert "Police hate-crime figures for 2027-01 have not been imported yet" in (
            january.markdown()
        )


async def test_figures_for_a_pre_2023_ward_say_which_wards_replaced_it(db_url: str) -> None:
    clock = FakeClock(datetime(2027, 1, 2, tzinfo=UTC))
    async with services_for(db_url, clock) as s:
        figures = HateCrimeService(s.config, s.db.uow, clock)
        old = "month,ward,strand,count\n2026-12,Ettingshall,race,1\n2026-12,Park,race,2\n"
        with pytest.raises(FigureImportError) as err:
            await figures.import_csv(old, source="hc.csv", actor="t")
        assert err.value.problems == [
            "hc.csv: line 2: ward 'Ettingshall' no longer exists since May 2023 (The City of "
            "Wolverhampton (Electoral Changes) Order 2022): it was replaced by "
            "'Ettingshall North' and 'Ettingshall South and Spring Vale'"
        ]


async def test_bad_figures_are_refused_whole(db_url: str) -> None:
    clock = FakeClock(datetime(2027, 1, 2, tzinfo=UTC))
    async with services_for(db_url, clock) as s:
        figures = HateCrimeService(s.config, s.db.uow, clock)
        bad = (
            "month,ward,strand,count\n2026-13,Park,race,1\n2026-12,Atlantis,race,1\n"
            "2026-12,Park,hair colour,1\n2026-12,Park,race,-4\n2026-11,Park,race,1\n"
            "2026-11,Park,race,2\n"
        )
        with pytest.raises(FigureImportError) as err:
            await figures.import_csv(bad, source="hc.csv", actor="t")
        problems = "\n".join(err.value.problems)
        for expected in (
            "line 2: month '2026-13'",
            "line 3: ward 'Atlantis'",
            "line 4: strand 'hair colour'",
            "line 5: count '-4'",
            "line 7: 2026-11 Park race_ethnicity repeats line 6",
        ):
            assert expected in problems
        summary = await s.summaries.build("2026-11", actor="a")
        assert summary.empty and summary.hate_crime == []  # nothing was imported
        assert "No tension reports and no hate-crime figures" in summary.markdown()
        with pytest.raises(ValueError, match="'2026-1x'"):
            await s.summaries.build("2026-1x", actor="a")


def test_summary_command_writes_exports(tmp_path: Path, db_url: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n')
    figures = tmp_path / "hc.csv"
    figures.write_text(_figures())
    runner = CliRunner()
    base = ["--config", str(config)]
    imported = runner.invoke(main, [*base, "hatecrime", "import", str(figures)])
    assert imported.exit_code == 0, imported.output
    assert "for 2025-12, " in imported.output
    out = tmp_path / "out"
    result = runner.invoke(main, [*base, "summary", "--period", "2026-12", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Pockets of concern" in result.output
    assert (
        (out / "pockets_of_concern.csv")
        .read_text()
        .splitlines()[1]
        .startswith("Park,ward,hate crimes,spike,9,12,1.0,1.18e-05,")
    )
    assert (out / "tensions_by_category.csv").read_text().startswith("category,this_month")
    # Heath Town's 2 hate crimes are withheld, and so is religion's 2 among the strands (Park's
    # 9 and race's 9 then leave them equal, but unknown); --no-suppress, for the system
    # administrator, shows them as they are.
    assert "| Heath Town | [c] | 2.0 |" in result.output
    assert "| Park | 9 | 1.0 |" in result.output and "Religion belief [c]" in result.output
    assert "heath town,2" not in (out / "hate_crime_by_ward.csv").read_text().casefold()
    raw = runner.invoke(
        main, [*base, "summary", "--period", "2026-12", "--no-suppress", "--out", str(out)]
    )
    assert raw.exit_code == 0, raw.output
    assert "| Heath Town | 2 | 2.0 |" in raw.output and "[c]" not in raw.output
    assert "Heath Town,2,2.0" in (out / "hate_crime_by_ward.csv").read_text()
    bad = runner.invoke(main, [*base, "summary", "--period", "2026-12", "--ward", "Narnia"])
    assert bad.exit_code == 2 and "Narnia" in bad.output


async def test_return_rate_and_actions(db_url: str) -> None:
    async with services_for(
        db_url, FakeClock(datetime(2026, 12, 2, 10, tzinfo=UTC)), teams=TEAMS, routing=ROUTING
    ) as s:
        await _return_rate_and_actions(s)


async def _return_rate_and_actions(s: Any) -> None:
    from datetime import timedelta

    from bot.actions.service import Officer
    from bot.buttons import ButtonAction
    from tests.helpers import FakeMessenger, dispatcher_for, link_all
    from tests.test_actions import _buttons
    from tests.test_actions import _report as submit_report
    from tests.test_conversation import Chat

    clock = s.clock
    telegram, slack = FakeMessenger(), FakeMessenger()
    await s.people.import_csv(PEOPLE_CSV, source="p.csv", actor="t")
    chats = await link_all(s)
    outbox = dispatcher_for(s, telegram, slack)
    await s.campaigns.open_monthly("2026-12", actor="t", force=True)
    await outbox.drain()
    sarah = Chat(s, telegram, outbox, chats["sarah@example.org"])
    await sarah.press("Nothing to report")
    asha = Chat(s, telegram, outbox, chats["asha@example.org"])
    await submit_report(asha, "Religion or faith")
    await outbox.drain()
    post = next(m for r, m, e in slack.sent if r == "C0COHESION" and e is None)
    ack = ButtonAction.decode(_buttons(post)["Acknowledge"])
    clock.advance(timedelta(hours=3))
    await s.actions.acknowledge(Officer("U0JANE"), ack.target, ack.seq)

    summary = await s.summaries.build("2026-12", actor="admin", names=True)
    # Monthly return: Asha (councillor, Heath Town) reported via /report while it was open,
    # which counts as taking part (schedule.urgent_report_answers_return, issue 18); Sarah sent
    # a nil return; Mark and Yusuf have not answered.
    assert summary.returns_by_role == [
        ("community_leader", 0, 1, 1, 0),
        ("councillor", 1, 0, 1, 0),
        ("all", 1, 1, 2, 0),
    ]
    assert ("Heath Town", 1, 0, 1, 0) in summary.returns_by_ward  # Asha answered, Yusuf not
    assert summary.outstanding == ["Cllr Mark Evans", "Imam Yusuf Khan"]
    assert summary.actions == [("cohesion", 1, 1, 0, 0, 3.0, None)]
    # The return rate, recomputed from the deliveries' rows: (responded + nil) / reached, and
    # over everyone asked; by ward, a person in two wards counts in each.
    async with s.db.uow() as uow:
        from sqlalchemy import select

        from storage.tables import campaigns, deliveries, people

        raw = (
            await uow.people.session.execute(  # type: ignore[attr-defined]
                select(people.c.role, people.c.wards, deliveries.c.status)
                .join(deliveries, deliveries.c.person_id == people.c.id)
                .join(campaigns, campaigns.c.id == deliveries.c.campaign_id)
                .where(campaigns.c.period == "2026-12", campaigns.c.kind == "monthly")
            )
        ).all()

    def rates(statuses: list[str]) -> tuple[str, str]:
        answered = sum(1 for x in statuses if x in ("responded", "nil"))
        reached = sum(1 for x in statuses if x != "unreachable")
        return f"{100 * answered / reached:.0f}%", f"{100 * answered / len(statuses):.0f}%"

    full = summary.markdown(suppressed=False)
    for role in {r for r, _, _ in raw}:
        a, b = rates([x for r, _, x in raw if r == role])
        assert any(
            ln.startswith(f"| {role} |") and ln.endswith(f"| {a} | {b} |")
            for ln in full.splitlines()
        ), role
    a, b = rates([x for _, _, x in raw])
    assert any(
        ln.startswith("| all |") and ln.endswith(f"| {a} | {b} |") for ln in full.splitlines()
    )
    heath = [x for _, wards, x in raw if "Heath Town" in wards]
    assert (
        len(heath) == 2 and "| Heath Town | 1 | 0 | 1 | 0 | {} | {} |".format(*rates(heath)) in full
    )
    assert "counted in each ward's row" in full
    text = summary.markdown()
    # Beside withheld counts (all below 3) the rates are withheld too: they would give them away.
    assert "| councillor | [c] | 0 | [c] | 0 | [c] | [c] |" in text  # Asha's urgent report
    assert "| community_leader | 0 | [c] | [c] | 0 | [c] | [c] |" in text
    # One action is a count below 3: withheld with its median times (it was shown as 1).
    assert "| cohesion | [c] | [c] | [c] | [c] | – | – |" in text
    assert "Still outstanding (admins' view)" in text
    plain = await s.summaries.build("2026-12", actor="officer")
    assert plain.outstanding == [] and "outstanding" not in plain.markdown()


def test_charts_and_exports(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    from bot.summaries.model import Breakdown, Summary
    from bot.summaries.stats import Pocket
    from handlers.files.charts import (
        hate_crime_vs_tension,
        trend_by_category,
        ward_category_heatmap,
    )
    from handlers.files.spreadsheets import write

    months = [shift("2026-12", -k) for k in range(12, -1, -1)]
    summary = Summary(
        "2026-12",
        None,
        None,
        4,
        1,
        3,
        breakdowns=[Breakdown("category", [("race", 3, 1, 0)])],
        hate_crime=[("Park", 9, 1.0)],
        pockets=[
            Pocket("Park", "hate crimes", 9, 1.0, 1e-6),
            # Penn's baseline of 1/12 would give away its withheld month (with a total of 1
            # over the other ten months): withheld, and its p-value with it.
            Pocket("Penn", "tension reports", 8, round(1 / 12, 2), 1e-5, q_value=2e-5),
        ],
        months=months,
        trend={"race": [0] * 11 + [1, 3], "religion": [0] * 12 + [1]},
        matrix={("Park", "race"): 2, ("Penn", "race"): 1},
        tension_by_ward={"Park": 3, "Penn": 1, "Oxley": 0},
    )
    lines = trend_by_category(summary).axes[0].get_lines()
    assert [ln.get_label() for ln in lines] == ["Race", "Religion"]  # labels, not keys
    # Religion's 1 this month and race's 1 last month are withheld, and race's 3 with them
    # (beside a total of 4): gaps in the lines, not points (they were plotted as 1 and 3).
    assert [str(y) for y in lines[0].get_ydata()[-3:]] == ["0.0", "nan", "nan"]
    assert str(lines[1].get_ydata()[-1]) == "nan"
    unsuppressed = trend_by_category(summary, suppressed=False).axes[0].get_lines()
    assert list(unsuppressed[0].get_ydata())[-2:] == [1, 3]  # --no-suppress: as they are
    heat = ward_category_heatmap(summary).axes[0]
    assert [t.get_text() for t in heat.get_yticklabels()] == ["Park", "Penn"]
    assert sorted(t.get_text() for t in heat.texts if t.get_transform() == heat.transData) == [
        "[c]",
        "[c]",
    ]
    bars = hate_crime_vs_tension(summary).axes[0]
    assert [t.get_text() for t in bars.get_xticklabels()] == ["Park", "Penn"]  # Oxley: nothing
    # Tension reports by ward, 3 and 1 (of 4): both withheld, drawn hatched and empty.
    assert [(p.get_height(), bool(p.get_hatch())) for p in bars.patches] == [
        (9, False),
        (0, False),
        (0, True),
        (0, True),
    ]

    files = write(summary, tmp_path / "out")
    names = {f.name for f in files}
    assert {
        "summary.md",
        "tension-summary-2026-12.xlsx",
        "trend_by_category.png",
        "ward_by_category.png",
        "hate_crime_vs_tension.png",
    } <= names
    for f in files:
        if f.suffix == ".png":
            assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f.stat().st_size > 5000
    book = load_workbook(tmp_path / "out" / "tension-summary-2026-12.xlsx")
    assert book["tensions_by_category"]["A2"].value == "Race"
    assert book["pockets_of_concern"]["A2"].value == "Park"
    rows = list(book["pockets_of_concern"].iter_rows(values_only=True))
    assert rows[0][:8] == (
        "unit",
        "by",
        "source",
        "kind",
        "observed",
        "baseline_months",
        "baseline_mean",
        "p_value",
    )
    assert rows[1][4:8] == (9, 12, 1, 1e-6)  # the analysts' figures
    text = (tmp_path / "out" / "summary.md").read_text()
    assert (
        "- Park: 9 hate crimes this month against about 1 a month usually; this is very "
        "unlikely to be chance." in text
    )
    # Penn's count (1 of the month's 4, withheld) and its baseline are not given.
    assert (
        "- Penn: more tension reports than usual this month (the figures are withheld to "
        "protect small numbers); this is unlikely to be chance." in text
    )
    assert "p =" not in text and "Poisson" not in text
    assert rows[2][4:9] == ("[c]", 12, "[c]", "<= 0.05", "<= 0.05")  # Penn: all withheld

    empty = Summary("2027-01", None, None, 0, 0, 0, months=months)
    figure = trend_by_category(empty)
    assert "No data for this period" in [t.get_text() for t in figure.axes[0].texts]


def _working_hours_by_hand(start: datetime, end: datetime) -> int:
    """Whole hours from ``start`` to ``end`` (on the hour, November-December: UK time is UTC)
    that begin on a weekday between 09:00 and 17:00 (no bank holiday in these weeks)."""
    from datetime import timedelta

    hours, t = 0, start
    while t < end:
        hours += t.weekday() < 5 and 9 <= t.hour < 17
        t += timedelta(hours=1)
    return hours


def _product_limit_median(done: list[float], waiting: list[float]) -> float | None:
    """Kaplan-Meier by hand: at each time an action happens, the share still waiting falls by
    the share of those still at risk that happened then."""
    share = 1.0
    for t in sorted(set(done)):
        at_risk = sum(1 for x in [*done, *waiting] if x >= t)
        share *= 1 - done.count(t) / at_risk
        if share <= 0.5:
            return t
    return None


async def test_action_times_are_kaplan_meier_medians_in_working_hours_and_filters_apply(
    db_url: str,
) -> None:
    from sqlalchemy import insert, select

    from storage.tables import actions, reports

    now = datetime(2026, 12, 20, 12, tzinfo=UTC)  # a Sunday
    clock = FakeClock(now)

    def at(day: int, hour: int, month: int = 11) -> datetime:
        return datetime(2026, month, day, hour, tzinfo=UTC)

    # (ward, created, acknowledged, closed, acknowledge-by, escalation level)
    rows = [
        ("Park", at(10, 10), at(10, 12), at(11, 10), at(11, 17), 0),  # a Tuesday
        ("Park", at(13, 16), at(16, 11), None, at(16, 17), 0),  # Friday to Monday
        ("Park", at(23, 9), None, None, at(24, 17), 1),  # never acknowledged: overdue in Nov
        ("Park", at(27, 9), at(3, 9, 12), None, at(2, 17, 12), 0),  # acknowledged in December
        ("Park", at(30, 9), None, None, at(1, 17, 12), 0),  # overdue only after November
        ("Penn", at(10, 10), at(10, 11), None, at(11, 17), 0),
    ]
    async with services_for(db_url, clock, teams=TEAMS, routing=ROUTING) as s:
        await s.people.import_csv(PEOPLE_CSV, source="p.csv", actor="t")
        await _report(s, 5, "2026-11", "Park", "race")
        await _report(s, 1, "2026-11", "Penn", "race")
        async with s.db.uow() as uow:
            session = uow.people.session  # type: ignore[attr-defined]
            ids = {
                w: [
                    i
                    for i, w_ in (await session.execute(select(reports.c.id, reports.c.ward))).all()
                    if w_ == w
                ]
                for w in ("Park", "Penn")
            }
            for ward, created, acked, closed, due, level in rows:
                state = "closed" if closed else ("acknowledged" if acked else "open")
                await session.execute(
                    insert(actions).values(
                        report_id=ids[ward].pop(),
                        team_key="cohesion",
                        state=state,
                        ack_due_at=due,
                        escalation_level=level,
                        acknowledged_at=acked,
                        closed_at=closed,
                        created_at=created,
                        outcome_note="",
                        version=0,
                    )
                )
            await uow.commit()

        end = datetime(2026, 12, 1, tzinfo=UTC)  # the end of November (UK time is UTC)

        def expected(chosen: list[tuple]) -> tuple:  # type: ignore[type-arg]
            def median(i: int) -> float | None:
                done = [_working_hours_by_hand(r[1], r[i]) for r in chosen if r[i]]
                waiting = [_working_hours_by_hand(r[1], now) for r in chosen if not r[i]]
                return _product_limit_median(done, waiting)

            return (
                "cohesion",
                len(chosen),
                sum(1 for r in chosen if r[3] is None or r[3] > end),
                sum(1 for r in chosen if (r[2] is None or r[2] > end) and r[4] < end),
                sum(1 for r in chosen if r[5] > 0),
                median(2),
                median(3),
            )

        build = s.summaries.build
        park = await build("2026-11", actor="admin", ward="Park")
        # Recomputed: acknowledged after 2, 3 and 32 working hours, two still waiting (160
        # and 120): the median is 32 (leaving the waiting out would give 3); overdue at the
        # end of November 1 (the last one's deadline was in December), though 2 are now.
        assert park.actions == [expected(rows[:5])]
        assert park.actions[0][3] == 1 and park.actions[0][5] == 32.0
        everyone = await build("2026-11", actor="admin")
        assert everyone.actions == [expected(rows)]

        # --ward filters every section it can (the trend is Park's), and says which it cannot.
        assert park.trend["race"][-1] == 5 and everyone.trend["race"][-1] == 6
        assert all(r[0] == "Park" for r in park.returns_by_ward)
        assert (
            "Not limited to Park: return rate by role (the whole partnership); PACT meetings "
            "(the whole partnership)." in park.markdown()
        )
        race = await build("2026-11", actor="admin", category="race")
        assert "hate crime (police figures are by strand, not category)" in race.markdown()
        assert "Not limited" not in everyone.markdown()
        assert "median working hours to acknowledge" in everyone.markdown(suppressed=False)


def test_working_hours_skip_nights_weekends_and_bank_holidays() -> None:
    from bot.config import load_config
    from bot.deadlines import working_hours

    config = load_config(Path(__file__).parent.parent / "config.example.toml", env={})
    # Thursday 24 December 16:00 to Tuesday 29 December 10:00: an hour on Christmas Eve,
    # then Christmas Day, the weekend and the Boxing Day substitute (Monday 28th) are not
    # working days, and an hour on the Tuesday.
    start = datetime(2026, 12, 24, 16, tzinfo=UTC)
    assert working_hours(config, start, datetime(2026, 12, 29, 10, tzinfo=UTC)) == 2.0
    assert working_hours(config, start, start) == 0.0


def _binomial_tail(y: int, n: int, p: float) -> float:
    return sum(math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(y, n + 1))


async def test_quarters_and_years_have_the_same_sections(db_url: str) -> None:
    from bot.summaries.periods import parse_period

    clock = FakeClock(datetime(2027, 1, 20, tzinfo=UTC))
    # (month, ward, category, reports): raw rows the expected figures are recomputed from.
    raw = [
        ("2025-11", "Penn", "race", 4),
        ("2026-02", "Park", "race", 3),
        ("2026-08", "Park", "religion", 5),
        ("2026-09", "Penn", "race", 3),
        ("2026-10", "Park", "race", 6),
        ("2026-12", "Park", "religion", 4),
        ("2026-12", "Penn", "race", 3),
    ]
    figures = ["month,ward,strand,count"]
    for k in range(14, 2, -1):  # 2025-10 to 2026-09: Park 1 a month, Heath Town 2
        figures += [
            f"{shift('2026-12', -k)},Park,race,1",
            f"{shift('2026-12', -k)},Heath Town,faith,2",
        ]
    for m in ("2026-10", "2026-11", "2026-12"):
        figures += [f"{m},Park,race,5", f"{m},Heath Town,faith,2"]
    async with services_for(db_url, clock) as s:
        await s.people.import_csv(PEOPLE_CSV, source="p.csv", actor="t")
        for month, ward, category, n in raw:
            await _report(s, n, month, ward, category)
        await HateCrimeService(s.config, s.db.uow, clock).import_csv(
            "\n".join(figures) + "\n", source="hc.csv", actor="t"
        )
        build = s.summaries.build

        def total(months: tuple[str, ...], ward: str | None = None) -> int:
            return sum(n for m, w, _, n in raw if m in months and ward in (None, w))

        q4, q3, q4_2025 = (parse_period(p).months for p in ("2026-Q4", "2026-Q3", "2025-Q4"))
        quarter = await build("2026-q4", actor="admin")
        assert quarter.month == "2026-Q4" and quarter.unit == "quarter"
        assert (quarter.total, quarter.previous_total, quarter.last_year_total) == (
            total(q4),
            total(q3),
            total(q4_2025),
        )
        by = {b.by: b.rows for b in quarter.breakdowns}
        assert ("Park", total(q4, "Park"), total(q3, "Park"), total(q4_2025, "Park")) in by["ward"]
        assert quarter.months == ["2025-Q4", "2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4"]
        assert quarter.trend["race"] == [4, 3, 0, 3, 9]
        # Park's hate crimes: 15 this quarter after 12 in the 12 months before: given 27, the
        # quarter's share is binomial(27, 3/15) if nothing changed (the wards are steady).
        park = [p for p in quarter.pockets if p.ward == "Park" and p.by == "ward"]
        assert len(park) == 1 and park[0].observed == 15
        assert math.isclose(park[0].p_value, _binomial_tail(15, 27, 3 / 15), rel_tol=1e-9)
        text = quarter.markdown()
        assert "| ward | this quarter | previous | last year |" in text
        assert (
            "- Park: 15 hate crimes this quarter against about 3 a quarter usually; this is "
            "very unlikely to be chance." in text
        )
        assert (
            f"Tension reports: **{total(q4)}** (previous quarter {total(q3)}, same quarter last year"
            in text
        )

        year = await build("2026", actor="admin")
        assert (year.total, year.previous_total) == (
            total(parse_period("2026").months),
            total(parse_period("2025").months),
        )
        assert year.months == ["2025", "2026"] and "## Pockets of concern" in year.markdown()
        assert "## Return rate" in year.markdown() or not year.returns_by_role
        for bad in ("2026-Q5", "26", "2026-13"):
            with pytest.raises(ValueError, match="YYYY-Qn"):
                await build(bad, actor="admin")


async def test_the_quarter_is_posted_once_to_its_channel_when_its_last_return_closes(
    db_url: str,
) -> None:
    from datetime import timedelta

    from sqlalchemy import select

    from bot.summaries.service import post_scheduled
    from storage.tables import outbox

    clock = FakeClock(datetime(2026, 12, 1, 9, tzinfo=UTC))
    summaries = {"channels": ["C0SWPBOARD"], "quarterly_channels": ["C0FORUM"]}
    async with services_for(db_url, clock, summaries=summaries) as s:
        await s.people.import_csv(PEOPLE_CSV, source="p.csv", actor="t")
        campaign, _ = await s.campaigns.open_monthly("2026-12", actor="t", force=True)
        clock.set(campaign.closes_at + timedelta(minutes=1))
        await s.campaigns.tick()
        service = s.summaries
        assert await post_scheduled(service) == ["2026-12", "2026-Q4"]
        assert await post_scheduled(service) == []  # once
        async with s.db.uow() as uow:
            keys = (
                await uow.people.session.execute(  # type: ignore[attr-defined]
                    select(outbox.c.idempotency_key, outbox.c.recipient)
                )
            ).all()
        assert sorted(keys) == [
            ("summary:2026-Q4:C0FORUM", "C0FORUM"),
            (f"summary:{campaign.key}:C0SWPBOARD", "C0SWPBOARD"),
        ]


def test_chat_filters_take_a_quarter_or_a_year() -> None:
    from bot.summaries.chat import SummaryRefused, parse_filters

    def parse(text: str) -> tuple[str, str | None, str | None]:
        r = parse_filters(
            text, default_month="2026-12", wards=["Park"], categories={"race": "Race"}
        )
        return r.month, r.ward, r.category

    assert parse("2026-q4 Park") == ("2026-Q4", "Park", None)
    assert parse("race 2026") == ("2026", None, "race")
    assert parse("") == ("2026-12", None, None)
    with pytest.raises(SummaryRefused, match="YYYY-Qn"):
        parse("last quarter")


def test_charts_people_can_read() -> None:
    from matplotlib.colors import to_rgb

    from bot.summaries.model import Summary
    from handlers.files.charts import trend_by_category, ward_category_heatmap

    months = [shift("2026-12", -k) for k in range(12, -1, -1)]
    rng = random.Random(5)
    trend = {c: [rng.randint(3, 30) for _ in months] for c in "abcdefg"}
    keys = {c: f"cat_{c}" for c in trend}
    summary = Summary(
        "2026-12",
        None,
        None,
        sum(v[-1] for v in trend.values()),
        0,
        0,
        months=months,
        trend={keys[c]: v for c, v in trend.items()},
        matrix={("Park", "crime_asb"): 40, ("Penn", "crime_asb"): 3, ("Park", "race"): 9},
        labels={"crime_asb": "Crime and ASB", **{keys[c]: f"Label {c}" for c in trend}},
    )
    ax = trend_by_category(summary, suppressed=False).axes[0]
    lines = ax.get_lines()
    # Five lines at most: the four largest over the year, and the rest summed as "Other".
    order = sorted(trend, key=lambda c: -sum(trend[c]))
    assert [ln.get_label() for ln in lines] == [*(f"Label {c}" for c in order[:4]), "Other"]
    other = [sum(trend[c][m] for c in order[4:]) for m in range(len(months))]
    assert list(lines[-1].get_ydata()) == other
    okabe_ito = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"}
    colours = [ln.get_color() for ln in lines]
    assert set(colours[:4]) <= okabe_ito and len(set(colours)) == 5
    assert all(float(t).is_integer() for t in ax.get_yticks())  # whole counts

    heat = ward_category_heatmap(summary, suppressed=False)
    ax = heat.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Crime and ASB", "Race"]
    assert all(float(t).is_integer() for t in heat.axes[1].get_yticks())  # the colour bar

    def lum(colour: object) -> float:  # WCAG 2 relative luminance, recomputed here
        channels = [
            c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in to_rgb(colour)
        ]  # type: ignore[arg-type]
        return 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2]

    image = ax.images[0]
    for text in (t for t in ax.texts if t.get_transform() == ax.transData):
        j, i = (round(p) for p in text.get_position())
        cell = image.cmap(image.norm(image.get_array()[i, j]))
        a, b = sorted((lum(cell), lum(text.get_color())))
        assert (b + 0.05) / (a + 0.05) >= 4.5, (text.get_text(), cell)  # WCAG AA


@pytest.mark.parametrize(
    "typed", ["²²²²", "２０２６", "2026-Q5", "2026-13", "1999", "2100-01", "0001-01"]
)
def test_a_period_is_ascii_digits_in_the_years_a_summary_can_cover(typed: str) -> None:
    """A typed period is refused with a message naming it, never a crash: ``str.isdigit`` is
    true for '²' and other digits ``int`` takes or refuses; years outside 2000–2099 are slips."""
    with pytest.raises(ValueError, match="period"):
        parse_period(typed)


def test_the_three_forms_of_a_period_parse() -> None:
    assert parse_period("2026").label == "2026"
    assert parse_period("2026-q4").label == "2026-Q4"
    assert list(parse_period(" 2026-12 ").months) == ["2026-12"]


async def test_every_figure_regrouped_from_the_cube_matches_a_count_of_a_seeded_world(
    db_url: str,
) -> None:
    """A seeded world of reports over 14 months, 6 wards and 3 categories: for each filter
    (none, a ward, a category, both) the totals, the ward and category breakdowns, the matrix,
    tensions by ward and the trend equal a count of the seeded reports in Python."""
    clock = FakeClock(datetime(2027, 1, 20, tzinfo=UTC))
    rng = random.Random(1130)
    month, months = "2026-12", [shift("2026-12", -k) for k in range(13, -1, -1)]
    categories = ["race", "religion", "disability"]
    async with services_for(db_url, clock) as s:
        await s.people.import_csv(PEOPLE_CSV, source="p.csv", actor="t")
        wards = list(s.config.partnership.wards)
        raw = {
            (m, w, c): rng.choice((0, 0, 0, 1, 2, 3))
            for m in months
            for w in wards
            for c in categories
        }
        for (m, w, c), n in raw.items():
            if n:
                await _report(s, n, m, w, c)
        for ward, category in ((None, None), ("Park", None), (None, "race"), ("Penn", "religion")):
            summary = await s.summaries.build(month, actor="t", ward=ward, category=category)

            def count(
                m: str,
                w: str | None = None,
                c: str | None = None,
                ward: str | None = ward,
                category: str | None = category,
            ) -> int:
                return sum(
                    n
                    for (m_, w_, c_), n in raw.items()
                    if m_ == m and w in (None, w_) and c in (None, c_)
                    and ward in (None, w_) and category in (None, c_)
                )  # fmt: skip

            assert (summary.total, summary.previous_total, summary.last_year_total) == (
                count(month), count("2026-11"), count("2025-12")
            )  # fmt: skip
            by = {b.by: b.rows for b in summary.breakdowns}
            for key, now, prev, year in by["ward"]:
                assert (now, prev, year) == tuple(
                    count(m, w=key) for m in (month, "2026-11", "2025-12")
                )
            for key, now, prev, year in by["category"]:
                assert (now, prev, year) == tuple(
                    count(m, c=key) for m in (month, "2026-11", "2025-12")
                )
            assert {k for k, *_ in by["ward"]} == {
                w for (m, w, c), n in raw.items() if n and m in (month, "2026-11", "2025-12")
                and ward in (None, w) and category in (None, c)
            }  # fmt: skip
            assert summary.matrix == {
                (w, c): n
                for (m, w, c), n in raw.items()
                if n and m == month and ward in (None, w) and category in (None, c)
            }
            chosen = [ward] if ward else wards
            # Tensions by ward are every category's (the ward filter only picks the ward).
            assert summary.tension_by_ward == {
                w: sum(n for (m, w_, _), n in raw.items() if m == month and w_ == w) for w in chosen
            }
            trend_months = months[1:]  # the 13 months to this one
            assert summary.months == trend_months
            expected = {
                c: [
                    sum(n for (m_, w, c_), n in raw.items() if m_ == m and c_ == c
                        and ward in (None, w))
                    for m in trend_months
                ]
                for c in categories
                if category in (None, c)
                and any(n for (m_, w, c_), n in raw.items() if c_ == c and m_ in trend_months
                        and ward in (None, w))
            }  # fmt: skip
            assert summary.trend == expected
