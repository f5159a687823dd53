"""Normalising phones and emails, so that one person is recognised whatever the channel.

Framework-free: no database, no settings.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import timezone as phone_timezone

_NOT_DIGIT = re.compile(r"\D+")


@dataclass(frozen=True)
class Phone:
    number: str  # E.164 when verified, else as written (trimmed)
    match_key: str  # E.164, or the digits of an unverified number
    verified: bool


def phone_normalise(raw: str, *, region: str) -> Phone | None:
    """The phone as Pursuit stores it, or None when there is nothing to store.

    A number that phonenumbers judges valid for `region` (the rooftop's country, used when the
    number has no country code) becomes E.164 and `verified`. Anything else, such as area codes
    123, 393 or 555, is kept as written and unverified: it is shown to staff but never matches
    another customer on its own.
    """
    written = " ".join(raw.split())
    digits = _NOT_DIGIT.sub("", written)
    if len(digits) < 3:
        return None
    try:
        parsed = phonenumbers.parse(written, region or "US")
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is not None and phonenumbers.is_valid_number(parsed):
        e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        return Phone(number=e164, match_key=e164, verified=True)
    return Phone(number=written[:40], match_key=digits[:40], verified=False)


def phone_display(number: str, *, verified: bool = True) -> str:
    """A number as people read it: national format for a valid E.164 number, else as stored."""
    if not verified or not number.startswith("+"):
        return number
    return _national(number)


@functools.lru_cache(maxsize=4096)
def _national(number: str) -> str:
    # Cached: the same few staff and rooftop numbers go into every message a worker sends.
    try:
        parsed = phonenumbers.parse(number)
    except phonenumbers.NumberParseException:
        return number
    if not phonenumbers.is_valid_number(parsed):
        return number
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)


def phone_time_zone(number: str) -> str:
    """The IANA time zone of a verified E.164 number when it has exactly one, else ""."""
    try:
        zones = phone_timezone.time_zones_for_number(phonenumbers.parse(number))
    except phonenumbers.NumberParseException:
        return ""
    return zones[0] if len(zones) == 1 and zones[0] != "Etc/Unknown" else ""


_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


def email_normalise(raw: str) -> str | None:
    """Trimmed, lower-cased address, or None when it is not an address at all.

    The local part is lower-cased too: mail systems treat it case-insensitively in practice,
    and two spellings of one address must be one customer.
    """
    address = raw.strip().strip("<>").strip().lower()
    if address.startswith("mailto:"):
        address = address[len("mailto:") :]
    return address if _EMAIL.match(address) else None
