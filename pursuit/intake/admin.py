"""Admin for lead sources (with their tokens), raw payloads (with re-processing) and
assignment rules."""

from __future__ import annotations

import logging

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from pursuit.intake import adf
from pursuit.intake.models import AssignmentRule, LeadSource, Payload
from pursuit.intake.parsed import PayloadError
from pursuit.intake.services import IntakeError, payload_reprocess
from pursuit.leads.models import Lead
from pursuit.lib import clock
from pursuit.org.admin import PursuitAdmin, admin_link, when

log = logging.getLogger(__name__)

# Bigger payloads are shown cut (the whole body stays stored and is what re-processing reads).
CONTENT_SHOWN = 200_000


# --------------------------------------------------------------------------- sources


def _token_message(source: LeadSource, token: str) -> str:
    endpoint = f"{settings.BASE_URL}/api/v1/intake/adf"
    return format_html(
        "New token for {}: <code>{}</code> — copy it now: it is shown only this once (only a hash is "
        "stored). Providers send ADF leads to {} with the header <code>Authorization: Bearer {}</code>.",
        source,
        token,
        endpoint,
        token,
    )


@admin.register(LeadSource)
class LeadSourceAdmin(PursuitAdmin):
    list_display = ["name", "rooftop", "lead_type", "active", "token_shown", "lead_count"]
    list_filter = ["rooftop", "lead_type", "active"]
    search_fields = ["name", "rooftop__name"]
    list_select_related = ["rooftop"]
    autocomplete_fields = ["rooftop"]
    readonly_fields = ["token_shown"]
    fields = ["rooftop", "name", "lead_type", "active", "token_shown"]
    actions = ["issue_new_token"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_leads=Count("leads"))

    @admin.display(description="Leads", ordering="n_leads")
    def lead_count(self, obj) -> int:
        return getattr(obj, "n_leads", 0)

    @admin.display(description="Token")
    def token_shown(self, obj) -> str:
        if obj is None or not obj.token_hint:
            return "none yet: saving a new source issues one (shown once)"
        return f"{obj.token_hint}… (issue a new one with the action “Issue a new token”)"

    def save_model(self, request, obj, form, change):
        token = obj.new_token() if not change else None
        super().save_model(request, obj, form, change)
        if token:
            self.message_user(request, _token_message(obj, token), messages.WARNING)

    @admin.action(description="Issue a new token (the old one stops working)", permissions=["change"])
    def issue_new_token(self, request, queryset):
        for source in queryset:
            token = source.new_token()
            source.save(update_fields=["token_hash", "token_hint"])
            self.message_user(request, _token_message(source, token), messages.WARNING)


# --------------------------------------------------------------------------- payloads


class PayloadStatusFilter(admin.SimpleListFilter):
    """Status, with "Failed" as the default view: what an admin opens this list for."""

    title = "status"
    parameter_name = "status"
    ALL = "all"

    def lookups(self, request, model_admin):
        return [
            (Payload.Status.FAILED, "Failed"),
            (Payload.Status.RECEIVED, "Received, not processed"),
            (Payload.Status.PROCESSED, "Processed"),
        ]

    def value(self):
        return super().value() or Payload.Status.FAILED

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "display": title,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
            }
        yield {
            "selected": self.value() == self.ALL,
            "display": "All",
            "query_string": changelist.get_query_string({self.parameter_name: self.ALL}),
        }

    def queryset(self, request, queryset):
        value = self.value()
        if value == self.ALL:
            return queryset
        return queryset.filter(status=value)


def _reprocess_one(request, payload: Payload) -> tuple[bool, str]:
    """Re-process one payload; (succeeded, message). Never raises: each payload is reported."""
    try:
        results = payload_reprocess(payload=payload, now=clock.now())
    except (PayloadError, IntakeError) as exc:
        return False, format_html("Payload {} still fails: {}", payload.pk, str(exc))
    except Exception as exc:  # reported, not raised: the other selected payloads go on
        log.exception("admin re-process of payload %s failed", payload.pk)
        return False, format_html(
            "Payload {} could not be re-processed ({}: {})", payload.pk, type(exc).__name__, str(exc)
        )
    leads = format_html_join(
        ", ", "{} ({})", ((admin_link(Lead(pk=r.lead), f"lead {r.lead}"), r.status) for r in results)
    )
    return True, format_html("Payload {} processed: {}", payload.pk, leads)


@admin.register(Payload)
class PayloadAdmin(PursuitAdmin):
    list_display = [
        "id",
        when("received_at", "Received"),
        "channel",
        "source",
        "status",
        "reason_short",
        "attempts",
        "rooftop",
    ]
    list_filter = [PayloadStatusFilter, "channel", "source", "rooftop"]
    search_fields = ["=id", "reason", "name"]
    search_help_text = "Payload number, words of the reason, or the file name."
    list_select_related = ["source", "rooftop"]
    ordering = ["-received_at", "-id"]
    date_hierarchy = "received_at"
    actions = ["reprocess"]
    fieldsets = [
        (None, {"fields": ["status", "reason", "reprocess_button", "result_leads", "warnings"]}),
        (
            "Received",
            {
                "fields": [
                    "rooftop",
                    "source",
                    "channel",
                    "content_type",
                    "name",
                    "received_at",
                    "processed_at",
                    "attempts",
                ]
            },
        ),
        ("Content exactly as received", {"fields": ["content_shown"]}),
    ]
    readonly_fields = [
        "status",
        "reason",
        "reprocess_button",
        "result_leads",
        "warnings",
        "rooftop",
        "source",
        "channel",
        "content_type",
        "name",
        "received_at",
        "processed_at",
        "attempts",
        "content_shown",
    ]

    # Payloads are stored by the intake channels, exactly as received; nobody edits them.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_reprocess_permission(self, request) -> bool:
        return request.user.has_perm("intake.change_payload")

    def get_queryset(self, request):
        return super().get_queryset(request).defer("content")

    def get_urls(self):
        return [
            path(
                "<path:object_id>/reprocess/",
                self.admin_site.admin_view(self.reprocess_view),
                name="intake_payload_reprocess",
            ),
            *super().get_urls(),
        ]

    @admin.display(description="Reason")
    def reason_short(self, obj) -> str:
        return obj.reason if len(obj.reason) <= 140 else obj.reason[:140] + "…"

    @admin.display(description="Leads")
    def result_leads(self, obj) -> str:
        rows = [r for r in obj.result if isinstance(r, dict) and r.get("lead")]
        if not rows:
            return "—"
        return format_html_join(
            ", ",
            "{} ({})",
            ((admin_link(Lead(pk=r["lead"]), f"lead {r['lead']}"), r.get("status", "")) for r in rows),
        )

    @admin.display(description="Content")
    def content_shown(self, obj) -> str:
        raw = bytes(obj.content)
        text = adf.decode_bytes(raw)[0]
        note = ""
        if len(text) > CONTENT_SHOWN:
            text, note = text[:CONTENT_SHOWN], f"(first {CONTENT_SHOWN} characters of {len(text)} shown)"
        # Escaped by format_html: a payload is shown as text, never rendered as HTML.
        return format_html(
            '<pre style="white-space: pre-wrap; max-height: 40em; overflow: auto">{}</pre>{}', text, note
        )

    @admin.display(description="Re-process")
    def reprocess_button(self, obj) -> str:
        if obj is None or obj.status == Payload.Status.PROCESSED:
            return "Processed: nothing to do." if obj is not None else ""
        url = reverse("admin:intake_payload_reprocess", args=[obj.pk])
        # The button submits the page's own form (which carries the CSRF token) to the
        # re-process URL.
        return format_html(
            '<button type="submit" formaction="{}" formmethod="post" class="button default">'
            "Re-process this payload</button>",
            url,
        )

    @admin.action(description="Re-process the selected payloads", permissions=["reprocess"])
    def reprocess(self, request, queryset):
        for payload in queryset.order_by("received_at", "pk"):
            ok, text = _reprocess_one(request, payload)
            self.message_user(request, text, messages.SUCCESS if ok else messages.ERROR)

    def reprocess_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_reprocess_permission(request):
            raise PermissionDenied
        payload = get_object_or_404(Payload, pk=object_id)
        ok, text = _reprocess_one(request, payload)
        self.message_user(request, text, messages.SUCCESS if ok else messages.ERROR)
        return HttpResponseRedirect(reverse("admin:intake_payload_change", args=[payload.pk]))


# --------------------------------------------------------------------------- assignment rules


class AssignmentRuleForm(forms.ModelForm):
    class Meta:
        model = AssignmentRule
        fields = ["rooftop", "priority", "lead_type", "source", "team"]

    def clean(self):
        cleaned = super().clean()
        rooftop, team, source = cleaned.get("rooftop"), cleaned.get("team"), cleaned.get("source")
        if rooftop is not None and team is not None and team.rooftop_id != rooftop.pk:
            self.add_error("team", f"This team is not at {rooftop}.")
        if rooftop is not None and source is not None and source.rooftop_id != rooftop.pk:
            self.add_error("source", f"This source is not at {rooftop}.")
        return cleaned


@admin.register(AssignmentRule)
class AssignmentRuleAdmin(PursuitAdmin):
    form = AssignmentRuleForm
    list_display = ["__str__", "priority", "lead_type", "source", "team", "rooftop"]
    list_filter = ["rooftop", "lead_type", "team"]
    search_fields = ["team__name", "source__name"]
    list_select_related = ["source", "team", "rooftop"]
    autocomplete_fields = ["source", "team"]
    fields = ["rooftop", "priority", "lead_type", "source", "team"]
    ordering = ["rooftop", "priority", "id"]
