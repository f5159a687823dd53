"""Customers, their leads, the vehicles they want or trade, and each lead's timeline."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from pursuit.org.models import Rooftop


class Customer(models.Model):
    """A person. One customer can have several leads over the years, but only one open lead
    per rooftop at a time (see Lead's constraint)."""

    class Contact(models.TextChoices):
        ANY = "", "No preference"
        EMAIL = "email", "Email"
        PHONE = "phone", "Phone"
        TEXT = "text", "Text"

    rooftop = models.ForeignKey(Rooftop, on_delete=models.PROTECT, related_name="customers")
    first_name = models.CharField(max_length=100, blank=True)
    middle_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    preferred_contact = models.CharField(max_length=8, choices=Contact.choices, blank=True)
    street = models.CharField(max_length=200, blank=True)
    apartment = models.CharField(max_length=100, blank=True)
    city = models.CharField(max_length=100, blank=True)
    region = models.CharField(max_length=64, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    country = models.CharField(max_length=64, blank=True)
    time_zone = models.CharField(
        max_length=64, blank=True, help_text="Derived from the address, else the phone"
    )
    # Stop conditions. An opt-out of a channel removes that channel's steps; "do not contact"
    # and deceased end all follow-up. (The consent ledger and its evidence come with compliance.)
    opted_out = models.JSONField(
        default=list, blank=True, help_text="Channels the customer asked us not to use"
    )
    do_not_contact = models.BooleanField(default=False)
    deceased = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    # A customer merged into another keeps its row (so old references and history stay
    # readable) and points at the survivor.
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        indexes = [models.Index(fields=["rooftop", "last_name", "first_name"])]

    def __str__(self) -> str:
        return self.full_name or f"Customer {self.pk}"

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.middle_name, self.last_name) if p)

    @property
    def address(self) -> str:
        line1 = " ".join(p for p in (self.street, self.apartment) if p)
        line2 = " ".join(p for p in (self.city, self.region, self.postal_code) if p)
        return ", ".join(p for p in (line1, line2, self.country) if p)


class CustomerPhone(models.Model):
    class Type(models.TextChoices):
        MOBILE = "mobile", "Mobile"
        HOME = "home", "Home"
        WORK = "work", "Work"
        FAX = "fax", "Fax"
        PAGER = "pager", "Pager"
        OTHER = "other", "Other"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="phones")
    # Denormalised so that duplicate matching is one indexed lookup per rooftop.
    rooftop = models.ForeignKey(Rooftop, on_delete=models.CASCADE, related_name="+")
    number = models.CharField(max_length=40, help_text="E.164 when verified, else as written")
    verified = models.BooleanField(
        default=False, help_text="A valid number (E.164); unverified never matches alone"
    )
    # What duplicate matching compares: the E.164 number, or the digits of an unverified one
    # (so "393-999-3922" and "(393) 999 3922" are the same written number).
    match_key = models.CharField(max_length=40, db_index=False)
    type = models.CharField(max_length=8, choices=Type.choices, default=Type.OTHER)
    preferred = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["rooftop", "match_key"])]
        constraints = [
            models.UniqueConstraint(fields=["customer", "match_key"], name="phone_once_per_customer")
        ]

    def __str__(self) -> str:
        return self.number if self.verified else f"{self.number} (unverified)"


class CustomerEmail(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="emails")
    rooftop = models.ForeignKey(Rooftop, on_delete=models.CASCADE, related_name="+")
    address = models.CharField(max_length=254, help_text="Normalised: trimmed, lower case")

    class Meta:
        indexes = [models.Index(fields=["rooftop", "address"])]
        constraints = [
            models.UniqueConstraint(fields=["customer", "address"], name="email_once_per_customer")
        ]

    def __str__(self) -> str:
        return self.address


class Lead(models.Model):
    class Type(models.TextChoices):
        INTERNET = "internet", "Internet"
        PHONE = "phone", "Phone-up"
        WALK_IN = "walk-in", "Walk-in"
        REFERRAL = "referral", "Referral"
        OTHER = "other", "Other"

    class Status(models.TextChoices):
        NEW = "new", "New"
        WORKING = "working", "Working"
        APPOINTMENT = "appointment", "Appointment set"
        SOLD = "sold", "Sold"
        LOST = "lost", "Lost"
        CLOSED = "closed", "Closed"

    OPEN_STATUSES = (Status.NEW, Status.WORKING, Status.APPOINTMENT)

    rooftop = models.ForeignKey(Rooftop, on_delete=models.PROTECT, related_name="leads")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="leads")
    source = models.ForeignKey(
        "intake.LeadSource", null=True, blank=True, on_delete=models.SET_NULL, related_name="leads"
    )
    payload = models.ForeignKey(
        "intake.Payload",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="leads",
        help_text="The raw payload this lead came from",
    )
    type = models.CharField(max_length=10, choices=Type.choices, default=Type.INTERNET)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.NEW)
    lost_reason = models.CharField(max_length=200, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="leads"
    )
    comments = models.TextField(blank=True)
    timeframe = models.CharField(max_length=200, blank=True)
    provider = models.CharField(max_length=200, blank=True, help_text="Lead provider named in the payload")
    external_ids = models.JSONField(default=list, blank=True, help_text="[(issuer, id)] from the provider")
    flags = models.JSONField(default=list, blank=True, help_text="Needs a person: e.g. no-contact")
    received_at = models.DateTimeField(help_text="When the customer asked (provider's time if given)")
    created_at = models.DateTimeField(help_text="When Pursuit received it")
    # KPI timestamps, kept on the lead so reports stay cheap. The automatic answer and the first
    # human attempt are separate figures: no report counts the former as a response.
    assigned_at = models.DateTimeField(null=True, blank=True)
    auto_response_at = models.DateTimeField(null=True, blank=True)
    first_attempt_at = models.DateTimeField(null=True, blank=True)
    first_reply_at = models.DateTimeField(null=True, blank=True)
    # A reply from the customer that nobody has answered yet: the plan's automatic steps wait.
    reply_waiting_at = models.DateTimeField(null=True, blank=True)
    sold_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["rooftop", "-created_at"]),
            models.Index(fields=["owner", "status"]),
        ]
        constraints = [
            # The database itself refuses a second open lead for a customer, so two web
            # processes racing on the same inquiry cannot both create one.
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(status__in=["new", "working", "appointment"]),
                name="one_open_lead_per_customer",
            ),
        ]

    def __str__(self) -> str:
        return f"Lead {self.pk} ({self.customer})"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    def first_response_seconds(self) -> float | None:
        """Seconds from arrival to the first human attempt (never the automatic answer)."""
        if self.first_attempt_at is None:
            return None
        return (self.first_attempt_at - self.created_at).total_seconds()


class Vehicle(models.Model):
    class Role(models.TextChoices):
        INTEREST = "interest", "Vehicle of interest"
        TRADE = "trade", "Trade-in"

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="vehicles")
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.INTEREST)
    condition = models.CharField(
        max_length=4, choices=[("new", "New"), ("used", "Used"), ("", "Unknown")], blank=True
    )
    year = models.PositiveSmallIntegerField(null=True, blank=True)
    make = models.CharField(max_length=60, blank=True)
    model = models.CharField(max_length=100, blank=True)
    trim = models.CharField(max_length=200, blank=True)
    vin = models.CharField(max_length=20, blank=True)
    stock = models.CharField(max_length=40, blank=True)
    price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    odometer = models.PositiveIntegerField(null=True, blank=True)
    odometer_units = models.CharField(max_length=4, blank=True)

    def __str__(self) -> str:
        return " ".join(str(p) for p in (self.year, self.make, self.model, self.trim) if p) or "Vehicle"


class LeadEvent(models.Model):
    """The lead's timeline: append-only, written in the same transaction as the change it records."""

    class Kind(models.TextChoices):
        ARRIVED = "arrived", "Arrived"
        REINQUIRY = "re-inquiry", "Asked again"
        RESENT = "resent", "Provider resent"
        ASSIGNED = "assigned", "Assigned"
        AUTO_RESPONSE = "auto-response", "Automatic answer sent"
        AUTO_RESPONSE_SKIPPED = "auto-response-skipped", "No automatic answer"
        REMINDER = "reminder", "Owner reminded"
        HANDED_OFF = "handed-off", "Handed to the next agent"
        ESCALATED = "escalated", "Managers told"
        ATTEMPT = "attempt", "Contact attempt"
        NOTE = "note", "Note"
        STATUS = "status", "Status changed"
        MERGED = "merged", "Customers merged"
        FLAGGED = "flagged", "Needs attention"
        PLAN = "plan", "Follow-up plan"
        STEP = "step", "Plan step"
        TEXT_OUT = "text-out", "Text sent"
        TEXT_IN = "text-in", "Text received"
        EMAIL_IN = "email-in", "Email received"
        REPLY_HANDLED = "reply-handled", "Reply answered"
        APPOINTMENT = "appointment", "Appointment"

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["lead", "at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.at:%Y-%m-%d %H:%M}"
