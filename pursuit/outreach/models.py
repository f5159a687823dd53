"""Message templates and the record of every message sent."""

from django.db import models

from pursuit.org.models import Rooftop

DEFAULT_AUTO_RESPONSE_SUBJECT = "{{ vehicle or 'Your inquiry' }} at {{ rooftop.name }}"
DEFAULT_AUTO_RESPONSE_BODY = """Hi {{ customer.first_name or 'there' }},

Thank you for your interest{% if vehicle %} in the {{ vehicle }}{% endif %}. I'm {{ owner.name }}, and I'll be \
helping you at {{ rooftop.name }}.
{% if vehicle %}
I'm checking the {{ vehicle }} for you right now and will call you shortly with the details.
{% endif %}
If it's easier, reach me directly{% if owner.phone %} at {{ owner.phone }}{% endif %} or just reply to this email.

{{ owner.name }}
{{ rooftop.name }}{% if rooftop.phone %}
{{ rooftop.phone }}{% endif %}{% if rooftop.address %}
{{ rooftop.address }}{% endif %}
"""


class ResponseTemplate(models.Model):
    """A rooftop's automatic first answer. Subject and body use a sandboxed template language
    (Jinja2's sandbox) that sees only the merge fields: customer, vehicle, owner, rooftop."""

    class Kind(models.TextChoices):
        AUTO_RESPONSE = "auto-response", "Automatic first answer"

    rooftop = models.ForeignKey(Rooftop, on_delete=models.CASCADE, related_name="response_templates")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.AUTO_RESPONSE)
    subject = models.CharField(max_length=300, default=DEFAULT_AUTO_RESPONSE_SUBJECT)
    body = models.TextField(default=DEFAULT_AUTO_RESPONSE_BODY)

    class Meta:
        unique_together = [("rooftop", "kind")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.rooftop})"


class OutboundEmail(models.Model):
    """One email Pursuit sent (or tried to) to a customer or a member of staff."""

    class Status(models.TextChoices):
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    lead = models.ForeignKey(
        "leads.Lead", null=True, blank=True, on_delete=models.CASCADE, related_name="emails"
    )
    kind = models.CharField(max_length=30)
    to = models.CharField(max_length=254)
    from_email = models.CharField(max_length=300)
    subject = models.CharField(max_length=300)
    body = models.TextField()
    message_id = models.CharField(max_length=200, unique=True)
    status = models.CharField(max_length=8, choices=Status.choices)
    error = models.TextField(blank=True)
    sent_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["lead", "sent_at"])]

    def __str__(self) -> str:
        return f"{self.subject} -> {self.to}"


class OutboxEmail(models.Model):
    """Mail kept by the default "outbox" email backend instead of being delivered: lets a
    fresh install (and the demo) show what would have been sent."""

    created_at = models.DateTimeField(auto_now_add=True)
    from_email = models.CharField(max_length=300)
    to = models.TextField()
    subject = models.CharField(max_length=998)
    body = models.TextField()
    message = models.TextField(help_text="The whole RFC 822 message")
    # Ties a kept message to its OutboundEmail record (and so to a lead and a rooftop).
    message_id = models.CharField(max_length=200, blank=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.subject} -> {self.to}"


class InboundEmail(models.Model):
    """An email from a customer (an inbound-mail service's webhook or the polled mailbox), stored
    before anything else is done with it; the Message-ID makes a redelivery a no-op."""

    rooftop = models.ForeignKey(Rooftop, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    lead = models.ForeignKey(
        "leads.Lead", null=True, blank=True, on_delete=models.SET_NULL, related_name="inbound_emails"
    )
    customer = models.ForeignKey(
        "leads.Customer", null=True, blank=True, on_delete=models.SET_NULL, related_name="inbound_emails"
    )
    message_id = models.CharField(max_length=300, unique=True)
    from_address = models.CharField(max_length=254)
    to_address = models.TextField(blank=True)
    subject = models.CharField(max_length=300, blank=True)
    text = models.TextField(blank=True, help_text="The reply without the quoted message")
    body = models.TextField(blank=True, help_text="The whole text part")
    automatic = models.BooleanField(default=False, help_text="An out-of-office or other automatic reply")
    matched_by = models.CharField(
        max_length=20, blank=True, help_text="reply address, thread, sender or nothing"
    )
    channel = models.CharField(max_length=10, help_text="webhook or imap")
    received_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["lead", "received_at"])]

    def __str__(self) -> str:
        return f"{self.from_address}: {self.subject}"
