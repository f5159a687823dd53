"""Admin for compliance: the consent ledger, the group's own do-not-contact list, the national
registry copies (with the page that imports a new one), the decision log and the touches; and a
page showing the state rule table (rules.yaml) with its review dates.

What the law asks us to prove is read-only here: consent, decisions and touches are written by
the services at the moment they happen and never edited. The internal list can be added to by
hand (a request that came by letter, say) and an entry removed by someone allowed to delete it.
"""

from __future__ import annotations

import datetime as dt
import functools
from itertools import groupby

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from pursuit.compliance import rules as law
from pursuit.compliance.gate import REGISTRY_FRESH_DAYS
from pursuit.compliance.models import Consent, Decision, RegistryCopy, Suppression, Touch
from pursuit.compliance.services import RegistryFileError, registry_file_import
from pursuit.lib import clock
from pursuit.lib.contacts import email_normalise, phone_normalise
from pursuit.org.admin import PursuitAdmin, ReadOnlyAdmin, _in_zone, admin_link, admin_time_zone, when
from pursuit.org.models import Rooftop
from pursuit.web.selectors import registry_state

STALE_REVIEW_DAYS = 365  # a rule table entry not reviewed for longer is flagged
BAD_LINES_SHOWN = 20


def _today(request) -> dt.date:
    return clock.now().astimezone(admin_time_zone(request) or dt.UTC).date()


def registry_warnings(today: dt.date) -> list[str]:
    """A warning per country with rooftops (and always the US) whose registry copy is missing or
    older than REGISTRY_FRESH_DAYS."""
    countries = {c.upper() for c in Rooftop.objects.values_list("country", flat=True) if c} | {"US"}
    found = [registry_state(country=c, today=today).warning for c in sorted(countries)]
    return [w for w in found if w]


def customer_column(obj) -> str:
    return admin_link(obj.customer)


customer_column.short_description = "Customer"  # type: ignore[attr-defined]
customer_column.admin_order_field = "customer__last_name"  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- consent


@admin.register(Consent)
class ConsentAdmin(ReadOnlyAdmin):
    """The consent ledger. Staff record consent on the lead page; nothing here is edited."""

    list_display = [
        when("at", "At"),
        customer_column,
        "channel",
        "purpose",
        "granted",
        "written",
        "source",
        "evidence_short",
    ]
    list_filter = ["channel", "purpose", "granted", "written", "source", "customer__rooftop"]
    search_fields = ["customer__first_name", "customer__last_name", "evidence"]
    search_help_text = "Customer name or words of the evidence."
    list_select_related = ["customer"]
    ordering = ["-at", "-id"]
    date_hierarchy = "at"
    fields = [
        "customer",
        "lead",
        "channel",
        "purpose",
        "granted",
        "written",
        "source",
        "evidence",
        "at",
        "by",
    ]

    @admin.display(description="Evidence")
    def evidence_short(self, obj) -> str:
        return obj.evidence if len(obj.evidence) <= 100 else obj.evidence[:100] + "…"


# --------------------------------------------------------------------------- the internal list


class SuppressionForm(forms.ModelForm):
    class Meta:
        model = Suppression
        fields = ["group", "kind", "value", "note"]
        labels = {"value": "Phone number or email address"}
        help_texts = {"note": "The request in the customer's words, how it came, who took it."}

    def clean(self):
        cleaned = super().clean()
        kind, value = cleaned.get("kind"), (cleaned.get("value") or "").strip()
        if not value:
            return cleaned
        if kind == Suppression.Kind.PHONE:
            group = cleaned.get("group")
            region = (group.rooftops.values_list("country", flat=True).first() if group else "") or "US"
            phone = phone_normalise(value, region=region)
            if phone is None or not phone.verified:
                self.add_error("value", "This is not a phone number: write it with its area code.")
            else:
                cleaned["value"] = phone.number
        elif kind == Suppression.Kind.EMAIL:
            address = email_normalise(value)
            if address is None:
                self.add_error("value", "This is not an email address.")
            else:
                cleaned["value"] = address
        # A number or address already on the list: the model's unique constraint says so, checked
        # on the normalised value.
        return cleaned


@admin.register(Suppression)
class SuppressionAdmin(PursuitAdmin):
    """The dealer group's own do-not-contact list: added to by hand, never edited."""

    form = SuppressionForm
    list_display = ["value", "kind", "group", "source", customer_column, when("at", "Since"), "by_name"]
    list_filter = ["kind", "source", "group"]
    search_fields = ["value", "note", "customer__first_name", "customer__last_name"]
    search_help_text = "Number (+13125550142), address, or customer name."
    list_select_related = ["group", "customer", "by"]
    ordering = ["-at", "-id"]
    date_hierarchy = "at"

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            return ["group", "kind", "value", "source", "note", "customer", "by", "at"]
        return []

    def get_fields(self, request, obj=None):
        if obj is not None:
            return ["group", "kind", "value", "source", "note", "customer", "by", "at"]
        return ["group", "kind", "value", "note"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.source, obj.by, obj.at = "staff (admin)", request.user, clock.now()
        super().save_model(request, obj, form, change)

    @admin.display(description="Taken by")
    def by_name(self, obj) -> str:
        return obj.by.display_name if obj.by else "—"


# --------------------------------------------------------------------------- the national registry


class RegistryImportForm(forms.Form):
    file = forms.FileField(
        label="Do-not-call file",
        help_text="Plain text, one number per line: 3125550143 or 312,5550143 (the FTC download's "
        "shape). A header line, blank lines and # comments are skipped.",
    )
    copied_on = forms.DateField(
        label="Date of the copy",
        help_text="The date the registry copy was made (not today's date, unless it was made today).",
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter a date such as 2026-11-23."},
    )
    country = forms.ChoiceField(
        choices=[("US", "United States (National DNC Registry)"), ("CA", "Canada (DNCL)")]
    )


@admin.register(RegistryCopy)
class RegistryCopyAdmin(PursuitAdmin):
    """The imported copies, newest first. A copy replaces the numbers of the one before it, so
    copies are neither added by hand nor deleted: a new one is imported."""

    list_display = [
        "country",
        "copied_on",
        "age",
        "numbers",
        when("imported_at", "Imported"),
        "file_name",
        "by",
    ]
    list_filter = ["country"]
    list_select_related = ["by"]
    ordering = ["-copied_on", "-id"]
    readonly_fields = ["country", "copied_on", "imported_at", "numbers", "file_name", "by"]
    change_list_template = "admin/compliance/registrycopy/change_list.html"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_import_permission(self, request) -> bool:
        return request.user.has_perm("compliance.add_registrycopy")

    @admin.display(description="Age")
    def age(self, obj) -> str:
        days = (clock.now().date() - obj.copied_on).days
        text = f"{days} day{'s' if days != 1 else ''}"
        if days > REGISTRY_FRESH_DAYS:
            return format_html(
                '<strong style="color: #ba2121">{} (older than {})</strong>', text, REGISTRY_FRESH_DAYS
            )
        return text

    def get_urls(self):
        return [
            path(
                "import/", self.admin_site.admin_view(self.import_view), name="compliance_registrycopy_import"
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra = {
            "registry_warnings": registry_warnings(_today(request)),
            "can_import": self.has_import_permission(request),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=extra)

    def import_view(self, request):
        return _in_zone(request, self._import_view)

    def _import_view(self, request):
        if not self.has_import_permission(request):
            raise PermissionDenied
        result = None
        problems: list[tuple[int, str]] = []
        error = ""
        if request.method == "POST":
            form = RegistryImportForm(request.POST, request.FILES)
            if form.is_valid():
                upload = form.cleaned_data["file"]
                # Read line by line from the upload (a registry has millions of lines); a byte
                # that is not UTF-8 spoils only its line, which is then reported.
                lines = (line.decode("utf-8", errors="replace") for line in upload)
                try:
                    result, problems = registry_file_import(
                        lines=lines,
                        copied_on=form.cleaned_data["copied_on"],
                        at=clock.now(),
                        today=_today(request),
                        country=form.cleaned_data["country"],
                        file_name=upload.name,
                        by=request.user,
                    )
                except RegistryFileError as exc:
                    error, problems = str(exc), exc.problems
                    form.add_error(None, f"Not imported: {error}.")
                else:
                    self.message_user(
                        request,
                        f"Imported {result.numbers:,} number{'s' if result.numbers != 1 else ''} from {upload.name} ({result.country} copy of "
                        f"{result.copied_on:%Y-%m-%d}); {len(problems):,} bad line"
                        f"{'s' if len(problems) != 1 else ''} left out.",
                        messages.SUCCESS if not problems else messages.WARNING,
                    )
        else:
            form = RegistryImportForm(initial={"copied_on": _today(request), "country": "US"})
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Import a do-not-call file",
            "form": form,
            "result": result,
            "problems": problems[:BAD_LINES_SHOWN],
            "problems_total": len(problems),
            "problems_capped": len(problems) >= 1000,
            "fresh_days": REGISTRY_FRESH_DAYS,
            "registry_warnings": [] if result else registry_warnings(_today(request)),
        }
        status = 422 if request.method == "POST" and result is None else 200
        return TemplateResponse(request, "admin/compliance/registrycopy/import.html", context, status=status)


# --------------------------------------------------------------------------- decisions and touches


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = [
        when("at", "At"),
        customer_column,
        "lead_link",
        "channel",
        "purpose",
        "verdict",
        "rule",
        "detail_short",
        when("until", "Until"),
    ]
    list_filter = ["verdict", "channel", "purpose", "customer__rooftop"]
    search_fields = ["rule", "detail", "customer__first_name", "customer__last_name"]
    search_help_text = "Rule (quiet-hours:FL, cap:, possible-stop), words of the detail, or customer name."
    list_select_related = ["customer"]
    ordering = ["-at", "-id"]
    date_hierarchy = "at"
    fields = [
        "at",
        "customer",
        "lead",
        "step",
        "channel",
        "purpose",
        "verdict",
        "rule",
        "detail",
        "until",
        "inputs",
    ]

    @admin.display(description="Lead")
    def lead_link(self, obj) -> str:
        if not obj.lead_id:
            return "—"
        return format_html('<a href="{}">#{}</a>', reverse("lead", args=[obj.lead_id]), obj.lead_id)

    @admin.display(description="Detail")
    def detail_short(self, obj) -> str:
        return obj.detail if len(obj.detail) <= 120 else obj.detail[:120] + "…"

    def get_urls(self):
        return [
            path("rules/", self.admin_site.admin_view(self.rule_tables_view), name="compliance_rule_tables"),
            *super().get_urls(),
        ]

    def rule_tables_view(self, request):
        return _in_zone(request, self._rule_tables_view)

    def _rule_tables_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        today = _today(request)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "State rule tables",
            "today": today,
            "stale_days": STALE_REVIEW_DAYS,
            "registry_warnings": registry_warnings(today),
            "rules_path": law.RULES_PATH.name,
        }
        try:
            table = law.rules_load()
        except law.RulesError as exc:
            context["problems"] = exc.problems
        else:
            context |= {
                "table": table,
                "table_age": (today - table.reviewed).days,
                "table_stale": (today - table.reviewed).days > STALE_REVIEW_DAYS,
                "rows": rule_rows(table, today),
            }
        return TemplateResponse(request, "admin/compliance/rule_tables.html", context)


@admin.register(Touch)
class TouchAdmin(ReadOnlyAdmin):
    list_display = [when("at", "At"), customer_column, "channel", "purpose", "automated", "what", "by"]
    list_filter = ["channel", "purpose", "automated", "customer__rooftop"]
    search_fields = ["what", "customer__first_name", "customer__last_name"]
    list_select_related = ["customer", "by"]
    ordering = ["-at", "-id"]
    date_hierarchy = "at"


# --------------------------------------------------------------------------- the rule table

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _clock(t: dt.time) -> str:
    return f"{t.hour}:{t.minute:02d}"


def hours_text(hours) -> list[str]:
    """A week of windows as people read it: ["Mon–Sat 9:00–21:00", "Sun 12:00–21:00"]; days
    with no window say "no calls"."""
    if hours is None:
        return ["the national rule's hours"]
    lines = []
    for span, group in groupby(range(7), key=lambda d: hours[d]):
        days = list(group)
        first, last = DAY_NAMES[days[0]], DAY_NAMES[days[-1]]
        name = first if first == last else f"{first}–{last}"
        lines.append(f"{name} {_clock(span[0])}–{_clock(span[1])}" if span else f"{name}: none")
    return lines


def holidays_text(rule: law.Rule) -> list[str]:
    if rule.holidays is None:
        return []
    found = []
    if rule.holidays.library:
        found.append("the state's legal holidays")
    if rule.holidays.sunday_rolls_to_monday:
        found.append("a Sunday holiday also blocks the Monday")
    found += [f"+ {h.name}" for h in rule.holidays.add]
    return found


def rule_rows(table: law.Rules, today: dt.date) -> list[dict]:
    """One row per rule, national rules first, then each country's regions by code."""
    rules = [table.national[c] for c in sorted(table.national)]
    rules += [table.regional[k] for k in sorted(table.regional)]
    rows = []
    for rule in rules:
        age = (today - rule.reviewed).days
        rows.append(
            {
                "rule": rule,
                "place": rule.country + (f"-{rule.region}" if rule.region else ""),
                "hours": hours_text(rule.hours),
                "holidays": holidays_text(rule),
                "channels": ", ".join(sorted(rule.channels)),
                "registration": ", ".join(sorted(rule.registration_required_for)),
                "age": age,
                "stale": age > STALE_REVIEW_DAYS,
            }
        )
    return rows


# --------------------------------------------------------------------------- the index


def _with_rule_tables(get_app_list):
    """The admin lists models only; the rule table page is listed in the Compliance section too,
    where an administrator looks for it."""

    @functools.wraps(get_app_list)
    def app_list(request, app_label=None):
        apps = get_app_list(request, app_label)
        if not request.user.has_perm("compliance.view_decision"):
            return apps
        for app in apps:
            if app["app_label"] == "compliance":
                app["models"].append(
                    {
                        "name": "State rule tables",
                        "object_name": "RuleTables",
                        "admin_url": reverse("admin:compliance_rule_tables"),
                        "add_url": None,
                        "view_only": True,
                        "perms": {"view": True},
                    }
                )
                app["models"].sort(key=lambda m: m["name"])
        return apps

    return app_list


admin.site.get_app_list = _with_rule_tables(admin.site.get_app_list)
