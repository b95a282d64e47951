"""leadchat.csvsafe: the one writer every CSV export goes through (issue 11, #18)."""

import csv
import io

import pytest

from leadchat.csvsafe import csv_lines, spreadsheet_safe
from leadchat.tests.csvchecks import assert_every_cell_quoted


@pytest.mark.parametrize(
    "typed, safe",
    [
        ("=1+1", "'=1+1"),
        ("+44 20 7946 0000", "'+44 20 7946 0000"),
        ("-5", "'-5"),
        ("@SUM(A1)", "'@SUM(A1)"),
        # A tab or CR both starts a formula and separates parts for some importers.
        ("\t=1", "'\t'=1"),
        ("\r=1", "'\r'=1"),
        ("a\t@x", "a\t'@x"),
        ("  =1", "  '=1"),
        ("a;=cmd()", "a;'=cmd()"),
        ("a,+1", "a,'+1"),
        ("a; -1", "a; '-1"),
        ('a;"=1"', 'a;"\'=1"'),
        ("line\n@x", "line\n'@x"),
        ("\uff1dHYPERLINK(1)", "'\uff1dHYPERLINK(1)"),
        ("\uff0b1", "'\uff0b1"),
        ("\uff0d1", "'\uff0d1"),
        ("\uff20x", "'\uff20x"),
        ("a;;=1", "a;;'=1"),
        # Left alone: no formula start at the start of any part.
        ("Ada Lovelace", "Ada Lovelace"),
        ("2026-05-04T10:15:02+00:00", "2026-05-04T10:15:02+00:00"),
        ("a=b; c+d", "a=b; c+d"),
        ("'=already text", "'=already text"),
        ("", ""),
    ],
)
def test_spreadsheet_safe_neutralises_every_part_of_a_cell(typed, safe):
    assert spreadsheet_safe(typed) == safe


def test_csv_lines_quotes_every_cell_and_round_trips_the_safe_text():
    rows = [["id", "name", "count"], ["1", "Ada;=cmd()", "0"], ["2", 'say "hi",\nbye', ""]]
    text = "".join(csv_lines(rows))
    assert text.splitlines()[0] == '"id","name","count"'
    assert_every_cell_quoted(text)
    assert list(csv.reader(io.StringIO(text, newline=""))) == [
        ["id", "name", "count"],
        ["1", "Ada;'=cmd()", "0"],
        ["2", 'say "hi",\nbye', ""],
    ]
