"""What the compliance gate decides from, and what it decided.

Everything here is append-only except the do-not-call registry (replaced by each new copy) and
the internal list (a number or address is on it or not): the law asks us to prove what we knew
and when, so consent, touches and decisions are never edited.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

CHANNELS = [("call", "Call"), ("text", "Text"), ("email", "Email")]


class Purpose(models.TextChoices):
    MARKETING = "marketing", "Marketing / sales follow-up"
    TRANSACTIONAL = "transactional", "Transactional (asked for by the customer)"


class Consent(models.Model):
    """One statement of consent or refusal for a channel and purpose, with where it came from.
    The latest statement per channel and purpose stands."""

    class Source(models.TextChoices):
        LEAD = "lead", "Lead provider (ADF, CSV, API)"
        FORM = "form", "New-lead form"
        INBOUND_TEXT = "inbound-text", "The customer texted us"
        KEYWORD = "keyword", "Text keyword (STOP / START)"
        UNSUBSCRIBE = "unsubscribe", "Email unsubscribe link"
        STAFF = "staff", "Entered by staff"

    customer = models.ForeignKey("leads.Customer", on_delete=models.CASCADE, related_name="consents")
    channel = models.CharField(max_length=8, choices=CHANNELS)
    purpose = models.CharField(max_length=16, choices=Purpose.choices, default=Purpose.MARKETING)
    granted = models.BooleanField()
    # Prior express written consent: a signed or ticked agreement with a disclosure. Only this
    # allows automatic marketing texts.
    written = models.BooleanField(default=False)
    source = models.CharField(max_length=40, choices=Source.choices)
    evidence = models.TextField(help_text="The exact words, line or note it rests on")
    at = models.DateTimeField()
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    lead = models.ForeignKey("leads.Lead", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        indexes = [models.Index(fields=["customer", "channel", "purpose", "at"])]

    def __str__(self) -> str:
        return f"{self.channel} {self.purpose}: {'granted' if self.granted else 'refused'}"


class Suppression(models.Model):
    """The dealer group's own do-not-contact list (compliance.md row 9): a phone number or an
    email address on it is never contacted again by any rooftop of the group, on any channel."""

    class Kind(models.TextChoices):
        PHONE = "phone", "Phone"
        EMAIL = "email", "Email"

    group = models.ForeignKey("org.DealerGroup", on_delete=models.CASCADE, related_name="suppressions")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    value = models.CharField(max_length=254, help_text="E.164 number or lower-case address")
    source = models.CharField(
        max_length=40, help_text="How the request came: text STOP, unsubscribe link, staff"
    )
    note = models.TextField(blank=True, help_text="The request in the customer's words, or who took it")
    customer = models.ForeignKey(
        "leads.Customer", null=True, blank=True, on_delete=models.SET_NULL, related_name="suppressions"
    )
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["group", "kind", "value"], name="suppression_once")]

    def __str__(self) -> str:
        return self.value


class RegistryCopy(models.Model):
    """One imported copy of a national do-not-call registry."""

    country = models.CharField(max_length=2, default="US")
    copied_on = models.DateField(help_text="The date of the registry copy (not of the import)")
    imported_at = models.DateTimeField()
    numbers = models.PositiveIntegerField(default=0)
    file_name = models.CharField(max_length=200, blank=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name_plural = "registry copies"

    def __str__(self) -> str:
        return f"{self.country} registry of {self.copied_on}"


class RegistryNumber(models.Model):
    """A number on the national registry (the latest copy of its country)."""

    number = models.CharField(max_length=16, primary_key=True)
    copy = models.ForeignKey(RegistryCopy, on_delete=models.CASCADE, related_name="+")

    def __str__(self) -> str:
        return self.number


class Touch(models.Model):
    """One contact with a customer that happened: counted by the frequency caps, and the record
    the simulation and the property tests check against the rules."""

    customer = models.ForeignKey("leads.Customer", on_delete=models.CASCADE, related_name="touches")
    lead = models.ForeignKey("leads.Lead", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    channel = models.CharField(max_length=8)
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    automated = models.BooleanField(default=False)
    at = models.DateTimeField()
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    what = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name_plural = "touches"
        indexes = [models.Index(fields=["customer", "at"])]

    def __str__(self) -> str:
        return f"{self.channel} {self.at:%Y-%m-%d %H:%M}"


class Decision(models.Model):
    """A touch the gate held back (deferred or denied), with the rule, what it saw, and when."""

    class Verdict(models.TextChoices):
        DEFER = "defer", "Deferred"
        DENY = "deny", "Denied"
        FLAG = "flag", "Flagged for a person"

    customer = models.ForeignKey("leads.Customer", on_delete=models.CASCADE, related_name="decisions")
    lead = models.ForeignKey("leads.Lead", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    step = models.ForeignKey("plans.Step", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    channel = models.CharField(max_length=8)
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    verdict = models.CharField(max_length=8, choices=Verdict.choices)
    rule = models.CharField(max_length=60)
    detail = models.TextField()
    until = models.DateTimeField(null=True, blank=True)
    inputs = models.JSONField(default=dict)
    at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["customer", "at"]), models.Index(fields=["at"])]

    def __str__(self) -> str:
        return f"{self.verdict} {self.channel}: {self.rule}"
