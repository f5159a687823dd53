"""What every intake parser produces: plain data, no database.

ADF/XML, ADF-in-email, CSV and the JSON API all turn their input into a
`ParsedDocument` of one or more `ParsedProspect`s. The intake service
(`pursuit.intake.services`) is the only place that turns a prospect into
customers and leads, so deduplication and assignment behave the same whatever
the channel.

Parsers keep values as written (phones are not normalised here: that needs the
rooftop's country, which only the service knows).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal


class PayloadError(ValueError):
    """A payload that cannot become a lead. `reason` is plain words for an admin
    and the lead provider; `line` is the 1-based line of the problem if known."""

    def __init__(self, reason: str, *, line: int | None = None):
        self.reason = reason
        self.line = line
        super().__init__(f"{reason} (line {line})" if line else reason)


# Phone types as Pursuit stores them. ADF uses voice/phone/cellphone/fax/pager and
# providers invent more (mobile, home, business); the parser maps them to these.
PHONE_TYPES = ("mobile", "home", "work", "fax", "pager", "other")


@dataclass
class ParsedPhone:
    number: str  # as written
    type: str = "other"  # one of PHONE_TYPES
    time: str = ""  # ADF time preference: morning, evening, day, nopreference...
    preferred: bool = False


@dataclass
class ParsedAddress:
    street: str = ""
    apartment: str = ""
    city: str = ""
    region: str = ""  # state/province code as written ("IL", "ON")
    postal_code: str = ""
    country: str = ""  # ISO 3166 alpha-2 where it could be recognised ("US", "CA"), else as written

    def is_empty(self) -> bool:
        return not any((self.street, self.apartment, self.city, self.region, self.postal_code, self.country))


@dataclass
class ParsedVehicle:
    interest: str = "buy"  # buy | lease | sell | trade-in | test-drive
    status: str = ""  # new | used | ""
    year: int | None = None
    make: str = ""
    model: str = ""
    trim: str = ""
    vin: str = ""
    stock: str = ""
    price: Decimal | None = None
    odometer: int | None = None
    odometer_units: str = ""  # km | mi | ""
    comments: str = ""

    def describe(self) -> str:
        return " ".join(str(p) for p in (self.year, self.make, self.model, self.trim) if p)


@dataclass
class ParsedConsent:
    """An opt-in/opt-out statement found in the payload (e.g. an ADF comment line
    "Can we contact you via text?: Yes"), kept as evidence with its words."""

    channel: str  # email | call | text
    granted: bool
    evidence: str  # the exact words it was read from


@dataclass
class ParsedProspect:
    first_name: str = ""
    middle_name: str = ""
    last_name: str = ""
    emails: list[str] = field(default_factory=list)
    phones: list[ParsedPhone] = field(default_factory=list)
    address: ParsedAddress | None = None
    preferred_contact: str = ""  # email | phone | text | ""
    vehicles: list[ParsedVehicle] = field(default_factory=list)  # of interest
    trade_ins: list[ParsedVehicle] = field(default_factory=list)
    comments: str = ""
    timeframe: str = ""
    requested_at: dt.datetime | None = None  # aware; None when absent or unreadable
    status: str = "new"  # ADF prospect status: new | resend
    provider_name: str = ""
    provider_service: str = ""
    vendor_name: str = ""
    source_name: str = ""  # a free "source" such as "OEM Website" when given
    external_ids: list[tuple[str, str]] = field(default_factory=list)  # (issuer, id)
    consents: list[ParsedConsent] = field(default_factory=list)
    lead_type: str = "internet"  # internet | phone | walk-in | referral | other
    has_customer: bool = True  # False when the document names no customer at all

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.middle_name, self.last_name) if p)

    def has_contact_method(self) -> bool:
        return bool(self.emails or self.phones)


@dataclass
class ParsedDocument:
    prospects: list[ParsedProspect]
    warnings: list[str] = field(default_factory=list)  # recovered quirks worth showing an admin
