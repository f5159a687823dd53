"""Admin for dealer groups, rooftops (with holidays and business hours), staff and teams.

Also the helpers every Pursuit admin shares: times shown in the dealership's own time zone,
compact date columns, and read-only admins for append-only history.
"""

from __future__ import annotations

import json
import zoneinfo
from collections.abc import Callable

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Count
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html

from pursuit.intake.models import AssignmentRule
from pursuit.lib.contacts import phone_normalise
from pursuit.org.models import WEEKDAYS, DealerGroup, Holiday, Rooftop, Team, User

# --------------------------------------------------------------------------- shared helpers


def admin_time_zone(request) -> zoneinfo.ZoneInfo | None:
    """The zone admin pages show times in: the user's rooftop's, else the first rooftop's.

    Dealership staff think in their local time; UTC in an admin page is a trap ("was this lead
    answered at 2 pm or 8 am?"). None when there is no rooftop yet (then settings.TIME_ZONE).
    """
    cached = getattr(request, "_pursuit_admin_tz", False)
    if cached is not False:
        return cached
    zone_name = ""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and getattr(user, "rooftop_id", None):
        zone_name = (
            Rooftop.objects.filter(pk=user.rooftop_id).values_list("time_zone", flat=True).first() or ""
        )
    if not zone_name:
        zone_name = Rooftop.objects.order_by("id").values_list("time_zone", flat=True).first() or ""
    try:
        zone = zoneinfo.ZoneInfo(zone_name) if zone_name else None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = None
    request._pursuit_admin_tz = zone
    return zone


def _in_zone(request, view: Callable, *args, **kwargs):
    """Run an admin view, and render its response, with the dealership's zone active (template
    responses render lazily, after the view returns, so rendering must happen inside too)."""
    zone = admin_time_zone(request)
    if zone is None:
        return view(request, *args, **kwargs)
    with timezone.override(zone):
        response = view(request, *args, **kwargs)
        if isinstance(response, TemplateResponse) and not response.is_rendered:
            response.render()
    return response


class PursuitAdminMixin:
    """Shows and reads times in the dealership's time zone."""

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if isinstance(db_field, models.URLField):
            kwargs.setdefault("assume_scheme", "https")  # what a dealer types: "lakeside-honda.com"
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def changelist_view(self, request, extra_context=None):
        return _in_zone(request, super().changelist_view, extra_context=extra_context)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return _in_zone(request, super().changeform_view, object_id, form_url, extra_context)

    def history_view(self, request, object_id, extra_context=None):
        return _in_zone(request, super().history_view, object_id, extra_context=extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        return _in_zone(request, super().delete_view, object_id, extra_context=extra_context)


class PursuitAdmin(PursuitAdminMixin, admin.ModelAdmin):
    list_per_page = 50


class ReadOnlyAdmin(PursuitAdmin):
    """Append-only history: it can be read, never added, changed or deleted here."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyInline:
    """Mixin for inlines that only show rows."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def short_time(value) -> str:
    """A timestamp as staff read it, in the active zone: "Tue Mar 10 2026, 09:05"."""
    if value is None:
        return "—"
    local = timezone.localtime(value)
    return f"{local:%a %b} {local.day} {local:%Y, %H:%M}"


def when(field: str, label: str) -> Callable:
    """A compact, sortable list column for a datetime field."""

    @admin.display(description=label, ordering=field)
    def column(obj) -> str:
        return short_time(getattr(obj, field))

    column.__name__ = f"{field}_display"
    return column


def staff_label(user: User) -> str:
    """How a member of staff is named in admin choices: "Alice Nguyen (alice, BDC agent)"."""
    name = user.get_full_name()
    who = f"{name} ({user.username}, {user.get_role_display()})" if name else user.username
    return who if user.is_active else f"{who}, inactive"


class StaffFilter(admin.RelatedFieldListFilter):
    """A filter on a member of staff, named as people know them (not by username)."""

    def field_choices(self, field, request, model_admin):
        return [(u.pk, u.display_name) for u in User.objects.order_by("first_name", "last_name", "username")]


def admin_link(obj, text: str | None = None) -> str:
    """A link to `obj`'s admin change page (or "—")."""
    if obj is None:
        return "—"
    from django.urls import reverse

    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, text if text is not None else str(obj))


# --------------------------------------------------------------------------- groups and rooftops


@admin.register(DealerGroup)
class DealerGroupAdmin(PursuitAdmin):
    list_display = ["name", "rooftop_count"]
    search_fields = ["name"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_rooftops=Count("rooftops"))

    @admin.display(description="Rooftops", ordering="n_rooftops")
    def rooftop_count(self, obj) -> int:
        return obj.n_rooftops


class HolidayInline(admin.TabularInline):
    model = Holiday
    extra = 1
    fields = ["date", "name"]


class JSONTextarea(forms.Textarea):
    def __init__(self, attrs=None):
        super().__init__({"rows": 12, "cols": 60, "style": "font-family: monospace", **(attrs or {})})


class PrettyJSONField(forms.JSONField):
    """JSON edited as indented text; a syntax error says where it is."""

    widget = JSONTextarea

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        if isinstance(value, dict) and value:
            # One key per line: {"mon": [["09:00", "20:00"]], ...} reads like a timetable.
            lines = [f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in value.items()]
            return "{\n" + ",\n".join(lines) + "\n}"
        return json.dumps(value, ensure_ascii=False)

    def to_python(self, value):
        if self.disabled or value in self.empty_values:
            return super().to_python(value)
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValidationError(
                f"This is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}. "
                'Write it like {"mon": [["09:00", "20:00"]], "sun": []}.',
                code="invalid",
            ) from None


BUSINESS_HOURS_HELP = (
    "Opening hours per weekday, as JSON: each of mon, tue, wed, thu, fri, sat, sun maps to a list of "
    '[open, close] times (24-hour HH:MM); an empty list means closed. Example: {"mon": [["09:00", "20:00"]], '
    '"sat": [["09:00", "18:00"]], "sun": []}. '
    'A day with a lunch break: [["09:00", "12:00"], ["13:00", "18:00"]].'
)


class RooftopForm(forms.ModelForm):
    business_hours = PrettyJSONField(help_text=BUSINESS_HOURS_HELP)

    class Meta:
        model = Rooftop
        fields = [
            "group",
            "name",
            "time_zone",
            "country",
            "phone",
            "email",
            "website",
            "street",
            "city",
            "region",
            "postal_code",
            "business_hours",
            "remind_owner_after",
            "handoff_after",
            "handoff_enabled",
            "manager_after",
        ]

    def clean_business_hours(self):
        # The shape checks the model validator does not make (it would crash on a day that is
        # not a list), so the admin reads a plain sentence instead of a server error.
        value = self.cleaned_data["business_hours"]
        if not isinstance(value, dict):
            raise ValidationError('Business hours must be a JSON object: {"mon": [...], ..., "sun": [...]}.')
        unknown = [day for day in value if day not in WEEKDAYS]
        if unknown:
            raise ValidationError(
                f"Unknown day(s) {', '.join(map(repr, unknown))}: use {', '.join(WEEKDAYS)}."
            )
        for day, spans in value.items():
            if not isinstance(spans, list):
                raise ValidationError(
                    f"{day}: expected a list of [open, close] pairs (or [] when closed), "
                    f"not {json.dumps(spans)}."
                )
            for span in spans:
                if not (isinstance(span, list) and len(span) == 2 and all(isinstance(t, str) for t in span)):
                    raise ValidationError(f'{day}: {json.dumps(span)} is not a pair like ["09:00", "20:00"].')
        return value

    def clean_country(self):
        return self.cleaned_data["country"].strip().upper()


@admin.register(Rooftop)
class RooftopAdmin(PursuitAdmin):
    form = RooftopForm
    list_display = ["name", "group", "time_zone", "phone", "email", "staff_count", "handoff_enabled"]
    list_filter = ["group", "time_zone", "handoff_enabled"]
    search_fields = ["name", "city", "email", "group__name"]
    list_select_related = ["group"]
    autocomplete_fields = ["group"]
    inlines = [HolidayInline]
    fieldsets = [
        (None, {"fields": ["group", "name", "time_zone", "country"]}),
        ("Contact", {"fields": ["phone", "email", "website", "street", "city", "region", "postal_code"]}),
        ("Business hours", {"fields": ["business_hours"]}),
        (
            "Speed to lead",
            {
                "fields": ["remind_owner_after", "handoff_after", "handoff_enabled", "manager_after"],
                "description": "Minutes after a new lead arrives with no human attempt: first the owner is "
                "reminded, then the lead is handed to the next agent on duty, then the managers "
                "are told.",
            },
        ),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_staff=Count("staff", distinct=True))

    @admin.display(description="Staff", ordering="n_staff")
    def staff_count(self, obj) -> int:
        return obj.n_staff

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "time_zone" and field is not None:
            field.help_text = "e.g. America/New_York, America/Chicago, America/Denver, America/Los_Angeles"
        return field


@admin.register(Holiday)
class HolidayAdmin(PursuitAdmin):
    list_display = ["date", "name", "rooftop"]
    list_filter = ["rooftop"]
    search_fields = ["name", "rooftop__name"]
    date_hierarchy = "date"
    autocomplete_fields = ["rooftop"]
    list_select_related = ["rooftop"]


# --------------------------------------------------------------------------- staff


class DirectLineMixin:
    """Stores a valid direct line as E.164, so automatic emails can show it nicely."""

    def clean(self):
        cleaned = super().clean()
        line = (cleaned.get("direct_line") or "").strip()
        if line:
            rooftop = cleaned.get("rooftop")
            phone = phone_normalise(line, region=rooftop.country if rooftop else "US")
            if phone is None:
                self.add_error("direct_line", "This is not a phone number.")
            else:
                cleaned["direct_line"] = phone.number
        return cleaned


class UserChangeForm(DirectLineMixin, DjangoUserAdmin.form):
    pass


class UserCreationForm(DirectLineMixin, DjangoUserAdmin.add_form):
    pass


@admin.register(User)
class UserAdmin(PursuitAdminMixin, DjangoUserAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    list_display = [
        "username",
        "full_name",
        "email",
        "role",
        "rooftop",
        "on_duty",
        "is_active",
        "is_staff",
        "last_login",
    ]
    list_filter = ["role", "rooftop", "on_duty", "is_active", "is_staff", "is_superuser"]
    list_select_related = ["rooftop"]
    search_fields = ["username", "first_name", "last_name", "email", "direct_line"]
    autocomplete_fields = ["rooftop"]
    readonly_fields = ["last_login", "date_joined"]
    fieldsets = [
        (None, {"fields": ["username", "password"]}),
        ("Person", {"fields": ["first_name", "last_name", "email"]}),
        (
            "Dealership",
            {
                "fields": ["rooftop", "role", "direct_line", "on_duty"],
                "description": "Role decides what the person sees in Pursuit; on duty means they take "
                "new leads in round robin.",
            },
        ),
        (
            "Admin access",
            {
                "classes": ["collapse"],
                "fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"],
            },
        ),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        *DjangoUserAdmin.add_fieldsets,
        ("Person", {"classes": ["wide"], "fields": ["first_name", "last_name", "email"]}),
        ("Dealership", {"classes": ["wide"], "fields": ["rooftop", "role", "direct_line", "on_duty"]}),
    ]

    @admin.display(description="Name", ordering="last_name")
    def full_name(self, obj) -> str:
        return obj.get_full_name()


# --------------------------------------------------------------------------- teams


class TeamForm(forms.ModelForm):
    class Meta:
        model = Team
        fields = ["rooftop", "name", "members"]

    def clean(self):
        cleaned = super().clean()
        rooftop, members = cleaned.get("rooftop"), cleaned.get("members")
        if rooftop is not None and members is not None:
            strangers = [m.display_name for m in members if m.rooftop_id != rooftop.pk]
            if strangers:
                self.add_error("members", f"Not staff of {rooftop}: {', '.join(strangers)}.")
        return cleaned


class AssignmentRuleForm(forms.ModelForm):
    class Meta:
        model = AssignmentRule
        fields = ["priority", "lead_type", "source"]

    def clean(self):
        cleaned = super().clean()
        team = getattr(self.instance, "team", None)
        rooftop_id = team.rooftop_id if team is not None else None
        source = cleaned.get("source")
        if source is not None and rooftop_id is not None and source.rooftop_id != rooftop_id:
            self.add_error("source", "This source belongs to another rooftop.")
        if rooftop_id is not None:
            self.instance.rooftop_id = rooftop_id  # a team's rules are its rooftop's
        return cleaned


class AssignmentRuleInline(admin.TabularInline):
    model = AssignmentRule
    form = AssignmentRuleForm
    fk_name = "team"
    extra = 0
    autocomplete_fields = ["source"]
    verbose_name = "assignment rule"
    verbose_name_plural = (
        "Assignment rules: which leads this team takes (the lowest priority number is "
        "tried first; an empty type or source matches any)"
    )


@admin.register(Team)
class TeamAdmin(PursuitAdmin):
    form = TeamForm
    list_display = ["name", "rooftop", "member_names", "last_assigned_name"]
    list_filter = ["rooftop"]
    search_fields = ["name", "rooftop__name", "members__username", "members__last_name"]
    list_select_related = ["rooftop", "last_assigned"]
    filter_horizontal = ["members"]
    readonly_fields = ["last_assigned_name"]
    fields = ["rooftop", "name", "members", "last_assigned_name"]

    inlines = [AssignmentRuleInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("members")

    @admin.display(description="Members")
    def member_names(self, obj) -> str:
        return ", ".join(m.display_name for m in obj.members.all()) or "—"

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if db_field.name == "members":
            field.queryset = User.objects.filter(is_active=True).order_by("first_name", "last_name")
            field.label_from_instance = staff_label
        return field

    @admin.display(description="Last given a lead")
    def last_assigned_name(self, obj) -> str:
        return obj.last_assigned.display_name if obj.last_assigned else "—"
