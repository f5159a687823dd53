"""Timed work as database rows, and notifications to staff."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class Job(models.Model):
    """Something the worker must do at or after `due_at` (send the automatic answer, climb a
    rung of the speed-to-lead ladder, email a notification).

    Claiming: a worker sets status=claimed and `claimed_until` (a lease). A claimed row whose
    lease ran out (its worker died) is claimable again. `key`, when set, is unique, so
    scheduling the same work twice (a double click, a retried request) makes one row.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        CLAIMED = "claimed", "Claimed"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    kind = models.CharField(max_length=30)
    key = models.CharField(max_length=120, null=True, blank=True, unique=True)
    lead = models.ForeignKey(
        "leads.Lead", null=True, blank=True, on_delete=models.CASCADE, related_name="jobs"
    )
    data = models.JSONField(default=dict, blank=True)
    due_at = models.DateTimeField()
    # Among due jobs, lower runs first: the customer's first answer goes before staff emails.
    priority = models.PositiveSmallIntegerField(default=10)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    claimed_until = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=100, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # Serves the claim query: pending rows with due_at <= now, oldest first. Partial, so
            # its size is the backlog of pending work, not the history of done rows.
            models.Index(fields=["due_at"], condition=Q(status="pending"), name="job_pending_due_idx"),
            # Serves the reclaim of rows whose worker died: claimed rows with claimed_until < now.
            models.Index(
                fields=["claimed_until"], condition=Q(status="claimed"), name="job_claimed_lease_idx"
            ),
            models.Index(fields=["lead", "kind"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind} due {self.due_at:%Y-%m-%d %H:%M:%S} ({self.status})"


class Notification(models.Model):
    """A message to a member of staff, shown in the app and (by a job) sent by email."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    lead = models.ForeignKey("leads.Lead", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=30)
    text = models.CharField(max_length=500)
    created_at = models.DateTimeField()
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at"])]

    def __str__(self) -> str:
        return self.text
