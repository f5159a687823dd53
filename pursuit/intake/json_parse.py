"""JSON leads (`POST /api/v1/leads`, the new-lead form): one prospect, no database.

The schema is `LeadIn`; the API publishes it in its OpenAPI document. Parsing raises
`PayloadError` with every problem named, so a client sees what to fix.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pursuit.intake.adf import country_code, phone_type, split_full_name
from pursuit.intake.parsed import (
    ParsedAddress,
    ParsedConsent,
    ParsedPhone,
    ParsedProspect,
    ParsedVehicle,
    PayloadError,
)


class PhoneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    number: str = Field(min_length=1, max_length=40)
    type: str = Field("other", description="mobile, home, work, fax, pager or other")


class VehicleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    year: int | None = Field(None, ge=1900, le=2100)
    make: str = ""
    model: str = ""
    trim: str = ""
    vin: str = ""
    stock: str = ""
    condition: Literal["new", "used", ""] = ""
    price: Decimal | None = Field(None, ge=0)
    odometer: int | None = Field(None, ge=0)
    odometer_units: Literal["mi", "km", ""] = ""


class AddressIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    street: str = ""
    apartment: str = ""
    city: str = ""
    region: str = ""
    postal_code: str = ""
    country: str = ""


class LeadIn(BaseModel):
    """A lead as JSON. A name (first/last or full) and one way to reach the person are needed."""

    model_config = ConfigDict(extra="forbid")
    first_name: str = ""
    last_name: str = ""
    full_name: str = ""
    emails: list[str] = []
    phones: list[PhoneIn] = []
    address: AddressIn | None = None
    preferred_contact: Literal["email", "phone", "text", ""] = ""
    type: Literal["internet", "phone", "walk-in", "referral", "other"] = "internet"
    vehicles: list[VehicleIn] = []
    trade_ins: list[VehicleIn] = []
    comments: str = Field("", max_length=10000)
    timeframe: str = ""
    received_at: dt.datetime | None = None
    source: str = Field("", description="Source name, e.g. 'Website chat'")
    external_id: str = Field("", description="The sender's own id for this lead")
    text_opt_in: bool | None = None
    email_opt_in: bool | None = None


def _vehicle(v: VehicleIn, interest: str) -> ParsedVehicle:
    return ParsedVehicle(
        interest=interest,
        status=v.condition,
        year=v.year,
        make=v.make.strip(),
        model=v.model.strip(),
        trim=v.trim.strip(),
        vin=v.vin.strip().upper(),
        stock=v.stock.strip(),
        price=v.price,
        odometer=v.odometer,
        odometer_units=v.odometer_units,
    )


def prospect_from_lead_in(lead: LeadIn, *, issuer: str = "json") -> ParsedProspect:
    first, last, middle = lead.first_name.strip(), lead.last_name.strip(), ""
    if not (first or last) and lead.full_name.strip():
        first, middle, last = split_full_name(lead.full_name)
    if not (first or last):
        raise PayloadError("the lead needs a name: first_name, last_name or full_name")
    emails = [e.strip() for e in lead.emails if e.strip()]
    phones = [
        ParsedPhone(number=p.number.strip(), type=phone_type(p.type)) for p in lead.phones if p.number.strip()
    ]
    if not (emails or phones) and lead.type == "internet":
        raise PayloadError("an internet lead needs a way to reach the person: an email or a phone")
    address = None
    if lead.address is not None:
        a = lead.address
        address = ParsedAddress(
            street=a.street.strip(),
            apartment=a.apartment.strip(),
            city=a.city.strip(),
            region=a.region.strip().upper(),
            postal_code=a.postal_code.strip(),
            country=country_code(a.country),
        )
    consents = []
    if lead.text_opt_in is not None:
        consents.append(ParsedConsent("text", lead.text_opt_in, f"text_opt_in: {lead.text_opt_in}"))
    if lead.email_opt_in is not None:
        consents.append(ParsedConsent("email", lead.email_opt_in, f"email_opt_in: {lead.email_opt_in}"))
    received = lead.received_at
    if received is not None and received.tzinfo is None:
        received = received.replace(tzinfo=dt.UTC)
    return ParsedProspect(
        first_name=first,
        middle_name=middle,
        last_name=last,
        emails=emails,
        phones=phones,
        address=address,
        preferred_contact=lead.preferred_contact,
        lead_type=lead.type,
        vehicles=[_vehicle(v, "buy") for v in lead.vehicles],
        trade_ins=[_vehicle(v, "trade-in") for v in lead.trade_ins],
        comments=lead.comments.strip(),
        timeframe=lead.timeframe.strip(),
        requested_at=received,
        source_name=lead.source.strip(),
        consents=consents,
        external_ids=[(issuer, lead.external_id.strip())] if lead.external_id.strip() else [],
    )


def _explain(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "body"
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)


def parse_json(raw: bytes, *, issuer: str = "json") -> ParsedProspect:
    """Parse a JSON lead. Raises `PayloadError` naming each problem."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PayloadError("the body must be a JSON object")
    try:
        lead = LeadIn.model_validate(data)
    except ValidationError as exc:
        raise PayloadError(_explain(exc)) from None
    return prospect_from_lead_in(lead, issuer=issuer)
