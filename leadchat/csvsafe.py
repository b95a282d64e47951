"""CSV that a spreadsheet opens as text: the one writer every CSV export of leadchat goes through.

Visitors type the lead name, the transcript and the UTM values, so an export opened in Excel,
LibreOffice or Google Sheets must never run what they wrote as a formula (OWASP "CSV
injection": `=HYPERLINK(...)`, `=cmd|' /C calc'!A0`, `@SUM(...)`). Two defences, both on every
cell of every row:

- every cell is quoted (`csv.QUOTE_ALL`), so a separator or a line break inside a value never
  starts a new cell for a parser that follows RFC 4180;
- a formula start (`= + - @`, tab, CR, and their full-width forms, which some spreadsheets fold
  to ASCII) gets a leading `'`, which spreadsheets read as "this is text". Not only at the start
  of the cell: Excel in locales whose list separator is `;` (and anything that splits on `,` or
  on tabs or line breaks without honouring the quotes) cuts `a;=cmd()` into `a` and `=cmd()`,
  so every part after `;`, `,`, a tab or a line break is neutralised too, after any spaces or
  quote marks a splitting parser would trim away.

The cost is that a value such as `-5` or `+44 20 7946 0000` is exported as `'-5` / `'+44 ...`:
the trade-off OWASP recommends. JSON Lines exports stay verbatim (no spreadsheet runs them).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator

# ASCII formula starts, then the full-width equals, plus, hyphen-minus and commercial at.
FORMULA_STARTS = "=+-@\t\r" + "\uff1d\uff0b\uff0d\uff20"
# A part of a cell begins at the cell's start or after a separator some parser splits on; a
# splitting parser trims spaces and quote marks before it looks at the first character.
_PART_START = re.compile(
    r"(^|[;,\t\n\r])([ \"\u00a0\u3000]*)(?=[" + re.escape(FORMULA_STARTS) + "])"
)


def spreadsheet_safe(text: str) -> str:
    """`text` with a `'` before every formula start that begins the cell or a part of it."""
    return _PART_START.sub(r"\1\2'", text)


class _Echo:
    """A write-only file for csv.writer that hands back what was written (no buffering)."""

    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[Iterable[str]]) -> Iterator[str]:
    """One CSV line per row (header included), every cell quoted and made spreadsheet-safe.

    Cells must already be text (each export formats its own dates, booleans and JSON). A
    generator, so streaming exports stay in flat memory.
    """
    writer = csv.writer(_Echo(), quoting=csv.QUOTE_ALL)
    for row in rows:
        yield writer.writerow([spreadsheet_safe(cell) for cell in row])
