"""CSV formula neutralising as a table: which cells a spreadsheet could run, and what they
become."""

import pytest

from helpdesk.tickets.export import neutralise

pytestmark = pytest.mark.unit

CELLS = [
    # as stored          in the CSV
    ("=1+1",             "'=1+1"),
    ("+1",               "'+1"),
    ("-1",               "'-1"),
    ("@A1",              "'@A1"),
    ("\t=1",             "'\t=1"),
    ("\r=1",             "'\r=1"),
    ("\n=1",             "'\n=1"),
    ("  =1",             "'  =1"),
    ("\uff1d1",          "'\uff1d1"),  # full-width equals sign
    ("\uff20A1",         "'\uff20A1"),
    ("",                 ""),
    ("   ",              "   "),
    ("a=1",              "a=1"),
    ("1-2",              "1-2"),
    ("'quoted",          "'quoted"),
    ("2026-12-02T10:00:00Z", "2026-12-02T10:00:00Z"),
]  # fmt: skip


@pytest.mark.parametrize(("cell", "written"), CELLS)
def test_neutralise(cell: str, written: str) -> None:
    assert neutralise(cell) == written
