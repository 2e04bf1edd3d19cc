"""Charts and spreadsheets are output adapters (handlers/files), behind a port the core defines;
the summaries room stays small and names no platform."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from bot.clock import FakeClock
from bot.messages import Attachment, OutgoingMessage
from bot.summaries.model import Summary
from bot.summaries.service import SummaryService, post_scheduled
from storage.tables import outbox
from tests.helpers import PEOPLE_CSV, services_for

ROOT = Path(__file__).resolve().parent.parent


class RecordingCharts:
    """A charts adapter that draws nothing: it records what it was asked for and answers one
    small attachment, so a test can see that the service draws through the port it is given."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def for_summary(self, summary: Summary) -> list[Attachment]:
        self.asked.append(summary.month)
        return [Attachment(filename="drawn.png", title="drawn", data=b"png", alt_text="alt")]


async def test_the_scheduled_summary_carries_the_charts_of_the_port_it_was_given(
    db_url: str,
) -> None:
    clock = FakeClock(datetime(2026, 12, 1, 9, tzinfo=UTC))
    async with services_for(db_url, clock, summaries={"channels": ["C0SWPBOARD"]}) as s:
        await s.people.import_csv(PEOPLE_CSV, source="p.csv", actor="t")
        campaign, _ = await s.campaigns.open_monthly("2026-12", actor="t", force=True)
        clock.set(campaign.closes_at + timedelta(minutes=1))
        await s.campaigns.tick()
        charts = RecordingCharts()
        service = SummaryService(s.config, s.db.uow, clock, s.forms, s.pact, charts=charts)
        assert await post_scheduled(service) == ["2026-12"]
        async with s.db.uow() as uow:
            payloads = (
                await uow.people.session.execute(  # type: ignore[attr-defined]
                    select(outbox.c.payload).where(outbox.c.purpose == "summary")
                )
            ).all()
    assert charts.asked == ["2026-12"]
    [(payload,)] = payloads
    message = OutgoingMessage.model_validate(payload)
    assert [(a.filename, a.data, a.alt_text) for a in message.attachments] == [
        ("drawn.png", b"png", "alt")
    ]


def test_matplotlib_and_openpyxl_are_loaded_only_when_a_chart_or_a_spreadsheet_is_made(
    tmp_path: Path,
) -> None:
    # The running service's idle memory must not grow by matplotlib or openpyxl: importing the
    # application, its adapters and the summary code loads neither; drawing and exporting do.
    code = (
        "import sys, bot.app, bot.cli, scheduler, handlers.telegram, handlers.slack\n"
        "import handlers.files, handlers.files.spreadsheets, bot.summaries.service\n"
        "for name in ('matplotlib', 'openpyxl'):\n"
        "    assert name not in sys.modules, f'{name} loaded at import'\n"
        "from bot.summaries.model import Summary\n"
        "summary = Summary('2026-12', None, None, 0, 0, 0)\n"
        "handlers.files.MatplotlibCharts().for_summary(summary)\n"
        "assert 'openpyxl' not in sys.modules\n"
        "import pathlib\n"
        "from handlers.files.spreadsheets import write\n"
        f"write(summary, pathlib.Path({str(tmp_path)!r}))\n"
        "assert 'matplotlib' in sys.modules and 'openpyxl' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_no_module_of_the_summaries_room_is_over_500_lines() -> None:
    sizes = {
        path.name: len(path.read_text().splitlines())
        for path in (ROOT / "bot" / "summaries").glob("*.py")
    }
    assert {name: n for name, n in sizes.items() if n > 500} == {}


def test_the_summary_and_pact_services_name_no_platform() -> None:
    # Identity and rendering are the adapters' business: the services answer a person's request
    # with a neutral result, whichever platform it came from.
    from bot.pact.service import PactService

    names = [n for n in dir(SummaryService) if "telegram" in n or "slack" in n]
    names += [
        n for n in dir(PactService) if n.startswith("insight") and ("telegram" in n or "slack" in n)
    ]
    assert names == []
