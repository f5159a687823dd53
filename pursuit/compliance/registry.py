"""Reading a copy of a national do-not-call registry (compliance.md row 7).

File format
-----------
A plain text file (UTF-8 or ASCII), one telephone number per line, in either shape:

    3125550143          ten digits: area code, exchange, line number
    312,5550143         area code, a comma, the seven-digit number (the shape of the FTC's
                        National Do Not Call Registry download)

- A number may carry the North American country code in front: "+13125550143", "13125550143",
  "+1312,5550143". No other country code is accepted.
- Spaces around the number and around the comma, Windows line endings and a byte-order mark are
  ignored. Dashes, dots, brackets and spaces inside the number are not accepted.
- Blank lines and lines starting with "#" (comments) are ignored.
- The first line that is neither blank nor a comment may be a header (any line with a letter in
  it, such as "AreaCode,PhoneNumber"); it is skipped.
- A number is accepted when its area code and its exchange (the three digits after the area code)
  both start with 2-9, the North American Numbering Plan's rule. Every other line is reported with
  its line number (counting from 1, blank and comment lines included) and is not a number.

Each accepted number is read as E.164: "312,5550143" is "+13125550143". US and Canadian numbers
share the plan, so the same format serves the CRTC's National DNCL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

_NUMBER = re.compile(r"(?:\+1|1)?(?:(\d{3})\s*,\s*(\d{7})|(\d{3})(\d{7}))", re.ASCII)
_LETTER = re.compile(r"[A-Za-z]")
_STRIP = " \t\r\n\ufeff"


def registry_read(lines: Iterable[str]) -> Iterator[tuple[int, str | None, str]]:
    """(line number, E.164 number or None, problem) for every number line of a registry copy.

    An accepted line gives ("+13125550143", ""); a rejected one gives (None, the reason in plain
    words, with the start of the line). Blank, comment and header lines give nothing. Lazy: one
    line is read per item yielded, so a file of millions of lines never sits in memory; pass the
    open file itself, not `readlines()`.
    """
    header_allowed = True
    for line_number, raw in enumerate(lines, start=1):
        text = raw.strip(_STRIP)
        if not text or text[0] == "#":
            continue
        # Fast paths for the two common shapes: a registry has millions of lines.
        if len(text) == 10 and text.isascii() and text.isdigit():
            area, local = text[:3], text[3:]
        elif (
            len(text) == 11
            and text[3] == ","
            and text.isascii()
            and text[:3].isdigit()
            and text[4:].isdigit()
        ):
            area, local = text[:3], text[4:]
        else:
            match = _NUMBER.fullmatch(text)
            if match is None:
                if header_allowed and _LETTER.search(text):
                    header_allowed = False
                    continue
                header_allowed = False
                yield line_number, None, f"not a phone number: {text[:40]!r}"
                continue
            area = match.group(1) or match.group(3)
            local = match.group(2) or match.group(4)
        header_allowed = False
        # The numbering plan's rule alone, not phonenumbers' per-area-code tables: parsing every
        # line would take minutes per file, and the list is only matched against, never dialled.
        # A well-formed entry that is not in service can match nothing, because the numbers it
        # is compared with were validated by phonenumbers at intake. The rule is there to catch
        # mangled lines (a lost digit fails the shape, shifted columns mostly fail the rule) and
        # report them; one that slips through is an extra entry that, as above, matches nobody.
        if area[0] in "01":
            yield line_number, None, f"area code {area} starts with 0 or 1"
        elif local[0] in "01":
            yield line_number, None, f"exchange {local[:3]} starts with 0 or 1"
        else:
            yield line_number, f"+1{area}{local}", ""
