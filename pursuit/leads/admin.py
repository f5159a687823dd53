"""Admin for customers (with merging), their contacts, leads, vehicles and the leads' timeline.

Changes that the timeline must record go through the services: a lead's status and owner are
changed with `lead_status_change` and `lead_reassign`, customers are merged with
`customer_merge`. The timeline itself is read-only here.
"""

from __future__ import annotations

import functools
import re

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.template import engines
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join

from pursuit.leads.models import Customer, CustomerEmail, CustomerPhone, Lead, LeadEvent, Vehicle
from pursuit.leads.services import LeadError, customer_merge, lead_reassign, lead_status_change
from pursuit.lib import clock
from pursuit.lib.contacts import email_normalise, phone_display, phone_normalise
from pursuit.org.admin import (
    PursuitAdmin,
    ReadOnlyAdmin,
    ReadOnlyInline,
    StaffFilter,
    admin_link,
    short_time,
    staff_label,
    when,
)
from pursuit.org.models import User

_DIGITS = re.compile(r"\D+")


def phone_shown(phone: CustomerPhone) -> str:
    """A customer's phone as staff read it: (312) 555-0142, or as written when not valid."""
    shown = phone_display(phone.number, verified=phone.verified)
    return shown if phone.verified else f"{shown} (unverified)"


def _phone_customers(term: str):
    """Ids of customers whose phone holds the digits of `term`, so "(312) 555-0100" finds
    +13125550100; None when the term is not a phone number."""
    digits = _DIGITS.sub("", term)
    if len(digits) < 7:
        return None
    return CustomerPhone.objects.filter(match_key__contains=digits[-10:]).values("customer_id")


# --------------------------------------------------------------------------- customers


class PhoneInlineForm(forms.ModelForm):
    class Meta:
        model = CustomerPhone
        fields = ["number", "type", "preferred"]

    def clean_number(self):
        number = self.cleaned_data["number"]
        customer = getattr(self.instance, "customer", None)
        country = customer.rooftop.country if customer is not None and customer.rooftop_id else "US"
        phone = phone_normalise(number, region=country)
        if phone is None:
            raise ValidationError("This is not a phone number.")
        self.instance.match_key, self.instance.verified = phone.match_key, phone.verified
        return phone.number


class EmailInlineForm(forms.ModelForm):
    class Meta:
        model = CustomerEmail
        fields = ["address"]

    def clean_address(self):
        address = email_normalise(self.cleaned_data["address"])
        if address is None:
            raise ValidationError("This is not an email address.")
        return address


class ContactFormSet(forms.BaseInlineFormSet):
    """Sets the denormalised rooftop and refuses the same phone or email twice on a customer."""

    key_field = ""

    def clean(self):
        super().clean()
        seen: set[str] = set()
        for form in self.forms:
            if not form.is_valid() or not form.cleaned_data or form.cleaned_data.get("DELETE"):
                continue
            key = (
                form.instance.match_key if self.key_field == "match_key" else form.cleaned_data.get("address")
            )
            if key in seen:
                raise ValidationError("The same phone number or email address is listed twice.")
            seen.add(key)

    def save_new(self, form, commit=True):
        form.instance.rooftop_id = self.instance.rooftop_id
        return super().save_new(form, commit=commit)


class PhoneFormSet(ContactFormSet):
    key_field = "match_key"


class PhoneInline(admin.TabularInline):
    model = CustomerPhone
    form = PhoneInlineForm
    formset = PhoneFormSet
    extra = 0
    fields = ["number", "type", "preferred", "verified"]
    readonly_fields = ["verified"]


class EmailInline(admin.TabularInline):
    model = CustomerEmail
    form = EmailInlineForm
    formset = ContactFormSet
    extra = 0
    fields = ["address"]


class CustomerLeadInline(ReadOnlyInline, admin.TabularInline):
    model = Lead
    fk_name = "customer"
    fields = ["lead_link", "status", "type", "source", "owner", "received", "lost_reason"]
    readonly_fields = fields
    verbose_name_plural = "Leads"
    ordering = ["-created_at"]

    @admin.display(description="Lead")
    def lead_link(self, obj) -> str:
        return admin_link(obj, f"Lead {obj.pk}")

    @admin.display(description="Received")
    def received(self, obj) -> str:
        return short_time(obj.received_at)


class MergedFilter(admin.SimpleListFilter):
    title = "merged"
    parameter_name = "merged"

    def lookups(self, request, model_admin):
        return [("no", "Current customers"), ("yes", "Merged into another")]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(merged_into__isnull=True)
        if self.value() == "yes":
            return queryset.filter(merged_into__isnull=False)
        return queryset


class OpenLeadFilter(admin.SimpleListFilter):
    title = "open lead"
    parameter_name = "open_lead"

    def lookups(self, request, model_admin):
        return [("yes", "Has an open lead"), ("no", "No open lead")]

    def queryset(self, request, queryset):
        has_open = Q(leads__status__in=Lead.OPEN_STATUSES)
        if self.value() == "yes":
            return queryset.filter(has_open).distinct()
        if self.value() == "no":
            return queryset.exclude(has_open)
        return queryset


MERGE_TEMPLATE = """{% extends "admin/base_site.html" %}{% load admin_urls %}
{% block breadcrumbs %}<div class="breadcrumbs"><a href="{% url 'admin:index' %}">Home</a>
&rsaquo; <a href="{% url 'admin:app_list' app_label=opts.app_label %}">{{ opts.app_config.verbose_name }}</a>
&rsaquo; <a href="{% url opts|admin_urlname:'changelist' %}">{{ opts.verbose_name_plural|capfirst }}</a>
&rsaquo; Merge customers</div>{% endblock %}
{% block content %}
<p>These two records are the same person? Choose the one to <strong>keep</strong>. The other one's leads,
timelines, phones and emails move to it, and its blank fields fill the kept one's. Nothing is deleted: the
merged record stays, pointing at the one kept. If both have an open lead, the merged one's is closed as a
duplicate.</p>
<form method="post">{% csrf_token %}
<table>
<thead><tr><th>Keep</th><th>Customer</th><th>Emails</th><th>Phones</th><th>Address</th><th>Created</th>
<th>Leads</th></tr></thead>
<tbody>
{% for c in customers %}<tr>
<td><input type="radio" name="keep" value="{{ c.obj.pk }}" id="keep-{{ c.obj.pk }}"
  {% if c.obj.pk == default_keep %}checked{% endif %}></td>
<td><label for="keep-{{ c.obj.pk }}"><strong>{{ c.obj }}</strong> (#{{ c.obj.pk }})</label></td>
<td>{{ c.emails|join:", "|default:"—" }}</td>
<td>{{ c.phones|join:", "|default:"—" }}</td>
<td>{{ c.obj.address|default:"—" }}</td>
<td>{{ c.created }}</td>
<td>{% for lead in c.leads %}Lead {{ lead.pk }}: {{ lead.get_status_display }}
  {% if lead.owner %}({{ lead.owner.display_name }}){% endif %}{% if not forloop.last %}<br>{% endif %}
  {% empty %}—{% endfor %}</td>
</tr>{% endfor %}
</tbody></table>
{% for obj in queryset %}
<input type="hidden" name="{{ action_checkbox_name }}" value="{{ obj.pk }}">{% endfor %}
<input type="hidden" name="action" value="merge_customers">
<input type="hidden" name="post" value="yes">
<p><input type="submit" value="Merge into the one chosen" class="default">
<a href="" class="button cancel-link">No, take me back</a></p>
</form>
{% endblock %}"""


@functools.cache
def _merge_template():
    # The confirmation page lives here, next to the action that renders it.
    return engines["django"].from_string(MERGE_TEMPLATE)


@admin.register(Customer)
class CustomerAdmin(PursuitAdmin):
    list_display = [
        "name",
        "email_list",
        "phone_list",
        "open_lead_status",
        "lead_count",
        "city",
        when("created_at", "Created"),
        "rooftop",
        "merged_into_link",
    ]
    list_filter = ["rooftop", OpenLeadFilter, MergedFilter, "preferred_contact"]
    search_fields = ["first_name", "last_name", "emails__address", "phones__number", "city", "postal_code"]
    search_help_text = "Name, email, phone number (any format), city or ZIP."
    list_select_related = ["rooftop", "merged_into"]
    ordering = ["-created_at", "-id"]
    date_hierarchy = "created_at"
    actions = ["merge_customers", "mark_do_not_contact", "mark_deceased"]
    inlines = [PhoneInline, EmailInline, CustomerLeadInline]
    readonly_fields = ["rooftop", "created_at", "merged_into"]
    fieldsets = [
        (None, {"fields": ["rooftop", ("first_name", "middle_name", "last_name"), "preferred_contact"]}),
        (
            "Address",
            {"fields": ["street", "apartment", ("city", "region", "postal_code"), "country", "time_zone"]},
        ),
        ("Record", {"fields": ["created_at", "merged_into"]}),
    ]

    def get_queryset(self, request):
        # Subqueries rather than joins: no GROUP BY, so searches can be OR-ed onto this queryset.
        open_status = Lead.objects.filter(customer=OuterRef("pk"), status__in=Lead.OPEN_STATUSES).values(
            "status"
        )
        n_leads = (
            Lead.objects.filter(customer=OuterRef("pk"))
            .order_by()
            .values("customer")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(open_status=Subquery(open_status[:1]), n_leads=Coalesce(Subquery(n_leads), 0))
            .prefetch_related("emails", "phones")
        )

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        by_phone = _phone_customers(search_term)
        if by_phone is None:
            return results, may_have_duplicates
        return results | queryset.filter(pk__in=by_phone), True

    def has_add_permission(self, request) -> bool:
        # Customers arrive with their leads (intake, the new-lead form); duplicates are merged.
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # nothing is deleted: merge duplicates instead

    @admin.display(description="Name", ordering="last_name")
    def name(self, obj) -> str:
        return str(obj)

    @admin.display(description="Emails")
    def email_list(self, obj) -> str:
        return ", ".join(e.address for e in obj.emails.all()) or "—"

    @admin.display(description="Phones")
    def phone_list(self, obj) -> str:
        return ", ".join(phone_shown(p) for p in obj.phones.all()) or "—"

    @admin.display(description="Open lead", ordering="open_status")
    def open_lead_status(self, obj) -> str:
        return Lead.Status(obj.open_status).label if obj.open_status else "—"

    @admin.display(description="Leads", ordering="n_leads")
    def lead_count(self, obj) -> int:
        return obj.n_leads

    @admin.display(description="Merged into", ordering="merged_into")
    def merged_into_link(self, obj) -> str:
        return admin_link(obj.merged_into) if obj.merged_into_id else ""

    def _stop(self, request, queryset, reason: str):
        from pursuit.plans.services import customer_stop

        closed = sum(
            customer_stop(customer=c, reason=reason, now=clock.now(), by=request.user) for c in queryset
        )
        self.message_user(
            request,
            f"{queryset.count()} customer(s) marked; {closed} open lead(s) closed, all follow-up stopped.",
            messages.SUCCESS,
        )

    @admin.action(description="Do not contact: stop all follow-up at once", permissions=["change"])
    def mark_do_not_contact(self, request, queryset):
        self._stop(request, queryset, "do-not-contact")

    @admin.action(description="Deceased: stop all follow-up at once", permissions=["change"])
    def mark_deceased(self, request, queryset):
        self._stop(request, queryset, "deceased")

    @admin.action(description="Merge selected customers (choose which to keep)", permissions=["change"])
    def merge_customers(self, request, queryset):
        customers = list(
            queryset.select_related("rooftop")
            .prefetch_related("emails", "phones", "leads__owner")
            .order_by("created_at", "pk")
        )
        if len(customers) != 2:
            self.message_user(
                request,
                f"Select exactly two customers to merge (you selected {len(customers)}).",
                messages.ERROR,
            )
            return None
        first, second = customers
        if first.rooftop_id != second.rooftop_id:
            self.message_user(
                request, "These customers belong to different rooftops and cannot be merged.", messages.ERROR
            )
            return None
        merged = [c for c in customers if c.merged_into_id]
        if merged:
            self.message_user(
                request,
                f"{merged[0]} (#{merged[0].pk}) was already merged into another customer.",
                messages.ERROR,
            )
            return None
        if request.POST.get("post") == "yes":
            chosen = request.POST.get("keep")
            by_pk = {str(c.pk): c for c in customers}
            if chosen in by_pk:
                keep = by_pk[chosen]
                merge = second if keep is first else first
                try:
                    customer_merge(keep=keep, merge=merge, now=clock.now(), by=request.user)
                except LeadError as exc:
                    self.message_user(request, f"Not merged: {exc}", messages.ERROR)
                else:
                    self.message_user(
                        request,
                        format_html(
                            "{} (#{}) was merged into {}.",
                            merge,
                            merge.pk,
                            admin_link(keep, f"{keep} (#{keep.pk})"),
                        ),
                        messages.SUCCESS,
                    )
                return None
            self.message_user(request, "Choose which customer to keep.", messages.WARNING)
        default_keep = next(
            (c.pk for c in customers if any(lead.is_open for lead in c.leads.all())), first.pk
        )
        context = {
            **self.admin_site.each_context(request),
            "title": "Merge customers",
            "opts": self.model._meta,
            "queryset": customers,
            "default_keep": default_keep,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "customers": [
                {
                    "obj": c,
                    "emails": [e.address for e in c.emails.all()],
                    "phones": [phone_shown(p) for p in c.phones.all()],
                    "created": short_time(c.created_at),
                    "leads": sorted(c.leads.all(), key=lambda lead: lead.created_at),
                }
                for c in customers
            ],
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, _merge_template(), context)


class ContactAdmin(PursuitAdmin):
    """Phones and emails are edited on their customer's page; these lists answer "whose is this?"."""

    list_select_related = ["customer", "rooftop"]
    list_filter = ["rooftop"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Customer", ordering="customer__last_name")
    def customer_link(self, obj) -> str:
        return admin_link(obj.customer)


@admin.register(CustomerPhone)
class CustomerPhoneAdmin(ContactAdmin):
    list_display = ["number_shown", "type", "verified", "preferred", "customer_link", "rooftop"]

    @admin.display(description="Number", ordering="number")
    def number_shown(self, obj) -> str:
        return phone_shown(obj)

    list_filter = ["rooftop", "verified", "type"]
    search_fields = ["number", "match_key", "customer__first_name", "customer__last_name"]


@admin.register(CustomerEmail)
class CustomerEmailAdmin(ContactAdmin):
    list_display = ["address", "customer_link", "rooftop"]
    search_fields = ["address", "customer__first_name", "customer__last_name"]


# --------------------------------------------------------------------------- leads


class VehicleInline(admin.TabularInline):
    model = Vehicle
    extra = 0
    fields = [
        "role",
        "condition",
        "year",
        "make",
        "model",
        "trim",
        "vin",
        "stock",
        "price",
        "odometer",
        "odometer_units",
    ]


class LeadEventInline(ReadOnlyInline, admin.TabularInline):
    model = LeadEvent
    fields = ["at_display", "kind", "actor", "text"]
    readonly_fields = fields
    verbose_name_plural = "Timeline"

    @admin.display(description="When")
    def at_display(self, obj) -> str:
        return short_time(obj.at)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")


class LeadForm(forms.ModelForm):
    class Meta:
        model = Lead
        fields = ["status", "lost_reason", "owner", "comments", "timeframe"]

    def clean(self):
        cleaned = super().clean()
        lead = self.instance
        owner = cleaned.get("owner")
        if "owner" in self.changed_data:
            if owner is None:
                self.add_error("owner", "Choose who takes this lead (a lead cannot be given back to nobody).")
            elif owner.rooftop_id != lead.rooftop_id:
                self.add_error("owner", f"{owner.display_name} does not work at {lead.rooftop}.")
        status = cleaned.get("status")
        # clean() runs before the form writes to the instance: lead.status is the stored status.
        if "status" in self.changed_data and status in Lead.OPEN_STATUSES and not lead.is_open:
            other = (
                Lead.objects.filter(customer_id=lead.customer_id, status__in=Lead.OPEN_STATUSES)
                .exclude(pk=lead.pk)
                .first()
            )
            if other is not None:
                self.add_error(
                    "status",
                    f"This customer already has an open lead (lead {other.pk}): work that one instead.",
                )
        if (
            "status" in self.changed_data
            and status == Lead.Status.LOST
            and not (cleaned.get("lost_reason") or "").strip()
        ):
            self.add_error("lost_reason", "Say why the customer did not buy (price, trade value, credit...).")
        return cleaned


@admin.register(Lead)
class LeadAdmin(PursuitAdmin):
    form = LeadForm
    list_display = [
        "id",
        "customer",
        "status",
        "type",
        "source_name",
        "owner_name",
        when("received_at", "Received"),
        "first_response",
        "flag_list",
        "rooftop",
    ]
    list_display_links = ["id", "customer"]
    list_filter = ["status", "type", "rooftop", "source", ("owner", StaffFilter)]
    search_fields = [
        "customer__first_name",
        "customer__last_name",
        "customer__emails__address",
        "customer__phones__number",
        "vehicles__model",
        "vehicles__vin",
        "=id",
    ]
    search_help_text = "Customer name, email or phone (any format), vehicle model or VIN, or the lead number."
    list_select_related = ["customer", "source", "owner", "rooftop"]
    ordering = ["-created_at", "-id"]
    date_hierarchy = "received_at"
    inlines = [VehicleInline, LeadEventInline]
    readonly_fields = [
        "customer_link",
        "contacts",
        "rooftop",
        "source",
        "type",
        "payload_link",
        "provider",
        "external_ids",
        "flags",
        "received_at",
        "created_at",
        "assigned_at",
        "auto_response_at",
        "first_attempt_at",
        "first_reply_at",
        "sold_at",
        "closed_at",
        "first_response",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "customer_link",
                    "contacts",
                    "rooftop",
                    ("type", "source"),
                    "status",
                    "lost_reason",
                    "owner",
                    "flags",
                ],
                "description": "Changing the status or the owner here is recorded on the lead's timeline.",
            },
        ),
        (
            "What they asked",
            {"fields": ["comments", "timeframe", "provider", "external_ids", "payload_link"]},
        ),
        (
            "Times",
            {
                "fields": [
                    ("received_at", "created_at"),
                    ("assigned_at", "auto_response_at"),
                    ("first_attempt_at", "first_response"),
                    "first_reply_at",
                    ("sold_at", "closed_at"),
                ]
            },
        ),
    ]

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        by_phone = _phone_customers(search_term)
        if by_phone is None:
            return results, may_have_duplicates
        return results | queryset.filter(customer_id__in=by_phone), True

    def has_add_permission(self, request) -> bool:
        return False  # leads arrive through intake or the new-lead form

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a lead's history is kept: close it instead

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        owner = form.base_fields.get("owner")
        if obj is not None and owner is not None:
            owner.queryset = User.objects.filter(rooftop_id=obj.rooftop_id).order_by(
                "first_name", "last_name"
            )
            owner.label_from_instance = staff_label
            # Staff are managed on their own page, not from a lead.
            for flag in ("can_add_related", "can_change_related", "can_delete_related", "can_view_related"):
                setattr(owner.widget, flag, False)
        return form

    def save_model(self, request, obj, form, change):
        now = clock.now()
        direct = [f for f in form.changed_data if f not in ("status", "owner")]
        if direct:
            Lead.objects.filter(pk=obj.pk).update(**{f: getattr(obj, f) for f in direct})
        try:
            if "owner" in form.changed_data and obj.owner is not None:
                lead_reassign(lead=obj, owner=obj.owner, now=now, by=request.user, why="changed in the admin")
            if "status" in form.changed_data:
                lead_status_change(
                    lead=obj,
                    user=request.user,
                    status=obj.status,
                    now=now,
                    reason=obj.lost_reason if obj.status == Lead.Status.LOST else "",
                )
        except LeadError as exc:
            self.message_user(request, f"Not changed: {exc}", messages.ERROR)

    def save_related(self, request, form, formsets, change):
        # The lead's own fields were saved by the services; only the vehicles are saved here.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    @admin.display(description="Customer")
    def customer_link(self, obj) -> str:
        return admin_link(obj.customer)

    @admin.display(description="Source", ordering="source__name")
    def source_name(self, obj) -> str:
        return obj.source.name if obj.source_id else "—"

    @admin.display(description="Owner", ordering="owner__first_name")
    def owner_name(self, obj) -> str:
        return obj.owner.display_name if obj.owner_id else "nobody"

    @admin.display(description="Reach them at")
    def contacts(self, obj) -> str:
        items = [e.address for e in obj.customer.emails.all()] + [
            phone_shown(p) for p in obj.customer.phones.all()
        ]
        return format_html_join(", ", "{}", ((i,) for i in items)) if items else "No phone or email"

    @admin.display(description="Payload")
    def payload_link(self, obj) -> str:
        return admin_link(obj.payload) if obj.payload_id else "—"

    @admin.display(description="First response")
    def first_response(self, obj) -> str:
        seconds = obj.first_response_seconds()
        if seconds is None:
            return "not yet" if obj.is_open else "—"
        minutes = int(seconds // 60)
        if minutes < 60:
            return f"{minutes} min"
        if minutes < 48 * 60:
            return f"{minutes // 60} h {minutes % 60:02d}"
        return f"{minutes // (24 * 60)} days"

    @admin.display(description="Flags")
    def flag_list(self, obj) -> str:
        return ", ".join(obj.flags) if obj.flags else ""


@admin.register(Vehicle)
class VehicleAdmin(PursuitAdmin):
    list_display = ["__str__", "role", "condition", "vin", "stock", "price", "lead_link"]
    list_filter = ["role", "condition", "make", "lead__rooftop"]
    search_fields = ["make", "model", "trim", "vin", "stock", "lead__customer__last_name"]
    list_select_related = ["lead__customer"]
    readonly_fields = ["lead_link"]
    fields = [
        "lead_link",
        "role",
        "condition",
        ("year", "make", "model"),
        "trim",
        ("vin", "stock"),
        "price",
        ("odometer", "odometer_units"),
    ]

    def has_add_permission(self, request) -> bool:
        return False  # added on the lead's page

    @admin.display(description="Lead", ordering="lead")
    def lead_link(self, obj) -> str:
        return admin_link(obj.lead)


@admin.register(LeadEvent)
class LeadEventAdmin(ReadOnlyAdmin):
    list_display = [when("at", "When"), "kind", "lead_link", "actor", "text"]
    list_filter = ["kind", "lead__rooftop", ("actor", StaffFilter)]
    search_fields = ["text", "lead__customer__last_name", "=lead__id"]
    list_select_related = ["lead__customer", "actor"]
    date_hierarchy = "at"
    ordering = ["-at", "-id"]
    fields = ["lead_link", "kind", "at", "actor", "text", "data"]
    readonly_fields = fields

    @admin.display(description="Lead", ordering="lead")
    def lead_link(self, obj) -> str:
        return admin_link(obj.lead)
