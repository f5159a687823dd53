"""Follow-up plans: what happens to a lead, step by step, until it buys, dies or says stop.

A plan is data. Its steps live in versions: editing a plan makes a new version, and a lead
enrolled in an earlier version keeps the steps it was given (its `Step` rows point at the
version's `PlanStep`s, which never change once a lead uses them).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from pursuit.org.models import Role, Rooftop

CHANNELS = [
    ("call", "Call"),
    ("email", "Email"),
    ("text", "Text"),
    ("video", "Video"),
    ("letter", "Letter"),
    ("social", "Social"),
]


class MessageTemplate(models.Model):
    """An email, a text or a call script with merge fields (Jinja's sandbox; see outreach)."""

    class Purpose(models.TextChoices):
        MARKETING = "marketing", "Sales follow-up"
        TRANSACTIONAL = "transactional", "Transactional (asked for by the customer)"

    rooftop = models.ForeignKey(Rooftop, on_delete=models.CASCADE, related_name="message_templates")
    key = models.SlugField(max_length=80, help_text="Name used by plan files")
    name = models.CharField(max_length=200)
    channel = models.CharField(max_length=8, choices=CHANNELS)
    purpose = models.CharField(max_length=16, choices=Purpose.choices, default=Purpose.MARKETING)
    subject = models.CharField(max_length=300, blank=True)
    body = models.TextField()

    class Meta:
        unique_together = [("rooftop", "key")]
        ordering = ["rooftop", "name"]

    def __str__(self) -> str:
        return self.name


class Plan(models.Model):
    class Kind(models.TextChoices):
        PRIMARY = "primary", "Primary (one per lead at a time)"
        TRANSACTIONAL = "transactional", "Beside the primary plan (e.g. appointment reminders)"

    rooftop = models.ForeignKey(Rooftop, on_delete=models.CASCADE, related_name="plans")
    key = models.SlugField(max_length=80, help_text="Name used by transitions and plan files")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.PRIMARY)
    # What follows when the last step is done and the lead is still open (e.g. long-term
    # follow-up); empty: the last step repeats at its own interval (long-term plans).
    then = models.SlugField(max_length=80, blank=True, help_text="Key of the plan that follows this one")
    active = models.BooleanField(default=True)

    class Meta:
        unique_together = [("rooftop", "key")]
        ordering = ["rooftop", "name"]

    def __str__(self) -> str:
        return self.name

    @property
    def current(self) -> "PlanVersion | None":
        return self.versions.order_by("-number").first()


class PlanVersion(models.Model):
    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        unique_together = [("plan", "number")]
        ordering = ["plan", "-number"]

    def __str__(self) -> str:
        return f"{self.plan.name} v{self.number}"


class PlanStep(models.Model):
    class Unit(models.TextChoices):
        MINUTES = "minutes", "minutes"
        HOURS = "hours", "hours"
        DAYS = "days", "days"
        BUSINESS_DAYS = "business-days", "business days"

    class From(models.TextChoices):
        ENROLMENT = "enrolment", "after enrolment"
        PREVIOUS = "previous", "after the previous step"
        # Reminders: the offset is counted back from the appointment the plan was started for.
        APPOINTMENT = "appointment", "before the appointment"

    class Window(models.TextChoices):
        ANY = "any", "Any time"
        BUSINESS_HOURS = "business-hours", "Rooftop business hours"
        CUSTOMER_DAY = "customer-day", "Business hours, and daytime where the customer is"

    class Action(models.TextChoices):
        SEND = "send", "Send automatically"
        TASK = "task", "Task for a person"

    version = models.ForeignKey(PlanVersion, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=200)
    amount = models.PositiveIntegerField(default=0)
    unit = models.CharField(max_length=14, choices=Unit.choices, default=Unit.MINUTES)
    counted_from = models.CharField(max_length=12, choices=From.choices, default=From.PREVIOUS)
    window = models.CharField(max_length=16, choices=Window.choices, default=Window.BUSINESS_HOURS)
    channel = models.CharField(max_length=8, choices=CHANNELS)
    action = models.CharField(max_length=4, choices=Action.choices, default=Action.TASK)
    template = models.ForeignKey(
        MessageTemplate, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    role = models.CharField(max_length=16, blank=True, choices=[("", "The lead's owner"), *Role.choices])
    script = models.TextField(blank=True, help_text="What to say or do (merge fields allowed)")
    voicemail = models.BooleanField(default=False, help_text="Leave a voicemail if nobody answers")
    skip_if = models.JSONField(default=list, blank=True, help_text="Conditions that skip this step")
    repeat = models.BooleanField(default=False, help_text="Repeat at this interval while the lead is open")

    class Meta:
        unique_together = [("version", "position")]
        ordering = ["version", "position"]

    def __str__(self) -> str:
        return f"{self.position}. {self.name}"


class Enrolment(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        ENDED = "ended", "Ended"

    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="enrolments")
    version = models.ForeignKey(PlanVersion, on_delete=models.PROTECT, related_name="enrolments")
    primary = models.BooleanField(default=True)
    # A re-engagement's reason, which its templates may mention.
    incentive = models.ForeignKey(
        "Incentive", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    # The appointment an appointment plan runs for: its reminders are timed from it.
    appointment = models.ForeignKey(
        "appointments.Appointment",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="enrolments",
    )
    reason = models.CharField(max_length=200, blank=True, help_text="What started it, then what ended it")

    class Meta:
        constraints = [
            # One primary plan per lead at a time, whatever two processes do at once.
            models.UniqueConstraint(
                fields=["lead"], condition=Q(status="active", primary=True), name="one_primary_plan_per_lead"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.lead} in {self.version}"


class Step(models.Model):
    """One step of one lead's plan, with its due time: claimed by the worker when it is an
    automatic send, shown on a person's list when it is a task."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        CLAIMED = "claimed", "Claimed"
        DONE = "done", "Done"
        SKIPPED = "skipped", "Skipped"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"
        # An automatic send waiting while a customer's reply is answered (it still counts as
        # the lead's next step).
        HELD = "held", "Held: reply waiting"

    OPEN = (Status.PENDING, Status.CLAIMED, Status.HELD)

    enrolment = models.ForeignKey(Enrolment, on_delete=models.CASCADE, related_name="steps")
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="steps")
    # Empty for a task a person added by hand (an "I forgot to say" callback).
    plan_step = models.ForeignKey(PlanStep, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=200, blank=True, help_text="For a hand-made task: what it is")
    script = models.TextField(blank=True, help_text="For a hand-made task: the point to make")
    # Lower comes first on a person's list: a promised callback goes to the top.
    priority = models.PositiveSmallIntegerField(default=10)
    occurrence = models.PositiveIntegerField(default=0, help_text="Repeats of a repeating step")
    action = models.CharField(max_length=4, choices=PlanStep.Action.choices)
    channel = models.CharField(max_length=8, choices=CHANNELS)
    due_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="steps"
    )
    claimed_until = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=100, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(
        max_length=200, blank=True, help_text="Why skipped or cancelled, or the result"
    )

    class Meta:
        ordering = ["due_at", "id"]
        constraints = [
            # A double click or a re-run cannot materialise one step twice.
            models.UniqueConstraint(
                fields=["enrolment", "plan_step", "occurrence"],
                condition=Q(plan_step__isnull=False),
                name="step_once",
            ),
        ]
        indexes = [
            # Serves the worker's claim: due automatic sends, oldest first.
            models.Index(
                fields=["due_at"], condition=Q(status="pending", action="send"), name="step_send_due_idx"
            ),
            # Serves the reclaim of steps whose worker died (claimed, lease run out).
            models.Index(
                fields=["claimed_until"], condition=Q(status="claimed"), name="step_claimed_lease_idx"
            ),
            # Serves "what is next for this lead" and the coverage check.
            models.Index(fields=["lead", "status", "due_at"]),
            # Serves a person's list of due tasks.
            models.Index(
                fields=["assignee", "due_at"],
                condition=Q(status="pending", action="task"),
                name="step_task_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} due {self.due_at:%Y-%m-%d %H:%M} ({self.status})"

    @property
    def title(self) -> str:
        return self.name or (self.plan_step.name if self.plan_step_id else "Task")

    def is_due(self, now) -> bool:
        return self.status == self.Status.PENDING and self.due_at <= now


class Transition(models.Model):
    """Which plan an event moves a lead to (rooftop data with shipped defaults)."""

    rooftop = models.ForeignKey(Rooftop, on_delete=models.CASCADE, related_name="transitions")
    event = models.CharField(max_length=40)
    # Narrowing: the lead type on arrival, or the objection of a visit without sale.
    condition = models.CharField(max_length=40, blank=True)
    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="+")

    class Meta:
        unique_together = [("rooftop", "event", "condition")]

    def __str__(self) -> str:
        return f"{self.event}{'/' + self.condition if self.condition else ''} -> {self.plan.name}"


class Incentive(models.Model):
    """A new reason to call: an incentive or programme change from the manufacturer, or a price
    drop on a unit in stock. Prospects who wanted a matching vehicle can be re-engaged."""

    class Kind(models.TextChoices):
        INCENTIVE = "incentive", "Incentive or programme change"
        PRICE_DROP = "price-drop", "Price drop on a stock unit"

    rooftop = models.ForeignKey(Rooftop, on_delete=models.CASCADE, related_name="incentives")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.INCENTIVE)
    title = models.CharField(max_length=200, help_text="What changed, in a line a customer understands")
    description = models.TextField(blank=True)
    make = models.CharField(max_length=60, blank=True)
    model = models.CharField(max_length=100, blank=True)
    year_from = models.PositiveSmallIntegerField(null=True, blank=True)
    year_to = models.PositiveSmallIntegerField(null=True, blank=True)
    condition = models.CharField(
        max_length=4, blank=True, choices=[("", "New or used"), ("new", "New"), ("used", "Used")]
    )
    stock = models.CharField(max_length=40, blank=True, help_text="For a price drop: the stock number")
    valid_from = models.DateField(null=True, blank=True)
    valid_until = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title
