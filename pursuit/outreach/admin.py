"""Admin for the automatic-answer templates, and the (read-only) record of sent mail."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.html import format_html

from pursuit.leads.models import Lead
from pursuit.org.admin import PursuitAdmin, ReadOnlyAdmin, admin_link, when
from pursuit.outreach.models import OutboundEmail, OutboxEmail, ResponseTemplate
from pursuit.outreach.services import (
    MERGE_FIELDS,
    TemplateProblem,
    merge_fields,
    template_check,
    template_render,
)


def merge_fields_help() -> str:
    """The merge fields in words, for the template fields' help text."""
    parts = []
    for name, fields in MERGE_FIELDS.items():
        if isinstance(fields, str):
            parts.append(f"{{{{ {name} }}}} ({fields})")
        else:
            parts.append(", ".join(f"{{{{ {name}.{f} }}}}" for f in fields))
    return (
        "Merge fields: " + "; ".join(parts) + ". Conditions and defaults work too, e.g. "
        "{{ customer.first_name or 'there' }} or {% if vehicle %}…{% endif %}."
    )


class ResponseTemplateForm(forms.ModelForm):
    class Meta:
        model = ResponseTemplate
        fields = ["rooftop", "kind", "subject", "body"]
        widgets = {
            "body": forms.Textarea(attrs={"rows": 20, "cols": 90, "style": "font-family: monospace"}),
            "subject": forms.TextInput(attrs={"size": 90}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("subject", "body"):
            self.fields[name].help_text = merge_fields_help()

    def _checked(self, name: str) -> str:
        # Checked when saved, so a typo is caught now, not when a customer is waiting.
        source = self.cleaned_data[name]
        try:
            template_check(source)
        except TemplateProblem as exc:
            raise ValidationError(f"This template does not work: {exc}") from None
        return source

    def clean_subject(self):
        return self._checked("subject")

    def clean_body(self):
        return self._checked("body")


@admin.register(ResponseTemplate)
class ResponseTemplateAdmin(PursuitAdmin):
    form = ResponseTemplateForm
    list_display = ["__str__", "rooftop", "kind", "subject"]
    list_filter = ["rooftop", "kind"]
    search_fields = ["subject", "body", "rooftop__name"]
    list_select_related = ["rooftop"]
    autocomplete_fields = ["rooftop"]
    readonly_fields = ["preview"]
    fields = ["rooftop", "kind", "subject", "body", "preview"]

    @admin.display(description="Preview")
    def preview(self, obj) -> str:
        if obj is None or obj.pk is None:
            return "Shown once the template is saved."
        lead = (
            Lead.objects.filter(rooftop_id=obj.rooftop_id, owner__isnull=False)
            .select_related("customer", "owner", "rooftop")
            .order_by("-created_at")
            .first()
        )
        if lead is None:
            return "Shown once the rooftop has a lead with an owner (the preview uses the newest one)."
        fields = merge_fields(lead)
        try:
            subject = " ".join(template_render(obj.subject, fields).split())
            body = template_render(obj.body, fields)
        except TemplateProblem as exc:
            return f"Does not render: {exc}"
        return format_html(
            '<p>As {} would receive it (lead {}):</p><pre style="white-space: pre-wrap">'
            "Subject: {}\n\n{}</pre>",
            lead.customer,
            lead.pk,
            subject,
            body,
        )


@admin.register(OutboundEmail)
class OutboundEmailAdmin(ReadOnlyAdmin):
    list_display = [when("sent_at", "Sent"), "kind", "to", "subject", "status", "lead_link"]
    list_filter = ["status", "kind"]
    search_fields = ["to", "subject", "message_id", "=lead__id"]
    list_select_related = ["lead__customer"]
    date_hierarchy = "sent_at"
    ordering = ["-sent_at", "-id"]
    fields = [
        "lead_link",
        "kind",
        "status",
        "error",
        "sent_at",
        "from_email",
        "to",
        "subject",
        "message_id",
        "body_shown",
    ]
    readonly_fields = fields

    @admin.display(description="Lead", ordering="lead")
    def lead_link(self, obj) -> str:
        return admin_link(obj.lead) if obj.lead_id else "—"

    @admin.display(description="Body")
    def body_shown(self, obj) -> str:
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', obj.body)


@admin.register(OutboxEmail)
class OutboxEmailAdmin(ReadOnlyAdmin):
    list_display = [when("created_at", "Kept"), "to", "subject", "from_email"]
    search_fields = ["to", "subject", "from_email"]
    date_hierarchy = "created_at"
    fields = ["created_at", "from_email", "to", "subject", "body_shown", "message_shown"]
    readonly_fields = fields

    @admin.display(description="Body")
    def body_shown(self, obj) -> str:
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', obj.body)

    @admin.display(description="Whole message")
    def message_shown(self, obj) -> str:
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', obj.message)
