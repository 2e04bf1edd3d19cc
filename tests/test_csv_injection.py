"""Formula injection (OWASP "CSV Injection"): text that a spreadsheet would run as a formula is
written as text in every CSV and XLSX the bot produces: the summary exports (with their PACT
tables), ``invites``, ``people list`` and ``pact list``. Each export is read back as a
spreadsheet would read it; the workbook's XML is searched for a formula element."""

from __future__ import annotations

import asyncio
import csv
import io
import zipfile
from pathlib import Path

from click.testing import CliRunner
from openpyxl import Workbook, load_workbook

from bot.cli import main
from handlers.files import cells

VENUE = '=HYPERLINK("http://x","y")'
NAMES = ["=1+2", "@SUM(A1)", "+cmd", "-2+3"]
PEOPLE = (
    "name,role,wards,organisation,email\n"
    '"=1+2",councillor,Heath Town,Council,one@example.org\n'
    '"@SUM(A1)",councillor,Penn,"=cmd|\' /C calc\'!A0",two@example.org\n'
    "+cmd,community_leader,Park,Mosque,three@example.org\n"
    "-2+3,councillor,Blakenhall,Council,four@example.org\n"
)
MEETINGS = (
    "neighbourhood,date,time,venue,format,chair_email\n"
    'heath-town,2026-11-05,18:30,"=HYPERLINK(""http://x"",""y"")",in_person,one@example.org\n'
    "penn,2026-11-07,11:00,@SUM(1+1),in_person,two@example.org\n"
)


def _setup(tmp_path: Path, db_url: str) -> tuple[CliRunner, list[str]]:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{db_url}"\n[telegram]\nbot_username = "swp_bot"\n'
        '[[teams]]\nkey = "npt"\nname = "NPT"\norganisation = "police"\n'
        'slack_channel = "C0NPT"\n'
    )
    people, meetings = tmp_path / "people.csv", tmp_path / "meetings.csv"
    people.write_text(PEOPLE)
    meetings.write_text(MEETINGS)
    runner, base = CliRunner(), ["--config", str(config)]
    for command in (["people", "import", str(people)], ["pact", "import", str(meetings)]):
        done = runner.invoke(main, [*base, *command])
        assert done.exit_code == 0, done.output
    return runner, base


def _csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def _no_formula_text(rows: list[list[str]]) -> None:
    for r in rows:
        for value in r:
            assert not value.startswith(cells.FORMULA_STARTS), (value, r)


def test_cli_csvs_show_names_and_venues_as_text(tmp_path: Path, db_url: str) -> None:
    runner, base = _setup(tmp_path, db_url)

    invites = runner.invoke(main, [*base, "invites", "--format", "csv"])
    assert invites.exit_code == 0, invites.output
    rows = _csv(invites.output)
    assert sorted(r[0] for r in rows[1:]) == sorted("'" + n for n in NAMES)
    _no_formula_text(rows)

    people = _csv(runner.invoke(main, [*base, "people", "list", "--format", "csv"]).output)
    assert sorted(r[0] for r in people[1:]) == sorted("'" + n for n in NAMES)
    organisation = people[0].index("organisation")
    assert "'=cmd|' /C calc'!A0" in [r[organisation] for r in people[1:]]
    _no_formula_text(people)

    scheduled = runner.invoke(
        main,
        [*base, "pact", "schedule", "--neighbourhood", "park", "--date", "2031-01-08",
         "--time", "19:00", "--venue", "+1-1", "--chair", "three@example.org"],
    )  # fmt: skip
    assert scheduled.exit_code == 0, scheduled.output
    listed = _csv(runner.invoke(main, [*base, "pact", "list", "--format", "csv"]).output)
    assert [r[3] for r in listed[1:]] == ["'" + VENUE, "'@SUM(1+1)", "'+1-1"]
    _no_formula_text(listed)


def test_summary_csv_and_xlsx_show_a_venue_formula_as_text(tmp_path: Path, db_url: str) -> None:
    runner, base = _setup(tmp_path, db_url)

    async def record() -> None:
        from bot.app import build_services
        from bot.config import load_config
        from bot.pact.service import MeetingRecord

        services = await build_services(load_config(Path(base[1])), migrate=False)
        try:
            async with services.db.uow() as uow:
                for hood, public in (("heath-town", 27), ("penn", 9)):
                    for m in await uow.pact.for_neighbourhood(hood):
                        chair = await uow.people.get(m.chair_id)
                        assert chair is not None and m.id is not None
                        context = await services.pact.context(uow, chair, m.id)
                        record = MeetingRecord(public, 2, [], [], [])
                        assert await services.pact.apply_record(uow, chair, context, record) == {}
                await uow.commit()
        finally:
            await services.close()

    asyncio.run(record())
    out = tmp_path / "out"
    result = runner.invoke(main, [*base, "summary", "--period", "2026-11", "--out", str(out)])
    assert result.exit_code == 0, result.output

    meetings = _csv((out / "pact_meetings.csv").read_text())
    venue = meetings[0].index("venue")
    assert sorted(r[venue] for r in meetings[1:]) == ["'" + VENUE, "'@SUM(1+1)"]
    by_venue = _csv((out / "pact_by_venue.csv").read_text())
    assert sorted(r[0] for r in by_venue[1:]) == ["'" + VENUE, "'@SUM(1+1)"]
    for path in out.glob("*.csv"):
        _no_formula_text(_csv(path.read_text()))

    xlsx = out / "tension-summary-2026-11.xlsx"
    book = load_workbook(xlsx)
    sheet = book["pact_meetings"]
    shown = [c for r in sheet.iter_rows() for c in r if isinstance(c.value, str)]
    venues = sorted(str(c.value) for c in shown if str(c.value).startswith("'"))
    assert venues == ["'" + VENUE, "'@SUM(1+1)"]
    for ws in book.worksheets:
        for r in ws.iter_rows():
            for c in r:
                assert c.data_type != "f", (ws.title, c.coordinate, c.value)
                if isinstance(c.value, str) and c.value.startswith("'"):
                    assert c.data_type == "s" and c.quotePrefix, (ws.title, c.coordinate)
    with zipfile.ZipFile(xlsx) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/"):
                xml = z.read(name).decode()
                assert "<f>" not in xml and "<f " not in xml, name


def test_numbers_stay_numbers_and_only_text_is_quoted(tmp_path: Path) -> None:
    values = [-3, 2.5, None, "-3", "=1+2", "\tx", "\rx", "plain", "a=b", "\uff1d1+2"]
    expected = [-3, 2.5, None, "'-3", "'=1+2", "'\tx", "'\rx", "plain", "a=b", "'\uff1d1+2"]
    assert cells.row(values) == expected

    buf = io.StringIO()
    writer = cells.csv_writer(buf)
    writer.writerow(["n", "text"])
    writer.writerows([[-3, "=1+2"]])
    dict_buf = io.StringIO()
    dict_writer = cells.dict_writer(dict_buf, ["n", "text"])
    dict_writer.writeheader()
    dict_writer.writerows([{"n": -3, "text": "@SUM(A1)"}])
    assert buf.getvalue().splitlines() == ["n,text", "-3,'=1+2"]
    assert dict_buf.getvalue().splitlines() == ["n,text", "-3,'@SUM(A1)"]

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    cells.append(sheet, values)
    path = tmp_path / "t.xlsx"
    book.save(path)
    read = load_workbook(path).active
    assert read is not None
    got = [c for c in read[1]]
    assert [c.value for c in got[:2]] == [-3, 2.5] and got[0].data_type == "n"
    assert got[4].value == "'=1+2" and got[4].data_type == "s" and got[4].quotePrefix
    assert got[7].value == "plain" and not got[7].quotePrefix
