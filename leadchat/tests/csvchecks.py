"""What every CSV export must look like, checked the same way for each writer (issue 11, #18).

The injections are cells a visitor (or a QA reviewer) can type, each with the text a
spreadsheet must see instead. The expected values are written out here, not computed with
leadchat.csvsafe, so a change to that module cannot make these checks agree with itself.
"""

import csv
import io

# field -> (what was typed, what the export must hold)
INJECTIONS = {
    "lead_name": ("Ada;=cmd|' /C calc'!A0", "Ada;'=cmd|' /C calc'!A0"),
    "qa_notes": ("fine, @SUM(A1:A9)", "fine, '@SUM(A1:A9)"),
    "dev_feedback": ('ok;"=HYPERLINK(""http://evil"")', 'ok;"\'=HYPERLINK(""http://evil"")'),
    "lead_phone": ("\uff1d1+1", "'\uff1d1+1"),
    "utm_campaign": ("spring\n-2+3", "spring\n'-2+3"),
}


def assert_every_cell_quoted(text: str) -> None:
    """The export is exactly what csv.QUOTE_ALL writes for its own cells."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows, "empty export"
    again = io.StringIO()
    csv.writer(again, quoting=csv.QUOTE_ALL).writerows(rows)
    assert again.getvalue() == text
