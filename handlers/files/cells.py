"""Spreadsheet-safe cells: every CSV and XLSX the bot writes goes through this module.

A spreadsheet opens a cell that begins with ``=``, ``+``, ``-`` or ``@`` (and, in some, a tab or
a carriage return) as a formula: a venue typed by a chair, ``=HYPERLINK("http://x","y")``, or a
name imported from a people file, ``@SUM(A1)``, would run on the board's machine (OWASP, "CSV
Injection"). As OWASP advises, such a text cell is written with a single quote in front, so it
is shown as text and never evaluated. Only text is touched: a number (``-3``) stays a number.
In XLSX the cell is also stored as a string with Excel's "quote prefix" style, so no ``<f>``
(formula) element is ever written, whatever openpyxl would infer from the value.

Use :func:`csv_writer` / :func:`dict_writer` in place of ``csv.writer`` / ``csv.DictWriter`` and
:func:`append` in place of ``worksheet.append``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# OWASP's list, plus the full-width forms some spreadsheets (e.g. Excel in East Asian locales)
# also read as the start of a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def neutralise(value: Any) -> Any:
    """``value`` as a spreadsheet may safely show it: text that could start a formula gets a
    single quote in front; anything else (numbers included) is returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def row(values: Iterable[Any]) -> list[Any]:
    """A row with every cell neutralised."""
    return [neutralise(v) for v in values]


class _SafeWriter:
    """``csv.writer`` that neutralises every cell it writes."""

    def __init__(self, handle: Any, **kwargs: Any) -> None:
        self._writer = csv.writer(handle, **kwargs)

    def writerow(self, values: Iterable[Any]) -> Any:
        """Write one row."""
        return self._writer.writerow(row(values))

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        """Write many rows."""
        for values in rows:
            self.writerow(values)


class _SafeDictWriter:
    """``csv.DictWriter`` that neutralises every value (and the header) it writes."""

    def __init__(self, handle: Any, fieldnames: Sequence[str], **kwargs: Any) -> None:
        self.fieldnames = list(fieldnames)
        self._writer = csv.DictWriter(handle, fieldnames=self.fieldnames, **kwargs)

    def writeheader(self) -> Any:
        """The header row (field names neutralised too)."""
        return self._writer.writerow(dict(zip(self.fieldnames, row(self.fieldnames), strict=True)))

    def writerow(self, rowdict: Mapping[str, Any]) -> Any:
        """Write one row."""
        return self._writer.writerow({k: neutralise(v) for k, v in rowdict.items()})

    def writerows(self, rowdicts: Iterable[Mapping[str, Any]]) -> None:
        """Write many rows."""
        for rowdict in rowdicts:
            self.writerow(rowdict)


def csv_writer(handle: Any, **kwargs: Any) -> _SafeWriter:
    """A ``csv.writer`` on ``handle`` whose cells are neutralised."""
    return _SafeWriter(handle, **kwargs)


def dict_writer(handle: Any, fieldnames: Sequence[str], **kwargs: Any) -> _SafeDictWriter:
    """A ``csv.DictWriter`` on ``handle`` whose values are neutralised."""
    return _SafeDictWriter(handle, fieldnames, **kwargs)


def append(sheet: Any, values: Iterable[Any]) -> None:
    """Append a row to an openpyxl worksheet, every cell neutralised. A neutralised cell is
    forced to a string (never a formula) with the quote-prefix style, as Excel marks text that
    must not be evaluated."""
    original = list(values)
    safe = row(original)
    sheet.append(safe)
    here = sheet.max_row
    for column, (was, now) in enumerate(zip(original, safe, strict=True), start=1):
        if now is not was:  # neutralised: text, never a formula
            cell = sheet.cell(row=here, column=column)
            cell.data_type = "s"
            cell.quotePrefix = True
