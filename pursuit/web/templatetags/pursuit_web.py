"""Small display helpers for the pages."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from django import template
from django.utils import dateformat, timezone

from pursuit.lib import clock
from pursuit.lib.contacts import phone_display

register = template.Library()


@register.filter
def duration(seconds: float | None) -> str:
    """45 s, 4 min, 1 h 05 min, 3 d 2 h: a response time as a person says it."""
    if seconds is None:
        return ""
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    minutes = s // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


@register.filter
def phone(p) -> str:
    """A CustomerPhone as staff read it (national format when verified)."""
    return phone_display(p.number, verified=p.verified)


@register.filter
def tel(p) -> str:
    """The tel: target of a CustomerPhone: E.164 when verified, else its digits."""
    if p.verified:
        return p.number
    return "".join(ch for ch in p.number if ch.isdigit() or ch == "+")


@register.filter
def zone_label(zone: str) -> str:
    """America/New_York -> New York (the city people recognise)."""
    return zone.rsplit("/", 1)[-1].replace("_", " ") if zone else ""


def _zone(zone: str):
    try:
        return zoneinfo.ZoneInfo(zone) if zone else timezone.get_current_timezone()
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return timezone.get_current_timezone()


@register.filter
def when(value: dt.datetime | None, zone: str = "") -> str:
    """A moment as staff read it, in `zone` (default: the active zone, i.e. the rooftop's):
    "Today 9:05 AM", "Mar 10, 9:05 AM", or with the year when it is not this year."""
    if value is None:
        return ""
    tz = _zone(zone)
    local = timezone.localtime(value, tz)
    today = timezone.localtime(clock.now(), tz).date()
    if local.date() == today:
        return "Today " + dateformat.format(local, "g:i A")
    return dateformat.format(local, "M j, g:i A" if local.year == today.year else "M j, Y, g:i A")


@register.filter
def when_full(value: dt.datetime | None, zone: str = "") -> str:
    """The exact moment with its zone, for a tooltip: "Tue Mar 10 2026, 9:05:12 AM CDT"."""
    if value is None:
        return ""
    return dateformat.format(timezone.localtime(value, _zone(zone)), "D M j Y, g:i:s A T")
