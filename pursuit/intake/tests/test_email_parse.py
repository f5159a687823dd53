"""ADF in email: attachments, text bodies and HTML bodies in any transfer encoding."""

from __future__ import annotations

import base64
from decimal import Decimal
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest

from pursuit.intake import email_parse
from pursuit.intake.parsed import PayloadError

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_base64_attachment_with_two_prospects():
    document = email_parse.parse_email(_fixture("base64-attachment.eml"))
    assert [p.last_name for p in document.prospects] == ["Lopez", "Smith"]
    assert document.prospects[0].status == "resend"
    assert document.prospects[0].vehicles[0].price == Decimal("29990.00")


def test_quoted_printable_latin1_text_body():
    document = email_parse.parse_email(_fixture("quoted-printable-body.eml"))
    p = document.prospects[0]
    assert (p.first_name, p.last_name) == ("José", "Álvarez")
    assert p.phones[0].number == "+1 (602) 555-0123"
    assert p.phones[0].type == "mobile"
    # The soft line break inside <trim> is undone by the transfer decoding.
    assert p.vehicles[0].trim == "XLE AWD Premium Package with Technology and Weather Package"
    assert p.comments == "Text Opt-In: Yes\nQuiero más información = precio final."
    assert [(c.channel, c.granted) for c in p.consents] == [("text", True)]
    assert document.warnings == []  # the declared ISO-8859-1 was rewritten, not reported


def test_html_body_with_escaped_adf():
    p = email_parse.parse_email(_fixture("html-escaped-adf.eml")).prospects[0]
    assert (p.first_name, p.last_name) == ("Zoë", "O'Brien")
    assert p.emails == ["zoe@example.com"]  # the <a mailto> wrapper is gone
    assert p.comments == "Fish & chips <3"
    assert (p.vehicles[0].year, p.vehicles[0].make, p.vehicles[0].model) == (2022, "Jeep", "Wrangler")


def test_html_body_with_raw_adf_in_pre():
    p = email_parse.parse_email(_fixture("html-pre-raw-adf.eml")).prospects[0]
    assert (p.first_name, p.last_name) == ("Sam", "Lee")
    assert p.emails == ["sam@example.com"]
    assert p.phones[0].type == "mobile"
    assert p.comments == "Price & availability? Café colour"


def test_no_adf_counts_the_parts():
    with pytest.raises(PayloadError) as caught:
        email_parse.parse_email(_fixture("no-adf.eml"))
    assert caught.value.reason == "the email contains no ADF/XML lead (looked in 2 parts)"


def test_extract_adf_returns_the_attachment_bytes():
    data = email_parse.extract_adf(_fixture("base64-attachment.eml"))
    assert data == (FIXTURES / "two-prospects-resend.xml").read_bytes()


def _message_with_attachment(payload: bytes, *, maintype: str, subtype: str, filename: str | None) -> bytes:
    message = EmailMessage()
    message["From"] = "leads@example.com"
    message["To"] = "dealer@example.com"
    message["Subject"] = "Lead"
    message.set_content("See attachment.")
    message.add_attachment(payload, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes(policy=default_policy)


ADF = (
    '<?xml version="1.0" encoding="utf-16"?><adf><prospect><customer><contact>'
    '<name part="full">Noor Haddad</name><email>noor@example.com</email></contact>'
    "</customer></prospect></adf>"
)


@pytest.mark.parametrize(
    ("maintype", "subtype", "filename"),
    [
        ("application", "xml", None),
        ("text", "xml", None),
        ("application", "octet-stream", "lead.adf"),
        ("application", "octet-stream", "LEAD.XML"),
        ("application", "octet-stream", "mystery.bin"),  # found because it contains <adf
    ],
)
def test_attachment_kinds(maintype, subtype, filename):
    raw = _message_with_attachment(ADF.encode("utf-8"), maintype=maintype, subtype=subtype, filename=filename)
    assert b"base64" in raw.lower()
    assert email_parse.parse_email(raw).prospects[0].emails == ["noor@example.com"]


def test_utf16_attachment_with_bom():
    raw = _message_with_attachment(
        ADF.encode("utf-16"), maintype="application", subtype="xml", filename="a.xml"
    )
    assert email_parse.parse_email(raw).prospects[0].last_name == "Haddad"


def test_eight_bit_plain_body_in_windows_1252():
    body = "Lead:\n" + ADF.replace("Noor", "Noël") + "\n-- \nsig"
    raw = (
        b"From: a@example.com\r\nTo: b@example.com\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: text/plain; charset="windows-1252"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'
        + body.encode("cp1252")
    )
    assert email_parse.parse_email(raw).prospects[0].first_name == "Noël"


def test_forwarded_message_is_searched():
    inner = _message_with_attachment(ADF.encode(), maintype="application", subtype="xml", filename="lead.xml")
    outer = (
        b"From: fw@example.com\r\nTo: b@example.com\r\nSubject: Fwd: Lead\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="X"\r\n\r\n--X\r\nContent-Type: text/plain\r\n\r\nFYI\r\n'
        b"--X\r\nContent-Type: message/rfc822\r\n\r\n" + inner + b"\r\n--X--\r\n"
    )
    assert email_parse.parse_email(outer).prospects[0].first_name == "Noor"


def test_base64_text_body():
    encoded = base64.encodebytes(ADF.encode("utf-8"))
    raw = (
        b"From: a@example.com\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" + encoded
    )
    assert email_parse.parse_email(raw).prospects[0].first_name == "Noor"


def test_entity_declaration_in_an_email_is_still_refused():
    body = '<?xml version="1.0"?>\n<!DOCTYPE adf [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<adf><prospect/></adf>'
    raw = b"From: a@example.com\r\nSubject: x\r\nContent-Type: text/plain\r\n\r\nHi\r\n" + body.encode()
    with pytest.raises(PayloadError) as caught:
        email_parse.parse_email(raw)
    assert "entities" in caught.value.reason
    assert "passwd" not in str(caught.value)


def test_non_adf_xml_attachment_is_reported_as_not_adf():
    raw = _message_with_attachment(
        b"<invoice><total>1</total></invoice>", maintype="application", subtype="xml", filename="invoice.xml"
    )
    with pytest.raises(PayloadError, match="root element is <invoice>"):
        email_parse.parse_email(raw)


def test_truncated_adf_in_body_reports_not_well_formed():
    raw = (
        b"From: a@example.com\r\nSubject: x\r\nContent-Type: text/plain\r\n\r\n<adf><prospect><customer>\r\n"
    )
    with pytest.raises(PayloadError, match="not well-formed"):
        email_parse.parse_email(raw)


def test_empty_email():
    with pytest.raises(PayloadError, match="empty"):
        email_parse.extract_adf(b"")
