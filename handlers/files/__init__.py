"""Output adapters that write files: charts (matplotlib, ``charts.py``), the board report's
Markdown, CSV and XLSX (openpyxl, ``spreadsheets.py``), and spreadsheet-safe cells
(``cells.py``). The core asks for charts through :class:`bot.ports.Charts`; the composition root
gives it :class:`MatplotlibCharts`. Importing this package loads neither matplotlib nor openpyxl:
they are loaded when a chart or a spreadsheet is made, so the running bot's idle memory does not
grow by them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.messages import Attachment

if TYPE_CHECKING:
    from bot.summaries.model import Summary


class MatplotlibCharts:
    """:class:`bot.ports.Charts` drawn with matplotlib (``handlers/files/charts.py``)."""

    def for_summary(self, summary: Summary) -> list[Attachment]:
        """The summary's charts as PNG attachments, titled by file name, with alt text."""
        from handlers.files.charts import charts_for, describe, png  # matplotlib, only now

        return [
            Attachment(
                filename=name,
                title=name.removesuffix(".png").replace("_", " "),
                data=png(build(summary)),
                alt_text=describe(name, summary),
            )
            for name, build in charts_for(summary).items()
        ]
