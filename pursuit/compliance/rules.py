"""When a call or text may reach a customer: the rule table in rules.yaml, evaluated.

Framework-free: no database, no settings, no clock. Every answer is for the moment passed in.

Contracts:

- `recipient_places(...)` says where the customer may be: the postal address's state/province
  and the phone's area code, each with its time zone. Both are kept when they differ, because
  we cannot tell which is true (compliance.md B4: use the intersection of the two windows; a
  Florida area code brings Florida's rules even with an address elsewhere). With neither, the
  rooftop's own place stands in (its zone, its country's rules, its state's if given): most
  customers live near the dealer, and the national rules still bind.
- `window_check(places, at, channel=, purpose=)` says whether `at` is inside every window that
  applies, and if not, the earliest moment that is. Every rule of every place is checked in
  every zone of every place: a Kentucky number with a California address may be a Kentuckian in
  California, and Kentucky's 10:00 is then 10:00 Pacific. Marketing and transactional messages
  both keep the hours (transactional ones too, to be safe); Sunday and holiday bans are
  solicitation bans and do not apply to transactional messages.
- `place_duties(places, channel=, purpose=)` says what else marketing needs there: the tightest
  rolling-24-hour cap, the states that want prior express written consent for automated
  marketing, and the states whose seller registration the rooftop must hold for this channel
  (Texas texts). Transactional messages owe none of these.
- `rules_load(path=None)` reads and checks the table once per path; a malformed table raises
  `RulesError` listing every problem with its place in the file.

Holidays come from the `holidays` package (the states' legal holidays, observed days
included), because keeping a dozen state calendars by hand is how dates go stale; rules.yaml
adds the days a statute names that the package lacks (Pennsylvania's Good Friday, Flag Day and
Election Day).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import holidays as holiday_calendars
import phonenumbers
import yaml
from phonenumbers import geocoder
from phonenumbers import timezone as phone_timezone

from pursuit.lib.contacts import phone_normalise
from pursuit.lib.hours import WEEKDAYS, local
from pursuit.lib.zones import REGION_ZONES, region_time_zone

RULES_PATH = Path(__file__).resolve().with_name("rules.yaml")
CHANNELS = ("call", "text")
PURPOSES = ("marketing", "transactional")
# Far enough for the longest blackout (a Sunday, a holiday Monday, a weekend), near enough that
# a table with no open hour at all answers quickly.
HORIZON_DAYS = 14
# NANP territories that libphonenumber files under their own region code but that are US law.
US_TERRITORIES = ("PR", "VI", "GU", "AS", "MP")
# A phone "zone" list longer than this is a toll-free or non-geographic number: no evidence.
MAX_PHONE_ZONES = 3

REGION_NAMES = {
    "US": {
        "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
        "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "District of Columbia": "DC",
        "Washington D.C.": "DC", "Washington DC": "DC", "Florida": "FL", "Georgia": "GA",
        "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN", "Iowa": "IA",
        "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME", "Maryland": "MD",
        "Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN", "Mississippi": "MS",
        "Missouri": "MO", "Montana": "MT", "Nebraska": "NE", "Nevada": "NV", "New Hampshire": "NH",
        "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY", "North Carolina": "NC",
        "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR", "Pennsylvania": "PA",
        "Rhode Island": "RI", "South Carolina": "SC", "South Dakota": "SD", "Tennessee": "TN",
        "Texas": "TX", "Utah": "UT", "Vermont": "VT", "Virginia": "VA", "Washington": "WA",
        "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY", "Puerto Rico": "PR",
    },
    "CA": {
        "Alberta": "AB", "British Columbia": "BC", "Manitoba": "MB", "New Brunswick": "NB",
        "Newfoundland and Labrador": "NL", "Newfoundland": "NL", "Nova Scotia": "NS",
        "Northwest Territories": "NT", "Nunavut": "NU", "Ontario": "ON",
        "Prince Edward Island": "PE", "Quebec": "QC", "Québec": "QC", "Saskatchewan": "SK",
        "Yukon": "YT",
    },
}  # fmt: skip


class RulesError(ValueError):
    """rules.yaml cannot be used; `problems` lists what is wrong, each with its place."""

    def __init__(self, problems: list[str], path: Path | str = ""):
        self.problems = problems
        where = f"{path}: " if path else ""
        super().__init__(where + "; ".join(problems))


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class AddedHoliday:
    """A holiday the table names itself: a fixed date, the nth weekday of a month (the first
    `weekday` on or after `on_or_after`), or a day counted from Easter Sunday."""

    name: str
    month: int = 0
    day: int = 0
    weekday: int = -1
    on_or_after: int = 0
    easter: int | None = None

    def date_in(self, year: int) -> dt.date:
        if self.easter is not None:
            return _easter(year) + dt.timedelta(days=self.easter)
        if self.weekday >= 0:
            first = dt.date(year, self.month, self.on_or_after)
            return first + dt.timedelta(days=(self.weekday - first.weekday()) % 7)
        return dt.date(year, self.month, self.day)


@dataclass(frozen=True)
class HolidayCalendar:
    library: bool
    sunday_rolls_to_monday: bool
    add: tuple[AddedHoliday, ...]


@dataclass(frozen=True)
class Rule:
    """One row of the table: a country's national rule or a state's/province's."""

    country: str
    region: str  # "" for the national rule
    code: str  # reason-code suffix: "federal", "FL", "CRTC"
    name: str
    reviewed: dt.date
    source: str
    channels: frozenset[str]
    hours: tuple[tuple[dt.time, dt.time] | None, ...] | None  # Monday first; None: no hours of its own
    no_sunday: bool
    holidays: HolidayCalendar | None
    frequency_cap_24h: int | None
    written_consent_for_automated_marketing: bool
    presumed_resident_by_area_code: bool
    registration_required_for: frozenset[str]
    verify: str


@dataclass(frozen=True)
class Rules:
    reviewed: dt.date
    frequency_cap_24h: int | None  # house default for marketing, on top of the states' caps
    phone_region_rules: str  # "all" | "presumption"
    unknown_country: str
    national: dict[str, Rule]
    regional: dict[tuple[str, str], Rule]

    def for_place(self, place: Place) -> list[Rule]:
        """The rules binding a recipient at `place`: national first, then the region's."""
        country = place.country if place.country in self.national else self.unknown_country
        found = [self.national[country]]
        regional = self.regional.get((place.country, place.region))
        if regional is not None:
            found.append(regional)
        return found


_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_REGION = re.compile(r"^[A-Z]{2}$")
_RULE_FIELDS = {
    "name", "code", "reviewed", "source", "channels", "hours", "no_sunday", "holidays",
    "frequency_cap_24h", "written_consent_for_automated_marketing",
    "presumed_resident_by_area_code", "registration_required_for", "verify",
}  # fmt: skip


class _Reader:
    """Turns the raw YAML into a `Rules`, collecting every problem rather than stopping at one."""

    def __init__(self):
        self.problems: list[str] = []

    def bad(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def mapping(self, value: Any, where: str) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.bad(where, f"expected a mapping, got {type(value).__name__}")
            return {}
        return value

    def date(self, value: Any, where: str) -> dt.date:
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        self.bad(where, f"expected a date such as 2026-11-23, got {value!r}")
        return dt.date.min

    def flag(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            self.bad(where, f"expected true or false, got {value!r}")
            return False
        return value

    def count(self, value: Any, where: str) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.bad(where, f"expected a whole number of at least 1, got {value!r}")
            return None
        return value

    def channels(self, value: Any, where: str) -> frozenset[str]:
        if not isinstance(value, list) or any(v not in CHANNELS for v in value):
            self.bad(where, f"expected a list of {' and '.join(CHANNELS)}, got {value!r}")
            return frozenset()
        return frozenset(value)

    def time(self, value: Any, where: str) -> dt.time:
        if not isinstance(value, str) or not _TIME.match(value):
            # YAML 1.1 reads an unquoted 9:00 as the number 540.
            self.bad(where, f'expected a quoted 24-hour time such as "09:00", got {value!r}')
            return dt.time(0)
        return dt.time.fromisoformat(value)

    def days(self, key: Any, where: str) -> list[int]:
        first, _, last = str(key).partition("-")
        if first not in WEEKDAYS or (last and last not in WEEKDAYS):
            self.bad(where, f"{key!r} is not a day (mon..sun) or a range of days (mon-fri)")
            return []
        a, b = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
        if b < a:
            self.bad(where, f"{key!r}: write the range from the earlier day (weeks start on Monday)")
            return []
        return list(range(a, b + 1))

    def hours(self, value: Any, where: str) -> tuple[tuple[dt.time, dt.time] | None, ...]:
        week: list[tuple[dt.time, dt.time] | None] = [None] * 7
        seen: set[int] = set()
        for key, span in self.mapping(value, where).items():
            here = f"{where}.{key}"
            days = self.days(key, here)
            if seen & set(days):
                self.bad(here, "names a day another entry already names")
            seen |= set(days)
            if span is None:
                continue
            if not isinstance(span, list) or len(span) != 2:
                self.bad(here, f'expected ["HH:MM", "HH:MM"] or null, got {span!r}')
                continue
            start, end = self.time(span[0], here), self.time(span[1], here)
            if start >= end:
                self.bad(here, "the window must start before it ends (windows cannot cross midnight)")
                continue
            for day in days:
                week[day] = (start, end)
        return tuple(week)

    def holidays(self, value: Any, where: str, country: str, region: str) -> HolidayCalendar:
        raw = self.mapping(value, where)
        for key in raw.keys() - {"library", "sunday_rolls_to_monday", "add"}:
            self.bad(where, f"unknown field {key!r}")
        library = self.flag(raw.get("library", False), f"{where}.library")
        if library:
            try:
                holiday_calendars.country_holidays(country, subdiv=region or None, years=2026)
            except NotImplementedError as exc:
                self.bad(f"{where}.library", f"the holidays package has no calendar for it ({exc})")
        added = []
        raw_add = raw.get("add") or []
        if not isinstance(raw_add, list):
            self.bad(f"{where}.add", "expected a list")
            raw_add = []
        for i, item in enumerate(raw_add):
            added.extend(self.added_holiday(item, f"{where}.add[{i}]"))
        return HolidayCalendar(
            library=library,
            sunday_rolls_to_monday=self.flag(
                raw.get("sunday_rolls_to_monday", False), f"{where}.sunday_rolls_to_monday"
            ),
            add=tuple(added),
        )

    def added_holiday(self, item: Any, where: str) -> list[AddedHoliday]:
        item = self.mapping(item, where)
        name = item.get("name")
        if not isinstance(name, str) or not name:
            self.bad(where, "needs a name")
            return []
        shape = frozenset(item) - {"name"}
        try:
            if shape == {"easter"} and isinstance(item["easter"], int):
                holiday = AddedHoliday(name=name, easter=item["easter"])
            elif shape == {"month", "day"}:
                holiday = AddedHoliday(name=name, month=item["month"], day=item["day"])
            elif shape == {"month", "weekday", "on_or_after"} and item["weekday"] in WEEKDAYS:
                holiday = AddedHoliday(
                    name=name,
                    month=item["month"],
                    weekday=WEEKDAYS.index(item["weekday"]),
                    on_or_after=item["on_or_after"],
                )
            else:
                raise ValueError("write {month, day}, {month, weekday, on_or_after} or {easter}")
            holiday.date_in(2028)  # a leap year: 02-29 passes, 02-30 does not
        except (TypeError, ValueError) as exc:
            self.bad(where, str(exc))
            return []
        return [holiday]

    def rule(self, raw: Any, where: str, country: str, region: str) -> Rule:
        raw = self.mapping(raw, where)
        for key in raw.keys() - _RULE_FIELDS:
            self.bad(where, f"unknown field {key!r}")
        for key in ("name", "source"):
            if not isinstance(raw.get(key), str) or not raw[key].strip():
                self.bad(where, f"needs a {key}")
        if "reviewed" not in raw:
            self.bad(where, "needs a reviewed date")
        code = raw.get("code", region)
        if not isinstance(code, str) or not code:
            self.bad(where, "needs a code (the national rule has no region to default to)")
        return Rule(
            country=country,
            region=region,
            code=str(code),
            name=str(raw.get("name", "")),
            reviewed=self.date(raw.get("reviewed"), f"{where}.reviewed"),
            source=str(raw.get("source", "")),
            channels=self.channels(raw.get("channels", list(CHANNELS)), f"{where}.channels"),
            hours=self.hours(raw["hours"], f"{where}.hours") if "hours" in raw else None,
            no_sunday=self.flag(raw.get("no_sunday", False), f"{where}.no_sunday"),
            holidays=(
                self.holidays(raw["holidays"], f"{where}.holidays", country, region)
                if "holidays" in raw
                else None
            ),
            frequency_cap_24h=self.count(raw.get("frequency_cap_24h"), f"{where}.frequency_cap_24h"),
            written_consent_for_automated_marketing=self.flag(
                raw.get("written_consent_for_automated_marketing", False),
                f"{where}.written_consent_for_automated_marketing",
            ),
            presumed_resident_by_area_code=self.flag(
                raw.get("presumed_resident_by_area_code", False), f"{where}.presumed_resident_by_area_code"
            ),
            registration_required_for=self.channels(
                raw.get("registration_required_for", []), f"{where}.registration_required_for"
            ),
            verify=str(raw.get("verify", "")),
        )

    def rules(self, data: Any) -> Rules:
        data = self.mapping(data, "file")
        for key in data.keys() - {"reviewed", "defaults", "countries"}:
            self.bad("file", f"unknown top-level field {key!r}")
        reviewed = self.date(data.get("reviewed"), "reviewed")
        defaults = self.mapping(data.get("defaults"), "defaults")
        for key in defaults.keys() - {"frequency_cap_24h", "phone_region_rules", "unknown_country"}:
            self.bad("defaults", f"unknown field {key!r}")
        phone_region_rules = defaults.get("phone_region_rules", "all")
        if phone_region_rules not in ("all", "presumption"):
            self.bad(
                "defaults.phone_region_rules", f"expected all or presumption, got {phone_region_rules!r}"
            )
        national: dict[str, Rule] = {}
        regional: dict[tuple[str, str], Rule] = {}
        for country, body in self.mapping(data.get("countries"), "countries").items():
            where = f"countries.{country}"
            if not isinstance(country, str) or not _REGION.match(country):
                self.bad(where, "country keys are two-letter ISO codes (quote NO, which YAML reads as false)")
                continue
            body = self.mapping(body, where)
            for key in body.keys() - {"national", "regions"}:
                self.bad(where, f"unknown field {key!r}")
            if "national" not in body:
                self.bad(where, "needs a national rule")
            else:
                national[country] = self.rule(body["national"], f"{where}.national", country, "")
            for region, raw in self.mapping(body.get("regions"), f"{where}.regions").items():
                here = f"{where}.regions.{region}"
                if not isinstance(region, str) or not _REGION.match(region):
                    self.bad(here, "region keys are two-letter codes (quote ON, which YAML reads as true)")
                    continue
                regional[(country, region)] = self.rule(raw, here, country, region)
        unknown_country = defaults.get("unknown_country", "US")
        if unknown_country not in national:
            self.bad("defaults.unknown_country", f"{unknown_country!r} has no national rule in the table")
        return Rules(
            reviewed=reviewed,
            frequency_cap_24h=self.count(defaults.get("frequency_cap_24h"), "defaults.frequency_cap_24h"),
            phone_region_rules=str(phone_region_rules),
            unknown_country=str(unknown_country),
            national=national,
            regional=regional,
        )


class _StrictLoader(yaml.SafeLoader):
    """safe_load that refuses a key written twice: plain YAML keeps the last one silently, and
    two `FL:` entries would drop Florida's first rule without a word."""


def _mapping_once(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"the key {key!r} is written twice", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_once)


@functools.lru_cache(maxsize=8)
def _rules_read(path: Path) -> Rules:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError([f"cannot read the rule table ({exc.strerror})"], path) from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader: no Python tags
    except yaml.YAMLError as exc:
        raise RulesError([f"not valid YAML: {exc}"], path) from None
    reader = _Reader()
    rules = reader.rules(data)
    if reader.problems:
        raise RulesError(reader.problems, path)
    return rules


def rules_load(path: str | Path | None = None) -> Rules:
    """The rule table, read and checked once per path (call `rules_load.cache_clear()` after
    editing the file in a running process). Raises `RulesError` naming every problem."""
    return _rules_read(Path(path or RULES_PATH).resolve())


rules_load.cache_clear = _rules_read.cache_clear  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- where


@dataclass(frozen=True)
class Place:
    """Where the recipient may be: a country, a state/province code ("" when unknown), the IANA
    zone there, and why we think so ("address", "phone" or "rooftop" for the fallback)."""

    country: str
    region: str
    zone: str
    why: str


def _phone_regions(number: phonenumbers.PhoneNumber, country: str) -> list[str]:
    """The states/provinces libphonenumber's geocoder names for a number ("Florida",
    "Chicago, IL", "Nova Scotia/Prince Edward Island"), as codes."""
    if country != "US" and country != "CA":
        return []
    names = REGION_NAMES[country]
    found = []
    for part in geocoder.description_for_number(number, "en").split("/"):
        city, _, code = part.strip().rpartition(", ")
        if city and code in REGION_ZONES[country]:
            found.append(code)
        elif part.strip() in names:
            found.append(names[part.strip()])
    return found


def _phone_places(phone: str, default_region: str) -> list[Place]:
    normalised = phone_normalise(phone, region=default_region) if phone.strip() else None
    if normalised is None or not normalised.verified:
        return []
    number = phonenumbers.parse(normalised.number)
    country = phonenumbers.region_code_for_number(number) or ""
    regions = _phone_regions(number, country)
    if country in US_TERRITORIES:
        country, regions = "US", [country]
    # pursuit.lib.contacts.phone_time_zone gives up on numbers with two zones (709, say); here
    # every one is kept, since the customer may be in either.
    zones = [z for z in phone_timezone.time_zones_for_number(number) if z != "Etc/Unknown"]
    if not zones or len(zones) > MAX_PHONE_ZONES:
        zones = [z for z in (region_time_zone(r, country) for r in regions) if z]
    return [
        Place(country=country, region=region, zone=zone, why="phone")
        for region in (regions or [""])
        for zone in zones
    ]


def recipient_places(
    *,
    country: str,
    region: str,
    phone: str,
    rooftop_zone: str,
    rooftop_country: str = "US",
    rooftop_region: str = "",
    rules: Rules | None = None,
) -> list[Place]:
    """Every place the recipient may be, address first; never empty.

    `country`/`region` come from the postal address ("US"/"FL", "CA"/"ON"; either may be ""),
    `phone` is the number we would contact (E.164, or national for `country` or the rooftop's
    country). A place from the phone differs from the address's when its state or zone does:
    both are returned, so `window_check` applies the stricter combination. With
    `phone_region_rules: presumption` in the table, an area code's state other than the
    address's keeps only its zone unless that state presumes residency by area code.
    With no usable address or phone, the rooftop's own place is returned (`why="rooftop"`).
    """
    rules = rules or rules_load()
    places: list[Place] = []
    code = region.strip().upper()
    given_country = country.strip().upper()
    address_zone = region_time_zone(code, given_country) if code else ""
    if address_zone:
        found_in = [
            c for c in ([given_country] if given_country else ["US", "CA"]) if code in REGION_ZONES[c]
        ]
        places.append(Place(country=found_in[0], region=code, zone=address_zone, why="address"))
    address = places[0] if places else None
    for place in _phone_places(phone, given_country or rooftop_country):
        if (
            address is not None
            and rules.phone_region_rules == "presumption"
            and place.region not in ("", address.region)
        ):
            phone_rule = rules.regional.get((place.country, place.region))
            if phone_rule is None or not phone_rule.presumed_resident_by_area_code:
                place = Place(country=place.country, region="", zone=place.zone, why="phone")
        if all((p.country, p.region, p.zone) != (place.country, place.region, place.zone) for p in places):
            places.append(place)
    if not places:
        places.append(
            Place(
                country=rooftop_country.strip().upper(),
                region=rooftop_region.strip().upper(),
                zone=rooftop_zone,
                why="rooftop",
            )
        )
    return places


# --------------------------------------------------------------------------- when


@dataclass(frozen=True)
class Verdict:
    """`allowed` at the moment asked; `next_at` the earliest moment at or after it that every
    place allows (the moment itself when allowed; None when nothing within HORIZON_DAYS);
    `rule` a reason code ("allowed", "quiet-hours:FL", "sunday:AL", "holiday:AL",
    "no-window"); `detail` the reason in words, in the customer's local time."""

    allowed: bool
    next_at: dt.datetime | None
    rule: str
    detail: str


@dataclass(frozen=True)
class _Check:
    rule: Rule
    zone: ZoneInfo


@dataclass(frozen=True)
class _Day:
    """One rule's answer for one local day: the allowed span, or the reason there is none."""

    span: tuple[dt.datetime, dt.datetime] | None
    reason: str  # "" | "sunday" | "holiday" | "quiet-hours"
    holiday: str = ""


def _easter(year: int) -> dt.date:
    """Easter Sunday (Gregorian; the anonymous algorithm in Meeus, Astronomical Algorithms)."""
    a, (b, c) = year % 19, divmod(year, 100)
    d, e = divmod(b, 4)
    g = (b - (b + 8) // 25 + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


@functools.lru_cache(maxsize=256)
def _holidays_around(country: str, region: str, calendar: HolidayCalendar, year: int) -> dict[dt.date, str]:
    """Blocked days of `year` and its neighbours (a Dec 31 Sunday rolls into January)."""
    years = range(year - 1, year + 2)
    found: dict[dt.date, str] = {}
    if calendar.library:
        found.update(holiday_calendars.country_holidays(country, subdiv=region or None, years=years))
    for added in calendar.add:
        for y in years:
            found.setdefault(added.date_in(y), added.name)
    if calendar.sunday_rolls_to_monday:
        for day, name in list(found.items()):
            if day.weekday() == 6:
                found.setdefault(day + dt.timedelta(days=1), f"{name} (observed)")
    return found


def _day(check: _Check, day: dt.date, purpose: str) -> _Day:
    rule = check.rule
    if purpose == "marketing":
        if rule.holidays is not None:
            name = _holidays_around(rule.country, rule.region, rule.holidays, day.year).get(day)
            if name:
                return _Day(None, "holiday", name)
        if rule.no_sunday and day.weekday() == 6:
            return _Day(None, "sunday")
    if rule.hours is None:  # no hours of its own: the whole day, as far as this rule goes
        return _Day(
            (local(day, dt.time(0), check.zone), local(day + dt.timedelta(days=1), dt.time(0), check.zone)),
            "",
        )
    window = rule.hours[day.weekday()]
    if window is None:
        return _Day(None, "quiet-hours")
    return _Day((local(day, window[0], check.zone), local(day, window[1], check.zone)), "")


def _allows(check: _Check, at: dt.datetime, purpose: str) -> bool:
    span = _day(check, at.astimezone(check.zone).date(), purpose).span
    return span is not None and span[0] <= at < span[1]


def _starts(check: _Check, at: dt.datetime, purpose: str) -> list[dt.datetime]:
    """The starts of this rule's spans after `at`, within the horizon."""
    first = at.astimezone(check.zone).date()
    found = []
    for offset in range(HORIZON_DAYS + 1):
        span = _day(check, first + dt.timedelta(days=offset), purpose).span
        if span is not None and span[0] > at:
            found.append(span[0])
    return found


def _checks(places: Sequence[Place], channel: str, rules: Rules) -> list[_Check]:
    zones = list(dict.fromkeys(p.zone for p in places))
    chosen = list(dict.fromkeys(r for p in places for r in rules.for_place(p) if channel in r.channels))
    return [_Check(rule, ZoneInfo(zone)) for rule in chosen for zone in zones]


def _clock(t: dt.time | dt.datetime) -> str:
    return f"{t.hour}:{t.minute:02d}"


def _moment(m: dt.datetime) -> str:
    return f"{m:%a} {m.day} {m:%b} {_clock(m)}"


def _explain(
    check: _Check, at: dt.datetime, channel: str, purpose: str, next_at: dt.datetime | None, home: ZoneInfo
) -> str:
    """Why `check` refuses `at`, in the rule's own zone; the next moment in `home`, the zone of the
    place we trust most (the address when there is one)."""
    rule, here = check.rule, at.astimezone(check.zone)
    day = _day(check, here.date(), purpose)
    if day.reason == "holiday":
        text = f"{rule.name} bans marketing {channel}s on legal holidays ({day.holiday})"
    elif day.reason == "sunday":
        text = f"{rule.name} bans marketing {channel}s on Sundays"
    elif day.span is None:
        text = f"{rule.name} allows no {channel}s on {here:%A}s"
    else:
        opens, closes = day.span
        text = f"{rule.name} allows {channel}s {_clock(opens)}-{_clock(closes)}"
        if len(set(rule.hours or ())) > 1:
            text += f" on {here:%A}s"
    text += f"; it is {_moment(here)} in {check.zone.key}"
    if next_at is None:
        return text + f"; no allowed moment in the next {HORIZON_DAYS} days"
    return text + f"; next allowed {_moment(next_at.astimezone(home))} in {home.key}"


def window_check(
    places: Sequence[Place],
    at: dt.datetime,
    *,
    channel: str,
    purpose: str,
    rules: Rules | None = None,
) -> Verdict:
    """Whether a `channel` ("call" | "text") message for `purpose` ("marketing" |
    "transactional") may reach a recipient who may be at any of `places` at `at` (aware).

    Every rule that binds any place is checked in the zone of every place; the message may go
    only when all agree. Hours bind both purposes (conservative for transactional messages);
    Sunday and holiday bans bind marketing only. Window ends are exclusive: 21:00 is too late
    for a rule that allows 8:00-21:00. `next_at` (UTC) is found by trying `at` and then each
    window opening in the next HORIZON_DAYS days in order; the allowed time is a union of
    intersections of windows, so its first moment is always one of those openings. Local times
    come from zoneinfo, so openings stay at 8:00 local across daylight-saving changes.
    Seller registration, written consent and caps are `place_duties`'s business.
    """
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {CHANNELS}, not {channel!r}")
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {PURPOSES}, not {purpose!r}")
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("`at` must be an aware datetime")
    if not places:
        raise ValueError("no places: recipient_places always returns at least the rooftop's")
    at = at.astimezone(dt.UTC)
    checks = _checks(places, channel, rules or rules_load())
    failing = [c for c in checks if not _allows(c, at, purpose)]
    if not failing:
        zone = ZoneInfo(places[0].zone)
        return Verdict(
            True, at, "allowed", f"inside every window: it is {_moment(at.astimezone(zone))} in {zone.key}"
        )

    starts = sorted({s for c in checks for s in _starts(c, at, purpose)})
    next_at = next(
        (s.astimezone(dt.UTC) for s in starts if all(_allows(c, s, purpose) for c in checks)), None
    )

    # Name the failing rule that holds the message longest; a state's rule over the national
    # one when they end together, because it is the more specific reason.
    def holds_until(check: _Check) -> tuple[dt.datetime, bool]:
        own = next((s for s in _starts(check, at, purpose) if _allows(check, s, purpose)), None)
        return (own or dt.datetime.max.replace(tzinfo=dt.UTC), bool(check.rule.region))

    binding = max(failing, key=holds_until)
    reason = _day(binding, at.astimezone(binding.zone).date(), purpose).reason or "quiet-hours"
    rule = f"{reason}:{binding.rule.code}" if next_at is not None else "no-window"
    return Verdict(
        False, next_at, rule, _explain(binding, at, channel, purpose, next_at, ZoneInfo(places[0].zone))
    )


# --------------------------------------------------------------------------- what else


@dataclass(frozen=True)
class Duties:
    """What marketing to these places needs besides the window.

    `frequency_cap_24h`: marketing touches (calls, texts, voicemail drops together) allowed per
    rolling 24 hours, the smallest of the states' caps and the house default (None: no cap);
    `cap_rule` names it ("cap:FL", "cap:house"). `written_consent`: codes of the states that
    want prior express written consent evidence before automated marketing. `registration`:
    codes of the states whose seller registration (or exemption) the rooftop must hold to send
    marketing on this channel.
    """

    frequency_cap_24h: int | None
    cap_rule: str
    written_consent: tuple[str, ...]
    registration: tuple[str, ...]


def place_duties(
    places: Sequence[Place], *, channel: str, purpose: str, rules: Rules | None = None
) -> Duties:
    """The duties of marketing by `channel` to a recipient who may be at any of `places`.
    Transactional messages (reminders, receipts) owe none of them: the caps, written-consent
    rules and Texas registration all concern solicitation."""
    if channel not in CHANNELS or purpose not in PURPOSES:
        raise ValueError(f"unknown channel {channel!r} or purpose {purpose!r}")
    if purpose != "marketing":
        return Duties(None, "", (), ())
    rules = rules or rules_load()
    bound = list(dict.fromkeys(r for p in places for r in rules.for_place(p)))
    caps = [(r.frequency_cap_24h, f"cap:{r.code}") for r in bound if r.frequency_cap_24h]
    if rules.frequency_cap_24h:
        caps.append((rules.frequency_cap_24h, "cap:house"))
    cap, cap_rule = min(caps, key=lambda c: (c[0], c[1] == "cap:house")) if caps else (None, "")
    return Duties(
        frequency_cap_24h=cap,
        cap_rule=cap_rule,
        written_consent=tuple(r.code for r in bound if r.written_consent_for_automated_marketing),
        registration=tuple(r.code for r in bound if channel in r.registration_required_for),
    )
