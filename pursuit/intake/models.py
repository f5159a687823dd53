"""Where leads come from: sources with their tokens, every raw payload, assignment rules."""

import hashlib
import secrets

from django.db import models
from django.db.models import Q

from pursuit.org.models import Rooftop, Team


def token_hash(token: str) -> str:
    # Tokens are long random strings, so a plain SHA-256 is enough (no salt/stretching needed:
    # there is nothing to brute-force) and lets us look a token up by its hash.
    return hashlib.sha256(token.encode()).hexdigest()


class LeadSource(models.Model):
    """A lead provider or channel (a listing site, the OEM, the website, walk-ins...).

    Providers posting over HTTP authenticate with a per-source bearer token; only its hash is
    stored, so the token is shown once, when created."""

    rooftop = models.ForeignKey(Rooftop, on_delete=models.CASCADE, related_name="sources")
    name = models.CharField(max_length=100)
    lead_type = models.CharField(
        max_length=10,
        default="internet",
        choices=[
            ("internet", "Internet"),
            ("phone", "Phone-up"),
            ("walk-in", "Walk-in"),
            ("referral", "Referral"),
            ("other", "Other"),
        ],
    )
    token_hash = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    token_hint = models.CharField(max_length=8, blank=True, editable=False, help_text="First characters")
    active = models.BooleanField(default=True)

    class Meta:
        unique_together = [("rooftop", "name")]
        ordering = ["rooftop", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.rooftop})"

    def new_token(self) -> str:
        """Give the source a fresh token and return it (the only time it can be read)."""
        token = "pst_" + secrets.token_urlsafe(32)
        self.token_hash = token_hash(token)
        self.token_hint = token[:8]
        return token


class Payload(models.Model):
    """Every lead payload exactly as received, stored before it is parsed. A payload that
    fails stays here with the reason and can be re-processed."""

    class Channel(models.TextChoices):
        ADF_HTTP = "adf-http", "ADF over HTTP"
        EMAIL_HTTP = "email-http", "Email over HTTP"
        JSON_API = "json-api", "JSON API"
        FORM = "form", "New-lead form"
        IMPORT_XML = "import-xml", "Imported ADF file"
        IMPORT_EML = "import-eml", "Imported email file"
        IMPORT_CSV = "import-csv", "Imported CSV row"

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSED = "processed", "Processed"
        FAILED = "failed", "Failed"

    rooftop = models.ForeignKey(Rooftop, on_delete=models.CASCADE, related_name="payloads")
    source = models.ForeignKey(
        LeadSource, null=True, blank=True, on_delete=models.SET_NULL, related_name="payloads"
    )
    channel = models.CharField(max_length=12, choices=Channel.choices)
    content = models.BinaryField()
    content_type = models.CharField(max_length=100, blank=True)
    name = models.CharField(max_length=300, blank=True, help_text="File name or row reference, if any")
    received_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RECEIVED)
    reason = models.TextField(blank=True, help_text="Why it failed, in plain words")
    result = models.JSONField(default=list, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["rooftop", "-received_at"]),
            # Serves the admin's "failed payloads" list.
            models.Index(fields=["received_at"], condition=Q(status="failed"), name="payload_failed_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} {self.pk} ({self.status})"

    @property
    def text(self) -> str:
        return bytes(self.content).decode("utf-8", errors="replace")


class AssignmentRule(models.Model):
    """Which team takes which leads. The first matching rule (lowest priority number) wins;
    an empty lead type or source matches any."""

    rooftop = models.ForeignKey(Rooftop, on_delete=models.CASCADE, related_name="assignment_rules")
    priority = models.PositiveSmallIntegerField(default=100)
    lead_type = models.CharField(
        max_length=10,
        blank=True,
        choices=[
            ("", "Any type"),
            ("internet", "Internet"),
            ("phone", "Phone-up"),
            ("walk-in", "Walk-in"),
            ("referral", "Referral"),
            ("other", "Other"),
        ],
    )
    source = models.ForeignKey(LeadSource, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="rules")

    class Meta:
        ordering = ["rooftop", "priority", "id"]

    def __str__(self) -> str:
        what = " ".join(
            p for p in (self.lead_type or "any", f"from {self.source.name}" if self.source else "") if p
        )
        return f"{what} leads -> {self.team.name}"

    def matches(self, *, lead_type: str, source_id: int | None) -> bool:
        return (not self.lead_type or self.lead_type == lead_type) and (
            self.source_id is None or self.source_id == source_id
        )
