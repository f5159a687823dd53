"""Consent statements in lead comments, and the real ADF corpus. No database."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from pursuit.compliance.consent import Flag, consent_flags

CORPUS = Path(__file__).resolve().parents[3] / ".." / "shared" / "adf-corpus"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Can we contact you via text?: Yes", [("text", True)]),
        ("Text Opt-In: Y", [("text", True)]),
        ("SMS opt in: true", [("text", True)]),
        ("SMS consent: true", [("text", True)]),
        ("Email Opt-In: No", [("email", False)]),
        ("Phone Opt-In: Yes", [("call", True)]),
        ("OK to text: yes", [("text", True)]),
        ("Contact by text: no", [("text", False)]),
        ("Text Opt-In: 1", [("text", True)]),
        ("Text Opt-In: on", [("text", True)]),
        ("Text Opt-In: off", [("text", False)]),
        ("Text Opt-In: N.", [("text", False)]),
        ("text_opt_in: True", [("text", True)]),
        ("Email Opt-In = FALSE", [("email", False)]),
        ("- Can we call you?: 0", [("call", False)]),
        ("Do Not Call: Yes", [("call", False)]),
        ("Email Opt-Out: Y", [("email", False)]),
        (
            "Consent to contact by phone, text or email: Yes",
            [("text", True), ("call", True), ("email", True)],
        ),
        ("Can we send text messages to your mobile phone?: Yes", [("text", True)]),
        ("If we can't reach you, may we text?: Yes", [("text", True)]),
        ("Text Opt-In: Y; Email Opt-In: N", [("text", True), ("email", False)]),
        ("Text Opt-In: Y | Phone Opt-In: N", [("text", True), ("call", False)]),
        ("Text Opt-In: Y, Email Opt-In: N", [("text", True), ("email", False)]),
        ("Comments: Can we contact you via text?: Yes", [("text", True)]),
        # Not consent, or not an answer:
        ("Preferred contact: text", []),
        ("Preferred contact method - text opt in: yes", []),
        ("Email Opt-Out: N", []),  # an unticked opt-out box is not a consent
        ("SMS consent: maybe", []),
        ("Text Opt-In: yes please", []),
        ("Opt-in: Yes", []),  # no channel
        ("Phone: 312-555-0100", []),
        ("Text me: yes", []),
        ("Can you deliver the car to my house?", []),
        ("Comments: looking for SUV, new to the country...", []),
    ],
)
def test_consent_lines(line, expected):
    flags = consent_flags(f"Is it still available?\n   {line}  \nThanks")
    assert [(f.channel, f.granted) for f in flags] == expected
    assert all(f.evidence == line for f in flags)


def test_a_lead_comment_block():
    comments = (
        "Is it still available?\r\n"
        "Can we contact you via text?: Yes\r\n"
        "Trade Year: 2015\r\n"
        "Email Opt-In: No\r\n"
        "Phone Opt-In: yes\r\n"
        "Preferred contact: text\r\n"
    )
    assert consent_flags(comments) == [
        Flag(channel="text", granted=True, evidence="Can we contact you via text?: Yes"),
        Flag(channel="email", granted=False, evidence="Email Opt-In: No"),
        Flag(channel="call", granted=True, evidence="Phone Opt-In: yes"),
    ]


def test_nothing_in_nothing():
    assert consent_flags("") == []


# ------------------------------------------------------------------ the real corpus

# Any line a person would read as being about consent, even loosely. Each one must be recognised.
_CONSENT_LOOKING = re.compile(
    r"opt[\s_-]*(?:in|out)\b|\boptin\b|\boptout\b|consent|permission|contact you via|\bsms\b"
    r"|ok(?:ay)? to (?:text|call|e-?mail)|do[\s-]+not[\s-]+(?:call|text|e-?mail)|unsubscrib",
    re.I,
)
_COMMENTS = re.compile(r"<comments\b[^>]*>(.*?)</comments\s*>", re.S | re.I)

# What the corpus holds today: comment blocks in these files, and not one consent line among them.
CORPUS_FILES_WITH_COMMENTS = {
    "activix-1.xml",
    "approvalgenie-1.xml",
    "cargurus-redacted-1.xml",
    "rustadf-1.xml",
    "rustadf-3.xml",
    "seorylie-2.xml",
    "seorylie-3.xml",
    "seorylie-5.xml",
}
CORPUS_FLAGS: dict[str, list[tuple[str, bool, str]]] = {}


def _corpus_comments() -> dict[str, list[str]]:
    """Comment lines per file, read as text: some files are not well-formed XML, and an entity
    (rustadf-3, seorylie-6) must never be expanded, so no XML parser is used here."""
    found: dict[str, list[str]] = {}
    for path in sorted(CORPUS.glob("*.xml")):
        raw = path.read_bytes().decode("utf-8", errors="replace")
        for block in _COMMENTS.findall(raw):
            block = re.sub(r"<!\[CDATA\[(.*?)\]\]>", r"\1", block, flags=re.S)
            lines = [line.strip() for line in html.unescape(block).splitlines() if line.strip()]
            found.setdefault(path.name, []).extend(lines)
    return found


def test_corpus_consent_lines_are_all_recognised():
    if not CORPUS.is_dir():
        pytest.skip(f"ADF corpus not found at {CORPUS}")
    comments = _corpus_comments()
    assert set(comments) == CORPUS_FILES_WITH_COMMENTS
    flags: dict[str, list[tuple[str, bool, str]]] = {}
    for name, lines in comments.items():
        for line in lines:
            found = consent_flags(line)
            if _CONSENT_LOOKING.search(line):
                assert found, f"{name}: consent-looking line not recognised: {line!r}"
            flags.setdefault(name, []).extend((f.channel, f.granted, f.evidence) for f in found)
    assert {name: found for name, found in flags.items() if found} == CORPUS_FLAGS
