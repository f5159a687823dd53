"""ADF parser: the shared real-world corpus, our own quirk fixtures, and safety."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from pursuit.intake import adf
from pursuit.intake.parsed import ParsedDocument, PayloadError

FIXTURES = Path(__file__).resolve().parent / "fixtures"
REPO_ROOT = Path(__file__).resolve().parents[3]
CORPUS = REPO_ROOT.parent / "shared" / "adf-corpus"

# What each corpus file must give (from the corpus's EXPECTED.md). A dict of
# prospect fields / vehicle fields for an accepted file, or ("keep", words the
# reason must contain, line or None) for a refused one.
ACCEPT = "accept"
KEEP = "keep"
EXPECTATIONS: dict[str, tuple] = {
    "activix-1.xml": (
        ACCEPT,
        {
            "first_name": "Test",
            "last_name": "Activix 2",
            "emails": ["test@activix.ca"],
            "phones": [("+14382881008", "mobile")],
            "vehicle": {
                "interest": "buy",
                "status": "new",
                "year": 2020,
                "make": "Volvo",
                "model": "XC90",
                "trim": "R-Design",
                "vin": "2GTEK19R7V1511644",
                "stock": "V12345",
                "price": Decimal("59999.99"),
            },
            "comments": "Can you deliver the car to my house?",
            "external_ids": [("Activix", "12345")],
            "provider_name": "Activix",
        },
    ),
    "adfbuilder-1.xml": (
        ACCEPT,
        {"has_customer": False, "first_name": "", "emails": [], "phones": [], "vehicle": None},
    ),
    "adfbuilder-2.xml": (
        ACCEPT,
        {"first_name": "New", "last_name": "Guy", "phones": [("(555)-444-3333", "home")], "emails": []},
    ),
    "approvalgenie-1.xml": (
        ACCEPT,
        {
            "first_name": "John",
            "middle_name": "",
            "last_name": "Test01292019",
            "emails": ["testemail@domain.com"],
            "address": ("6299 Airport Road", "Mississauga", "ON", "L4V1N3", "CA"),
            "vehicle": {"interest": "buy", "status": "used", "year": 2023, "make": "Hyundai", "model": "i30"},
            "comments_contain": [
                "Date of Birth: 1980-11-17",
                "Comments: looking for SUV, new to the country...",
            ],
            "provider_name": "PROSPECT",
            "vendor_name": "Approval Genie",
        },
    ),
    "blinkreply-1.xml": (
        ACCEPT,
        {
            "first_name": "Sarah",
            "last_name": "M",
            "emails": [],
            "phones": [],
            "vehicle": {"year": 2024, "make": "", "model": "Elantra Hybrid"},
            "source_name": "OEM Website",
        },
    ),
    "cargurus-redacted-1.xml": (
        ACCEPT,
        {
            "emails": ["redacted@example.com"],
            "phones": [("5195550100", "home")],
            "vehicle": {
                "interest": "buy",
                "status": "used",
                "year": 2016,
                "make": "RAM",
                "model": "2500",
                "vin": "3C6UR5ML5GG359865",
                "stock": "D9760",
                "price": Decimal("34995"),
            },
            "comments": "I'm interested in this 2016 RAM 2500 and I'd like to know if it's still available.",
            "provider_name": "CarGurus",
            "provider_service": "CarGurus",
        },
    ),
    "fetchauto-1.xml": (
        ACCEPT,
        {
            "first_name": "Test",
            "last_name": "user",
            "emails": ["test@fetchauto.ca"],
            "phones": [("778-555-4474", "home")],
            "address": ("453 W 12th Ave", "Vancouver", "BC", "V5Y1V4", "CA"),
            "vehicle": None,
            "provider_name": "Fetch Auto",
            "requested_at": dt.datetime(2018, 4, 15, 23, 30, 20, tzinfo=dt.UTC),
        },
    ),
    "rustadf-1.xml": (
        ACCEPT,
        {
            "first_name": "John",
            "last_name": "Doe",
            "emails": ["jdoe@example.com"],
            "phones": [("393-999-3922", "home")],
            "vehicle": {
                "interest": "buy",
                "status": "used",
                "year": 1997,
                "make": "Chevrolet",
                "model": "Blazer",
                "vin": "1GNDT13W5V2200000",
                "price": Decimal("26995"),
            },
            "comments": "Can deliver by Thursday?",
            "provider_name": "CarPoint",
            "external_ids": [("Cobalt", "38889")],
        },
    ),
    "rustadf-2.xml": (
        ACCEPT,
        {
            "first_name": "Jane",
            "last_name": "Doe",
            "emails": ["jane@example.com"],
            "vehicle": {"year": 2024, "make": "Honda", "model": "Civic"},
        },
    ),
    "rustadf-3.xml": (KEEP, "entities", 1),
    "sendadf-1.xml": (
        ACCEPT,
        {
            "first_name": "John",
            "last_name": "Doe",
            "phones": [("393-999-3922", "home")],
            "vehicle": {"status": "used", "year": 1999, "make": "Chevrolet", "model": "Blazer"},
        },
    ),
    "seorylie-1.xml": (
        ACCEPT,
        {
            "first_name": "John",
            "last_name": "Doe",
            "emails": ["john.doe@example.com"],
            "phones": [("555-123-4567", "home")],
            "vehicle": {"status": "new", "year": 2024, "make": "Honda", "model": "Accord", "trim": "EX-L"},
        },
    ),
    "seorylie-2.xml": (
        ACCEPT,
        {
            "first_name": "Michael",
            "last_name": "Johnson",
            "emails": ["michael.johnson@example.com"],
            "phones": [("555-123-4567", "home"), ("555-987-6543", "mobile")],
            "address": ("456 Oak Avenue", "Springfield", "IL", "62701", "US"),
            "apartment": "Unit 2B",
            "vehicle": {
                "status": "new",
                "year": 2024,
                "make": "Toyota",
                "model": "Camry",
                "trim": "LE Hybrid",
                "vin": "4T1C11AK6PU123456",
                "stock": "TC2024LE001",
                "price": Decimal("32500"),
            },
            "comments_contain": ["trade-in value for my 2018 Honda Civic"],
            "trade": (2018, "Honda", "Civic"),
            "provider_name": "AutoTrader.com",
            "external_ids": [("autotrader", "AT-12345-2024")],
            "timeframe": "within 2 weeks",
        },
    ),
    "seorylie-3.xml": (KEEP, "not well-formed: mismatched tag", 38),
    "seorylie-4.xml": (
        ACCEPT,
        {
            "first_name": "Jane",
            "last_name": "Smith",
            "emails": ["jane.smith@example.com"],
            "vehicle": {"year": 2024, "make": "Honda", "model": "Accord"},
        },
    ),
    "seorylie-5.xml": (
        ACCEPT,
        {
            "first_name": "John",
            "middle_name": "A",
            "last_name": "Smith",
            "emails": ["john.smith@example.com"],
            "vehicle": {
                "status": "new",
                "year": 2025,
                "make": "Toyota",
                "model": "Highlander",
                "trim": "Platinum",
                "vin": "1HGCM82633A123456",
                "stock": "TH2025-123",
                "price": Decimal("46995"),  # the quote wins over the MSRP
            },
            "provider_name": "AutoLeads Connect",
            "timeframe": "Looking to buy within the next month",
            "warning": "no time zone",
        },
    ),
    "seorylie-6.xml": (KEEP, "entities", 3),
}


def _check_accept(name: str, document: ParsedDocument, want: dict) -> None:
    assert len(document.prospects) == 1, name
    p = document.prospects[0]
    for key in (
        "first_name",
        "middle_name",
        "last_name",
        "emails",
        "comments",
        "provider_name",
        "provider_service",
        "vendor_name",
        "source_name",
        "external_ids",
        "has_customer",
        "timeframe",
        "requested_at",
    ):
        if key in want:
            assert getattr(p, key) == want[key], f"{name}: {key}"
    if "phones" in want:
        assert [(ph.number, ph.type) for ph in p.phones] == want["phones"], name
    if "address" in want:
        a = p.address
        assert a is not None, name
        assert (a.street, a.city, a.region, a.postal_code, a.country) == want["address"], name
    if "apartment" in want:
        assert p.address.apartment == want["apartment"]
    if "vehicle" in want:
        if want["vehicle"] is None:
            assert p.vehicles == [], name
        else:
            assert len(p.vehicles) == 1, name
            for key, value in want["vehicle"].items():
                assert getattr(p.vehicles[0], key) == value, f"{name}: vehicle {key}"
    for words in want.get("comments_contain", ()):
        assert words in p.comments, name
    if "trade" in want:
        assert [(t.year, t.make, t.model) for t in p.trade_ins] == [want["trade"]], name
    if "warning" in want:
        assert any(want["warning"] in w for w in document.warnings), name


def test_corpus_file_outcomes():
    if not CORPUS.is_dir():
        pytest.skip(f"ADF corpus not found at {CORPUS}")
    files = sorted(CORPUS.glob("*.xml"))
    assert files
    missing = [f.name for f in files if f.name not in EXPECTATIONS]
    assert not missing, f"corpus files without an expectation in this test: {missing}"
    for path in files:
        outcome, *rest = EXPECTATIONS[path.name]
        if outcome == ACCEPT:
            _check_accept(path.name, adf.parse(path.read_bytes()), rest[0])
        else:
            words, line = rest
            with pytest.raises(PayloadError) as caught:
                adf.parse(path.read_bytes())
            assert words in caught.value.reason, path.name
            assert caught.value.line == line, path.name
            if line:
                assert f"line {line}" in str(caught.value)


def test_adfbuilder_1_keeps_the_vehicle_to_sell_without_a_customer():
    if not CORPUS.is_dir():
        pytest.skip("ADF corpus not found")
    p = adf.parse((CORPUS / "adfbuilder-1.xml").read_bytes()).prospects[0]
    assert p.has_customer is False
    assert [(t.interest, t.year, t.make, t.model) for t in p.trade_ins] == [("sell", 2021, "Toyota", "Prius")]


def test_xxe_never_leaks_the_file():
    if not CORPUS.is_dir():
        pytest.skip("ADF corpus not found")
    with pytest.raises(PayloadError) as caught:
        adf.parse((CORPUS / "seorylie-6.xml").read_bytes())
    error = caught.value
    seen = " ".join((error.reason, str(error), repr(error), repr(error.__cause__), repr(error.__context__)))
    assert "XXE" in error.reason
    assert "root:" not in seen
    assert "/etc/passwd" not in seen
    assert "passwd" not in seen
    assert error.__cause__ is None and error.__context__ is None


def test_entity_bomb_is_refused_without_expanding():
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE adf [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><adf><prospect><customer><comments>&b;'
        b"</comments></customer></prospect></adf>"
    )
    with pytest.raises(PayloadError) as caught:
        adf.parse(bomb)
    assert "aaaaaaaaaa" not in str(caught.value)
    assert "never expands" in caught.value.reason


def test_doctype_without_entities_is_accepted_and_not_fetched():
    doc = (
        b'<!DOCTYPE adf SYSTEM "http://127.0.0.1:9/adf.dtd"><adf><prospect><customer><contact>'
        b'<name part="full">Kim Ng</name></contact></customer></prospect></adf>'
    )
    assert adf.parse(doc).prospects[0].last_name == "Ng"


def test_two_prospects_resend_prices_and_unreadable_date():
    document = adf.parse((FIXTURES / "two-prospects-resend.xml").read_bytes())
    first, second = document.prospects
    assert first.status == "resend"
    assert first.emails == ["ana@example.org"]  # the same address in other case is one email
    assert first.vehicles[0].interest == "lease"
    assert first.vehicles[0].status == "new"
    assert first.vehicles[0].price == Decimal("29990.00")  # offer wins over msrp
    assert first.requested_at == dt.datetime(2024, 3, 5, 14, 15, 0, 250000, tzinfo=dt.UTC)
    assert second.status == "new"
    assert (second.first_name, second.last_name) == ("Bob", "Smith")  # <name> without part is full
    assert second.phones[0].type == "work"
    assert second.requested_at is None
    assert second.vehicles[0].interest == "test-drive"
    assert second.vehicles[0].status == "used"  # from <condition>
    trade = second.trade_ins[0]
    assert (trade.interest, trade.year, trade.make, trade.odometer, trade.odometer_units) == (
        "trade-in",
        2015,
        "Ford",
        98500,
        "mi",
    )
    assert document.warnings == [
        "prospect 2: the request date 'sometime last week' could not be read; it was left empty"
    ]


def test_namespaces_case_optin_and_trade_lines():
    document = adf.parse((FIXTURES / "namespaced-optin-trade.xml").read_bytes())
    p = document.prospects[0]
    assert (p.first_name, p.middle_name, p.last_name) == ("Marie-Claire", "", "Tremblay")
    assert [(ph.number, ph.type) for ph in p.phones] == [
        ("514-555-0110", "mobile"),  # listed as voice then cellphone: one mobile
        ("514-555-0111", "fax"),
        ("514-555-0112", "other"),
    ]
    assert p.address.street == "1000 Rue Sherbrooke, Suite 300"  # street lines in line order
    assert p.address.country == "CA"
    v = p.vehicles[0]
    assert (v.trim, v.odometer, v.odometer_units, v.price) == ("Touring XT", 42000, "km", Decimal("38995"))
    assert p.comments.splitlines()[0] == "Is the Outback still available?"
    assert "\n          " not in p.comments  # indentation stripped
    assert [(c.channel, c.granted, c.evidence) for c in p.consents] == [
        ("text", True, "Can we contact you via text?: Yes"),
        ("email", False, "Email Opt-In: No"),
        ("call", True, "Phone Opt-In: yes"),
    ]
    trade = p.trade_ins[0]
    assert (trade.interest, trade.year, trade.make, trade.model, trade.odometer, trade.odometer_units) == (
        "trade-in",
        2016,
        "Mazda",
        "3",
        120000,
        "km",
    )
    assert p.timeframe == "Within a month"
    assert p.provider_name == "Kijiji Autos"
    assert p.requested_at == dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)
    assert any("no time zone" in w for w in document.warnings)


def test_trade_in_line_and_sms_consent():
    p = adf.parse((FIXTURES / "trade-line-sms.xml").read_bytes()).prospects[0]
    assert [(t.year, t.make, t.model, t.odometer, t.odometer_units) for t in p.trade_ins] == [
        (2018, "Honda", "Civic", 45000, "km")
    ]
    assert [(c.channel, c.granted) for c in p.consents] == [("text", True)]
    assert p.comments.endswith("Please call after 5.")


def test_cp1252_bytes_under_a_false_utf8_declaration():
    document = adf.parse((FIXTURES / "cp1252-false-declaration.xml").read_bytes())
    p = document.prospects[0]
    assert (p.first_name, p.last_name) == ("Hélène", "Côté")
    assert p.comments == "Très intéressée — merci!"
    assert p.vehicles[0].make == "Citroën"
    assert any("cp1252" in w for w in document.warnings)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig", "utf-16-le"])
def test_other_real_encodings(encoding):
    text = '<?xml version="1.0" encoding="utf-8"?><adf><prospect><customer><contact><name>Åsa Öberg</name>'
    text += "</contact></customer></prospect></adf>"
    p = adf.parse(text.encode(encoding)).prospects[0]
    assert (p.first_name, p.last_name) == ("Åsa", "Öberg")


def test_latin1_with_honest_declaration():
    raw = '<?xml version="1.0" encoding="ISO-8859-1"?><adf><prospect><customer><contact><name>René Lévesque'
    raw += "</name></contact></customer></prospect></adf>"
    document = adf.parse(raw.encode("latin-1"))
    assert document.prospects[0].first_name == "René"
    assert document.warnings == []


def test_pi_before_declaration_bom_and_crlf():
    raw = b'\xef\xbb\xbf  <?ADF version="1.0"?>\r\n\r\n<?xml version="1.0"?>\r\n<adf>\r\n<prospect>\r\n'
    raw += b'<customer><contact><name part="first">Al</name><email>al@example.com</email></contact>'
    raw += b"</customer></prospect></adf>"
    assert adf.parse(raw).prospects[0].emails == ["al@example.com"]


def test_undeclared_prefix_is_recovered_with_a_warning():
    raw = b"<adf:adf><adf:prospect><adf:customer><adf:contact><adf:name>Ida Wells</adf:name>"
    raw += b"</adf:contact></adf:customer></adf:prospect></adf:adf>"
    document = adf.parse(raw)
    assert document.prospects[0].last_name == "Wells"
    assert any("namespace prefixes" in w for w in document.warnings)


def test_not_well_formed_names_problem_and_line():
    with pytest.raises(PayloadError) as caught:
        adf.parse(b"<adf>\n<prospect>\n<customer>\n</prospect>\n</adf>")
    assert str(caught.value) == "the XML is not well-formed: mismatched tag (line 4)"
    assert caught.value.line == 4


def test_line_numbers_survive_a_misplaced_declaration():
    with pytest.raises(PayloadError) as caught:
        adf.parse(b'<?adf version="1.0"?>\n<?xml version="1.0"?>\n<adf>\n<prospect>\n</adf>')
    assert caught.value.line == 5


def test_root_not_adf():
    with pytest.raises(PayloadError) as caught:
        adf.parse(b"<lead><prospect/></lead>")
    assert caught.value.reason == "the document is not ADF: root element is <lead>"


@pytest.mark.parametrize("raw", [b"", b"   \r\n", b"\xef\xbb\xbf"])
def test_empty_body(raw):
    with pytest.raises(PayloadError, match="empty"):
        adf.parse(raw)


def test_no_prospect():
    with pytest.raises(PayloadError, match="no <prospect>"):
        adf.parse(b'<adf version="1.0"></adf>')


def test_empty_elements_and_missing_customer_parts():
    p = adf.parse(
        b"<adf><prospect><requestdate/><customer><contact><name/><email/><phone/>"
        b"<address><street/><city/></address></contact></customer><vehicle/></prospect></adf>"
    ).prospects[0]
    assert (p.first_name, p.emails, p.phones, p.address, p.vehicles, p.requested_at) == (
        "",
        [],
        [],
        None,
        [],
        None,
    )
    assert p.has_customer is True


def test_primary_contact_is_preferred():
    p = adf.parse(
        b'<adf><prospect><customer><contact><name part="full">Other Person</name></contact>'
        b'<contact primarycontact="1"><name part="full">Main Person</name></contact></customer>'
        b"</prospect></adf>"
    ).prospects[0]
    assert p.first_name == "Main"


def test_prose_without_a_trade_pattern_invents_nothing():
    p = adf.parse(
        b"<adf><prospect><customer><contact><name>A B</name></contact><comments>I traded my car last "
        b"year. My 2018 Honda Civic is fine. Trade-in: yes</comments></customer></prospect></adf>"
    ).prospects[0]
    assert p.trade_ins == []


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Can we contact you via text?: Yes", [("text", True)]),
        ("Text Opt-In: Yes", [("text", True)]),
        ("Email Opt-In: No", [("email", False)]),
        ("Phone Opt-In: yes", [("call", True)]),
        ("SMS consent: true", [("text", True)]),
        ("Email Opt-Out: Yes", [("email", False)]),
        ("SMS consent: maybe", []),
        ("Phone: 555-0100", []),
        ("Preferred contact: Email", []),
    ],
)
def test_consent_lines(line, expected):
    found = adf.consents_from_text(f"Hello\n  {line}  \nBye")
    assert [(c.channel, c.granted) for c in found] == expected
    assert all(c.evidence == line for c in found)


@pytest.mark.parametrize(
    ("value", "code"),
    [("Canada", "CA"), ("United States", "US"), ("USA", "US"), ("us", "US"), ("Narnia", "Narnia"), ("", "")],
)
def test_country_codes(value, code):
    assert adf.country_code(value) == code


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("voice", "home"),
        ("phone", "home"),
        ("cellphone", "mobile"),
        ("Mobile", "mobile"),
        ("business", "work"),
        ("fax", "fax"),
        ("pager", "pager"),
        ("sat", "other"),
        ("", "other"),
    ],
)
def test_phone_types(value, kind):
    assert adf.phone_type(value) == kind


@pytest.mark.parametrize(
    ("full", "parts"),
    [
        ("New Guy", ("New", "", "Guy")),
        ("Mary Ann Smith", ("Mary", "Ann", "Smith")),
        ("Smith, John", ("John", "", "Smith")),
        ("John Smith Jr.", ("John", "", "Smith Jr.")),
        ("Jean de la Fontaine", ("Jean", "", "de la Fontaine")),
        ("Cher", ("Cher", "", "")),
    ],
)
def test_split_full_name(full, parts):
    assert adf.split_full_name(full) == parts


def test_timestamps():
    assert adf.parse_timestamp("2018-04-15T15:30:20.000-08:00")[0] == dt.datetime(
        2018, 4, 15, 23, 30, 20, tzinfo=dt.UTC
    )
    assert adf.parse_timestamp("2024-01-15T10:30:00Z") == (
        dt.datetime(2024, 1, 15, 10, 30, tzinfo=dt.UTC),
        "",
    )
    value, warning = adf.parse_timestamp("2025/06/01 10:15:30")
    assert value == dt.datetime(2025, 6, 1, 10, 15, 30, tzinfo=dt.UTC) and "UTC" in warning
    assert adf.parse_timestamp("next week")[0] is None
