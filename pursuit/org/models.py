"""Dealer group > rooftop > staff (users with roles) and teams."""

import datetime as dt
import zoneinfo

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def default_business_hours() -> dict:
    weekday = [["09:00", "20:00"]]
    return {
        "mon": weekday,
        "tue": weekday,
        "wed": weekday,
        "thu": weekday,
        "fri": weekday,
        "sat": [["09:00", "18:00"]],
        "sun": [],
    }


def validate_time_zone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"{value!r} is not a time zone name such as America/Chicago") from exc


def validate_business_hours(value: dict) -> None:
    if not isinstance(value, dict) or set(value) - set(WEEKDAYS):
        raise ValidationError("business hours: a mapping of mon..sun to lists of [open, close] times")
    for day, spans in value.items():
        if not isinstance(spans, list):
            raise ValidationError(f"business hours for {day}: a list of [open, close] pairs ([] when closed)")
        for span in spans:
            try:
                opens, closes = (dt.time.fromisoformat(t) for t in span)
            except (TypeError, ValueError) as exc:
                raise ValidationError(f"business hours for {day}: {span!r} is not [HH:MM, HH:MM]") from exc
            if opens >= closes:
                raise ValidationError(f"business hours for {day}: {span[0]} is not before {span[1]}")


class DealerGroup(models.Model):
    name = models.CharField(max_length=200, unique=True)

    def __str__(self) -> str:
        return self.name


class Rooftop(models.Model):
    """One dealership location. Its time zone, hours and holidays drive every schedule."""

    group = models.ForeignKey(DealerGroup, on_delete=models.PROTECT, related_name="rooftops")
    name = models.CharField(max_length=200)
    time_zone = models.CharField(max_length=64, default="America/Chicago", validators=[validate_time_zone])
    country = models.CharField(
        max_length=2, default="US", help_text="ISO country code: default region for phones"
    )
    phone = models.CharField(max_length=32, blank=True)
    email = models.EmailField(help_text="Sender address of automatic emails to customers")
    website = models.URLField(blank=True)
    street = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    region = models.CharField(max_length=64, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    business_hours = models.JSONField(default=default_business_hours, validators=[validate_business_hours])
    # The speed-to-lead ladder: minutes after arrival with no human attempt.
    remind_owner_after = models.PositiveIntegerField(default=2, help_text="minutes: remind the owner")
    handoff_after = models.PositiveIntegerField(
        default=5, help_text="minutes: hand to the next on-duty agent"
    )
    handoff_enabled = models.BooleanField(default=True)
    manager_after = models.PositiveIntegerField(default=15, help_text="minutes: tell the managers")
    text_number = models.CharField(
        max_length=20,
        blank=True,
        help_text="The rooftop's texting number at the provider, E.164 (+13125550100)",
    )
    # Frequency caps (compliance): marketing touches per customer, across plans and people.
    cap_calls_texts_24h = models.PositiveSmallIntegerField(
        default=3,
        help_text="Sales calls and texts per customer in any 24 hours (the strictest state law is 3)",
    )
    cap_touches_day = models.PositiveSmallIntegerField(
        default=5, help_text="Marketing touches per customer per day (customer's day), all channels"
    )
    cap_touches_week = models.PositiveSmallIntegerField(
        default=15, help_text="Marketing touches per customer in any 7 days, all channels"
    )
    texas_registered = models.BooleanField(
        default=False,
        help_text="Registered (or exempt) as a telephone seller in Texas: allows marketing texts to Texas",
    )
    opt_out_everywhere = models.BooleanField(
        default=True,
        help_text="A stop on one channel stops every channel (recommended: the FCC's revoke-all)",
    )
    silent_after_days = models.PositiveIntegerField(
        default=7, help_text="days: a warm prospect silent this long moves to the missing-prospect plan"
    )

    class Meta:
        unique_together = [("group", "name")]

    def __str__(self) -> str:
        return self.name

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    @property
    def postal_address(self) -> str:
        return ", ".join(
            p for p in (self.street, self.city, f"{self.region} {self.postal_code}".strip()) if p
        )


class Holiday(models.Model):
    """A day the rooftop is closed (business-day offsets skip it)."""

    rooftop = models.ForeignKey(Rooftop, on_delete=models.CASCADE, related_name="holidays")
    date = models.DateField()
    name = models.CharField(max_length=100)

    class Meta:
        unique_together = [("rooftop", "date")]
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.name} ({self.date})"


class Role(models.TextChoices):
    BDC_AGENT = "bdc", "BDC agent"
    CONSULTANT = "consultant", "Sales consultant"
    MANAGER = "manager", "Manager"
    ADMIN = "admin", "Admin"


class User(AbstractUser):
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.BDC_AGENT)
    rooftop = models.ForeignKey(
        Rooftop, null=True, blank=True, on_delete=models.PROTECT, related_name="staff"
    )
    direct_line = models.CharField(max_length=32, blank=True)
    on_duty = models.BooleanField(default=True, help_text="Takes new leads in round robin")

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username

    @property
    def is_manager(self) -> bool:
        return self.role in (Role.MANAGER, Role.ADMIN) or self.is_superuser


class Team(models.Model):
    """A group of staff that takes leads in round robin. `last_assigned` is the round-robin
    cursor: it lives in the database (locked while it moves) so several web and worker
    processes share one rotation."""

    rooftop = models.ForeignKey(Rooftop, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=100)
    members = models.ManyToManyField(User, related_name="teams", blank=True)
    last_assigned = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        unique_together = [("rooftop", "name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.rooftop})"
