"""Text messages in and out, one row each: the record that makes sending once possible and the
conversation shown on the lead."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class TextMessage(models.Model):
    class Direction(models.TextChoices):
        IN = "in", "Received"
        OUT = "out", "Sent"

    class Status(models.TextChoices):
        QUEUED = "queued", "Waiting to be sent"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"
        RECEIVED = "received", "Received"

    rooftop = models.ForeignKey("org.Rooftop", on_delete=models.CASCADE, related_name="texts")
    customer = models.ForeignKey(
        "leads.Customer", null=True, blank=True, on_delete=models.SET_NULL, related_name="texts"
    )
    lead = models.ForeignKey(
        "leads.Lead", null=True, blank=True, on_delete=models.SET_NULL, related_name="texts"
    )
    direction = models.CharField(max_length=3, choices=Direction.choices)
    from_number = models.CharField(max_length=20)
    to_number = models.CharField(max_length=20)
    body = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices)
    # The provider's id (Twilio's MessageSid): a webhook delivered twice is stored once.
    provider_id = models.CharField(max_length=64, blank=True)
    # What this message is (e.g. "step:42", "stop-reply:17"): the same text cannot be queued twice.
    key = models.CharField(max_length=80, null=True, blank=True, unique=True)
    purpose = models.CharField(max_length=16, default="marketing")
    automated = models.BooleanField(default=False)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    error = models.TextField(blank=True)
    at = models.DateTimeField(help_text="Queued or received")
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider_id"], condition=~Q(provider_id=""), name="text_provider_id_once"
            )
        ]
        indexes = [models.Index(fields=["lead", "at"]), models.Index(fields=["rooftop", "direction", "at"])]

    def __str__(self) -> str:
        return f"{self.get_direction_display()} {self.at:%Y-%m-%d %H:%M}: {self.body[:40]}"
