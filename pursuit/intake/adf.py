"""ADF/XML lead parser: bytes in, `ParsedDocument` out, no database.

ADF ("Auto-lead Data Format", 1.0) is the XML every lead provider sends, and
almost none sends it as the DTD says. This parser is strict about safety and
lenient about everything else:

* safety: parsed with defusedxml; a DOCTYPE that declares entities is refused
  (nothing is ever expanded or fetched) and the reason never quotes the entity;
* quirks recovered: `<?ADF?>` before `<?xml?>`, a false encoding declaration,
  namespaced or upper-case tags, nested or full names, duplicate phones, several
  prices, timestamps without an offset, unreadable dates (recorded as warnings);
* refused with `PayloadError(reason, line=...)`: empty body, XML that is not
  well-formed, a root that is not `<adf>`, a document without a `<prospect>`.

Opt-in lines and trade-in lines in the customer's comments are read into
`ParsedConsent` and trade-in `ParsedVehicle`s; the comment itself is kept verbatim.
"""

from __future__ import annotations

import codecs
import datetime as dt
import re
import xml.etree.ElementTree as StdET
from decimal import Decimal, InvalidOperation
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml.common import DefusedXmlException, DTDForbidden, EntitiesForbidden
from nameparser import HumanName
from nameparser.config import CONSTANTS as NAME_CONSTANTS

from pursuit.intake.parsed import (
    ParsedAddress,
    ParsedConsent,
    ParsedDocument,
    ParsedPhone,
    ParsedProspect,
    ParsedVehicle,
    PayloadError,
)

__all__ = [
    "parse",
    "decode_bytes",
    "country_code",
    "phone_type",
    "split_full_name",
    "parse_timestamp",
    "parse_price",
    "consents_from_text",
    "trades_from_text",
]

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_DECLARED_ENCODING = re.compile(rb"""<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""", re.I)
# Only the real declaration: `<?xml-stylesheet?>` and friends are ordinary PIs.
_XML_DECL = re.compile(r"<\?xml(?:\s[^>]*?)?\?>", re.I)
_ENTITY_DECL = re.compile(r"<!ENTITY", re.I)
# Used only to retry a document whose prefixes were never declared.
_TAG_PREFIX = re.compile(r"(</?)[A-Za-z_][\w.-]*:(?=[A-Za-z_])")
_ATTR_PREFIX = re.compile(r"(\s)(?!xmlns)[A-Za-z_][\w.-]*:(?=[A-Za-z_][\w.-]*\s*=)")

_TRUE = frozenset({"1", "true", "yes", "y", "on"})


# --------------------------------------------------------------------------- decoding


def decode_bytes(raw: bytes) -> tuple[str, str, str]:
    """Decode an XML payload by its bytes, not by its declaration.

    Returns (text, encoding used, encoding declared or ""). Order: a BOM; UTF-16
    without BOM (NUL bytes around "<"); UTF-8; the declared encoding if it is a
    real codec that decodes the bytes; cp1252; latin-1 (which never fails).
    """
    for bom, name in _BOMS:
        if raw.startswith(bom):
            return raw[len(bom) :].decode(name, errors="replace"), name, _declared(raw, name)
    head = raw[:4]
    if head[:2] == b"<\x00" or (head[:1] in (b" ", b"\n", b"\r") and head[1:2] == b"\x00"):
        return raw.decode("utf-16-le", errors="replace"), "utf-16-le", _declared(raw, "utf-16-le")
    if head[:2] == b"\x00<" or (head[:1] == b"\x00" and head[1:2] in (b" ", b"\n", b"\r")):
        return raw.decode("utf-16-be", errors="replace"), "utf-16-be", _declared(raw, "utf-16-be")
    declared = _declared(raw, "ascii")
    try:
        return raw.decode("utf-8"), "utf-8", declared
    except UnicodeDecodeError:
        pass
    if declared and not declared.lower().replace("_", "-").startswith(("utf-8", "utf8", "utf-16", "utf-32")):
        try:
            return raw.decode(declared), codecs.lookup(declared).name, declared
        except (LookupError, UnicodeDecodeError):
            pass
    try:
        return raw.decode("cp1252"), "cp1252", declared
    except UnicodeDecodeError:
        return raw.decode("latin-1"), "latin-1", declared


def _declared(raw: bytes, encoding: str) -> str:
    head = raw[:400]
    if encoding.startswith(("utf-16", "utf-32")):
        # Re-encode the head as ASCII-ish bytes so the same regex finds the declaration.
        head = head.decode(encoding, errors="ignore").encode("ascii", errors="ignore")
    m = _DECLARED_ENCODING.search(head)
    return m.group(1).decode("ascii") if m else ""


def _same_codec(a: str, b: str) -> bool:
    try:
        return codecs.lookup(a).name == codecs.lookup(b).name
    except LookupError:
        return False


def _prepare(raw: bytes, warnings: list[str]) -> str:
    """Decoded text with every XML declaration removed, line numbers preserved."""
    text, used, declared = decode_bytes(raw)
    if declared and not _same_codec(declared, used):
        ascii_compatible = used == "utf-8" and raw.isascii()
        if not (ascii_compatible and _is_ascii_superset(declared)):
            warnings.append(f"the document declares encoding {declared!r} but is {used}; read as {used}")
    text = text.lstrip("\ufeff")
    # The declaration is only legal at the very start, and its encoding is now
    # meaningless (we feed UTF-8): drop it wherever it is, keeping its newlines.
    return _XML_DECL.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def _is_ascii_superset(name: str) -> bool:
    try:
        return "a<".encode(name) == b"a<"
    except (LookupError, UnicodeError):
        return False


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _safe_tree(data: bytes) -> Element:
    return SafeET.fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)


def _to_tree(text: str, warnings: list[str]) -> Element:
    refused = ""
    try:
        return _safe_tree(text.encode("utf-8"))
    except (EntitiesForbidden, DTDForbidden):
        refused = "entities"
    except DefusedXmlException:
        refused = "external"
    except StdET.ParseError as exc:
        problem = str(exc).split(":", 1)[0]
        line = exc.position[0] if getattr(exc, "position", None) else None
    # Raised outside the handlers: defusedxml's exception carries the entity's value
    # or system id (the attack itself), and must not even ride along as __context__.
    if refused == "entities":
        m = _ENTITY_DECL.search(text)
        raise PayloadError(
            "the document declares XML entities, which Pursuit never expands (possible XXE attack)",
            line=_line_of(text, m.start()) if m else None,
        )
    if refused:
        raise PayloadError(
            "the document uses an XML feature Pursuit refuses for safety (external references)"
        )
    if problem.startswith("unbound prefix"):
        stripped = _ATTR_PREFIX.sub(r"\1", _TAG_PREFIX.sub(r"\1", text))
        try:
            root = _safe_tree(stripped.encode("utf-8"))
        except (StdET.ParseError, DefusedXmlException):
            pass
        else:
            warnings.append("the document uses namespace prefixes it never declares; they were ignored")
            return root
    # expat says "not well-formed (invalid token)"; PayloadError adds the line itself.
    detail = problem.removeprefix("not well-formed").strip(" ()") or problem
    raise PayloadError(f"the XML is not well-formed: {detail}", line=line)


def _normalise_tags(root: Element) -> None:
    # Namespaces and case carry no meaning in ADF as providers send it.
    for el in root.iter():
        if isinstance(el.tag, str):
            el.tag = el.tag.rsplit("}", 1)[-1].split(":")[-1].lower()
        if el.attrib:
            el.attrib = {k.rsplit("}", 1)[-1].lower(): v for k, v in el.attrib.items()}


# --------------------------------------------------------------------------- small readers


def _text(el: Element | None) -> str:
    """All text under `el`, whitespace collapsed to single spaces."""
    if el is None:
        return ""
    return " ".join("".join(el.itertext()).split())


def _child_text(el: Element | None, tag: str) -> str:
    """The first non-empty direct child `tag` of `el`."""
    if el is None:
        return ""
    for child in el.findall(tag):
        value = _text(child)
        if value:
            return value
    return ""


def _block_text(el: Element | None) -> str:
    """Multi-line text: each line's indentation stripped, outer blank lines dropped."""
    if el is None:
        return ""
    lines = [line.strip() for line in "".join(el.itertext()).splitlines()]
    return "\n".join(lines).strip()


def _is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in _TRUE


_COUNTRIES = {
    "canada": "CA",
    "can": "CA",
    "united states": "US",
    "united states of america": "US",
    "usa": "US",
    "u.s.": "US",
    "u.s.a.": "US",
    "u.s.a": "US",
    "u.s": "US",
    "america": "US",
    "mexico": "MX",
    "méxico": "MX",
    "mex": "MX",
    "united kingdom": "GB",
    "uk": "GB",
    "great britain": "GB",
}


def country_code(value: str) -> str:
    """ISO 3166 alpha-2 for common spellings ("Canada", "USA"); two letters are
    upper-cased; anything else is returned as written."""
    value = value.strip()
    known = _COUNTRIES.get(value.lower())
    if known:
        return known
    if len(value) == 2 and value.isalpha():
        return value.upper()
    return value


_PHONE_TYPES = {
    "voice": "home",
    "phone": "home",
    "home": "home",
    "landline": "home",
    "cellphone": "mobile",
    "cell": "mobile",
    "mobile": "mobile",
    "cellular": "mobile",
    "sms": "mobile",
    "business": "work",
    "work": "work",
    "office": "work",
    "fax": "fax",
    "pager": "pager",
}


def phone_type(value: str | None, *, default: str = "other") -> str:
    """Map a provider's phone type to one of `PHONE_TYPES`."""
    if not value or not value.strip():
        return default
    return _PHONE_TYPES.get(value.strip().lower(), "other")


# Words that make nameparser's work necessary; any other name is split by position,
# which is what nameparser would do, 100 times faster (CSV imports of 100,000 rows).
_NAME_SPECIAL_WORDS = frozenset(
    word.lower()
    for group in (
        NAME_CONSTANTS.titles,
        NAME_CONSTANTS.suffix_acronyms,
        NAME_CONSTANTS.suffix_not_acronyms,
        NAME_CONSTANTS.prefixes,
        NAME_CONSTANTS.conjunctions,
    )
    for word in group
) | {"ii", "iii", "iv"}


def split_full_name(full: str) -> tuple[str, str, str]:
    """(first, middle, last) of a full name; titles and nicknames are dropped,
    a suffix ("Jr.") stays with the last name."""
    words = full.split()
    if not words:
        return "", "", ""
    if (
        len(words) <= 4
        and not any(ch in full for ch in ',"()')
        and not any(w.lower().strip(".") in _NAME_SPECIAL_WORDS for w in words)
    ):
        if len(words) == 1:
            return words[0], "", ""
        return words[0], " ".join(words[1:-1]), words[-1]
    full = " ".join(words)
    name = HumanName(full)
    last = " ".join(p for p in (name.last, name.suffix) if p)
    if not (name.first or last):
        return full, "", ""
    return name.first, name.middle, last


def parse_timestamp(value: str) -> tuple[dt.datetime | None, str]:
    """(aware datetime or None, warning or ""). ISO 8601 with or without
    milliseconds, "Z" or an offset; no offset is read as UTC with a warning."""
    value = value.strip()
    if not value:
        return None, ""
    parsed = None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        for fmt in ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M %p"):
            try:
                parsed = dt.datetime.strptime(value, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        return None, f"the request date {value!r} could not be read; it was left empty"
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC), f"the request date {value!r} has no time zone; read as UTC"
    return parsed, ""


_PRICE_JUNK = str.maketrans("", "", "$€£, \u00a0")


def parse_price(value: str) -> Decimal | None:
    """A price from "34995", "$34,995.00" or "34 995"; None when unreadable."""
    cleaned = value.translate(_PRICE_JUNK)
    cleaned = re.sub(r"^[A-Za-z]{3}|[A-Za-z]{3}$", "", cleaned)  # "CAD34995" / "34995USD"
    if not cleaned:
        return None
    try:
        price = Decimal(cleaned)
    except InvalidOperation:
        return None
    return price if price.is_finite() and price >= 0 else None


_YEAR = re.compile(r"\b(19[0-9]{2}|20[0-9]{2})\b")
_DIGITS = re.compile(r"\d[\d,. ]*")
_DECIMALS = re.compile(r"\.\d{1,2}$")


def _year(value: str) -> int | None:
    m = _YEAR.search(value)
    return int(m.group(1)) if m else None


def _odometer(value: str) -> int | None:
    """The first number in `value`: "45,000 km" -> 45000, "15.0" -> 15, "about 15 miles" -> 15."""
    m = _DIGITS.search(value)
    if not m:
        return None
    number = m.group(0).strip()
    if _DECIMALS.search(number):  # "15.0" or "15.25", not the thousands of "45.000"
        number = number[: number.rindex(".")]
    digits = "".join(ch for ch in number if ch.isdigit())
    return int(digits) if digits else None


def _odometer_units(value: str) -> str:
    value = value.strip().lower().rstrip(".")
    if value in ("km", "kms", "kilometers", "kilometres", "k"):
        return "km"
    if value in ("mi", "mile", "miles", "mls"):
        return "mi"
    return ""


# --------------------------------------------------------------------------- comments


def consents_from_text(text: str) -> list[ParsedConsent]:
    """Opt-in statements in free text, one per line and channel, e.g.
    "Can we contact you via text?: Yes" -> text granted, "Email Opt-In: No" -> email refused.
    The reading is the compliance module's (an unticked opt-out box is not consent; a question
    about texting a mobile phone is not consent to calls); the evidence is the line as written."""
    from pursuit.compliance.consent import consent_flags

    return [
        ParsedConsent(channel=f.channel, granted=f.granted, evidence=f.evidence) for f in consent_flags(text)
    ]


_TRADE_LINE = re.compile(r"^\s*trade(?:[\s_-]*in)?(?:[\s_-]*vehicle)?\s*[:=]\s*(?P<value>.+?)\s*$", re.I)
_TRADE_FIELD = re.compile(
    r"^\s*trade(?:[\s_-]*in)?[\s_-]*(?:vehicle[\s_-]*)?"
    r"(?P<field>year|make|model|trim|vin|mileage|odometer|kilometers|kilometres|kms|km|miles)"
    r"\s*[:=]\s*(?P<value>.*?)\s*$",
    re.I,
)
_VEHICLE_WORDS = re.compile(
    r"^(?P<year>19\d{2}|20\d{2})\s+(?P<words>.+?)"
    r"(?:[\s,]+(?P<odo>\d[\d,.]*)\s*(?P<units>km|kms|kilometers|kilometres|mi|miles)\.?)?\s*$",
    re.I,
)
# After the word "trade" in the same sentence: "... for my 2018 Honda Civic".
_TRADE_PROSE = re.compile(
    r"\btrade(?:[\s-]*in)?\b[^.!?\n]{0,80}?\bmy\s+(?P<year>19\d{2}|20\d{2})\s+"
    r"(?P<make>[A-Za-z][\w-]*)\s+(?P<model>[A-Za-z0-9][\w-]*)",
    re.I,
)
_NOT_A_MODEL = frozenset(
    {"with", "and", "for", "that", "which", "in", "at", "on", "is", "i", "it", "to", "as"}
)
_TWO_WORD_MAKES = frozenset(
    {"land rover", "alfa romeo", "aston martin", "mercedes benz", "rolls royce", "mini cooper"}
)


def _vehicle_from_words(year: str, words: str) -> tuple[str, str, str]:
    parts = words.split()
    if len(parts) >= 2 and f"{parts[0]} {parts[1]}".lower() in _TWO_WORD_MAKES:
        parts = [f"{parts[0]} {parts[1]}", *parts[2:]]
    make = parts[0] if parts else ""
    model = parts[1] if len(parts) > 1 else ""
    trim = " ".join(parts[2:])
    return make, model, trim


def trades_from_text(text: str) -> list[ParsedVehicle]:
    """Trade-in vehicles stated in comment lines: "Trade-in: 2018 Honda Civic 45000 km",
    or "Trade Year/Make/Model/Mileage: ..." lines, or (prose) "trade ... my 2018 Honda
    Civic". A line that does not name a year and a make is not a trade."""
    trades: list[ParsedVehicle] = []
    fields: dict[str, str] = {}
    field_lines: list[str] = []
    for line in text.splitlines():
        fm = _TRADE_FIELD.match(line)
        if fm:
            if fm.group("value"):
                fields.setdefault(fm.group("field").lower(), fm.group("value"))
                field_lines.append(line.strip())
            continue
        tm = _TRADE_LINE.match(line)
        if tm:
            vm = _VEHICLE_WORDS.match(tm.group("value"))
            if vm:
                make, model, trim = _vehicle_from_words(vm.group("year"), vm.group("words"))
                odo = vm.group("odo")
                trades.append(
                    ParsedVehicle(
                        interest="trade-in",
                        year=int(vm.group("year")),
                        make=make,
                        model=model,
                        trim=trim,
                        odometer=_odometer(odo) if odo else None,
                        odometer_units=_odometer_units(vm.group("units") or ""),
                        comments=line.strip(),
                    )
                )
    if fields and any(k in fields for k in ("year", "make", "model", "vin")):
        distance_key = next(
            (
                k
                for k in ("mileage", "odometer", "kilometers", "kilometres", "kms", "km", "miles")
                if k in fields
            ),
            "",
        )
        distance = fields.get(distance_key, "")
        units = _odometer_units(distance_key) or _odometer_units(re.sub(r"[\d,.\s]", "", distance))
        trades.append(
            ParsedVehicle(
                interest="trade-in",
                year=_year(fields.get("year", "")),
                make=fields.get("make", ""),
                model=fields.get("model", ""),
                trim=fields.get("trim", ""),
                vin=fields.get("vin", ""),
                odometer=_odometer(distance) if distance else None,
                odometer_units=units,
                comments="\n".join(field_lines),
            )
        )
    if not trades:
        for pm in _TRADE_PROSE.finditer(text):
            if pm.group("model").lower() in _NOT_A_MODEL:
                continue
            trades.append(
                ParsedVehicle(
                    interest="trade-in",
                    year=int(pm.group("year")),
                    make=pm.group("make"),
                    model=pm.group("model"),
                    comments=pm.group(0),
                )
            )
    return trades


# --------------------------------------------------------------------------- elements


def _names(contact: Element, prospect: ParsedProspect) -> None:
    parts: dict[str, str] = {}
    full = ""
    for name in contact.findall("name"):
        nested = {child.tag: _text(child) for child in name if child.tag in ("first", "middle", "last")}
        if any(nested.values()):
            for key, value in nested.items():
                if value:
                    parts.setdefault(key, value)
            continue
        value = _text(name)
        if not value:
            continue
        part = (name.get("part") or "").strip().lower()
        if part not in ("first", "middle", "last", "full"):
            # fetchauto writes type="full"; ADF's own type is individual/business.
            kind = (name.get("type") or "").strip().lower()
            part = kind if kind in ("first", "middle", "last") else "full"
        if part == "full":
            full = full or value
        else:
            parts.setdefault(part, value)
    if not (parts.get("first") or parts.get("last")) and full:
        first, middle, last = split_full_name(full)
        parts = {"first": first, "middle": parts.get("middle") or middle, "last": last}
    prospect.first_name = parts.get("first", "")
    prospect.middle_name = parts.get("middle", "")
    prospect.last_name = parts.get("last", "")


def _phones(contact: Element) -> tuple[list[ParsedPhone], bool]:
    phones: dict[str, ParsedPhone] = {}
    any_preferred = False
    for el in contact.findall("phone"):
        number = _text(el)
        if not number:
            continue
        digits = "".join(ch for ch in number if ch.isdigit())
        key = digits.lstrip("1") if len(digits) == 11 and digits.startswith("1") else digits
        key = key or number.lower()
        kind = phone_type(el.get("type"), default="home")  # ADF's default type is "voice"
        preferred = _is_true(el.get("preferredcontact"))
        any_preferred = any_preferred or preferred
        time = (el.get("time") or "").strip().lower()
        known = phones.get(key)
        if known is None:
            phones[key] = ParsedPhone(number=number, type=kind, time=time, preferred=preferred)
            continue
        # The same number listed with several types: it is a mobile if any listing says so.
        if kind == "mobile" or (known.type in ("fax", "pager") and kind not in ("fax", "pager")):
            known.type = kind
        known.time = known.time or time
        known.preferred = known.preferred or preferred
    return list(phones.values()), any_preferred


def _address(el: Element | None) -> ParsedAddress | None:
    if el is None:
        return None
    streets = sorted(
        (s for s in el.findall("street") if _text(s)),
        key=lambda s: int(s.get("line")) if (s.get("line") or "").isdigit() else 0,
    )
    address = ParsedAddress(
        street=", ".join(_text(s) for s in streets),
        apartment=_child_text(el, "apartment"),
        city=_child_text(el, "city"),
        region=_child_text(el, "regioncode") or _child_text(el, "region") or _child_text(el, "state"),
        postal_code=_child_text(el, "postalcode") or _child_text(el, "zip") or _child_text(el, "zipcode"),
        country=country_code(_child_text(el, "country")),
    )
    return None if address.is_empty() else address


_INTERESTS = {
    "buy": "buy",
    "purchase": "buy",
    "lease": "lease",
    "sell": "sell",
    "trade-in": "trade-in",
    "tradein": "trade-in",
    "trade in": "trade-in",
    "trade": "trade-in",
    "test-drive": "test-drive",
    "testdrive": "test-drive",
    "test drive": "test-drive",
    "test_drive": "test-drive",
}
_PRICE_ORDER = ("quote", "asking", "offer", "msrp")


def _vehicle_status(value: str) -> str:
    value = value.strip().lower()
    if value == "new":
        return "new"
    if value in ("used", "pre-owned", "preowned", "certified", "cpo", "certified pre-owned"):
        return "used"
    return ""


def _vehicle(el: Element, warnings: list[str]) -> ParsedVehicle | None:
    interest = _INTERESTS.get((el.get("interest") or "").strip().lower(), "buy")
    status = _vehicle_status(el.get("status") or "") or _vehicle_status(_child_text(el, "condition"))
    trim = _child_text(el, "trim")
    if not trim:
        trim = next((t for t in (_text(x) for x in el.iter("trim")) if t), "")
    prices = [(p.get("type", "").strip().lower(), _text(p)) for p in el.findall("price") if _text(p)]
    price = None
    if prices:
        chosen = next(
            (text for kind in _PRICE_ORDER for (ptype, text) in prices if ptype == kind), prices[0][1]
        )
        price = parse_price(chosen)
        if price is None:
            warnings.append(f"the vehicle price {chosen!r} could not be read")
    odometer_el = el.find("odometer")
    if odometer_el is None or not _text(odometer_el):
        odometer_el = el.find("mileage")
    odometer = units = None
    if odometer_el is not None and _text(odometer_el):
        odometer = _odometer(_text(odometer_el))
        units = _odometer_units(odometer_el.get("units") or "")
    year_text = _child_text(el, "year")
    vehicle = ParsedVehicle(
        interest=interest,
        status=status,
        year=_year(year_text) if year_text else None,
        make=_child_text(el, "make"),
        model=_child_text(el, "model"),
        trim=trim,
        vin=_child_text(el, "vin"),
        stock=_child_text(el, "stock"),
        price=price,
        odometer=odometer,
        odometer_units=units or "",
        comments=_block_text(el.find("comments")),
    )
    if not (vehicle.describe() or vehicle.vin or vehicle.stock):
        return None
    return vehicle


def _pick_contact(customer: Element) -> Element:
    contacts = customer.findall("contact")
    for contact in contacts:
        if _is_true(contact.get("primarycontact")):
            return contact
    # blinkreply puts <name> straight under <customer>.
    return contacts[0] if contacts else customer


def _timeframe(*owners: Element | None) -> str:
    for owner in owners:
        if owner is None:
            continue
        for el in owner.findall("timeframe"):
            value = _child_text(el, "description") or " ".join((el.text or "").split())
            if value:
                return value
    return ""


def _provider_name(provider: Element | None) -> str:
    if provider is None:
        return ""
    for name in provider.findall("name"):
        value = _text(name)
        if value:
            return value
    return ""


def _same_vehicle(a: ParsedVehicle, b: ParsedVehicle) -> bool:
    return (a.year, a.make.lower(), a.model.lower()) == (b.year, b.make.lower(), b.model.lower())


def _prospect(el: Element, warnings: list[str]) -> ParsedProspect:
    prospect = ParsedProspect()
    status = (el.get("status") or "").strip().lower()
    if status == "resend":
        prospect.status = "resend"
    elif status not in ("", "new"):
        warnings.append(f"unknown prospect status {status!r}; read as new")

    prospect.requested_at, warning = parse_timestamp(_child_text(el, "requestdate"))
    if warning:
        warnings.append(warning)

    for id_el in el.findall("id"):
        value = _text(id_el)
        if value:
            prospect.external_ids.append(((id_el.get("source") or "").strip(), value))

    customer = el.find("customer")
    comment_parts: list[str] = []
    if customer is None:
        prospect.has_customer = False
    else:
        contact = _pick_contact(customer)
        _names(contact, prospect)
        seen: set[str] = set()
        email_preferred = False
        for email_el in contact.findall("email"):
            email = _text(email_el)
            if email and email.lower() not in seen:
                seen.add(email.lower())
                prospect.emails.append(email)
                email_preferred = email_preferred or _is_true(email_el.get("preferredcontact"))
        prospect.phones, phone_preferred = _phones(contact)
        prospect.preferred_contact = "email" if email_preferred else "phone" if phone_preferred else ""
        prospect.address = _address(contact.find("address"))
        comment_parts += [_block_text(c) for c in customer.findall("comments")]
    comment_parts += [_block_text(c) for c in el.findall("comments")]
    prospect.comments = "\n".join(c for c in comment_parts if c)
    prospect.timeframe = _timeframe(customer, el)

    for vehicle_el in el.findall("vehicle"):
        vehicle = _vehicle(vehicle_el, warnings)
        if vehicle is None:
            continue
        target = prospect.trade_ins if vehicle.interest in ("sell", "trade-in") else prospect.vehicles
        target.append(vehicle)

    if prospect.comments:
        prospect.consents = consents_from_text(prospect.comments)
        for trade in trades_from_text(prospect.comments):
            if not any(_same_vehicle(trade, known) for known in prospect.trade_ins):
                prospect.trade_ins.append(trade)

    provider = el.find("provider")
    prospect.provider_name = _provider_name(provider)
    prospect.provider_service = _child_text(provider, "service")
    if provider is not None:
        for id_el in provider.findall("id"):
            value = _text(id_el)
            if value:
                # Marked as the provider's: it identifies the provider, not this lead.
                source = (id_el.get("source") or "").strip()
                prospect.external_ids.append((f"provider:{source}" if source else "provider", value))
    prospect.vendor_name = _child_text(el.find("vendor"), "vendorname")
    prospect.source_name = _child_text(el, "source")
    return prospect


# --------------------------------------------------------------------------- entry point


def parse(raw: bytes) -> ParsedDocument:
    """Parse one ADF document into its prospects.

    Raises `PayloadError` when the payload cannot become a lead: empty, not
    well-formed (reason names the problem, `line` its position), entity
    declarations (refused, never expanded), a root other than `<adf>`, or no
    `<prospect>`. Recoverable quirks become `ParsedDocument.warnings`.
    """
    if not raw or not raw.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"):
        raise PayloadError("the payload is empty")
    warnings: list[str] = []
    text = _prepare(raw, warnings)
    if not text.strip():
        raise PayloadError("the payload is empty")
    root = _to_tree(text, warnings)
    _normalise_tags(root)
    if root.tag != "adf":
        raise PayloadError(f"the document is not ADF: root element is <{root.tag}>")
    prospect_els = root.findall("prospect") or list(root.iter("prospect"))
    if not prospect_els:
        raise PayloadError("the ADF document contains no <prospect>")
    prospects: list[ParsedProspect] = []
    for index, prospect_el in enumerate(prospect_els, start=1):
        local: list[str] = []
        prospects.append(_prospect(prospect_el, local))
        prefix = f"prospect {index}: " if len(prospect_els) > 1 else ""
        warnings += [prefix + w for w in local]
    return ParsedDocument(prospects=prospects, warnings=warnings)
