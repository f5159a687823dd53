"""CSV import: documented columns, one result per row, bad rows do not stop the import."""

from __future__ import annotations

import datetime as dt
import io
import time
from decimal import Decimal
from pathlib import Path

import pytest

from pursuit.intake import csv_parse
from pursuit.intake.parsed import ParsedProspect, PayloadError

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _rows() -> dict[int, ParsedProspect | PayloadError]:
    with (FIXTURES / "leads.csv").open(newline="", encoding="utf-8") as stream:
        return dict(csv_parse.iter_csv(stream))


def test_every_column_is_documented():
    for column in csv_parse.COLUMNS:
        assert f"- {column}: " in csv_parse.__doc__


def test_full_row():
    ana = _rows()[2]
    assert isinstance(ana, ParsedProspect)
    assert (ana.first_name, ana.last_name, ana.emails) == ("Ana", "Lopez", ["ana@example.org"])
    assert [(p.number, p.type) for p in ana.phones] == [("312-555-0199", "mobile"), ("312-555-0142", "home")]
    a = ana.address
    assert (a.street, a.city, a.region, a.postal_code, a.country) == (
        "12 Elm St",
        "Chicago",
        "IL",
        "60601",
        "US",
    )
    assert ana.lead_type == "walk-in"
    assert ana.source_name == "Showroom"
    assert ana.requested_at == dt.datetime(2024, 3, 5, 9, 15, tzinfo=dt.UTC)  # naive is UTC
    v = ana.vehicles[0]
    assert (v.interest, v.status, v.year, v.make, v.model, v.trim, v.vin, v.stock, v.price) == (
        "buy",
        "new",
        2024,
        "Mazda",
        "CX-5",
        "GT",
        "JM3KFBDM5R0123456",
        "MZ123",
        Decimal("31450.00"),
    )
    t = ana.trade_ins[0]
    assert (t.interest, t.year, t.make, t.model, t.odometer, t.odometer_units) == (
        "trade-in",
        2015,
        "Ford",
        "Escape",
        98500,
        "mi",
    )
    assert ana.comments == "Wants a test drive\non Saturday"
    assert [(c.channel, c.granted, c.evidence) for c in ana.consents] == [
        ("text", True, "text_opt_in: yes"),
        ("email", False, "email_opt_in: no"),
    ]


def test_rows_are_numbered_as_in_a_spreadsheet_and_errors_do_not_stop_the_import():
    rows = _rows()
    # Row 2 spans two lines (quoted newline); row 5 is blank and skipped.
    assert sorted(rows) == [2, 3, 4, 6, 7, 8, 9, 10, 11]
    mary = rows[3]
    assert (mary.first_name, mary.middle_name, mary.last_name) == ("Mary", "Ann", "Smith")
    assert mary.address.country == "CA"
    assert mary.requested_at == dt.datetime(2024, 3, 5, 14, 15, tzinfo=dt.UTC)
    bob = rows[4]
    assert (bob.first_name, bob.last_name, [(p.number, p.type) for p in bob.phones]) == (
        "Bob",
        "",
        [("(416) 555-0101", "mobile")],
    )
    gus = rows[11]
    assert [(p.number, p.type) for p in gus.phones] == [("555-0100", "mobile")]  # same number once


@pytest.mark.parametrize(
    ("row", "words"),
    [
        (6, "no name and no email or phone"),
        (7, "is not an email address"),
        (8, "lead_type 'robot'"),
        (9, "text_opt_in 'maybe'"),
        (10, "received_at 'yesterday'"),
    ],
)
def test_bad_rows(row, words):
    error = _rows()[row]
    assert isinstance(error, PayloadError)
    assert words in error.reason
    assert error.reason.startswith(f"row {row}: ")
    assert error.line == row


def test_header_without_known_columns():
    results = list(csv_parse.iter_csv(io.StringIO("colour,size\nred,big\n")))
    assert len(results) == 1
    assert results[0][0] == 1
    assert isinstance(results[0][1], PayloadError)


def test_empty_file_and_short_rows():
    assert list(csv_parse.iter_csv(io.StringIO(""))) == []
    ((number, p),) = csv_parse.iter_csv(io.StringIO("\ufefffirst_name,email,phone\nIvy,ivy@example.com\n"))
    assert number == 2 and p.emails == ["ivy@example.com"] and p.phones == []


def test_name_without_contact_is_an_error():
    ((_, error),) = csv_parse.iter_csv(io.StringIO("first_name,email\nJo,\n"))
    assert isinstance(error, PayloadError)
    assert "no email or phone" in error.reason


def test_hundred_thousand_rows_is_fast():
    header = (
        "first_name,last_name,full_name,email,phone,city,country,vehicle_year,vehicle_make,vehicle_price\n"
    )
    lines = [
        f'Jo{i},Doe,,jo{i}@example.com,555-01{i % 100:02d},Austin,USA,2024,Ford,"$1,000"\n'
        if i % 2
        else f",,Mary Ann Smith{i},,555-02{i % 100:02d},,,,,\n"
        for i in range(100_000)
    ]
    stream = io.StringIO(header + "".join(lines))
    started = time.perf_counter()
    count = sum(1 for _, result in csv_parse.iter_csv(stream) if isinstance(result, ParsedProspect))
    elapsed = time.perf_counter() - started
    assert count == 100_000
    assert elapsed < 30, f"100,000 rows took {elapsed:.1f}s"
