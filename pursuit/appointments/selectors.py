"""The rooftop's appointments laid out for the calendar: by day, then by person."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from pursuit.appointments.models import Appointment


@dataclass
class Day:
    date: dt.date
    by_person: dict[str, list[Appointment]] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(len(items) for items in self.by_person.values())


def calendar(*, rooftop, start: dt.date, days: int = 7, person=None, statuses=None) -> list[Day]:
    """`days` days from `start` in the rooftop's time, each with its appointments grouped by who
    the customer will see ("Unassigned" last), one query."""
    zone = ZoneInfo(rooftop.time_zone)
    begin = dt.datetime.combine(start, dt.time(), tzinfo=zone)
    end = dt.datetime.combine(start + dt.timedelta(days=days), dt.time(), tzinfo=zone)
    appointments = Appointment.objects.filter(
        rooftop=rooftop, starts_at__gte=begin, starts_at__lt=end
    ).select_related("lead__customer", "with_user")
    if person is not None:
        appointments = appointments.filter(with_user=person)
    if statuses:
        appointments = appointments.filter(status__in=statuses)
    layout = [Day(start + dt.timedelta(days=n)) for n in range(days)]
    for appointment in appointments.order_by("starts_at", "id"):
        day = layout[(appointment.starts_at.astimezone(zone).date() - start).days]
        name = appointment.with_user.display_name if appointment.with_user else "Unassigned"
        day.by_person.setdefault(name, []).append(appointment)
    for day in layout:
        day.by_person = dict(sorted(day.by_person.items(), key=lambda kv: (kv[0] == "Unassigned", kv[0])))
    return layout
