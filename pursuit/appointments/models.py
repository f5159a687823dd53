"""A booked visit: set, moved, cancelled, then shown or missed."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Appointment(models.Model):
    class Status(models.TextChoices):
        SET = "set", "Set"
        CANCELLED = "cancelled", "Cancelled"
        SHOWN = "shown", "Shown"
        NO_SHOW = "no-show", "No-show"

    OPEN = (Status.SET,)

    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="appointments")
    rooftop = models.ForeignKey("org.Rooftop", on_delete=models.CASCADE, related_name="appointments")
    starts_at = models.DateTimeField()
    minutes = models.PositiveSmallIntegerField(default=60)
    with_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="appointments",
        help_text="Who the customer will see",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SET)
    note = models.TextField(blank=True)
    # The calendar invitation's identity: the same UID with a higher SEQUENCE updates the
    # customer's calendar entry when the appointment moves or is cancelled (RFC 5545).
    uid = models.UUIDField(default=uuid.uuid4, editable=False)
    sequence = models.PositiveIntegerField(default=0)
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    outcome_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["starts_at", "id"]
        indexes = [models.Index(fields=["rooftop", "starts_at"]), models.Index(fields=["lead", "status"])]

    def __str__(self) -> str:
        return f"{self.lead} at {self.starts_at:%Y-%m-%d %H:%M} ({self.status})"
