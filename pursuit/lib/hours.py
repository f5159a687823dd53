"""Opening hours, business days and local time: the arithmetic every schedule stands on.

Framework-free. Every function takes the moment it reasons about (`at`) and returns aware
datetimes; nothing reads the clock. Local times are built with zoneinfo, so a schedule is
right across daylight-saving changes: "tomorrow at 10:00" stays 10:00 local whether the day in
between had 23, 24 or 25 hours. A local time that does not exist (the hour skipped in spring)
is read as the same wall time after the change (02:30 becomes 03:30).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
UTC = dt.UTC


@dataclass(frozen=True)
class Hours:
    """When a rooftop is open: spans of local time per weekday, and closed dates."""

    zone: ZoneInfo
    spans: dict[str, tuple[tuple[dt.time, dt.time], ...]]
    closed: frozenset[dt.date] = field(default_factory=frozenset)

    @classmethod
    def build(cls, *, time_zone: str, business_hours: dict, holidays: Iterable[dt.date] = ()) -> Hours:
        spans = {
            day: tuple(
                sorted(
                    (dt.time.fromisoformat(a), dt.time.fromisoformat(b))
                    for a, b in business_hours.get(day, [])
                )
            )
            for day in WEEKDAYS
        }
        return cls(zone=ZoneInfo(time_zone), spans=spans, closed=frozenset(holidays))

    @classmethod
    def always(cls, time_zone: str = "UTC") -> Hours:
        """Open every minute of every day (for steps with no window)."""
        whole = ((dt.time(0, 0), dt.time.max),)
        return cls(zone=ZoneInfo(time_zone), spans=dict.fromkeys(WEEKDAYS, whole))

    def spans_on(self, day: dt.date) -> tuple[tuple[dt.time, dt.time], ...]:
        if day in self.closed:
            return ()
        return self.spans.get(WEEKDAYS[day.weekday()], ())

    def is_business_day(self, day: dt.date) -> bool:
        return bool(self.spans_on(day))


def local(day: dt.date, time: dt.time, zone: ZoneInfo) -> dt.datetime:
    """The aware moment of a local wall time (see the module docstring for skipped hours)."""
    naive = dt.datetime.combine(day, time)
    moment = naive.replace(tzinfo=zone).astimezone(UTC)
    return moment.astimezone(zone)


def is_open(at: dt.datetime, hours: Hours) -> bool:
    here = at.astimezone(hours.zone)
    return any(a <= here.time() < b for a, b in hours.spans_on(here.date()))


def next_open(at: dt.datetime, hours: Hours, *, horizon_days: int = 400) -> dt.datetime:
    """`at` if the rooftop is open then, else the moment it next opens.

    Raises ValueError when it never opens within `horizon_days` (a rooftop with no hours).
    """
    here = at.astimezone(hours.zone)
    for offset in range(horizon_days):
        day = here.date() + dt.timedelta(days=offset)
        for opens, closes in hours.spans_on(day):
            start, end = local(day, opens, hours.zone), local(day, closes, hours.zone)
            if offset == 0 and here >= end:
                continue
            return max(start, here) if offset == 0 else start
    raise ValueError("the rooftop is never open: give it business hours")


def add_business_days(at: dt.datetime, days: int, hours: Hours) -> dt.datetime:
    """The same local time `days` business days later (closed days and holidays skipped)."""
    here = at.astimezone(hours.zone)
    day, left = here.date(), days
    guard = 0
    while left > 0:
        day += dt.timedelta(days=1)
        guard += 1
        if guard > 3660:
            raise ValueError("no business days within ten years: give the rooftop business hours")
        if hours.is_business_day(day):
            left -= 1
    return local(day, here.time().replace(tzinfo=None), hours.zone)


def add_offset(at: dt.datetime, amount: int, unit: str, hours: Hours) -> dt.datetime:
    """`at` moved by `amount` `unit`s: minutes and hours are elapsed time; days are calendar days
    at the same local time; business days skip days the rooftop is closed."""
    # Elapsed time is added in UTC: Python adds a timedelta to an aware datetime's wall time.
    if unit == "minutes":
        return (at.astimezone(UTC) + dt.timedelta(minutes=amount)).astimezone(hours.zone)
    if unit == "hours":
        return (at.astimezone(UTC) + dt.timedelta(hours=amount)).astimezone(hours.zone)
    if unit == "days":
        here = at.astimezone(hours.zone)
        return local(here.date() + dt.timedelta(days=amount), here.time().replace(tzinfo=None), hours.zone)
    if unit == "business-days":
        return add_business_days(at, amount, hours)
    raise ValueError(f"unknown unit {unit!r}")
