"""CSV lead import: one prospect per row, no database.

Header names are case-insensitive (spaces and dashes count as underscores) and
unknown columns are ignored. A row needs a name (first_name, last_name or
full_name) and a way to reach the person (email, phone or mobile); everything
else is optional. A bad row becomes a `PayloadError` for that row and the import
goes on.

Columns (`COLUMNS`):

- first_name: given name.
- last_name: family name.
- full_name: whole name, split into first/middle/last when first_name and last_name are empty.
- email: email address (must contain "@").
- phone: phone number as written (not normalised here).
- phone_type: type of `phone`: mobile/cell, home/voice, work/business, fax, pager; default other.
- mobile: a mobile number (stored as type mobile).
- street: street address.
- city: city.
- region: state or province code ("IL", "ON").
- postal_code: ZIP or postal code.
- country: country code or name ("CA", "Canada", "USA").
- lead_type: internet, phone, walk-in, referral or other; default internet.
- source: free source name ("Showroom", "OEM Website").
- received_at: when the lead came in, ISO 8601; without an offset it is UTC.
- vehicle_year: model year of the vehicle of interest.
- vehicle_make: make of the vehicle of interest.
- vehicle_model: model of the vehicle of interest.
- vehicle_trim: trim of the vehicle of interest.
- vehicle_vin: VIN of the vehicle of interest.
- vehicle_stock: dealer stock number of the vehicle of interest.
- vehicle_status: new or used.
- vehicle_price: price ("34995", "$34,995.00").
- trade_year: model year of the trade-in.
- trade_make: make of the trade-in.
- trade_model: model of the trade-in.
- trade_odometer: trade-in odometer reading (digits; "45,000 km" is read as 45000 km).
- comments: the customer's comments, kept verbatim.
- text_opt_in: yes/no: consent to text messages (kept as consent evidence).
- email_opt_in: yes/no: consent to email (kept as consent evidence).
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Iterator
from typing import TextIO

from pursuit.intake.adf import country_code, parse_price, phone_type, split_full_name
from pursuit.intake.parsed import (
    ParsedAddress,
    ParsedConsent,
    ParsedPhone,
    ParsedProspect,
    ParsedVehicle,
    PayloadError,
)

__all__ = ["COLUMNS", "iter_csv"]

COLUMNS: tuple[str, ...] = (
    "first_name",
    "last_name",
    "full_name",
    "email",
    "phone",
    "phone_type",
    "mobile",
    "street",
    "city",
    "region",
    "postal_code",
    "country",
    "lead_type",
    "source",
    "received_at",
    "vehicle_year",
    "vehicle_make",
    "vehicle_model",
    "vehicle_trim",
    "vehicle_vin",
    "vehicle_stock",
    "vehicle_status",
    "vehicle_price",
    "trade_year",
    "trade_make",
    "trade_model",
    "trade_odometer",
    "comments",
    "text_opt_in",
    "email_opt_in",
)

_LEAD_TYPES = {
    "internet": "internet",
    "web": "internet",
    "phone": "phone",
    "walk-in": "walk-in",
    "walkin": "walk-in",
    "walk in": "walk-in",
    "walk_in": "walk-in",
    "referral": "referral",
    "other": "other",
}
_YES = frozenset({"yes", "y", "true", "1", "opt-in", "opted in"})
_NO = frozenset({"no", "n", "false", "0", "opt-out", "opted out"})
_STATUSES = {"new": "new", "used": "used", "pre-owned": "used", "preowned": "used", "certified": "used"}


def _header_key(name: str) -> str:
    return name.strip().lstrip("\ufeff").strip().lower().replace(" ", "_").replace("-", "_")


def _year(value: str, column: str) -> int:
    if len(value) == 4 and value.isdigit() and 1900 <= int(value) <= 2100:
        return int(value)
    raise PayloadError(f"{column} {value!r} is not a model year")


def _consent(value: str, column: str, channel: str) -> ParsedConsent:
    answer = value.lower()
    if answer in _YES:
        return ParsedConsent(channel=channel, granted=True, evidence=f"{column}: {value}")
    if answer in _NO:
        return ParsedConsent(channel=channel, granted=False, evidence=f"{column}: {value}")
    raise PayloadError(f"{column} {value!r} is not yes or no")


def _received_at(value: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise PayloadError(f"received_at {value!r} is not an ISO 8601 date") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _odometer(value: str) -> tuple[int, str]:
    lowered = value.lower()
    units = "km" if "km" in lowered or "kilom" in lowered else "mi" if "mi" in lowered else ""
    digits = "".join(ch for ch in lowered.split(".")[0] if ch.isdigit())
    if not digits:
        raise PayloadError(f"trade_odometer {value!r} is not a number")
    return int(digits), units


def _prospect(get: Callable[[str], str]) -> ParsedProspect:
    first, last, full = get("first_name"), get("last_name"), get("full_name")
    middle = ""
    if not (first or last) and full:
        first, middle, last = split_full_name(full)
    email = get("email")
    if email and "@" not in email:
        raise PayloadError(f"email {email!r} is not an email address")
    phones: list[ParsedPhone] = []
    mobile = get("mobile")
    if mobile:
        phones.append(ParsedPhone(number=mobile, type="mobile"))
    phone = get("phone")
    if phone and (not mobile or _digits(phone) != _digits(mobile)):
        phones.append(ParsedPhone(number=phone, type=phone_type(get("phone_type"))))
    if not (first or last) and not (email or phones):
        raise PayloadError("the row has no name and no email or phone")
    if not (first or last):
        raise PayloadError("the row has no name (first_name, last_name or full_name)")
    if not (email or phones):
        raise PayloadError("the row has no email or phone")

    prospect = ParsedProspect(
        first_name=first,
        middle_name=middle,
        last_name=last,
        emails=[email] if email else [],
        phones=phones,
        comments=get("comments"),
        source_name=get("source"),
    )
    address = ParsedAddress(
        street=get("street"),
        city=get("city"),
        region=get("region"),
        postal_code=get("postal_code"),
        country=country_code(get("country")),
    )
    if not address.is_empty():
        prospect.address = address

    lead_type = get("lead_type")
    if lead_type:
        known = _LEAD_TYPES.get(lead_type.lower())
        if known is None:
            raise PayloadError(
                f"lead_type {lead_type!r} is not one of internet, phone, walk-in, referral, other"
            )
        prospect.lead_type = known
    received = get("received_at")
    if received:
        prospect.requested_at = _received_at(received)

    year, make, model = get("vehicle_year"), get("vehicle_make"), get("vehicle_model")
    vin, stock = get("vehicle_vin"), get("vehicle_stock")
    if year or make or model or vin or stock:
        status = get("vehicle_status")
        if status and status.lower() not in _STATUSES:
            raise PayloadError(f"vehicle_status {status!r} is not new or used")
        price_text = get("vehicle_price")
        price = parse_price(price_text) if price_text else None
        if price_text and price is None:
            raise PayloadError(f"vehicle_price {price_text!r} is not a price")
        prospect.vehicles.append(
            ParsedVehicle(
                status=_STATUSES[status.lower()] if status else "",
                year=_year(year, "vehicle_year") if year else None,
                make=make,
                model=model,
                trim=get("vehicle_trim"),
                vin=vin,
                stock=stock,
                price=price,
            )
        )
    trade_year, trade_make, trade_model = get("trade_year"), get("trade_make"), get("trade_model")
    if trade_year or trade_make or trade_model:
        odometer_text = get("trade_odometer")
        odometer, units = _odometer(odometer_text) if odometer_text else (None, "")
        prospect.trade_ins.append(
            ParsedVehicle(
                interest="trade-in",
                year=_year(trade_year, "trade_year") if trade_year else None,
                make=trade_make,
                model=trade_model,
                odometer=odometer,
                odometer_units=units,
            )
        )
    text_opt_in, email_opt_in = get("text_opt_in"), get("email_opt_in")
    if text_opt_in:
        prospect.consents.append(_consent(text_opt_in, "text_opt_in", "text"))
    if email_opt_in:
        prospect.consents.append(_consent(email_opt_in, "email_opt_in", "email"))
    return prospect


def _digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


def iter_csv(stream: TextIO) -> Iterator[tuple[int, ParsedProspect | PayloadError]]:
    """Yield (row number, prospect or PayloadError) for each data row of a CSV.

    Row numbers are spreadsheet rows: the header is row 1, the first data row
    row 2. Blank rows are skipped. A header naming none of the name or contact
    columns yields a single error for row 1 and nothing else.
    """
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        return
    known = set(COLUMNS)
    index: dict[str, int] = {}
    for position, name in enumerate(header):
        key = _header_key(name)
        if key in known and key not in index:
            index[key] = position
    if not index.keys() & {"first_name", "last_name", "full_name", "email", "phone", "mobile"}:
        yield 1, PayloadError("the CSV header names none of the columns " + ", ".join(COLUMNS), line=1)
        return

    row_number = 1
    for row in reader:
        row_number += 1
        if not any(cell.strip() for cell in row):
            continue
        width = len(row)

        def get(column: str, _row: list[str] = row, _width: int = width) -> str:
            position = index.get(column)
            if position is None or position >= _width:
                return ""
            return _row[position].strip()

        try:
            yield row_number, _prospect(get)
        except PayloadError as exc:
            yield row_number, PayloadError(f"row {row_number}: {exc.reason}", line=row_number)
